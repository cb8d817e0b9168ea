//! Every scenario of the corpus (`simulations/scenarios/`) passes through the real
//! `ispvm scenario run`: the virtual ISP, real agents, the server, judged.
//!
//! The files run in a few `ispvm` processes at once: a scenario mostly waits for its
//! scenario clock, so running them one after another would only add minutes.

use std::process::{Command, Stdio};

/// Processes at once: enough to overlap the waiting, few enough that a loaded CI
/// machine does not stretch the scenario clocks.
const AT_ONCE: usize = 3;

#[test]
fn the_corpus_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulations/scenarios");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 12,
        "the corpus of issue 13 has at least 12 scenarios"
    );
    let mut groups: Vec<Vec<std::path::PathBuf>> = vec![Vec::new(); AT_ONCE];
    for (i, f) in files.into_iter().enumerate() {
        groups[i % AT_ONCE].push(f);
    }
    let children: Vec<_> = groups
        .iter()
        .map(|g| {
            Command::new(env!("CARGO_BIN_EXE_ispvm"))
                .args(["scenario", "run", "--json", "--speed", "5"])
                .args(g)
                .env("RUST_LOG", "error")
                .stdout(Stdio::piped())
                .spawn()
                .expect("ispvm runs")
        })
        .collect();
    let mut failed = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("ispvm finishes");
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        let doc: serde_json::Value = serde_json::from_str(&report).expect("one JSON document");
        for f in doc["files"].as_array().expect("files") {
            let all_pass = f["expectations"]
                .as_array()
                .is_some_and(|es| es.iter().all(|e| e["pass"] == true));
            if f["pass"] != true || !all_pass {
                failed.push(f.to_string());
            }
        }
        if doc["pass"] == true {
            assert_eq!(out.status.code(), Some(0), "{report}");
        } else {
            assert_ne!(out.status.code(), Some(0), "{report}");
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
