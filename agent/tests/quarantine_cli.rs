//! `ispvm-agent quarantine list|requeue`, run as the real binary: it lists what the
//! uplink set aside, refuses to touch the data directory while an agent holds it, and
//! moves the chosen batches back into the disk buffer.

use ispvm_agent::buffer::{BufferConfig, DiskBuffer};
use ispvm_agent::data_dir::DataDir;
use ispvm_agent::uplink::quarantine::Quarantine;
use std::path::Path;
use std::process::{Command, Output};

fn agent(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ispvm-agent"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("ISPVM_AGENT_CONFIG")
        .output()
        .expect("ispvm-agent runs")
}

#[test]
fn requeue_is_refused_while_the_directory_is_held_then_moves_the_chosen_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path().join("data"));
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "agent_id = \"a1\"\ntenant_id = \"acme\"\nsite = \"lis1\"\ndata_dir = {:?}\n\
             [server]\naddr = \"127.0.0.1:4433\"\nserver_name = \"localhost\"\n\
             [tls]\nca = \"ca.pem\"\ncert = \"a.pem\"\nkey = \"a.key\"\n",
            data.root()
        ),
    )
    .expect("config written");
    std::fs::create_dir_all(data.root()).expect("data dir");
    let mut q = Quarantine::open(data.quarantine_file(), 1 << 20).expect("quarantine");
    q.put(
        1_000,
        Some(7),
        "unstorable",
        "inventory.neighbors[0].identity",
        b"seven",
    )
    .expect("put");
    q.put(2_000, Some(8), "invalid", "samples[3]", b"eight")
        .expect("put");

    let out = agent(&config, &["quarantine", "list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["seq"], 7);
    assert_eq!(lines[0]["code"], "unstorable");
    assert_eq!(lines[1]["reason"], "samples[3]");

    // Saying nothing about which batches is refused.
    let out = agent(&config, &["quarantine", "requeue"]);
    assert!(!out.status.success());

    // An agent holds the directory (the lock a running agent takes): refused, unchanged.
    let held = data.lock().expect("lock as a running agent does");
    let out = agent(&config, &["quarantine", "requeue", "--all"]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("an agent is running"), "{stderr}");
    assert_eq!(
        Quarantine::read_all(&data.quarantine_file())
            .expect("read")
            .len(),
        2
    );
    drop(held);

    let out = agent(&config, &["quarantine", "requeue", "--seq", "7"]);
    assert!(out.status.success(), "{out:?}");
    let left = Quarantine::read_all(&data.quarantine_file()).expect("read");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].seq, Some(8));
    let mut buffer = DiskBuffer::open(data.buffer(), BufferConfig::default()).expect("buffer");
    let records: Vec<Vec<u8>> = buffer
        .peek(10)
        .expect("peek")
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(records, vec![b"seven".to_vec()]);
}
