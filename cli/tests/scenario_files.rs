//! `ispvm scenario run` on bad files: a clear error naming the line, exit status 1,
//! and nothing started; and every scenario of the corpus is a valid file.

use std::process::Command;

fn run(file: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ispvm"))
        .args(["scenario", "run", "--json"])
        .arg(file)
        .output()
        .expect("ispvm runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn corpus() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulations/scenarios")
}

#[test]
fn every_corpus_scenario_is_a_valid_file() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus()).expect("corpus") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).expect("read");
            ispvm_sim::Topology::from_scenario_toml(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn bad_files_are_clear_errors_with_their_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("dir");
    let good = std::fs::read_to_string(corpus().join("core-link-cut.toml")).expect("read");
    let cases = [
        (
            "unknown-key",
            good.replace("max_incidents = 1", "max_incidents = 1\nmax_incidnets = 2"),
            "max_incidnets",
        ),
        (
            "unknown-router",
            good.replace(
                "never_down = [\"lis-core2\", \"lis-edge1\"]",
                "never_down = [\"lis-core9\"]",
            ),
            "\"lis-core9\" is not a router",
        ),
        (
            "impossible-fault",
            good.replace(
                "b = \"cbr-agg1:sfp28-1\" }",
                "b = \"lis-core2:sfp-sfpplus2\" }",
            ),
            "not the two ends of a link",
        ),
        (
            "unknown-kind",
            good.replace("kind = \"link_down\"", "kind = \"link_dwn\""),
            "kind \"link_dwn\" is not one of",
        ),
    ];
    for (name, text, says) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, &text).expect("write");
        let (code, out) = run(&path);
        assert_eq!(code, 1, "{name}: {out}");
        let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
        let error = doc["files"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(error.contains(says), "{name}: {error}");
        assert!(error.contains("line "), "{name}: {error}");
        assert_eq!(doc["pass"], false);
    }
}
