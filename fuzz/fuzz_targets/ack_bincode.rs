//! The acknowledgement an agent reads from the server: bincode from the other end of a
//! connection the agent trusts, but whose bytes it must not trust blindly (a proxy, a
//! server of another version, a broken network path).
//!
//! `from_bincode::<Ack>` never panics, and an accepted `Ack` survives a round trip.

#![no_main]

use ispvm_proto::Ack;
use ispvm_proto::codec::{Limits, from_bincode, to_bincode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The agent reads at most 64 KiB of answer (agent/src/uplink/quic.rs).
    let limits = Limits {
        max_bytes: 64 * 1024,
        ..Limits::default()
    };
    let Ok(ack) = from_bincode::<Ack>(data, &limits) else {
        return;
    };
    let encoded = to_bincode(&ack).expect("an accepted ack must encode");
    let again = from_bincode::<Ack>(&encoded, &limits).expect("and decode again");
    assert_eq!(again, ack, "bincode round trip changed the ack");
});
