//! Topology and scenario files of the virtual ISP (`ispvm sim run --scenario FILE`, the
//! demo, `ispvm scenario run FILE`): TOML written by whoever models a network or a fault.
//!
//! Checks that `Topology::from_toml` and `Topology::from_scenario_toml` never panic
//! (the scenario checks locate every error's line in the text) and refuse what they
//! cannot build with an error.

#![no_main]

use ispvm_sim::topology::Topology;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Topology::from_toml(text);
        if let Ok(t) = Topology::from_scenario_toml(text) {
            let _ = t.scenario_agents();
            let _ = t.server_router();
        }
    }
});
