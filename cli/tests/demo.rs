//! The demo as a user runs it: the `ispvm demo` binary, a clean data directory, the
//! device list over HTTP, the agent cluster as the server merges it, Ctrl-C, and a
//! second start on the same directory.

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the issue promises: every router up with metrics within 15 s of start.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// The demo process; killed if the test fails before it is stopped.
struct Demo(Option<Child>);

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_demo(data_dir: &Path, port: u16, log: &Path) -> Demo {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_ispvm"))
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn ispvm demo");
    Demo(Some(child))
}

/// Why a device list does not yet show a healthy demo with values measured since
/// `since_ms` (this start, not an earlier one), or `None` when it does.
fn not_ready(body: &Value, since_ms: i64) -> Option<String> {
    let fresh =
        |v: &Value| v["value"].is_number() && v["ts_ms"].as_i64().is_some_and(|ts| ts >= since_ms);
    let Some(devices) = body["items"].as_array() else {
        return Some(format!("no device list in {body}"));
    };
    if devices.len() < 6 {
        return Some(format!("{} devices", devices.len()));
    }
    let sites: std::collections::BTreeSet<&str> = devices
        .iter()
        .filter_map(|d| d["site_id"].as_str())
        .collect();
    if sites.len() < 2 {
        return Some(format!("sites {sites:?}"));
    }
    for d in devices {
        let id = d["id"].as_str().unwrap_or("?");
        if d["status"] != "up" {
            return Some(format!("{id} is {}", d["status"]));
        }
        for m in ["device.cpu_pct", "device.uptime_s"] {
            if !fresh(&d["metrics"][m]) {
                return Some(format!("{id} has no fresh {m}"));
            }
        }
        let rates = d["interfaces"].as_array().is_some_and(|itfs| {
            itfs.iter().any(|i| {
                fresh(&i["metrics"]["interface.rx_bps"]) && fresh(&i["metrics"]["interface.tx_bps"])
            })
        });
        if !rates {
            return Some(format!("{id} has no interface rates"));
        }
    }
    None
}

/// Logs in as the demo's administrator with the password it wrote to its data
/// directory; `None` until the server answers.
async fn login(client: &reqwest::Client, port: u16, data_dir: &Path) -> Option<String> {
    let password = std::fs::read_to_string(data_dir.join("admin-password")).ok()?;
    let resp = client
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
        .json(&serde_json::json!({ "tenant": "demo", "username": "admin", "password": password.trim() }))
        .send()
        .await
        .ok()?;
    let body: Value = resp.json().await.ok()?;
    assert_eq!(body["tenant"], "demo", "{body}");
    body["token"].as_str().map(str::to_owned)
}

async fn wait_until_ready(port: u16, data_dir: &Path, log: &Path, since_ms: i64) -> Value {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/devices");
    let started = Instant::now();
    let mut last = String::from("no answer");
    let mut token = None;
    while started.elapsed() < READY_WITHIN {
        if token.is_none() {
            token = login(&client, port, data_dir).await;
        }
        if let Some(t) = &token
            && let Ok(resp) = client.get(&url).bearer_auth(t).send().await
            && let Ok(body) = resp.json::<Value>().await
        {
            match not_ready(&body, since_ms) {
                None => return body,
                Some(why) => last = why,
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("demo not ready within {READY_WITHIN:?}: {last}\n--- demo log ---\n{log}");
}

/// Why the server's view of the demo's agent cluster is not yet settled, or `None`:
/// three agents reporting and agreeing, every router polled by exactly the agent of its
/// PoP, and every agent's verdicts on every probe target in the matrix.
fn cluster_not_settled(conv: &Value, own: &Value, reach: &Value) -> Option<String> {
    if conv["reporters_fresh"] != 3 || conv["members_live"] != 3 || conv["views_agree"] != true {
        return Some(format!("cluster not converged: {conv}"));
    }
    if conv["ownership_settled"] != true || conv["routers_owned"].as_u64() < Some(13) {
        return Some(format!("ownership not settled: {own}"));
    }
    let owners = own["owners"].as_object()?;
    for (router, agents) in owners {
        if agents.as_array().map(Vec::len) != Some(1) {
            return Some(format!("{router} polled by {agents}"));
        }
    }
    let targets = reach["targets"].as_array().map_or(0, Vec::len);
    let cells = reach["cells"].as_array().map_or(0, Vec::len);
    if targets == 0 || cells < 3 * targets || reach["vantages"].as_array().map(Vec::len) != Some(3)
    {
        return Some(format!("reachability matrix incomplete: {reach}"));
    }
    None
}

/// Waits for [`cluster_not_settled`] to pass; returns the ownership document.
async fn wait_for_cluster(port: u16, token: &str) -> Value {
    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            client
                .get(format!("http://127.0.0.1:{port}/api/v1/cluster/{path}"))
                .bearer_auth(token)
                .send()
                .await
                .ok()?
                .json::<Value>()
                .await
                .ok()
        }
    };
    let started = Instant::now();
    let mut last = String::from("no answer");
    while started.elapsed() < READY_WITHIN {
        if let (Some(conv), Some(own), Some(reach)) = (
            get("convergence").await,
            get("ownership").await,
            get("reachability").await,
        ) {
            match cluster_not_settled(&conv, &own, &reach) {
                None => return own,
                Some(why) => last = why,
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("demo cluster not settled within {READY_WITHIN:?}: {last}");
}

fn interrupt_and_wait(mut demo: Demo) {
    let Some(mut child) = demo.0.take() else {
        return;
    };
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "demo exited with {status} after Ctrl-C");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("demo did not stop within 20 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_shows_every_router_up_and_restarts_on_the_same_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut first_ca = None;
    for round in 0..2 {
        let port = ispvm_testkit::free_tcp_port();
        let log = dir.path().join(format!("demo-{round}.log"));
        let since_ms = ispvm_proto::time::now_ms();
        let demo = start_demo(&data, port, &log);
        let body = wait_until_ready(port, &data, &log, since_ms).await;
        // Without a token the API answers 401.
        let anon = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/devices"))
            .await
            .expect("devices");
        assert_eq!(anon.status().as_u16(), 401);
        assert!(body["items"].is_array());
        let health: Value = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .expect("healthz")
            .json()
            .await
            .expect("json");
        assert_eq!(health["status"], "ok");
        let token = login(&reqwest::Client::new(), port, &data)
            .await
            .expect("login");
        let own = wait_for_cluster(port, &token).await;
        let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert!(
            metrics.contains("ispvm_server_ingest_batches_total{outcome=\"stored\"}"),
            "{metrics}"
        );
        assert!(
            metrics.contains("ispvm_server_ingest_cluster_reports_total{outcome=\"kept\"}"),
            "{metrics}"
        );
        // Each router is polled by the agent of its own PoP.
        for item in body["items"].as_array().expect("devices") {
            let (id, site) = (&item["id"], item["site_id"].as_str().unwrap_or_default());
            let owner = &own["owners"][id.as_str().unwrap_or_default()];
            assert_eq!(owner, &serde_json::json!([format!("agent-{site}")]), "{id}");
        }
        interrupt_and_wait(demo);
        let log_text = std::fs::read_to_string(&log).expect("log");
        assert!(log_text.contains("server stopped"), "{log_text}");
        assert!(
            !log_text.contains("ERROR"),
            "errors in the demo log:\n{log_text}"
        );
        // The generated administrator password and master key are private files.
        #[cfg(unix)]
        for f in ["admin-password", "master.key"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(f))
                .expect(f)
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let ca = std::fs::read(data.join("pki").join("ca.pem")).expect("CA kept in the data dir");
        match &first_ca {
            None => first_ca = Some(ca),
            Some(first) => assert_eq!(first, &ca, "the second start must reuse the PKI"),
        }
    }
}
