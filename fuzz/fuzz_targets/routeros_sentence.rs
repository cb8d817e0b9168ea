//! The RouterOS API byte stream as read from a router (or from anything answering on the
//! router's address): the incremental sentence decoder and the reply/command parsers.
//!
//! The input is treated as a TCP stream: sentences are decoded one after another from
//! the front, draining the bytes each one used, until the decoder asks for more bytes or
//! refuses the stream. This runs twice, with the default limits and with small limits
//! so that every limit check is reachable with short inputs. For every sentence decoded:
//!
//! * it respects the limits it was decoded under and holds no empty word (an empty word
//!   is the terminator, which is why re-encoding it is unambiguous);
//! * `encode_sentence` of it decodes back to the same sentence, using exactly the bytes
//!   of the encoding, also when more stream bytes follow;
//! * the encoding is never longer than the bytes consumed, and is byte-identical to them
//!   when it has the same length (it is shorter only when the peer used over-long length
//!   prefixes, which the decoder accepts);
//! * every strict prefix of the consumed bytes decodes to "need more bytes";
//! * what the small limits accept, the default limits accept identically;
//! * `Command::from_sentence` and `Reply::from_sentence` do not panic, and whatever they
//!   accept survives `to_sentence` and a second parse unchanged.

#![no_main]

use ispvm_proto::routeros::{
    Command, FrameLimits, Reply, Sentence, decode_sentence, encode_sentence,
};
use libfuzzer_sys::fuzz_target;

/// Limits small enough that fuzzed inputs of a few dozen bytes hit each of them.
const SMALL: FrameLimits = FrameLimits {
    max_word_len: 8,
    max_sentence_len: 32,
    max_words: 3,
};

fuzz_target!(|data: &[u8]| {
    drain(data, &FrameLimits::default());
    drain(data, &SMALL);
});

fn drain(mut stream: &[u8], limits: &FrameLimits) {
    loop {
        let (sentence, used) = match decode_sentence(stream, limits) {
            Ok(Some(found)) => found,
            // Incomplete: a connection would wait for more bytes. Refused: it would close.
            Ok(None) | Err(_) => return,
        };
        assert!(
            (1..=stream.len()).contains(&used),
            "used {used} of {} bytes",
            stream.len()
        );
        let (consumed, rest) = stream.split_at(used);
        check_frame(&sentence, consumed, rest, limits);
        check_messages(&sentence);
        if *limits != FrameLimits::default() {
            assert_eq!(
                decode_sentence(stream, &FrameLimits::default()),
                Ok(Some((sentence, used))),
                "larger limits decoded differently"
            );
        }
        stream = rest;
    }
}

fn check_frame(sentence: &Sentence, consumed: &[u8], rest: &[u8], limits: &FrameLimits) {
    assert!(consumed.len() <= limits.max_sentence_len);
    assert!(sentence.words.len() <= limits.max_words);
    for word in &sentence.words {
        assert!(!word.is_empty(), "a decoded sentence holds an empty word");
        assert!(word.len() <= limits.max_word_len);
    }

    let mut wire = Vec::new();
    encode_sentence(sentence, &mut wire);
    assert_eq!(wire.len(), sentence.encoded_len());
    assert_eq!(
        decode_sentence(&wire, limits),
        Ok(Some((sentence.clone(), wire.len()))),
        "re-encoded sentence does not decode to itself"
    );
    let mut followed = wire.clone();
    followed.extend_from_slice(rest);
    assert_eq!(
        decode_sentence(&followed, limits),
        Ok(Some((sentence.clone(), wire.len()))),
        "re-encoded sentence decodes differently when more bytes follow"
    );
    assert!(
        wire.len() <= consumed.len(),
        "encoding ({} bytes) is longer than the input it came from ({} bytes)",
        wire.len(),
        consumed.len()
    );
    if wire.len() == consumed.len() {
        assert_eq!(wire, consumed, "same length but different bytes");
    }

    // The decoder is incremental: a sentence cut short is never an error nor a sentence.
    for cut in [consumed.len() - 1, consumed.len() / 2] {
        assert_eq!(
            decode_sentence(&consumed[..cut], limits),
            Ok(None),
            "prefix of {cut} bytes"
        );
    }
}

fn check_messages(sentence: &Sentence) {
    if let Ok(command) = Command::from_sentence(sentence) {
        assert_eq!(
            Command::from_sentence(&command.to_sentence()),
            Ok(command),
            "command changed through to_sentence"
        );
    }
    if let Ok(reply) = Reply::from_sentence(sentence) {
        assert_eq!(
            Reply::from_sentence(&reply.to_sentence()),
            Ok(reply),
            "reply changed through to_sentence"
        );
    }
}
