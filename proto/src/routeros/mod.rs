//! The MikroTik RouterOS API wire protocol (TCP 8728, TLS 8729).
//!
//! A conversation is a stream of *sentences*; a sentence is a list of *words* ended by an
//! empty word; a word is a length prefix (one to five bytes) followed by that many bytes.
//! [`word`] holds the length encoding, [`sentence`] the bounded incremental decoder, and
//! [`message`] the meaning of words: commands sent to a router and the replies it gives.

pub mod message;
pub mod sentence;
pub mod word;

pub use message::{Command, Reply, ReplyKind};
pub use sentence::{FrameError, FrameLimits, Sentence, decode_sentence, encode_sentence};
