//! Topology files of the virtual ISP (`ispvm sim run --scenario FILE`, the demo): TOML
//! written by whoever models a network, and soon the scenario files of the RCA corpus.
//!
//! Checks that `Topology::from_toml` never panics and refuses what it cannot build with
//! an error.

#![no_main]

use ispvm_sim::topology::Topology;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Topology::from_toml(text);
    }
});
