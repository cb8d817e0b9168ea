//! Every scenario of the corpus (`simulations/scenarios/`) passes through the real
//! `ispvm scenario run`: the virtual ISP, real agents, the server, judged.

use std::process::Command;

#[test]
fn the_corpus_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulations/scenarios");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let out = Command::new(env!("CARGO_BIN_EXE_ispvm"))
        .args(["scenario", "run", "--json", "--speed", "5"])
        .args(&files)
        .env("RUST_LOG", "error")
        .output()
        .expect("ispvm runs");
    let report = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&report).expect("one JSON document");
    assert_eq!(doc["pass"], true, "{report}");
    assert_eq!(out.status.code(), Some(0));
    for f in doc["files"].as_array().expect("files") {
        for e in f["expectations"].as_array().expect("expectations") {
            assert_eq!(e["pass"], true, "{e}");
        }
    }
}
