//! Syslog from the network (UDP datagrams, TCP streams): anyone who can reach the
//! agent's port can send it, and routers send what their firmware writes.
//!
//! The input is split in two at its first byte: the frame size limit and how the stream
//! is cut into reads. Checks that the TCP framer never panics, never yields a frame over
//! its limit nor more bytes than it was given, frames the same stream the same way
//! however it is cut into reads, and that the message parser never panics on any frame
//! (nor on the whole input taken as one datagram).

#![no_main]

use ispvm_agent::syslog::parse;
use ispvm_agent::syslog::receiver::{Frame, Framer};
use libfuzzer_sys::fuzz_target;

/// What the framer makes of `data` read `cut` bytes at a time. Between reads it may
/// hold at most one partial frame and its length prefix.
fn frames(max: usize, data: &[u8], cut: usize) -> Vec<Frame> {
    let mut framer = Framer::new(max);
    let mut out = Vec::new();
    for chunk in data.chunks(cut.max(1)) {
        framer.push(chunk, &mut out);
        assert!(framer.buffered() <= max + 32, "framer holds {} bytes", framer.buffered());
    }
    framer.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    let Some((&knob, stream)) = data.split_first() else {
        return;
    };
    let max = 16 + usize::from(knob & 0x3f) * 8;
    let cut = usize::from(knob >> 6) * 7 + 1;
    let whole = frames(max, stream, stream.len());
    let pieces = frames(max, stream, cut);
    assert_eq!(whole, pieces, "framing depends on how reads are cut");
    let messages: Vec<&Vec<u8>> = whole
        .iter()
        .filter_map(|f| match f {
            Frame::Message(m) => Some(m),
            Frame::Oversize | Frame::Truncated => None,
        })
        .collect();
    let total: usize = messages.iter().map(|m| m.len()).sum();
    assert!(total <= stream.len());
    for m in messages {
        assert!(m.len() <= max, "frame over the limit");
        let _ = parse(m);
    }
});
