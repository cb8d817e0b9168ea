//! Sentences: encoding, and bounded incremental decoding from a byte stream.
//!
//! [`decode_sentence`] looks at the bytes received so far and either returns a complete
//! sentence with the number of bytes it used, or says more bytes are needed. Limits are
//! enforced as soon as a length prefix is read, so a peer announcing a 4 GiB word is
//! refused before any of it is buffered.

use super::word::{LenPrefix, decode_len, encode_len};

/// A sentence as raw words (RouterOS does not promise UTF-8: comments and names may be
/// in a legacy code page).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sentence {
    pub words: Vec<Vec<u8>>,
}

impl Sentence {
    pub fn new<I, W>(words: I) -> Self
    where
        I: IntoIterator<Item = W>,
        W: Into<Vec<u8>>,
    {
        Sentence {
            words: words.into_iter().map(Into::into).collect(),
        }
    }

    /// Bytes the sentence takes on the wire.
    pub fn encoded_len(&self) -> usize {
        let mut out = Vec::new();
        encode_sentence(self, &mut out);
        out.len()
    }
}

/// Bounds on what a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    pub max_word_len: usize,
    pub max_sentence_len: usize,
    pub max_words: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        // Large enough for a full /interface print on a big router's single !re, small
        // enough that a hostile peer cannot make us hold much.
        FrameLimits {
            max_word_len: 64 << 10,
            max_sentence_len: 1 << 20,
            max_words: 4096,
        }
    }
}

/// A byte stream that is not a valid RouterOS API sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("reserved control byte {0:#04x} where a word length was expected")]
    ReservedControlByte(u8),
    #[error("word of {len} bytes is over the limit of {limit}")]
    WordTooLong { len: u64, limit: usize },
    #[error("sentence of at least {len} bytes is over the limit of {limit}")]
    SentenceTooLong { len: usize, limit: usize },
    #[error("sentence of more than {limit} words")]
    TooManyWords { limit: usize },
}

/// Appends the wire form of `sentence` (words, then the empty terminator word).
pub fn encode_sentence(sentence: &Sentence, out: &mut Vec<u8>) {
    for word in &sentence.words {
        // Words are built by us; one over 4 GiB cannot exist in memory of a monitor.
        let len = u32::try_from(word.len()).unwrap_or(u32::MAX);
        encode_len(len, out);
        out.extend_from_slice(&word[..len as usize]);
    }
    out.push(0);
}

/// Decodes one sentence from the start of `buf`.
///
/// Returns `Ok(Some((sentence, used)))` when a whole sentence is there, `Ok(None)` when
/// more bytes are needed, and an error when the bytes can never become a valid sentence
/// within `limits` (the connection should then be closed).
pub fn decode_sentence(
    buf: &[u8],
    limits: &FrameLimits,
) -> Result<Option<(Sentence, usize)>, FrameError> {
    let mut pos = 0usize;
    let mut words = Vec::new();
    loop {
        let (len, prefix_len) = match decode_len(&buf[pos..]) {
            LenPrefix::Complete { len, prefix_len } => (len as usize, prefix_len),
            LenPrefix::Incomplete => return Ok(None),
            LenPrefix::Reserved(b) => return Err(FrameError::ReservedControlByte(b)),
        };
        if len > limits.max_word_len {
            return Err(FrameError::WordTooLong {
                len: len as u64,
                limit: limits.max_word_len,
            });
        }
        let end = pos + prefix_len + len;
        if end > limits.max_sentence_len {
            return Err(FrameError::SentenceTooLong {
                len: end,
                limit: limits.max_sentence_len,
            });
        }
        if len == 0 {
            return Ok(Some((Sentence { words }, pos + prefix_len)));
        }
        if words.len() >= limits.max_words {
            return Err(FrameError::TooManyWords {
                limit: limits.max_words,
            });
        }
        if buf.len() < end {
            return Ok(None);
        }
        words.push(buf[pos + prefix_len..end].to_vec());
        pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_byte_by_byte() {
        let s = Sentence::new([
            "/interface/print".as_bytes().to_vec(),
            b"=.proplist=name,running".to_vec(),
            vec![b'x'; 300],
            vec![b'y'; 20_000],
        ]);
        let mut wire = Vec::new();
        encode_sentence(&s, &mut wire);
        let limits = FrameLimits::default();
        assert_eq!(
            decode_sentence(&wire, &limits),
            Ok(Some((s.clone(), wire.len())))
        );
        for cut in 0..wire.len() {
            assert_eq!(
                decode_sentence(&wire[..cut], &limits),
                Ok(None),
                "cut {cut}"
            );
        }
        // Two sentences back to back: the first is returned with its own length.
        let mut two = wire.clone();
        two.extend_from_slice(&wire);
        assert_eq!(decode_sentence(&two, &limits), Ok(Some((s, wire.len()))));
    }

    #[test]
    fn limits_are_enforced_before_buffering() {
        let limits = FrameLimits {
            max_word_len: 10,
            max_sentence_len: 30,
            max_words: 2,
        };
        // A word announced at 4 GiB is refused from its 5 prefix bytes alone.
        assert!(matches!(
            decode_sentence(&[0xF0, 0xFF, 0xFF, 0xFF, 0xFF], &limits),
            Err(FrameError::WordTooLong { .. })
        ));
        assert!(matches!(
            decode_sentence(
                &[3, b'a', b'b', b'c', 3, b'a', b'b', b'c', 1, b'x', 0],
                &limits
            ),
            Err(FrameError::TooManyWords { limit: 2 })
        ));
        let mut long = Vec::new();
        for _ in 0..4 {
            long.push(9);
            long.extend_from_slice(b"123456789");
        }
        let many_words = FrameLimits {
            max_words: 100,
            ..limits
        };
        assert!(matches!(
            decode_sentence(&long, &many_words),
            Err(FrameError::SentenceTooLong { .. })
        ));
        assert_eq!(
            decode_sentence(&[0xF8], &limits),
            Err(FrameError::ReservedControlByte(0xF8))
        );
    }

    #[test]
    fn empty_sentence_is_just_the_terminator() {
        assert_eq!(
            decode_sentence(&[0], &FrameLimits::default()),
            Ok(Some((Sentence::default(), 1)))
        );
    }
}
