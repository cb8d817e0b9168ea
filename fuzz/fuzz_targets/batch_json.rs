//! Batches as posted to the HTTPS ingest endpoint: JSON from an untrusted client.
//!
//! Checks that `from_json` never panics, whatever the bytes, and that every batch it
//! accepts survives `to_json` and a second decode unchanged. Accepted batches also go
//! through `to_bincode`/`from_bincode`: random bytes almost never form a valid bincode
//! batch, so this is where the bincode round trip meets varied, valid content.

#![no_main]

use ispvm_proto::Batch;
use ispvm_proto::codec::{Limits, from_bincode, from_json, to_bincode, to_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(batch) = from_json::<Batch>(data, &limits) else {
        return;
    };
    let encoded = to_json(&batch).expect("an accepted batch must encode");
    // The re-encoding may legitimately be longer than the input (`1` comes back as
    // `1.0`, an omitted `samples` comes back as `"samples":[]`), so only the byte limit
    // is widened for the second decode; every limit on the content stays as it was.
    let relaxed = Limits {
        max_bytes: limits.max_bytes.max(encoded.len()),
        ..limits
    };
    let again = from_json::<Batch>(&encoded, &relaxed)
        .expect("the JSON encoding of an accepted batch must decode again");
    assert_eq!(again, batch, "JSON round trip changed the batch");

    let binary = to_bincode(&batch).expect("an accepted batch must encode as bincode");
    let from_binary = from_bincode::<Batch>(&binary, &relaxed)
        .expect("the bincode encoding of an accepted batch must decode");
    assert_eq!(
        from_binary, batch,
        "bincode round trip changed a JSON-accepted batch"
    );
});
