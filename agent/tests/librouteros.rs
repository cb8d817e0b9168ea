//! The simulator against an independent client: Python's `librouteros` (from PyPI) reads
//! routers of the demo ISP, our client reads the same routers, and both must agree on the
//! identity, the interface list under `.proplist`, tagged commands, the `!trap` of an
//! unknown command and the refusal of a bad password.
//!
//! `scripts/test.sh` (which `.ci/run` calls) installs `librouteros` in a virtual
//! environment and names its interpreter in `ISPVM_PYTHON`; without it the test uses
//! `python3`. Without Python or without `librouteros` this test fails with how to install
//! it; it never skips.

use ispvm_agent::routeros::{ClientError, RouterOsClient, SessionConfig};
use ispvm_proto::routeros::{Command, Reply};
use ispvm_sim::{RunningRouter, Topology, VirtualIsp};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command as Process;

/// The pinned release, as `.ci/run` and `scripts/test.sh` install it.
const LIBROUTEROS: &str = "librouteros==4.2.2";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/librouteros_check.py");
/// Properties that do not change between two reads (no counters, no timestamps).
const INTERFACE_PROPS: [&str; 5] = ["name", "type", "mtu", "mac-address", "disabled"];
const UNKNOWN_COMMAND: &str = "/no/such/thing/print";
/// A RouterOS 7 core, a RouterOS 6 concentrator, and a RouterOS 6 edge router that has
/// its own API account.
const ROUTERS: [&str; 3] = ["lis1-core1", "cbr1-bng1", "lis1-edge2"];

/// One reply row: attribute names and values in the order received.
type Row = Vec<(String, Value)>;
type RawRow = Vec<(String, String)>;

/// The Python interpreter to run: `ISPVM_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("ISPVM_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn install_hint() -> String {
    format!(
        "`{} -m pip install {LIBROUTEROS}` installs it (scripts/test.sh does that in a virtual environment)",
        python()
    )
}

/// Fails the test, never skips it, when python3 or librouteros is not there.
fn require_librouteros() {
    match Process::new(python())
        .args(["-c", "import librouteros"])
        .output()
    {
        Err(e) => panic!(
            "this test needs python3 and the Python package librouteros, but python3 cannot be run ({e}); install Python 3.10 or later; then {}",
            install_hint()
        ),
        Ok(out) if !out.status.success() => panic!(
            "this test needs the Python package librouteros, which python3 cannot import:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            install_hint()
        ),
        Ok(_) => {}
    }
}

/// Runs `librouteros_check.py` against a router and returns what it printed.
async fn librouteros_reads(router: &RunningRouter) -> Value {
    let args = [
        SCRIPT.to_owned(),
        router.addr.ip().to_string(),
        router.addr.port().to_string(),
        router.credentials.username.clone(),
        router.credentials.password.clone(),
    ];
    // Blocking wait off the runtime's thread: the simulator must keep answering meanwhile.
    let out = tokio::task::spawn_blocking(move || Process::new(python()).args(&args).output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {}", install_hint()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}: librouteros_check.py failed ({}):\n{stderr}",
        router.spec.id,
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: librouteros_check.py printed no JSON object ({e}):\n{}\n{stderr}",
            router.spec.id,
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A RouterOS value as librouteros types it: an integer when it reads back the same, a
/// boolean for yes/true/no/false, else the string.
fn typed(value: &str) -> Value {
    if let Ok(i) = value.parse::<i64>()
        && i.to_string() == value
    {
        return Value::from(i);
    }
    if let Ok(u) = value.parse::<u64>()
        && u.to_string() == value
    {
        return Value::from(u);
    }
    match value {
        "yes" | "true" => Value::Bool(true),
        "no" | "false" => Value::Bool(false),
        _ => Value::from(value),
    }
}

fn our_rows(replies: &[Reply]) -> Vec<Row> {
    replies
        .iter()
        .map(|r| {
            r.attributes
                .iter()
                .map(|(k, v)| (k.clone(), typed(v)))
                .collect()
        })
        .collect()
}

fn our_raw_rows(replies: &[Reply]) -> Vec<RawRow> {
    replies.iter().map(|r| r.attributes.clone()).collect()
}

fn pair(p: &Value) -> (String, Value) {
    let key = p[0].as_str().unwrap_or_else(|| panic!("key in {p}"));
    (key.to_owned(), p[1].clone())
}

/// Rows from the script: each a list of `[key, value]` pairs.
fn py_rows(v: &Value) -> Vec<Row> {
    v.as_array()
        .unwrap_or_else(|| panic!("rows expected, got {v}"))
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap_or_else(|| panic!("row expected, got {row}"))
                .iter()
                .map(pair)
                .collect()
        })
        .collect()
}

fn py_raw_row(sentence: &Value) -> RawRow {
    py_rows(&Value::Array(vec![sentence["attributes"].clone()]))
        .remove(0)
        .into_iter()
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or_else(|| panic!("raw value {v}"));
            (k, v.to_owned())
        })
        .collect()
}

/// Our client's trap for a command as (category, message); panics on anything else.
async fn our_trap(client: &RouterOsClient, command: &Command) -> (Option<String>, String) {
    match client.print(command).await {
        Err(ClientError::Trap {
            category, message, ..
        }) => (category, message),
        other => panic!("{}: a trap expected, got {other:?}", command.path),
    }
}

/// What our client reads, in the shape the checks below compare.
struct OurReads {
    identity: Vec<Reply>,
    interfaces: Vec<Reply>,
    trap: (Option<String>, String),
    /// The same three again, in flight at once.
    tagged_identity: Vec<Reply>,
    tagged_interfaces: Vec<Reply>,
    tagged_trap: (Option<String>, String),
    bad_login: String,
}

async fn our_reads(router: &RunningRouter) -> OurReads {
    let config = SessionConfig::new(
        router.addr,
        router.credentials.username.clone(),
        router.credentials.password.clone(),
    );
    let client = RouterOsClient::connect(config.clone())
        .await
        .unwrap_or_else(|e| panic!("{}: our client cannot log in: {e}", router.spec.id));
    let identity_cmd = Command::new("/system/identity/print");
    let interfaces_cmd = Command::new("/interface/print").with_proplist(INTERFACE_PROPS);
    let unknown_cmd = Command::new(UNKNOWN_COMMAND);
    let identity = client.print(&identity_cmd).await.expect("identity");
    let interfaces = client.print(&interfaces_cmd).await.expect("interfaces");
    let trap = our_trap(&client, &unknown_cmd).await;
    // The same three at once, as librouteros sent them; our client tags every command.
    let (tagged_identity, tagged_interfaces, tagged_trap) = tokio::join!(
        client.print(&identity_cmd),
        client.print(&interfaces_cmd),
        our_trap(&client, &unknown_cmd),
    );
    let tagged_identity = tagged_identity.expect("concurrent identity");
    let tagged_interfaces = tagged_interfaces.expect("concurrent interfaces");
    let mut wrong = config;
    wrong.password = format!("wrong-{}", wrong.password);
    let bad_login = match RouterOsClient::connect(wrong).await {
        Err(ClientError::LoginRefused(message)) => message,
        other => panic!(
            "{}: a bad password must be refused, got {other:?}",
            router.spec.id
        ),
    };
    OurReads {
        identity,
        interfaces,
        trap,
        tagged_identity,
        tagged_interfaces,
        tagged_trap,
        bad_login,
    }
}

/// The replies librouteros read for one tag, checked to all carry exactly that tag and
/// to end with one `!done`; returns the sentences before the `!done`.
fn tagged_replies<'a>(id: &str, py: &'a Value, tag: &str) -> &'a [Value] {
    let replies = py["tagged"]["replies"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("{id}: no replies for tag {tag}: {}", py["tagged"]));
    for r in replies {
        assert_eq!(
            r["tags"],
            serde_json::json!([tag]),
            "{id}: a reply to the command tagged {tag} carries other tags: {r}"
        );
        assert_eq!(r["other"], serde_json::json!([]), "{id}: stray words: {r}");
    }
    let (last, rest) = replies
        .split_last()
        .unwrap_or_else(|| panic!("{id}: nothing answered tag {tag}"));
    assert_eq!(
        last["reply"], "!done",
        "{id}: tag {tag} does not end in !done"
    );
    assert!(
        rest.iter().all(|r| r["reply"] != "!done"),
        "{id}: two !done for tag {tag}"
    );
    rest
}

fn check_router(router: &RunningRouter, py: &Value, ours: &OurReads) {
    let id = router.spec.id.as_str();
    eprintln!(
        "{id}: librouteros {} on Python {} read: {py}",
        py["librouteros_version"], py["python_version"]
    );

    // Identity, and that both read the router's actual identity.
    let identity = py_rows(&py["identity"]);
    assert_eq!(identity, our_rows(&ours.identity), "{id}: identity differs");
    assert_eq!(
        identity,
        vec![vec![(
            "name".to_owned(),
            Value::from(router.spec.identity.as_str())
        )]],
        "{id}: not the router's identity"
    );

    // Interfaces under `.proplist`: same rows, same order, only the asked properties.
    let interfaces = py_rows(&py["interfaces"]);
    assert_eq!(
        interfaces,
        our_rows(&ours.interfaces),
        "{id}: /interface/print with .proplist differs"
    );
    assert_eq!(interfaces.len(), router.spec.interfaces.len(), "{id}");
    for (row, spec) in interfaces.iter().zip(&router.spec.interfaces) {
        let keys: Vec<&str> = row.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, INTERFACE_PROPS, "{id}: properties of {row:?}");
        assert_eq!(row[0].1, spec.name.as_str(), "{id}: interface order");
    }

    // The trap of an unknown command, as librouteros raises it; the session survives it.
    let trap = &py["trap"];
    assert_eq!(
        trap["exception"], "TrapError",
        "{id}: librouteros did not raise a trap for {UNKNOWN_COMMAND}: {trap}"
    );
    let (category, message) = &ours.trap;
    assert_eq!(trap["message"], message.as_str(), "{id}: trap message");
    assert_eq!(
        trap["category"],
        category.as_deref().map_or(Value::Null, typed),
        "{id}: trap category"
    );
    assert_eq!(
        py_rows(&trap["identity_after"]),
        identity,
        "{id}: librouteros's session after the trap"
    );

    // Tagged commands, all three written before any reply was read.
    let tagged = &py["tagged"];
    assert_eq!(
        tagged["unexpected"],
        serde_json::json!([]),
        "{id}: replies without a known tag: {tagged}"
    );
    for (tag, ours_rows) in [
        ("id", our_raw_rows(&ours.tagged_identity)),
        ("if", our_raw_rows(&ours.tagged_interfaces)),
    ] {
        let replies = tagged_replies(id, py, tag);
        assert!(
            replies.iter().all(|r| r["reply"] == "!re"),
            "{id}: tag {tag}: {replies:?}"
        );
        let rows: Vec<RawRow> = replies.iter().map(py_raw_row).collect();
        assert_eq!(rows, ours_rows, "{id}: replies to the command tagged {tag}");
    }
    assert_eq!(
        our_rows(&ours.tagged_identity),
        identity,
        "{id}: tagged identity"
    );
    assert_eq!(
        our_rows(&ours.tagged_interfaces),
        interfaces,
        "{id}: tagged interfaces"
    );
    let replies = tagged_replies(id, py, "bad");
    let [trap_sentence] = replies else {
        panic!("{id}: one !trap expected for the tagged unknown command: {replies:?}");
    };
    assert_eq!(trap_sentence["reply"], "!trap", "{id}");
    let (category, message) = &ours.tagged_trap;
    let mut expected: RawRow = Vec::new();
    if let Some(c) = category {
        expected.push(("category".into(), c.clone()));
    }
    expected.push(("message".into(), message.clone()));
    assert_eq!(py_raw_row(trap_sentence), expected, "{id}: tagged !trap");
    assert_eq!(
        &ours.tagged_trap, &ours.trap,
        "{id}: a tag changes the trap"
    );
    assert_eq!(
        py_rows(&tagged["identity_after"]),
        identity,
        "{id}: librouteros's session after the tagged commands"
    );

    // A bad password: refused with the same message on both.
    let bad = &py["bad_login"];
    assert_eq!(
        bad["exception"], "TrapError",
        "{id}: librouteros logged in with a bad password: {bad}"
    );
    assert_eq!(bad["message"], ours.bad_login.as_str(), "{id}: bad login");
    assert!(
        ours.bad_login.contains("invalid user name or password"),
        "{id}: {}",
        ours.bad_login
    );

    // Not compared: how librouteros's Api handles tagged replies, and its pre-6.43 login.
    eprintln!(
        "{id}: librouteros Api with a tagged reply: {}",
        py["high_level_tag"]
    );
    eprintln!("{id}: librouteros pre-6.43 login: {}", py["legacy_login"]);
}

#[tokio::test]
async fn librouteros_reads_what_our_client_reads() {
    require_librouteros();
    let isp = VirtualIsp::start(Topology::demo(), IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("virtual ISP");
    for id in ROUTERS {
        let router = isp
            .router(id)
            .unwrap_or_else(|| panic!("no {id} in the demo"));
        let py = librouteros_reads(router).await;
        let ours = our_reads(router).await;
        check_router(router, &py, &ours);
    }
    let majors: Vec<&str> = ROUTERS
        .iter()
        .filter_map(|id| isp.router(id))
        .map(|r| r.spec.ros_version.split('.').next().unwrap_or_default())
        .collect();
    assert_eq!(
        majors,
        ["7", "6", "6"],
        "RouterOS versions this test covers"
    );
    let edge = isp.router("lis1-edge2").expect("router");
    assert_ne!(
        edge.credentials,
        isp.router("lis1-core1").expect("router").credentials,
        "lis1-edge2 is meant to have its own API account"
    );
    isp.shutdown().await;
}
