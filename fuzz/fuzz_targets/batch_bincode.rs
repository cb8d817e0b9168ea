//! Batches as an agent uploads them over QUIC: bincode from an untrusted peer.
//!
//! Checks that `from_bincode` never panics, whatever the bytes, and that every batch it
//! accepts survives `to_bincode` and a second decode unchanged (within the same limits).

#![no_main]

use ispvm_proto::Batch;
use ispvm_proto::codec::{Limits, from_bincode, to_bincode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(batch) = from_bincode::<Batch>(data, &limits) else {
        return;
    };
    let encoded = to_bincode(&batch).expect("an accepted batch must encode");
    let again = from_bincode::<Batch>(&encoded, &limits)
        .expect("the encoding of an accepted batch must decode within the same limits");
    assert_eq!(again, batch, "bincode round trip changed the batch");
});
