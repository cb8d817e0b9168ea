//! Segment files: `<first record id, 20 digits>.log`, a 24-byte header, then frames.
//!
//! Header: `magic "ISPVMSEG" | format version u32 LE | first record id u64 LE | crc u32 LE`
//! (CRC-32C of the 20 bytes before it). Record ids are not stored per record: the n-th
//! frame of a segment (from 0) has id `first + n`. The header repeats the first id so a
//! renamed or foreign file is recognised rather than trusted.

use super::crc::crc32c;
use super::record::{self, HeaderRead};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes of the header at the start of every segment file.
pub const SEGMENT_HEADER_LEN: u64 = 24;
const MAGIC: &[u8; 8] = b"ISPVMSEG";
const FORMAT_VERSION: u32 = 1;
const SUFFIX: &str = ".log";
const DIGITS: usize = 20;

/// File name of the segment whose first record is `base`.
pub(crate) fn file_name(base: u64) -> String {
    format!("{base:0DIGITS$}{SUFFIX}")
}

/// The first record id a segment file name stands for, or `None` for any other file.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn encode_header(base: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&base.to_le_bytes());
    let crc = crc32c(&h[..20]);
    h[20..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The first id a header states, if it is a valid header of this format.
fn decode_header(h: &[u8; SEGMENT_HEADER_LEN as usize]) -> Option<u64> {
    let crc = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    if &h[..8] != MAGIC || crc32c(&h[..20]) != crc {
        return None;
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != FORMAT_VERSION {
        return None;
    }
    let mut base = [0u8; 8];
    base.copy_from_slice(&h[12..20]);
    Some(u64::from_le_bytes(base))
}

/// What the buffer knows about one segment file. Only the last segment grows.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// Id of the first record.
    pub base: u64,
    /// Valid records in the file.
    pub records: u64,
    /// Bytes of the file up to the end of the last valid record, header included.
    pub bytes: u64,
    pub path: PathBuf,
}

impl Segment {
    /// One past the id of the last record.
    pub fn end(&self) -> u64 {
        self.base + self.records
    }
}

/// Creates a new, empty segment and writes its header; returns a handle that appends.
/// `O_EXCL`: an existing file of that name is a bug upstream and must not be overwritten.
pub(crate) fn create(dir: &Path, base: u64) -> io::Result<(File, Segment)> {
    let path = dir.join(file_name(base));
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)?;
    if let Err(e) = file.write_all(&encode_header(base)) {
        // Do not leave a file with half a header behind: the next attempt must be able to
        // create it again.
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok((
        file,
        Segment {
            base,
            records: 0,
            bytes: SEGMENT_HEADER_LEN,
            path,
        },
    ))
}

/// Opens an existing segment for appending at its end.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

/// How the scan of a segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// The last frame ends exactly at the end of the file.
    Clean,
    /// The file ends inside a frame (header or payload cut short).
    Incomplete,
    /// A complete frame whose checksum does not match, or more records than fit before the
    /// next segment's first id.
    Corrupt,
}

/// The result of checking a segment file on open.
#[derive(Debug)]
pub(crate) enum Scan {
    /// Header missing, damaged or for another id: nothing in the file can be trusted.
    BadHeader { file_len: u64 },
    /// The valid records; bytes after `segment.bytes` (if `tail` is not `Clean`) have been
    /// cut off the file already.
    Valid {
        segment: Segment,
        file_len: u64,
        tail: Tail,
    },
}

/// Reads the whole segment, checks every frame and cuts the file after the last good one.
///
/// `max_records` bounds the records the segment may hold (up to the next segment's first
/// id). `buf` is reused for payloads.
pub(crate) fn scan(
    path: &Path,
    base: u64,
    max_records: Option<u64>,
    buf: &mut Vec<u8>,
) -> io::Result<Scan> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    if file_len < SEGMENT_HEADER_LEN {
        return Ok(Scan::BadHeader { file_len });
    }
    // An I/O error is not a bad header: it must not get a segment deleted.
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Ok(Scan::BadHeader { file_len });
        }
        Err(e) => return Err(e),
    }
    if decode_header(&header) != Some(base) {
        return Ok(Scan::BadHeader { file_len });
    }
    let mut offset = SEGMENT_HEADER_LEN;
    let mut records = 0u64;
    let tail = loop {
        if max_records.is_some_and(|max| records >= max) && offset < file_len {
            break Tail::Corrupt;
        }
        match record::read_header(&mut reader, file_len - offset)? {
            HeaderRead::End => break Tail::Clean,
            HeaderRead::Incomplete => break Tail::Incomplete,
            HeaderRead::Frame(h) => {
                if !record::read_payload(&mut reader, h, buf)? {
                    break Tail::Corrupt;
                }
                records += 1;
                offset += h.frame_len();
            }
        }
    };
    if offset < file_len {
        let file = reader.into_inner();
        file.set_len(offset)?;
        file.sync_all()?;
    }
    Ok(Scan::Valid {
        segment: Segment {
            base,
            records,
            bytes: offset,
            path: path.to_path_buf(),
        },
        file_len,
        tail,
    })
}

/// Moves `reader`, positioned at record `from_id` at `from_offset`, to record `target` of
/// `segment` by walking frame headers, without reading or checking payloads: they were
/// checked when the segment was scanned or written. Returns the offset of `target`.
///
/// `Err(SeekError::Damaged)` gives the last good position when the frames on disk do not
/// match what the buffer knows (the file was changed behind its back).
pub(crate) fn skip_to<R: Read + Seek>(
    reader: &mut BufReader<R>,
    segment: &Segment,
    from_id: u64,
    from_offset: u64,
    target: u64,
) -> Result<u64, SeekError> {
    let (mut id, mut offset) = (from_id, from_offset);
    while id < target {
        match record::read_header(reader, segment.bytes.saturating_sub(offset))
            .map_err(SeekError::Io)?
        {
            HeaderRead::Frame(h) => {
                reader
                    .seek_relative(i64::from(h.len))
                    .map_err(SeekError::Io)?;
                offset += h.frame_len();
                id += 1;
            }
            HeaderRead::End | HeaderRead::Incomplete => {
                return Err(SeekError::Damaged { id, offset });
            }
        }
    }
    Ok(offset)
}

/// Opens a segment for reading at `offset`.
pub(crate) fn open_read(path: &Path, offset: u64) -> io::Result<BufReader<File>> {
    let mut reader = BufReader::with_capacity(64 << 10, File::open(path)?);
    reader.seek(SeekFrom::Start(offset))?;
    Ok(reader)
}

#[derive(Debug)]
pub(crate) enum SeekError {
    Io(io::Error),
    Damaged { id: u64, offset: u64 },
}

/// Removes a segment file; one already gone counts as removed.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_segment_names_and_header() {
        assert_eq!(file_name(1234), "00000000000000001234.log");
        assert_eq!(parse_file_name("00000000000000001234.log"), Some(1234));
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        for other in [
            "1234.log",
            "0000000000000000123a.log",
            "00000000000000001234.log.tmp",
            "ack.state",
            "+0000000000000001234.log",
        ] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
        let h = encode_header(77);
        assert_eq!(decode_header(&h), Some(77));
        let mut bad = h;
        bad[14] ^= 1;
        assert_eq!(decode_header(&bad), None);
    }
}
