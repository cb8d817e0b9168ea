//! Record framing: `length: u32 LE | crc: u32 LE | payload`.
//!
//! The checksum covers the length bytes as well as the payload. A crash that extended a
//! file without writing its data leaves zeros behind; with the length included, an
//! all-zero frame (length 0, crc 0) does not pass as an empty record, and a flipped bit in
//! the length cannot make a shorter or longer slice of bytes look valid by accident.

use super::crc::Crc32c;
use std::io::{self, Read};

/// Bytes in front of every payload: the length and the checksum.
pub const RECORD_HEADER_LEN: u64 = 8;

/// The checksum a frame of this payload carries.
pub(crate) fn frame_crc(payload: &[u8]) -> u32 {
    let len = payload.len() as u32;
    let mut crc = Crc32c::new();
    crc.update(&len.to_le_bytes());
    crc.update(payload);
    crc.finish()
}

/// Writes the frame of `payload` into `out` (cleared first), ready for one `write_all`.
/// The caller has checked that the length fits in a u32.
pub(crate) fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(payload.len() + RECORD_HEADER_LEN as usize);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame_crc(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The header of a frame, read before deciding whether to read its payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameHeader {
    pub len: u32,
    pub crc: u32,
}

impl FrameHeader {
    /// Bytes of the whole frame.
    pub fn frame_len(&self) -> u64 {
        RECORD_HEADER_LEN + u64::from(self.len)
    }
}

/// What was found where a frame should start.
#[derive(Debug)]
pub(crate) enum HeaderRead {
    /// `remaining` was zero: the segment ends cleanly here.
    End,
    /// A header whose frame fits in `remaining`.
    Frame(FrameHeader),
    /// Too few bytes for a header, or a length that runs past the end: a write that was
    /// cut short, or (anywhere but at the tail) a damaged length.
    Incomplete,
}

/// Reads a frame header when `remaining` bytes of the segment are left from here.
///
/// A file shorter than `remaining` (cut by someone else) reads as `Incomplete` too.
pub(crate) fn read_header(reader: &mut impl Read, remaining: u64) -> io::Result<HeaderRead> {
    if remaining == 0 {
        return Ok(HeaderRead::End);
    }
    if remaining < RECORD_HEADER_LEN {
        return Ok(HeaderRead::Incomplete);
    }
    let mut raw = [0u8; RECORD_HEADER_LEN as usize];
    match reader.read_exact(&mut raw) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(HeaderRead::Incomplete),
        Err(e) => return Err(e),
    }
    let header = FrameHeader {
        len: u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
        crc: u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]),
    };
    if header.frame_len() > remaining {
        return Ok(HeaderRead::Incomplete);
    }
    Ok(HeaderRead::Frame(header))
}

/// Reads the payload of `header` into `buf` and checks it. `Ok(false)` means the checksum
/// does not match or the file ended early; the content of `buf` is then garbage.
///
/// The length was checked against the segment's size before, so the allocation is bounded
/// by what is on disk, never by a forged length.
pub(crate) fn read_payload(
    reader: &mut impl Read,
    header: FrameHeader,
    buf: &mut Vec<u8>,
) -> io::Result<bool> {
    buf.clear();
    buf.resize(header.len as usize, 0);
    match reader.read_exact(buf) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    Ok(frame_crc(buf) == header.crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_frame_round_trip_and_damage() {
        let mut frame = Vec::new();
        encode_frame(b"hello", &mut frame);
        assert_eq!(frame.len(), 13);

        let mut buf = Vec::new();
        let mut r = &frame[..];
        let HeaderRead::Frame(h) = read_header(&mut r, frame.len() as u64).expect("read") else {
            panic!("no frame")
        };
        assert!(read_payload(&mut r, h, &mut buf).expect("read"));
        assert_eq!(buf, b"hello");

        // A flipped payload bit.
        let mut bad = frame.clone();
        bad[10] ^= 0x04;
        let mut r = &bad[..];
        let HeaderRead::Frame(h) = read_header(&mut r, bad.len() as u64).expect("read") else {
            panic!("no frame")
        };
        assert!(!read_payload(&mut r, h, &mut buf).expect("read"));

        // A cut frame.
        let mut r = &frame[..10];
        assert!(matches!(
            read_header(&mut r, 10),
            Ok(HeaderRead::Incomplete)
        ));
        let mut r = &frame[..5];
        assert!(matches!(read_header(&mut r, 5), Ok(HeaderRead::Incomplete)));

        // Zeros do not pass as an empty record.
        let zeros = [0u8; 8];
        let mut r = &zeros[..];
        let HeaderRead::Frame(h) = read_header(&mut r, 8).expect("read") else {
            panic!("no frame")
        };
        assert!(!read_payload(&mut r, h, &mut buf).expect("read"));
    }
}
