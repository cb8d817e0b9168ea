//! The incident notifier over the real store (SQLite and PostgreSQL), a real webhook
//! receiver (axum, in the test) and a real SMTP server (Python's aiosmtpd from PyPI,
//! requiring STARTTLS with a certificate the test makes).
//!
//! `scripts/test.sh` installs aiosmtpd in its virtual environment and names the
//! interpreter in `ISPVM_PYTHON`; without it the email test fails with how to install
//! it, never skips.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use ispvm_actors::alert::Level;
use ispvm_actors::incident::{Ack, Incident, IncidentChange, IncidentState, Transition};
use ispvm_actors::rca::{Cause, CauseEntity, CauseKind, Evidence, Impact, RunnerUp};
use ispvm_server::internal_events::ServerMetrics;
use ispvm_server::notify::channel::{
    ChannelKind, ChannelSecret, ChannelSpec, EmailSettings, StartTls, WebhookSettings,
};
use ispvm_server::notify::delivery::{DeliveryFilter, DeliveryRow, DeliveryState};
use ispvm_server::notify::{Notifier, NotifyOptions};
use ispvm_server::store::catalog::{DeviceSpec, MaintenanceSpec, Scope, SiteSpec};
use ispvm_server::store::{Actor, MasterKey, Store};
use ispvm_testkit::on_both_engines;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const T: &str = "acme";
const SECRET: &str = "a-webhook-signing-secret";

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    signature: String,
    body: Bytes,
    answered: u16,
}

/// A webhook receiver: answers each POST with the next status of `script` (then 200),
/// or always `always` when set.
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Received>>,
    script: Mutex<Vec<u16>>,
    always: Option<u16>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let status = r.always.unwrap_or_else(|| {
        let mut s = r.script.lock().expect("lock");
        if s.is_empty() { 200 } else { s.remove(0) }
    });
    r.got.lock().expect("lock").push(Received {
        delivery: header("x-ispvm-delivery"),
        signature: header("x-ispvm-signature"),
        body,
        answered: status,
    });
    StatusCode::from_u16(status).expect("status")
}

async fn receiver(r: Arc<Receiver>) -> String {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn options() -> NotifyOptions {
    NotifyOptions {
        tick: Duration::from_millis(50),
        backoff_base_ms: 50,
        backoff_cap_ms: 200,
        max_attempts: 3,
        batch: 100,
    }
}

async fn setup(store: &Store) -> MasterKey {
    store.ensure_tenant(T, "Acme").await.expect("tenant");
    let ts = store.tenant(T);
    let sys = Actor::system();
    let site = SiteSpec {
        name: "Lisbon".into(),
        lat: None,
        lon: None,
    };
    ts.create_site(&sys, "a", &site).await.expect("site");
    for id in ["core", "bng"] {
        let spec = DeviceSpec {
            name: id.to_uppercase(),
            site_id: "a".into(),
            role: ispvm_proto::DeviceRole::Core,
            mgmt_addr: String::new(),
            tags: Vec::new(),
            polling_profile: None,
            credential_set: None,
        };
        ts.create_device(&sys, id, &spec, 100)
            .await
            .expect("device");
    }
    MasterKey::generate().0
}

async fn webhook_channel(store: &Store, key: &MasterKey, id: &str, url: String) {
    let spec = ChannelSpec {
        name: format!("hook {id}"),
        kind: ChannelKind::Webhook,
        enabled: true,
        min_severity: None,
        webhook: Some(WebhookSettings {
            url,
            timeout_ms: 2_000,
        }),
        email: None,
    };
    let secret = ChannelSecret {
        webhook_secret: Some(SECRET.into()),
        smtp_password: None,
    };
    store
        .tenant(T)
        .create_channel(&Actor::system(), Some(key), id, &spec, &secret)
        .await
        .expect("channel");
}

fn incident(id: u64, device: &str) -> Incident {
    let now = ispvm_proto::time::now_ms();
    Incident {
        id,
        title: format!("Router {device} down"),
        state: IncidentState::Open,
        severity: Level::Critical,
        kind: CauseKind::DeviceDown,
        root_cause: Cause {
            kind: CauseKind::DeviceDown,
            entity: CauseEntity::Device { id: device.into() },
        },
        confidence: 0.8,
        runner_ups: vec![RunnerUp {
            cause: Cause {
                kind: CauseKind::ManagementPlane,
                entity: CauseEntity::Device { id: device.into() },
            },
            confidence: 0.2,
        }],
        evidence: vec![Evidence {
            at_ms: now - 5_000,
            weight: 6.0,
            text: format!("{device} stopped answering pings from 2 agents"),
        }],
        impact: Impact {
            devices: vec![device.into()],
            sites: vec!["a".into()],
            services: vec!["internet".into()],
        },
        impacted_subscribers: 1234,
        opened_ms: now,
        updated_ms: now,
        resolved_ms: None,
        fault_since_ms: now - 5_000,
        members: Vec::new(),
        suppressed: Vec::new(),
        timeline: Vec::new(),
        ack: None,
        assignee: None,
        notes: Vec::new(),
        related_devices: Vec::new(),
        transitions: 1,
        reopened: 0,
    }
}

fn change(i: &Incident, transition: Transition, seq: u32) -> IncidentChange {
    IncidentChange {
        incident: i.id,
        transition,
        seq,
        at_ms: ispvm_proto::time::now_ms(),
    }
}

async fn save(store: &Store, i: &Incident, transition: Transition, seq: u32) {
    store
        .tenant(T)
        .save_incidents(std::slice::from_ref(i), &[change(i, transition, seq)])
        .await
        .expect("save");
}

struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    notifier: Notifier,
}

fn start(store: &Store, key: &MasterKey) -> Worker {
    let notifier = Notifier::new(
        store.clone(),
        Some(key.clone()),
        ServerMetrics::new(),
        options(),
    )
    .expect("notifier");
    let (stop, stopped) = watch::channel(false);
    let task = notifier.clone().spawn(stopped);
    Worker {
        stop,
        task,
        notifier,
    }
}

impl Worker {
    async fn shutdown(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the worker stops")
            .expect("join");
    }
}

/// Waits until every transition is delivered (every delivery final).
async fn settled(store: &Store) {
    for _ in 0..200 {
        if store
            .tenant(T)
            .notifications_settled()
            .await
            .expect("settled")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the notifier did not settle within 10 s");
}

async fn deliveries(store: &Store, filter: DeliveryFilter) -> Vec<DeliveryRow> {
    store
        .tenant(T)
        .deliveries_page(&filter, None, 100)
        .await
        .expect("deliveries")
}

fn verify(r: &Received) {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&r.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(r.signature, expected, "signature of {}", r.delivery);
}

on_both_engines!(
    one_signed_post_per_transition,
    one_signed_post_per_transition_body
);
async fn one_signed_post_per_transition_body(store: Store) {
    let key = setup(&store).await;
    let r = Arc::new(Receiver::default());
    webhook_channel(&store, &key, "hook", receiver(Arc::clone(&r)).await).await;
    // 1 is news; 2 is acknowledged with silence; 3's root cause is in maintenance.
    let first = incident(1, "core");
    save(&store, &first, Transition::Opened, 1).await;
    let mut silenced = incident(2, "core");
    silenced.ack = Some(Ack {
        by: "ops".into(),
        at_ms: ispvm_proto::time::now_ms(),
        silence: true,
        until_ms: None,
    });
    save(&store, &silenced, Transition::Opened, 1).await;
    let now = ispvm_proto::time::now_ms();
    store
        .tenant(T)
        .create_maintenance(
            &Actor::system(),
            "bng-swap",
            &MaintenanceSpec {
                name: "BNG swap".into(),
                starts_ms: now - 60_000,
                ends_ms: now + 3_600_000,
                scope: Scope {
                    devices: vec!["bng".into()],
                    ..Scope::default()
                },
                comment: String::new(),
            },
        )
        .await
        .expect("window");
    save(&store, &incident(3, "bng"), Transition::Opened, 1).await;

    let w = start(&store, &key);
    settled(&store).await;
    let mut resolved = first.clone();
    resolved.state = IncidentState::Resolved;
    resolved.resolved_ms = Some(ispvm_proto::time::now_ms());
    save(&store, &resolved, Transition::Resolved, 2).await;
    w.notifier.wake();
    settled(&store).await;
    w.shutdown().await;

    let got = r.got.lock().expect("lock").clone();
    let ids: Vec<&str> = got.iter().map(|g| g.delivery.as_str()).collect();
    assert_eq!(
        ids,
        ["acme:1:1:hook", "acme:1:2:hook"],
        "one POST per transition"
    );
    for g in &got {
        verify(g);
    }
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json");
    assert_eq!(body["transition"], "opened");
    assert_eq!(body["seq"], 1);
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["kind"], "device_down");
    assert_eq!(body["root_cause"]["entity"], "core");
    assert_eq!(body["runner_ups"][0]["kind"], "management_plane");
    assert_eq!(body["impact"]["pppoe_subscribers"], 1234);
    assert_eq!(body["incident_path"], "/api/v1/incidents/1");
    assert!(
        body["next_step"]
            .as_str()
            .is_some_and(|s| s.contains("console")),
        "{body}"
    );
    assert!(body["evidence"][0]["at_ms"].is_i64());
    let second: serde_json::Value = serde_json::from_slice(&got[1].body).expect("json");
    assert_eq!(second["transition"], "resolved");

    let held = |state| DeliveryFilter {
        state: Some(state),
        ..DeliveryFilter::default()
    };
    let silenced = deliveries(&store, held(DeliveryState::Silenced)).await;
    assert_eq!(silenced.len(), 1);
    assert_eq!(silenced[0].incident_id, 2);
    let maintenance = deliveries(&store, held(DeliveryState::Maintenance)).await;
    assert_eq!(maintenance.len(), 1);
    assert_eq!(maintenance[0].incident_id, 3);
    assert_eq!(maintenance[0].attempts, 0);
    assert_eq!(store.tenant(T).notifications_sent(1).await.expect("n"), 2);
    assert_eq!(store.tenant(T).notifications_sent(2).await.expect("n"), 0);
}

on_both_engines!(retried_until_the_receiver_takes_it, retried_body);
async fn retried_body(store: Store) {
    let key = setup(&store).await;
    let r = Arc::new(Receiver {
        script: Mutex::new(vec![500, 500]),
        ..Receiver::default()
    });
    webhook_channel(&store, &key, "hook", receiver(Arc::clone(&r)).await).await;
    save(&store, &incident(1, "core"), Transition::Opened, 1).await;
    let w = start(&store, &key);
    settled(&store).await;
    w.shutdown().await;
    let got = r.got.lock().expect("lock").clone();
    let ids: Vec<&str> = got.iter().map(|g| g.delivery.as_str()).collect();
    assert_eq!(ids, ["acme:1:1:hook"; 3], "the same delivery id each time");
    let d = deliveries(&store, DeliveryFilter::default()).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].state, DeliveryState::Sent);
    assert_eq!(d[0].attempts, 3);
    assert!(d[0].sent_ms.is_some());
    assert!(
        d[0].last_error
            .as_deref()
            .is_some_and(|e| e.contains("500")),
        "{:?}",
        d[0].last_error
    );
}

on_both_engines!(a_receiver_that_always_fails_ends_failed, always_fails_body);
async fn always_fails_body(store: Store) {
    let key = setup(&store).await;
    let r = Arc::new(Receiver {
        always: Some(503),
        ..Receiver::default()
    });
    webhook_channel(&store, &key, "hook", receiver(Arc::clone(&r)).await).await;
    save(&store, &incident(1, "core"), Transition::Opened, 1).await;
    let w = start(&store, &key);
    settled(&store).await;
    w.shutdown().await;
    assert_eq!(r.got.lock().expect("lock").len(), 3, "max_attempts posts");
    let failed = deliveries(
        &store,
        DeliveryFilter {
            state: Some(DeliveryState::Failed),
            incident: Some(1),
            channel: None,
        },
    )
    .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 3);
    let err = failed[0].last_error.clone().unwrap_or_default();
    assert!(err.contains("503"), "{err}");
    assert_eq!(store.tenant(T).notifications_sent(1).await.expect("n"), 0);
}

on_both_engines!(a_restarted_worker_sends_nothing_twice, restart_body);
async fn restart_body(store: Store) {
    let key = setup(&store).await;
    // The first attempt of the second transition fails, so it is pending when the
    // worker stops.
    let r = Arc::new(Receiver::default());
    webhook_channel(&store, &key, "hook", receiver(Arc::clone(&r)).await).await;
    let first = incident(1, "core");
    save(&store, &first, Transition::Opened, 1).await;
    let w = start(&store, &key);
    settled(&store).await;
    r.script.lock().expect("lock").push(500);
    let mut worse = first.clone();
    worse.impact.devices.push("bng".into());
    save(&store, &worse, Transition::Escalated, 2).await;
    w.notifier.wake();
    for _ in 0..200 {
        if r.got.lock().expect("lock").len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w.shutdown().await;
    // A new worker over the same store: what was sent stays sent, what is pending is
    // sent once.
    let w = start(&store, &key);
    settled(&store).await;
    w.shutdown().await;
    let got = r.got.lock().expect("lock").clone();
    let taken: Vec<&str> = got
        .iter()
        .filter(|g| g.answered == 200)
        .map(|g| g.delivery.as_str())
        .collect();
    assert_eq!(taken, ["acme:1:1:hook", "acme:1:2:hook"]);
    assert_eq!(store.tenant(T).notifications_sent(1).await.expect("n"), 2);
}

/// The Python interpreter: `ISPVM_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("ISPVM_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A running aiosmtpd and the lines it prints (read by a thread of its own).
struct Smtp {
    child: std::process::Child,
    port: u16,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn smtp_server(cert: &std::path::Path, key: &std::path::Path) -> Smtp {
    use std::io::BufRead;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
    let ok = std::process::Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs the Python package aiosmtpd: `{} -m pip install aiosmtpd==1.4.6` (scripts/test.sh does it in a virtual environment)",
        python()
    );
    let mut child = std::process::Command::new(python())
        .arg(script)
        .arg(cert)
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start aiosmtpd");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(20), lines.recv())
        .await
        .expect("aiosmtpd starts")
        .expect("a line");
    let port = first
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    Smtp { child, port, lines }
}

on_both_engines!(email_goes_out_over_starttls, email_body);
async fn email_body(store: Store) {
    let key = setup(&store).await;
    // A private CA and a certificate for 127.0.0.1, as a small ISP's mail relay has.
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test mail CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let dir = tempfile::tempdir().expect("dir");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, leaf.pem()).expect("write");
    std::fs::write(&key_path, leaf_key.serialize_pem()).expect("write");
    let mut smtp = smtp_server(&cert_path, &key_path).await;

    let spec = ChannelSpec {
        name: "on-call mail".into(),
        kind: ChannelKind::Email,
        enabled: true,
        min_severity: Some(Level::Critical),
        webhook: None,
        email: Some(EmailSettings {
            smtp_host: "127.0.0.1".into(),
            smtp_port: smtp.port,
            starttls: StartTls::Required,
            username: String::new(),
            from: "ispvm@noc.example.net".into(),
            to: vec!["oncall@noc.example.net".into()],
            tls_ca_pem: Some(ca_cert.pem()),
            timeout_ms: 10_000,
        }),
    };
    store
        .tenant(T)
        .create_channel(
            &Actor::system(),
            Some(&key),
            "mail",
            &spec,
            &ChannelSecret::default(),
        )
        .await
        .expect("channel");
    save(&store, &incident(1, "core"), Transition::Opened, 1).await;
    let w = start(&store, &key);
    let line = tokio::time::timeout(Duration::from_secs(20), smtp.lines.recv())
        .await
        .expect("a message arrives")
        .expect("a line");
    settled(&store).await;
    w.shutdown().await;
    let msg: serde_json::Value = serde_json::from_str(&line).expect("json");
    assert_eq!(msg["tls"], true, "sent after STARTTLS");
    assert_eq!(msg["mail_from"], "ispvm@noc.example.net");
    assert_eq!(msg["rcpt_tos"][0], "oncall@noc.example.net");
    let content = msg["content"].as_str().unwrap_or_default();
    assert!(
        content.contains("Subject: [ISPVM critical] opened #1: Router core down"),
        "{content}"
    );
    for fact in [
        "Likely root cause: core (device_down), confidence 80%",
        "PPPoE subscribers: 1234",
        "Next step:",
        "/api/v1/incidents/1",
        "acme:1:1:mail",
    ] {
        assert!(content.contains(fact), "{fact:?} not in {content}");
    }
    let d = deliveries(&store, DeliveryFilter::default()).await;
    assert_eq!(d[0].state, DeliveryState::Sent);
    drop(smtp);
}
