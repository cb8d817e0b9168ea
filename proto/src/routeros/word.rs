//! Length prefixes of RouterOS API words.
//!
//! The prefix is variable-length and self-describing by its first byte:
//! `0xxxxxxx` (1 byte, < 0x80), `10xxxxxx` (2 bytes, < 0x4000), `110xxxxx` (3 bytes,
//! < 0x20_0000), `1110xxxx` (4 bytes, < 0x1000_0000) and `0xF0` followed by a 4-byte
//! big-endian length. First bytes `0xF1..=0xFF` are reserved control bytes.

/// Longest word the encoding can express.
pub const MAX_ENCODABLE_LEN: u64 = u32::MAX as u64;

/// Appends the length prefix of a word of `len` bytes.
pub fn encode_len(len: u32, out: &mut Vec<u8>) {
    let n = len;
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x4000 {
        out.extend_from_slice(&((n | 0x8000) as u16).to_be_bytes());
    } else if n < 0x20_0000 {
        let v = n | 0xC0_0000;
        out.extend_from_slice(&v.to_be_bytes()[1..]);
    } else if n < 0x1000_0000 {
        out.extend_from_slice(&(n | 0xE000_0000).to_be_bytes());
    } else {
        out.push(0xF0);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// The outcome of reading a length prefix from the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenPrefix {
    /// The prefix is complete: the word is `len` bytes and the prefix took `prefix_len`.
    Complete { len: u32, prefix_len: usize },
    /// More bytes are needed to know the length.
    Incomplete,
    /// The first byte is a reserved control byte (0xF1..=0xFF).
    Reserved(u8),
}

/// Reads a length prefix from the start of `buf`.
pub fn decode_len(buf: &[u8]) -> LenPrefix {
    let Some(&first) = buf.first() else {
        return LenPrefix::Incomplete;
    };
    let prefix_len = match first {
        0x00..=0x7F => 1,
        0x80..=0xBF => 2,
        0xC0..=0xDF => 3,
        0xE0..=0xEF => 4,
        0xF0 => 5,
        other => return LenPrefix::Reserved(other),
    };
    if buf.len() < prefix_len {
        return LenPrefix::Incomplete;
    }
    let len = match prefix_len {
        1 => u32::from(first),
        2 => u32::from(first & 0x3F) << 8 | u32::from(buf[1]),
        3 => u32::from(first & 0x1F) << 16 | u32::from(buf[1]) << 8 | u32::from(buf[2]),
        4 => {
            u32::from(first & 0x0F) << 24
                | u32::from(buf[1]) << 16
                | u32::from(buf[2]) << 8
                | u32::from(buf[3])
        }
        _ => u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]),
    };
    LenPrefix::Complete { len, prefix_len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_of_every_form() {
        let cases: &[(u32, &[u8])] = &[
            (0, &[0x00]),
            (0x7F, &[0x7F]),
            (0x80, &[0x80, 0x80]),
            (0x3FFF, &[0xBF, 0xFF]),
            (0x4000, &[0xC0, 0x40, 0x00]),
            (0x1F_FFFF, &[0xDF, 0xFF, 0xFF]),
            (0x20_0000, &[0xE0, 0x20, 0x00, 0x00]),
            (0x0FFF_FFFF, &[0xEF, 0xFF, 0xFF, 0xFF]),
            (0x1000_0000, &[0xF0, 0x10, 0x00, 0x00, 0x00]),
            (u32::MAX, &[0xF0, 0xFF, 0xFF, 0xFF, 0xFF]),
        ];
        for &(len, bytes) in cases {
            let mut out = Vec::new();
            encode_len(len, &mut out);
            assert_eq!(out, bytes, "encoding {len:#x}");
            assert_eq!(
                decode_len(bytes),
                LenPrefix::Complete {
                    len,
                    prefix_len: bytes.len()
                },
                "decoding {len:#x}"
            );
            assert_eq!(decode_len(&bytes[..bytes.len() - 1]), LenPrefix::Incomplete);
        }
    }

    #[test]
    fn control_bytes_are_reserved() {
        for b in 0xF1..=0xFFu8 {
            assert_eq!(decode_len(&[b, 0, 0, 0, 0]), LenPrefix::Reserved(b));
        }
    }
}
