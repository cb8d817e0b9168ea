//! The inventory API over HTTP, on SQLite and PostgreSQL alike: roles on every route,
//! tenant isolation, the audit log, credential secrets, pagination and filters, alert
//! rule import/export, the OpenAPI document, and bad input that changes nothing.

use ispvm_testkit as common;
use ispvm_testkit::on_both_engines;

use common::{T0, batch};
use ispvm_actors::StatusPolicy;
use ispvm_server::app::bootstrap_admin;
use ispvm_server::config::{AuthConfig, ServerConfig};
use ispvm_server::http::{Access, AppState, route_specs};
use ispvm_server::internal_events::{ServerMetrics, StoredRowUnreadable};
use ispvm_server::store::{MasterKey, Store, TenantOverrides, TenantSettings};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tokio::sync::watch;

const ADMIN_PW: &str = "admin-password-1";
const NOC_PW: &str = "noc-password-12";
const RO_PW: &str = "reader-password-1";
const GLOBEX_PW: &str = "globex-password-1";

/// Cheap hashing: the tests log in often; production cost is the config default.
fn test_auth() -> AuthConfig {
    AuthConfig {
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        ..AuthConfig::default()
    }
}

/// A server answering the API on a free port.
struct Api {
    base: String,
    http: reqwest::Client,
    key: Option<MasterKey>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

/// The answer to one request.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

impl Api {
    async fn start(store: Store, key: Option<MasterKey>, auth: AuthConfig) -> Api {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = ServerConfig {
            default_tenant: "acme".into(),
            data_dir: dir.path().to_owned(),
            auth: auth.clone(),
            ..ServerConfig::default()
        };
        let made = bootstrap_admin(&store, &config, Some(ADMIN_PW.into()))
            .await
            .expect("bootstrap");
        assert!(made.is_some_and(|m| m.password_file.is_none()));
        let state = AppState::new(
            store,
            ServerMetrics::new(),
            StatusPolicy {
                stale_after_ms: 30_000,
            },
            &auth,
            key.clone(),
            TenantSettings::default(),
        )
        .expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(ispvm_server::http::serve(listener, state, stopped));
        Api {
            base,
            http: reqwest::Client::new(),
            key,
            stop,
            task,
            _dir: dir,
        }
    }

    async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        self.raw(
            method,
            path,
            Some(token),
            body.map(|b| serde_json::to_vec(&b).expect("json")),
        )
        .await
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, token, None).await
    }

    async fn login(&self, tenant: &str, username: &str, password: &str) -> Answer {
        self.raw(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(
                serde_json::to_vec(
                    &json!({ "tenant": tenant, "username": username, "password": password }),
                )
                .expect("json"),
            ),
        )
        .await
    }

    async fn token(&self, tenant: &str, username: &str, password: &str) -> String {
        let a = self.login(tenant, username, password).await;
        assert_eq!(a.status, 200, "login {tenant}/{username}: {:?}", a.body);
        a.body["token"].as_str().expect("token").to_owned()
    }

    /// Audit rows of tenant `acme`, newest first.
    async fn audit(&self, admin: &str, query: &str) -> Vec<Value> {
        let a = self
            .get(&format!("/api/v1/audit?limit=1000{query}"), admin)
            .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        a.body["items"].as_array().cloned().unwrap_or_default()
    }
}

/// Tenant `acme` with an admin (platform admin, from bootstrap), a noc user and a
/// read-only user; tenant `globex` with its own admin.
struct World {
    api: Api,
    admin: String,
    noc: String,
    ro: String,
    globex: String,
}

async fn world(store: Store) -> World {
    world_with(store, Some(MasterKey::generate().0), test_auth()).await
}

async fn world_with(store: Store, key: Option<MasterKey>, auth: AuthConfig) -> World {
    let api = Api::start(store, key, auth).await;
    let admin = api.token("acme", "admin", ADMIN_PW).await;
    for (user, pw, role) in [("nina", NOC_PW, "noc"), ("rob", RO_PW, "read-only")] {
        let a = api
            .post(
                "/api/v1/users",
                &admin,
                json!({ "username": user, "password": pw, "role": role }),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        assert!(a.body.get("password").is_none() && a.body.get("password_hash").is_none());
    }
    let a = api
        .post(
            "/api/v1/tenants",
            &admin,
            json!({ "id": "globex", "name": "Globex", "admin": { "username": "gadmin", "password": GLOBEX_PW } }),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let noc = api.token("acme", "nina", NOC_PW).await;
    let ro = api.token("acme", "rob", RO_PW).await;
    let globex = api.token("globex", "gadmin", GLOBEX_PW).await;
    World {
        api,
        admin,
        noc,
        ro,
        globex,
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "nope").replace("{name}", "ether1")
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).expect("method")
}

/// Every route of the table, called without a token and with each role: 401 without a
/// token, 403 below the route's role, neither at or above it.
async fn every_route_enforces_its_role(store: Store) {
    let w = world(store).await;
    let api = &w.api;
    for r in route_specs() {
        let path = concrete(r.path);
        let m = method(r.method);
        let body = (r.method != "GET" && r.method != "DELETE").then(|| b"{}".to_vec());
        let anon = api.raw(m.clone(), &path, None, body.clone()).await;
        if r.access == Access::Public {
            assert_ne!(anon.status, 401, "{} {path} is public", r.method);
            continue;
        }
        assert_eq!(anon.status, 401, "{} {path} without a token", r.method);
        let bad = api
            .raw(m.clone(), &path, Some("not-a-token"), body.clone())
            .await;
        assert_eq!(bad.status, 401, "{} {path} with a bad token", r.method);
        // (token, is admin, role rank, platform admin)
        let callers = [
            (&w.ro, 0, false),
            (&w.noc, 1, false),
            (&w.globex, 2, false),
            (&w.admin, 2, true),
        ];
        for (token, rank, platform) in callers {
            let allowed = match r.access {
                Access::Public => true,
                Access::Role(min) => rank >= min as i32,
                Access::Platform => platform,
            };
            if allowed && r.path == "/api/v1/auth/logout" {
                continue; // would end the session the rest of the test uses
            }
            let a = api
                .call(m.clone(), &path, token, body.as_ref().map(|_| json!({})))
                .await;
            if allowed {
                assert!(
                    a.status != 401 && a.status != 403,
                    "{} {path} as rank {rank}: {} {:?}",
                    r.method,
                    a.status,
                    a.body
                );
            } else {
                assert_eq!(
                    a.status, 403,
                    "{} {path} as rank {rank}: {:?}",
                    r.method, a.body
                );
            }
        }
    }
    w.api.shutdown().await;
}
on_both_engines!(roles, every_route_enforces_its_role);

/// Creates a small inventory in acme as the noc user.
async fn acme_inventory(w: &World) {
    let api = &w.api;
    for (path, body) in [
        (
            "/api/v1/sites",
            json!({ "id": "pop-a", "name": "PoP A", "lat": 33.9, "lon": 35.5 }),
        ),
        ("/api/v1/sites", json!({ "id": "pop-b", "name": "PoP B" })),
        (
            "/api/v1/devices",
            json!({ "id": "core1", "name": "Core 1", "site_id": "pop-a", "role": "core", "tags": ["gold", "ring-1"] }),
        ),
        (
            "/api/v1/devices",
            json!({ "id": "agg1", "name": "Agg 1", "site_id": "pop-b", "role": "agg", "tags": ["ring-1"] }),
        ),
        (
            "/api/v1/links",
            json!({ "id": "core1-agg1", "a": { "device": "core1", "interface": "sfp1" }, "b": { "device": "agg1", "interface": "sfp1" }, "capacity_bps": 10_000_000_000_i64, "provider": "FiberCo", "medium": "fiber" }),
        ),
        (
            "/api/v1/topology/edges",
            json!({ "id": "agg1-needs-core1", "type": "depends_on", "from": { "kind": "device", "id": "agg1" }, "to": { "kind": "device", "id": "core1" } }),
        ),
        (
            "/api/v1/services",
            json!({ "id": "internet", "name": "Internet", "kind": "internet", "devices": ["core1", "agg1"] }),
        ),
        (
            "/api/v1/maintenance-windows",
            json!({ "id": "mw1", "name": "Fibre splice", "starts_ms": T0, "ends_ms": T0 + 3_600_000, "scope": { "sites": ["pop-b"] } }),
        ),
    ] {
        let a = api.post(path, &w.noc, body).await;
        assert_eq!(a.status, 201, "POST {path}: {:?}", a.body);
    }
}

async fn changes_are_audited_in_their_transaction(store: Store) {
    let w = world(store).await;
    let api = &w.api;
    let before = api.audit(&w.admin, "").await.len();
    acme_inventory(&w).await;
    let rows = api.audit(&w.admin, "&username=nina&action=create").await;
    let created: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap_or_default().to_owned(),
                r["resource_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("site", "pop-a"),
        ("site", "pop-b"),
        ("device", "core1"),
        ("device", "agg1"),
        ("link", "core1-agg1"),
        ("topology_edge", "agg1-needs-core1"),
        ("service", "internet"),
        ("maintenance_window", "mw1"),
    ] {
        assert!(
            created.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} not audited: {created:?}"
        );
    }
    // An update records before and after; a delete records what was deleted.
    let a = api
        .patch("/api/v1/sites/pop-b", &w.noc, json!({ "name": "PoP Beta" }))
        .await;
    assert_eq!((a.status, a.body["name"].as_str()), (200, Some("PoP Beta")));
    assert_eq!(a.body["lat"], Value::Null);
    let upd = api.audit(&w.admin, "&action=update&resource=site").await;
    assert_eq!(upd[0]["details"]["before"]["name"], "PoP B");
    assert_eq!(upd[0]["details"]["after"]["name"], "PoP Beta");
    assert_eq!(upd[0]["username"], "nina");
    let a = api.delete("/api/v1/maintenance-windows/mw1", &w.noc).await;
    assert_eq!(a.status, 204);
    let del = api.audit(&w.admin, "&action=delete").await;
    assert_eq!(del[0]["resource_id"], "mw1");
    assert_eq!(del[0]["details"]["before"]["name"], "Fibre splice");
    // A refused change writes no audit row.
    let count = api.audit(&w.admin, "").await.len();
    let a = api.delete("/api/v1/sites/pop-a", &w.noc).await;
    assert_eq!(a.status, 409, "a site with devices: {:?}", a.body);
    assert_eq!(api.audit(&w.admin, "").await.len(), count);
    assert!(count >= before + 10);
    // Logins are audited too, failed ones with their reason.
    let _ = api.login("acme", "rob", "wrong-password!").await;
    let failed = api.audit(&w.admin, "&action=login_failed").await;
    assert_eq!(failed[0]["resource_id"], "rob");
    assert_eq!(failed[0]["details"]["reason"], "bad_password");
    assert!(
        !api.audit(&w.admin, "&action=login&username=rob")
            .await
            .is_empty()
    );
    // Audit pages are newest first and do not overlap.
    let p1 = api.get("/api/v1/audit?limit=3", &w.admin).await;
    let cursor = p1.body["next_cursor"].as_str().expect("more").to_owned();
    let p2 = api
        .get(&format!("/api/v1/audit?limit=3&cursor={cursor}"), &w.admin)
        .await;
    let last1 = p1.body["items"][2]["id"].as_i64().expect("id");
    let first2 = p2.body["items"][0]["id"].as_i64().expect("id");
    assert!(first2 < last1);
    w.api.shutdown().await;
}
on_both_engines!(audit, changes_are_audited_in_their_transaction);

async fn other_tenants_see_nothing_and_change_nothing(store: Store) {
    let w = world(store).await;
    let api = &w.api;
    acme_inventory(&w).await;
    let key = w.api.key.clone();
    let a = api
        .post(
            "/api/v1/credential-sets",
            &w.admin,
            json!({ "id": "ros", "name": "RouterOS", "kind": "routeros", "username": "mon", "secret": { "password": "s3cret-pass" } }),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert!(key.is_some());
    let a = api
        .post(
            "/api/v1/polling-profiles",
            &w.admin,
            json!({ "id": "gentle", "name": "Gentle" }),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let a = api
        .post(
            "/api/v1/alert-rules",
            &w.admin,
            json!({ "id": "cpu", "name": "CPU", "type": "metric", "metric": "device.cpu_pct", "window": { "func": "avg", "duration_s": 300 }, "levels": { "warn": { "op": ">", "value": 80 } } }),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let snapshot = acme_snapshot(&w).await;

    let one = [
        "/api/v1/sites/pop-a",
        "/api/v1/devices/core1",
        "/api/v1/devices/core1/interfaces",
        "/api/v1/links/core1-agg1",
        "/api/v1/topology/edges/agg1-needs-core1",
        "/api/v1/services/internet",
        "/api/v1/maintenance-windows/mw1",
        "/api/v1/credential-sets/ros",
        "/api/v1/polling-profiles/gentle",
        "/api/v1/alert-rules/cpu",
        "/api/v1/users/nina",
        "/api/v1/tenants/acme",
    ];
    for path in one {
        let a = api.get(path, &w.globex).await;
        assert_eq!(a.status, 404, "GET {path} from globex: {:?}", a.body);
        if path.ends_with("/interfaces") || path.starts_with("/api/v1/tenants") {
            continue;
        }
        let a = api.patch(path, &w.globex, json!({ "name": "pwned" })).await;
        assert_eq!(a.status, 404, "PATCH {path} from globex: {:?}", a.body);
        let a = api.delete(path, &w.globex).await;
        assert_eq!(a.status, 404, "DELETE {path} from globex: {:?}", a.body);
    }
    for list in [
        "/api/v1/sites",
        "/api/v1/devices",
        "/api/v1/interfaces",
        "/api/v1/links",
        "/api/v1/topology/edges",
        "/api/v1/services",
        "/api/v1/maintenance-windows",
        "/api/v1/credential-sets",
        "/api/v1/polling-profiles",
        "/api/v1/agents",
        "/api/v1/events",
    ] {
        let a = api.get(list, &w.globex).await;
        assert_eq!(a.status, 200, "{list}: {:?}", a.body);
        assert_eq!(a.body["items"], json!([]), "{list} from globex");
    }
    let a = api.get("/api/v1/tenants", &w.globex).await;
    assert_eq!(a.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(a.body["items"][0]["id"], "globex");
    // References into acme from globex do not resolve.
    let a = api
        .post(
            "/api/v1/sites",
            &w.globex,
            json!({ "id": "g-pop", "name": "G" }),
        )
        .await;
    assert_eq!(a.status, 201);
    for (path, body) in [
        (
            "/api/v1/devices",
            json!({ "id": "g1", "name": "G1", "site_id": "pop-a", "role": "core" }),
        ),
        (
            "/api/v1/devices",
            json!({ "id": "g1", "name": "G1", "site_id": "g-pop", "role": "core", "credential_set": "ros" }),
        ),
        (
            "/api/v1/links",
            json!({ "a": { "device": "core1" }, "b": { "device": "agg1" } }),
        ),
        (
            "/api/v1/services",
            json!({ "name": "S", "devices": ["core1"] }),
        ),
        (
            "/api/v1/topology/edges",
            json!({ "type": "depends_on", "from": { "kind": "site", "id": "g-pop" }, "to": { "kind": "device", "id": "core1" } }),
        ),
    ] {
        let a = api.post(path, &w.globex, body).await;
        assert_eq!(a.status, 422, "POST {path} from globex: {:?}", a.body);
    }
    // The same id may exist in both tenants independently.
    let a = api
        .post(
            "/api/v1/sites",
            &w.globex,
            json!({ "id": "pop-a", "name": "Globex A" }),
        )
        .await;
    assert_eq!(a.status, 201);
    assert_eq!(acme_snapshot(&w).await, snapshot, "acme changed");
    // Globex's audit log has its own rows only.
    let rows = api.audit(&w.globex, "").await;
    // (The one acme row it holds is its own creation by acme's platform admin.)
    assert!(rows.iter().all(|r| r["username"] != "nina"
        && (r["username"] != "admin"
            || (r["resource"] == "tenant" && r["resource_id"] == "globex"))));
    w.api.shutdown().await;
}
on_both_engines!(isolation, other_tenants_see_nothing_and_change_nothing);

/// Everything acme has, as its admin sees it.
async fn acme_snapshot(w: &World) -> Vec<Value> {
    let mut out = Vec::new();
    for list in [
        "/api/v1/sites",
        "/api/v1/devices",
        "/api/v1/links",
        "/api/v1/topology/edges",
        "/api/v1/services",
        "/api/v1/maintenance-windows",
        "/api/v1/credential-sets",
        "/api/v1/polling-profiles",
        "/api/v1/alert-rules",
        "/api/v1/users",
        "/api/v1/tenants/acme",
    ] {
        let a = w.api.get(list, &w.admin).await;
        assert_eq!(a.status, 200, "{list}");
        out.push(a.body);
    }
    out
}

async fn credential_secrets_are_write_only_and_sealed(store: Store) {
    let w = world(store.clone()).await;
    let api = &w.api;
    let secret = "Plaintext-Secret-42";
    let a = api
        .post(
            "/api/v1/credential-sets",
            &w.admin,
            json!({ "id": "ros", "name": "RouterOS monitor", "kind": "routeros", "username": "monitor", "secret": { "password": secret } }),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["has_secret"], true);
    assert_eq!(a.body["secret_fields"], json!(["password"]));
    assert!(!a.body.to_string().contains(secret));
    for token in [&w.admin, &w.noc, &w.ro] {
        let one = api.get("/api/v1/credential-sets/ros", token).await;
        assert_eq!(one.status, 200);
        assert!(one.body.get("secret").is_none());
        assert!(!one.body.to_string().contains(secret));
        let all = api.get("/api/v1/credential-sets", token).await;
        assert!(!all.body.to_string().contains(secret));
    }
    let audit = api.audit(&w.admin, "&resource=credential_set").await;
    assert!(
        !serde_json::to_string(&audit)
            .expect("json")
            .contains(secret)
    );
    // At rest: the column holds a sealed value, not the secret.
    let stored = sealed_column(&store, "acme", "ros").await;
    assert!(stored.starts_with("v1:"), "{stored}");
    assert!(!stored.contains(secret));
    let key = api.key.clone().expect("key");
    let (_, opened) = store
        .tenant("acme")
        .credential_secret(&key, "ros")
        .await
        .expect("open")
        .expect("set");
    assert_eq!(opened.password.as_deref(), Some(secret));
    // The sealed value is bound to its tenant and id.
    assert!(
        store
            .tenant("globex")
            .credential_secret(&key, "ros")
            .await
            .expect("read")
            .is_none()
    );

    // noc and read-only cannot write credential sets.
    for token in [&w.noc, &w.ro] {
        let a = api
            .post(
                "/api/v1/credential-sets",
                token,
                json!({ "name": "x", "kind": "snmp_v2c", "secret": { "community": "public" } }),
            )
            .await;
        assert_eq!(a.status, 403);
    }
    // A patch without a secret keeps it; one that no longer fits the kind needs one.
    let a = api
        .patch(
            "/api/v1/credential-sets/ros",
            &w.admin,
            json!({ "username": "monitor2" }),
        )
        .await;
    assert_eq!(
        (a.status, a.body["has_secret"].as_bool()),
        (200, Some(true))
    );
    assert_eq!(sealed_column(&store, "acme", "ros").await, stored);
    let a = api
        .patch(
            "/api/v1/credential-sets/ros",
            &w.admin,
            json!({ "kind": "snmp_v2c", "username": "" }),
        )
        .await;
    assert_eq!(a.status, 422, "{:?}", a.body);
    let a = api
        .patch(
            "/api/v1/credential-sets/ros",
            &w.admin,
            json!({ "kind": "snmp_v2c", "username": "", "secret": { "community": "n0t-public" } }),
        )
        .await;
    assert_eq!(
        (a.status, &a.body["secret_fields"]),
        (200, &json!(["community"]))
    );
    let resealed = sealed_column(&store, "acme", "ros").await;
    assert!(!resealed.contains("n0t-public") && resealed != stored);
    // Bad secrets are refused without echoing them.
    let a = api
        .post(
            "/api/v1/credential-sets",
            &w.admin,
            json!({ "id": "v3", "name": "v3", "kind": "snmp_v3", "username": "u", "auth_protocol": "sha256", "secret": { "auth_password": "short" } }),
        )
        .await;
    assert_eq!(a.status, 422, "{:?}", a.body);
    let a = api
        .post(
            "/api/v1/credential-sets",
            &w.admin,
            json!({ "id": "v3", "name": "v3", "kind": "snmp_v3", "username": "u", "secret": "Leaky-Secret-99" }),
        )
        .await;
    assert_eq!(a.status, 422);
    assert!(!a.body.to_string().contains("Leaky-Secret-99"));
    w.api.shutdown().await;
}
on_both_engines!(credentials, credential_secrets_are_write_only_and_sealed);

async fn sealed_column(store: &Store, tenant: &str, id: &str) -> String {
    let q = "SELECT secret FROM credential_sets WHERE tenant_id = $1 AND id = $2";
    match store {
        Store::Sqlite(p) => {
            sqlx::query_scalar(q)
                .bind(tenant)
                .bind(id)
                .fetch_one(p)
                .await
        }
        Store::Postgres(p) => {
            sqlx::query_scalar(q)
                .bind(tenant)
                .bind(id)
                .fetch_one(p)
                .await
        }
    }
    .expect("secret column")
}

async fn without_a_master_key_secrets_are_refused(store: Store) {
    let w = world_with(store, None, test_auth()).await;
    let a = w
        .api
        .post(
            "/api/v1/credential-sets",
            &w.admin,
            json!({ "id": "c", "name": "c", "kind": "snmp_v2c", "secret": { "community": "public" } }),
        )
        .await;
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (503, Some("no_master_key"))
    );
    assert!(
        a.body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ISPVM_MASTER_KEY")
    );
    let a = w.api.get("/api/v1/credential-sets", &w.admin).await;
    assert_eq!(a.body["items"], json!([]));
    w.api.shutdown().await;
}
on_both_engines!(no_master_key, without_a_master_key_secrets_are_refused);

async fn pages_and_filters(store: Store) {
    let w = world(store).await;
    let api = &w.api;
    for site in ["p1", "p2"] {
        let a = api
            .post("/api/v1/sites", &w.noc, json!({ "id": site, "name": site }))
            .await;
        assert_eq!(a.status, 201);
    }
    for i in 0..25 {
        let site = if i % 2 == 0 { "p1" } else { "p2" };
        let role = if i < 5 { "core" } else { "access" };
        let mut tags = vec![format!("t{}", i % 3)];
        if i == 7 {
            tags.push("special".into());
        }
        let a = api
            .post(
                "/api/v1/devices",
                &w.noc,
                json!({ "id": format!("dev-{i:02}"), "name": format!("Router {i}"), "site_id": site, "role": role, "tags": tags }),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/api/v1/devices?limit=10".to_owned(),
            Some(c) => format!("/api/v1/devices?limit=10&cursor={c}"),
        };
        let a = api.get(&path, &w.ro).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        pages += 1;
        for d in a.body["items"].as_array().expect("items") {
            seen.push(d["id"].as_str().expect("id").to_owned());
            assert!(d["status"].is_string() && d["interfaces"].is_array());
        }
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("dev-{i:02}")).collect();
    assert_eq!(seen, expected, "every device once, in id order");
    let ids = |a: &Answer| -> Vec<String> {
        a.body["items"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|d| d["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let a = api.get("/api/v1/devices?site=p2&limit=1000", &w.ro).await;
    assert_eq!(ids(&a).len(), 12);
    let a = api.get("/api/v1/devices?role=core", &w.ro).await;
    assert_eq!(ids(&a), ["dev-00", "dev-01", "dev-02", "dev-03", "dev-04"]);
    let a = api.get("/api/v1/devices?tag=special", &w.ro).await;
    assert_eq!(ids(&a), ["dev-07"]);
    assert_eq!(a.body["items"][0]["tags"], json!(["special", "t1"]));
    let a = api
        .get("/api/v1/devices?tag=t0&site=p1&role=access", &w.ro)
        .await;
    assert_eq!(ids(&a), ["dev-06", "dev-12", "dev-18", "dev-24"]);
    let a = api.get("/api/v1/devices?q=ROUTER%201", &w.ro).await;
    assert_eq!(ids(&a).len(), 11, "Router 1, 10..19");
    let a = api.get("/api/v1/devices?q=%25", &w.ro).await;
    assert_eq!(ids(&a).len(), 0, "% is a literal, not a wildcard");
    // Bad paging input is refused.
    for bad in [
        "/api/v1/devices?limit=0",
        "/api/v1/devices?limit=1001",
        "/api/v1/devices?limit=x",
        "/api/v1/devices?cursor=@@@",
        "/api/v1/devices?sitee=p1",
        "/api/v1/devices?site=p1&site=p2",
        "/api/v1/interfaces?cursor=ImRldi0wMSI",
    ] {
        let a = api.get(bad, &w.ro).await;
        assert_eq!(a.status, 400, "{bad}: {:?}", a.body);
        assert!(a.body["error"].is_string());
    }
    w.api.shutdown().await;
}
on_both_engines!(paging, pages_and_filters);

async fn alert_rules_import_and_export(store: Store) {
    let w = world(store).await;
    let api = &w.api;
    // Every new tenant starts with the starter pack, the bootstrapped one (acme) too.
    let g = api.get("/api/v1/alert-rules/export", &w.globex).await;
    let starter = g.body["rules"].as_array().map(Vec::len).unwrap_or_default();
    assert!(starter >= 10, "{:?}", g.body);

    let pack: Value = serde_json::from_str(ispvm_actors::alert::STARTER_PACK_JSON).expect("pack");
    let a = api
        .post("/api/v1/alert-rules/import", &w.noc, pack.clone())
        .await;
    assert_eq!(a.status, 403);
    let a = api
        .post("/api/v1/alert-rules/import", &w.admin, pack.clone())
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["unchanged"].as_array().map(Vec::len), Some(starter));
    assert_eq!(a.body["created"], json!([]));
    let exported = api.get("/api/v1/alert-rules/export", &w.ro).await;
    assert_eq!(exported.status, 200);
    assert_eq!(exported.body["version"], 1);
    // Exporting and importing again changes nothing.
    let a = api
        .post(
            "/api/v1/alert-rules/import",
            &w.admin,
            exported.body.clone(),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["unchanged"].as_array().map(Vec::len), Some(starter));
    assert_eq!(a.body["created"], json!([]));
    assert_eq!(a.body["updated"], json!([]));
    let again = api.get("/api/v1/alert-rules/export", &w.ro).await;
    assert_eq!(again.body, exported.body);
    // Same rules as globex got from its starter pack.
    assert_eq!(again.body["rules"], g.body["rules"]);

    // One bad rule refuses the whole document.
    let mut bad = exported.body.clone();
    if let Some(rules) = bad["rules"].as_array_mut() {
        rules[0]["name"] = json!("changed");
        rules.push(json!({ "id": "broken", "name": "Broken", "type": "sla_loss", "window": { "func": "avg", "duration_s": 0 } }));
    }
    let a = api.post("/api/v1/alert-rules/import", &w.admin, bad).await;
    assert_eq!(a.status, 422, "{:?}", a.body);
    assert_eq!(
        api.get("/api/v1/alert-rules/export", &w.ro).await.body,
        exported.body
    );
    let a = api
        .post(
            "/api/v1/alert-rules/import",
            &w.admin,
            json!({ "version": 2, "rules": [] }),
        )
        .await;
    assert_eq!(a.status, 422);

    // CRUD on one rule; revision counts stored changes.
    let first = exported.body["rules"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let a = api
        .patch(
            &format!("/api/v1/alert-rules/{first}"),
            &w.admin,
            json!({ "enabled": false }),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(
        (a.body["enabled"].as_bool(), a.body["revision"].as_i64()),
        (Some(false), Some(2))
    );
    let a = api.get("/api/v1/alert-rules?enabled=false", &w.ro).await;
    assert_eq!(a.body["items"].as_array().map(Vec::len), Some(1));
    let a = api
        .patch(
            &format!("/api/v1/alert-rules/{first}"),
            &w.admin,
            json!({ "id": "renamed" }),
        )
        .await;
    assert_eq!(a.status, 422);
    let a = api
        .post(
            "/api/v1/alert-rules",
            &w.admin,
            json!({ "id": "x", "name": "X", "type": "nonsense" }),
        )
        .await;
    assert_eq!(a.status, 422, "{:?}", a.body);

    // Replace keeps exactly the document's rules.
    let subset = json!({ "version": 1, "rules": [exported.body["rules"][1].clone()] });
    let a = api
        .post("/api/v1/alert-rules/import?mode=replace", &w.admin, subset)
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(
        a.body["deleted"].as_array().map(Vec::len),
        Some(starter - 1)
    );
    let left = api.get("/api/v1/alert-rules/export", &w.ro).await;
    assert_eq!(left.body["rules"].as_array().map(Vec::len), Some(1));
    let imports = api.audit(&w.admin, "&action=import").await;
    assert_eq!(imports.len(), 3);
    w.api.shutdown().await;
}
on_both_engines!(alert_rules, alert_rules_import_and_export);

/// Checks JSON against the document's schema `schema` (a `$ref` or inline), resolving
/// references in the document itself.
fn conforms(doc: &Value, schema: &Value, body: &Value, what: &str) {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&root)
        .unwrap_or_else(|e| panic!("{what}: the document's schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the document:\n{}\n{body:#}",
        errors.join("\n")
    );
}

/// What the running API answers is what its OpenAPI document says, route by route:
/// the schemas come from the types, and this proves the handlers send those types.
async fn answers_match_the_document(store: Store) {
    let w = world(store.clone()).await;
    let api = &w.api;
    acme_inventory(&w).await;
    store
        .tenant("acme")
        .ingest(&batch("agent-a", "acme", 1, "core1"), T0)
        .await
        .expect("ingest");
    let doc = api.get("/api/v1/openapi.json", &w.ro).await.body;
    let schema_of = |method: &str, template: &str, status: u16| -> Value {
        doc["paths"][template][method]["responses"][status.to_string()]["content"]["application/json"]["schema"]
            .clone()
    };
    let gets: &[(&str, &str, &str)] = &[
        ("/healthz", "/healthz", "ro"),
        ("/livez", "/livez", "ro"),
        ("/api/v1/auth/me", "/api/v1/auth/me", "ro"),
        ("/api/v1/tenants", "/api/v1/tenants", "admin"),
        ("/api/v1/tenants/acme", "/api/v1/tenants/{id}", "admin"),
        ("/api/v1/users", "/api/v1/users", "admin"),
        ("/api/v1/users/nina", "/api/v1/users/{id}", "admin"),
        ("/api/v1/sites", "/api/v1/sites", "ro"),
        ("/api/v1/sites/pop-a", "/api/v1/sites/{id}", "ro"),
        ("/api/v1/devices", "/api/v1/devices", "ro"),
        ("/api/v1/devices/core1", "/api/v1/devices/{id}", "ro"),
        (
            "/api/v1/devices/core1/interfaces",
            "/api/v1/devices/{id}/interfaces",
            "ro",
        ),
        ("/api/v1/interfaces", "/api/v1/interfaces", "ro"),
        ("/api/v1/links", "/api/v1/links", "ro"),
        ("/api/v1/links/core1-agg1", "/api/v1/links/{id}", "ro"),
        ("/api/v1/topology/edges", "/api/v1/topology/edges", "ro"),
        (
            "/api/v1/topology/edges/agg1-needs-core1",
            "/api/v1/topology/edges/{id}",
            "ro",
        ),
        ("/api/v1/services", "/api/v1/services", "ro"),
        ("/api/v1/services/internet", "/api/v1/services/{id}", "ro"),
        ("/api/v1/agents", "/api/v1/agents", "ro"),
        ("/api/v1/agents/agent-a", "/api/v1/agents/{id}", "ro"),
        ("/api/v1/events", "/api/v1/events", "ro"),
        ("/api/v1/cluster", "/api/v1/cluster", "ro"),
        ("/api/v1/cluster/members", "/api/v1/cluster/members", "ro"),
        (
            "/api/v1/cluster/ownership",
            "/api/v1/cluster/ownership",
            "ro",
        ),
        (
            "/api/v1/cluster/reachability",
            "/api/v1/cluster/reachability",
            "ro",
        ),
        (
            "/api/v1/cluster/convergence",
            "/api/v1/cluster/convergence",
            "ro",
        ),
        ("/api/v1/alerts", "/api/v1/alerts", "ro"),
        (
            "/api/v1/alerts/notifications",
            "/api/v1/alerts/notifications",
            "ro",
        ),
        ("/api/v1/credential-sets", "/api/v1/credential-sets", "ro"),
        ("/api/v1/polling-profiles", "/api/v1/polling-profiles", "ro"),
        (
            "/api/v1/maintenance-windows",
            "/api/v1/maintenance-windows",
            "ro",
        ),
        (
            "/api/v1/maintenance-windows/mw1",
            "/api/v1/maintenance-windows/{id}",
            "ro",
        ),
        ("/api/v1/alert-rules", "/api/v1/alert-rules", "ro"),
        (
            "/api/v1/alert-rules/export",
            "/api/v1/alert-rules/export",
            "ro",
        ),
        ("/api/v1/audit", "/api/v1/audit", "admin"),
    ];
    for (path, template, who) in gets {
        let token = if *who == "admin" { &w.admin } else { &w.ro };
        let a = api.get(path, token).await;
        assert_eq!(a.status, 200, "GET {path}: {:?}", a.body);
        let schema = schema_of("get", template, 200);
        assert!(schema.is_object(), "GET {template} has no 200 schema");
        conforms(&doc, &schema, &a.body, &format!("GET {path}"));
    }
    // Every stored rule is a rule document as the document describes it.
    let rules = api.get("/api/v1/alert-rules", &w.ro).await.body;
    let first = rules["items"][0]["id"]
        .as_str()
        .expect("a starter rule")
        .to_owned();
    let a = api
        .get(&format!("/api/v1/alert-rules/{first}"), &w.ro)
        .await;
    conforms(
        &doc,
        &schema_of("get", "/api/v1/alert-rules/{id}", 200),
        &a.body,
        "GET one rule",
    );
    // Error answers too.
    let a = api.get("/api/v1/devices/ghost", &w.ro).await;
    assert_eq!(a.status, 404);
    let error = &doc["paths"]["/api/v1/devices/{id}"]["get"]["responses"]["404"]["content"]["application/json"]
        ["schema"];
    conforms(&doc, error, &a.body, "a 404");
    // What the tests send is what the document says a client may send.
    let create = &doc["paths"]["/api/v1/devices"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    conforms(
        &doc,
        create,
        &json!({ "id": "edge9", "name": "Edge 9", "site_id": "pop-a", "role": "edge", "tags": ["gold"] }),
        "a device body",
    );
    let bad = json!({ "name": "Edge 9", "site_id": "pop-a", "role": "wizard" });
    let root = json!({ "allOf": [create], "components": doc["components"] });
    let validator = jsonschema::validator_for(&root).expect("schema compiles");
    assert!(
        !validator.is_valid(&bad),
        "the schema refuses an unknown role"
    );
    w.api.shutdown().await;
}
on_both_engines!(conformance, answers_match_the_document);

/// `docs/openapi.json` is the document the server serves, for readers without a server
/// (`ISPVM_UPDATE_DOCS=1` rewrites it).
#[test]
fn docs_openapi_json_is_current() {
    let doc = ispvm_server::http::openapi::document();
    let mut text = serde_json::to_string_pretty(&doc).expect("the document serialises");
    text.push('\n');
    ispvm_testkit::assert_generated_file("docs/openapi.json", &text);
}

async fn openapi_lists_every_route(store: Store) {
    let w = world(store).await;
    let a = w
        .api
        .raw(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(a.status, 200);
    let doc = a.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for m in item.as_object().expect("item").keys() {
            documented.insert((m.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = route_specs()
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, served);
    // Every route answers (not the router's 404) and every schema reference resolves.
    for (m, path) in &served {
        let a = w.api.raw(method(m), &concrete(path), None, None).await;
        assert!(
            a.body["error"] != "no such route",
            "{m} {path} is documented but not routed"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name: String = part.chars().take_while(|c| *c != '"').collect();
        assert!(schemas.contains_key(&name), "missing schema {name}");
    }
    for r in route_specs() {
        let op = &paths[r.path][r.method.to_lowercase()];
        assert_eq!(op["x-required-role"], r.access.describe());
    }
    let a = w.api.get("/api/v1/nothing-here", &w.admin).await;
    assert_eq!(a.status, 404);
    w.api.shutdown().await;
}
on_both_engines!(openapi, openapi_lists_every_route);

async fn bad_input_changes_nothing(store: Store) {
    let w = world(store).await;
    let api = &w.api;
    acme_inventory(&w).await;
    let snapshot = acme_snapshot(&w).await;
    let audit_rows = api.audit(&w.admin, "").await.len();
    let cases: Vec<(Method, &str, Vec<u8>, u16)> = vec![
        (Method::POST, "/api/v1/sites", b"{not json".to_vec(), 400),
        (Method::POST, "/api/v1/sites", b"[1,2]".to_vec(), 422),
        (Method::POST, "/api/v1/sites", br#"{"id":"x","name":"X","colour":"red"}"#.to_vec(), 422),
        (Method::POST, "/api/v1/sites", br#"{"id":"a b","name":"X"}"#.to_vec(), 422),
        (Method::POST, "/api/v1/sites", br#"{"id":"x","name":""}"#.to_vec(), 422),
        (Method::POST, "/api/v1/sites", br#"{"id":"x","name":"X","lat":91,"lon":0}"#.to_vec(), 422),
        (Method::POST, "/api/v1/sites", br#"{"id":"pop-a","name":"again"}"#.to_vec(), 409),
        (Method::POST, "/api/v1/devices", br#"{"id":"d","name":"D","site_id":"nowhere","role":"core"}"#.to_vec(), 422),
        (Method::POST, "/api/v1/devices", br#"{"id":"d","name":"D","site_id":"pop-a","role":"king"}"#.to_vec(), 422),
        (Method::POST, "/api/v1/devices", br#"{"id":"d","name":"D","site_id":"pop-a","role":"core","tags":["a b"]}"#.to_vec(), 422),
        (Method::POST, "/api/v1/devices", br#"{"id":"d","name":"D","site_id":"pop-a","role":"core","polling_profile":"none"}"#.to_vec(), 422),
        (Method::PATCH, "/api/v1/devices/core1", br#"{"site_id":"nowhere"}"#.to_vec(), 422),
        (Method::PATCH, "/api/v1/devices/core1", br#"{"id":"core2"}"#.to_vec(), 422),
        (Method::PATCH, "/api/v1/devices/core1", br#"{"name":null}"#.to_vec(), 422),
        (Method::PATCH, "/api/v1/devices/core1/interfaces/sfp1", br#"{"uplink":true}"#.to_vec(), 404),
        (Method::POST, "/api/v1/links", br#"{"a":{"device":"core1"},"b":{"device":"core1"}}"#.to_vec(), 422),
        (Method::POST, "/api/v1/links", br#"{"a":{"device":"core1"},"b":{"device":"agg1"},"capacity_bps":-5}"#.to_vec(), 422),
        (Method::POST, "/api/v1/topology/edges", br#"{"type":"depends_on","from":{"kind":"device","id":"agg1"},"to":{"kind":"device","id":"core1"}}"#.to_vec(), 409),
        (Method::POST, "/api/v1/topology/edges", br#"{"type":"likes","from":{"kind":"device","id":"agg1"},"to":{"kind":"device","id":"core1"}}"#.to_vec(), 422),
        (Method::POST, "/api/v1/maintenance-windows", br#"{"name":"w","starts_ms":10,"ends_ms":5,"scope":{"all":true}}"#.to_vec(), 422),
        (Method::POST, "/api/v1/maintenance-windows", br#"{"name":"w","starts_ms":10,"ends_ms":50,"scope":{}}"#.to_vec(), 422),
        (Method::POST, "/api/v1/services", br#"{"name":"S","devices":["ghost"]}"#.to_vec(), 422),
        (Method::DELETE, "/api/v1/devices/core1", Vec::new(), 409),
        (Method::DELETE, "/api/v1/devices/ghost", Vec::new(), 404),
        (Method::POST, "/api/v1/sites", vec![b' '; 100 * 1024], 413),
    ];
    for (m, path, body, expected) in cases {
        let body = (!body.is_empty()).then_some(body);
        let a = api.raw(m.clone(), path, Some(&w.noc), body).await;
        assert_eq!(a.status, expected, "{m} {path}: {:?}", a.body);
        assert!(a.body["error"].is_string(), "{m} {path}: {:?}", a.body);
    }
    // A word outside a closed set is refused by the type, naming the field and the
    // words it takes; a filter with one is a bad request.
    for (path, body, field, expected) in [
        (
            "/api/v1/devices",
            json!({"id":"d","name":"D","site_id":"pop-a","role":"king"}),
            "role",
            "core",
        ),
        (
            "/api/v1/topology/edges",
            json!({"type":"likes","from":{"kind":"device","id":"agg1"},"to":{"kind":"device","id":"core1"}}),
            "type",
            "depends_on",
        ),
        (
            "/api/v1/topology/edges",
            json!({"type":"depends_on","from":{"kind":"planet","id":"agg1"},"to":{"kind":"device","id":"core1"}}),
            "from.kind",
            "service",
        ),
        (
            "/api/v1/links",
            json!({"a":{"device":"core1"},"b":{"device":"agg1"},"medium":"string"}),
            "medium",
            "leased_line",
        ),
    ] {
        let a = api.post(path, &w.noc, body).await;
        assert_eq!(a.status, 422, "{path}: {:?}", a.body);
        assert_eq!(a.body["field"], field, "{path}: {:?}", a.body);
        let message = a.body["error"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{path}: {message}");
    }
    let a = api.get("/api/v1/devices?role=king", &w.ro).await;
    assert_eq!(a.status, 400, "{:?}", a.body);
    assert_eq!(acme_snapshot(&w).await, snapshot);
    assert_eq!(api.audit(&w.admin, "").await.len(), audit_rows);
    w.api.shutdown().await;
}
on_both_engines!(bad_input, bad_input_changes_nothing);

async fn logins_sessions_and_users(store: Store) {
    let auth = AuthConfig {
        lockout_after_failures: 3,
        ..test_auth()
    };
    let w = world_with(store, Some(MasterKey::generate().0), auth).await;
    let api = &w.api;
    // Unknown tenant, unknown user and wrong password look alike.
    let answers = [
        api.login("nowhere", "admin", ADMIN_PW).await,
        api.login("acme", "nobody", ADMIN_PW).await,
        api.login("acme", "admin", "wrong-password").await,
        api.login("acme", "a b", "x").await,
    ];
    for a in &answers {
        assert_eq!(a.status, 401);
        assert_eq!(a.body, answers[0].body);
    }
    let me = api.get("/api/v1/auth/me", &w.noc).await;
    assert_eq!(
        (me.body["username"].as_str(), me.body["role"].as_str()),
        (Some("nina"), Some("noc"))
    );
    // Failures in a row lock the account: then even the right password fails.
    for _ in 0..3 {
        assert_eq!(
            api.login("acme", "rob", "not-his-password").await.status,
            401
        );
    }
    assert_eq!(api.login("acme", "rob", RO_PW).await.status, 401);
    let locked = api
        .audit(&w.admin, "&action=login_failed&username=rob")
        .await;
    assert_eq!(locked[0]["details"]["reason"], "locked");
    // Logout ends the session.
    let t = api.token("acme", "nina", NOC_PW).await;
    assert_eq!(api.get("/api/v1/sites", &t).await.status, 200);
    assert_eq!(
        api.call(Method::POST, "/api/v1/auth/logout", &t, None)
            .await
            .status,
        204
    );
    assert_eq!(api.get("/api/v1/sites", &t).await.status, 401);
    // Disabling a user ends its sessions and logins.
    let a = api
        .patch("/api/v1/users/nina", &w.admin, json!({ "disabled": true }))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(api.get("/api/v1/sites", &w.noc).await.status, 401);
    assert_eq!(api.login("acme", "nina", NOC_PW).await.status, 401);
    let a = api
        .patch(
            "/api/v1/users/nina",
            &w.admin,
            json!({ "disabled": false, "role": "admin" }),
        )
        .await;
    assert_eq!((a.status, a.body["role"].as_str()), (200, Some("admin")));
    let nina = api.token("acme", "nina", NOC_PW).await;
    assert_eq!(api.get("/api/v1/audit", &nina).await.status, 200);
    // A role change takes effect on existing sessions at once.
    let a = api
        .patch(
            "/api/v1/users/nina",
            &w.admin,
            json!({ "role": "read_only" }),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(api.get("/api/v1/audit", &nina).await.status, 403);
    // Changing one's own password ends one's sessions.
    let a = api
        .post(
            "/api/v1/auth/password",
            &nina,
            json!({ "current_password": "wrong-wrong-wrong", "new_password": "another-password-1" }),
        )
        .await;
    assert_eq!(a.status, 403);
    let a = api
        .post(
            "/api/v1/auth/password",
            &nina,
            json!({ "current_password": NOC_PW, "new_password": "short" }),
        )
        .await;
    assert_eq!(a.status, 422);
    let a = api
        .post(
            "/api/v1/auth/password",
            &nina,
            json!({ "current_password": NOC_PW, "new_password": "another-password-1" }),
        )
        .await;
    assert_eq!(a.status, 204, "{:?}", a.body);
    assert_eq!(api.get("/api/v1/sites", &nina).await.status, 401);
    api.token("acme", "nina", "another-password-1").await;
    // The last enabled administrator stays.
    let a = api
        .patch("/api/v1/users/admin", &w.admin, json!({ "role": "noc" }))
        .await;
    assert_eq!(a.status, 409, "{:?}", a.body);
    let a = api.delete("/api/v1/users/gadmin", &w.globex).await;
    assert_eq!(a.status, 409);
    let a = api
        .post(
            "/api/v1/users",
            &w.admin,
            json!({ "username": "weak", "password": "123", "role": "noc" }),
        )
        .await;
    assert_eq!(a.status, 422);
    let a = api
        .post(
            "/api/v1/users",
            &w.admin,
            json!({ "username": "rob", "password": "long-enough-pw", "role": "noc" }),
        )
        .await;
    assert_eq!(a.status, 409);
    let a = api.get("/api/v1/users?role=admin", &w.admin).await;
    let names: Vec<&str> = a.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["admin"]);
    assert!(!a.body.to_string().contains("argon2"));
    w.api.shutdown().await;
}
on_both_engines!(sessions, logins_sessions_and_users);

async fn login_attempts_are_throttled_per_address(store: Store) {
    let auth = AuthConfig {
        login_attempts_per_minute: 4,
        ..test_auth()
    };
    let api = Api::start(store, None, auth).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(api.login("acme", "admin", "wrong-password").await.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
    api.shutdown().await;
}
on_both_engines!(throttle, login_attempts_are_throttled_per_address);

async fn quotas_and_discovered_devices(store: Store) {
    let w = world(store.clone()).await;
    let api = &w.api;
    // A device an agent discovered shows in the API and takes operator fields, which
    // the next discovery report leaves alone.
    store
        .tenant("acme")
        .ingest(&batch("agent-a", "acme", 1, "core1"), T0)
        .await
        .expect("ingest");
    let a = api.get("/api/v1/devices/core1", &w.ro).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["agent_id"], "agent-a");
    assert_eq!(a.body["metrics"]["device.cpu_pct"]["value"], 17.0);
    let itf = a.body["interfaces"].as_array().expect("interfaces");
    assert_eq!(itf.len(), 2);
    let a = api
        .patch(
            "/api/v1/devices/core1/interfaces/sfp-sfpplus1",
            &w.noc,
            json!({ "uplink": true }),
        )
        .await;
    assert_eq!((a.status, a.body["uplink"].as_bool()), (200, Some(true)));
    let a = api
        .patch("/api/v1/devices/core1", &w.noc, json!({ "tags": ["gold"] }))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    store
        .tenant("acme")
        .ingest(&batch("agent-a", "acme", 2, "core1"), T0)
        .await
        .expect("ingest");
    let a = api.get("/api/v1/devices/core1", &w.ro).await;
    assert_eq!(a.body["tags"], json!(["gold"]));
    let up: Vec<&Value> = a.body["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .filter(|i| i["uplink"] == true)
        .collect();
    assert_eq!(up.len(), 1);
    let a = api.get("/api/v1/interfaces?uplink=true", &w.ro).await;
    assert_eq!(a.body["items"].as_array().map(Vec::len), Some(1));
    let a = api.get("/api/v1/agents/agent-a", &w.ro).await;
    assert_eq!(a.status, 200);
    // The device quota holds at the API.
    store
        .tenant("acme")
        .set_overrides(&TenantOverrides {
            max_devices: Some(2),
            ..TenantOverrides::default()
        })
        .await
        .expect("settings");
    let a = api
        .post(
            "/api/v1/devices",
            &w.noc,
            json!({ "id": "d2", "name": "D2", "site_id": "pop1", "role": "edge" }),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let a = api
        .post(
            "/api/v1/devices",
            &w.noc,
            json!({ "id": "d3", "name": "D3", "site_id": "pop1", "role": "edge" }),
        )
        .await;
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (403, Some("quota_exceeded"))
    );
    let a = api.get("/api/v1/devices", &w.ro).await;
    assert_eq!(a.body["items"].as_array().map(Vec::len), Some(2));
    w.api.shutdown().await;
}
on_both_engines!(discovered, quotas_and_discovered_devices);

async fn sessions_expire(store: Store) {
    let auth = AuthConfig {
        session_ttl_s: 1,
        ..test_auth()
    };
    let api = Api::start(store, None, auth).await;
    let token = api.token("acme", "admin", ADMIN_PW).await;
    let me = api.get("/api/v1/auth/me", &token).await;
    assert_eq!(me.status, 200);
    let expires = me.body["expires_ms"].as_i64().expect("expiry");
    assert!(expires <= ispvm_proto::time::now_ms() + 1_000);
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(api.get("/api/v1/auth/me", &token).await.status, 401);
    api.shutdown().await;
}
on_both_engines!(expiry, sessions_expire);

/// One agent's cluster report as the agent would build it: its view of `members`
/// (agent, live?), the routers it polls, and one verdict of its own on `dns`.
fn cluster_report(
    agent: &str,
    at_ms: i64,
    members: &[(&str, bool)],
    owned: &[&str],
    dns_loss: f32,
) -> ispvm_proto::ClusterReport {
    use ispvm_proto::{ClusterReport, MemberState, MemberView, ReachCell};
    ClusterReport {
        at_ms,
        generation: 1,
        site: "pop1".into(),
        gossip_interval_ms: 250,
        phi_threshold: 8.0,
        replication: 1,
        members: members
            .iter()
            .map(|(m, live)| MemberView {
                agent: (*m).into(),
                generation: 1,
                site: "pop1".into(),
                version: "0.1.0".into(),
                capabilities: vec!["routeros".into(), "icmp".into()],
                state: if *live {
                    MemberState::Live
                } else {
                    MemberState::Dead
                },
                heartbeat: 10,
                phi: Some(0.3),
                live_for_ms: 5_000,
                cert_expiry_s: Some(at_ms / 1000 + 86_400),
                routers: 1,
                probes: 1,
                buffer_bytes: 0,
                health: "ok".into(),
            })
            .collect(),
        owned: owned.iter().map(|o| (*o).to_owned()).collect(),
        reach: vec![ReachCell {
            vantage: agent.into(),
            target: "dns".into(),
            loss_pct: dns_loss,
            rtt_us: (dns_loss < 100.0).then_some(800),
            at_s: at_ms / 1000,
        }],
    }
}

/// Reports ingested with batches become the tenant's merged cluster view: members with
/// a dead one, ownership with its gaps, the reachability matrix; an older report
/// replayed from a buffer changes nothing, and other tenants see none of it.
async fn cluster_state_is_merged_from_agent_reports(store: Store) {
    let w = world(store.clone()).await;
    let api = &w.api;
    let acme = store.tenant("acme");
    let now = ispvm_proto::time::now_ms();
    // a1 and a2 are live and see a3 dead; a3's last report is what it said before it
    // died (it still owned r3).
    let mut seq = 1;
    for (agent, device, report) in [
        (
            "a3",
            "r3",
            cluster_report(
                "a3",
                now - 60_000,
                &[("a1", true), ("a2", true), ("a3", true)],
                &["r3"],
                0.0,
            ),
        ),
        (
            "a1",
            "r1",
            cluster_report(
                "a1",
                now,
                &[("a1", true), ("a2", true), ("a3", false)],
                &["r1", "r3"],
                0.0,
            ),
        ),
        (
            "a2",
            "r2",
            cluster_report(
                "a2",
                now,
                &[("a1", true), ("a2", true), ("a3", false)],
                &["r2"],
                100.0,
            ),
        ),
    ] {
        let mut b = batch(agent, "acme", seq, device);
        b.cluster = Some(report);
        seq += 1;
        let received = if agent == "a3" { now - 60_000 } else { now };
        let out = acme.ingest(&b, received).await.expect("ingest");
        assert!(out.cluster_report_kept, "{agent}");
    }
    // A device of a clustered agent that nobody polls.
    let b = batch("a1", "acme", seq, "r4");
    acme.ingest(&b, now).await.expect("ingest");
    // An older report of a1 replayed from its disk buffer is not kept.
    let mut old = batch("a1", "acme", seq + 1, "r1");
    old.cluster = Some(cluster_report(
        "a1",
        now - 10_000,
        &[("a1", true)],
        &[],
        0.0,
    ));
    assert!(
        !acme
            .ingest(&old, now)
            .await
            .expect("ingest")
            .cluster_report_kept
    );

    let members = api.get("/api/v1/cluster/members", &w.ro).await;
    assert_eq!(members.status, 200, "{:?}", members.body);
    let items = members.body["items"].as_array().expect("items");
    let state = |a: &str| {
        items
            .iter()
            .find(|m| m["agent"] == a)
            .map(|m| m["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(state("a1").as_deref(), Some("live"));
    assert_eq!(state("a3").as_deref(), Some("dead"));
    let a3 = items.iter().find(|m| m["agent"] == "a3").expect("a3");
    assert_eq!(a3["report"]["fresh"], false);
    assert_eq!(a3["seen_dead_by"], 2);

    let own = api.get("/api/v1/cluster/ownership", &w.ro).await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    assert_eq!(own.body["owners"]["r3"], json!(["a1"]));
    assert_eq!(own.body["unowned"], json!(["r4"]));
    assert_eq!(own.body["stale_reporters"], json!(["a3"]));

    let reach = api.get("/api/v1/cluster/reachability", &w.ro).await;
    assert_eq!(reach.status, 200, "{:?}", reach.body);
    assert_eq!(reach.body["target_views"]["dns"], "partial");
    assert_eq!(reach.body["cells"].as_array().map(Vec::len), Some(3));

    let conv = api.get("/api/v1/cluster/convergence", &w.ro).await;
    assert_eq!(conv.status, 200, "{:?}", conv.body);
    assert_eq!(conv.body["views_agree"], true);
    assert_eq!(conv.body["reporters_fresh"], 2);
    assert_eq!(conv.body["members_dead"], 1);
    assert_eq!(conv.body["expected_detection_ms"], 2000.0);
    assert_eq!(conv.body["ownership_settled"], false, "r4 is unowned");

    let summary = api.get("/api/v1/cluster", &w.ro).await;
    assert_eq!(summary.body["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(api.get("/api/v1/cluster?x=1", &w.ro).await.status, 400);

    // Another tenant sees an empty cluster.
    let other = api.get("/api/v1/cluster/members", &w.globex).await;
    assert_eq!(other.body["items"], json!([]));

    // The matrix the correlator reads, rebuilt from the store by a fresh view.
    let metrics = ServerMetrics::new();
    let views = ispvm_server::cluster_view::ClusterViews::new(store.clone(), metrics.clone());
    let matrix = views.reachability("acme").await.expect("matrix");
    assert_eq!(matrix.len(), 3);
    assert!(matrix.get("a2", "dns").is_some_and(|v| !v.reachable()));
    assert_eq!(metrics.events().count::<StoredRowUnreadable>(), 0);
    // A stored report changed behind the server's back costs that report, counted; the
    // view still loads from the others.
    let corrupt =
        "UPDATE cluster_reports SET report = '{\"not\": \"a report\"}' WHERE agent_id = 'a2'";
    ispvm_testkit::execute_raw(&store, corrupt).await;
    let fresh = ispvm_server::cluster_view::ClusterViews::new(store.clone(), metrics.clone());
    fresh
        .reachability("acme")
        .await
        .expect("the view loads without it");
    assert_eq!(metrics.events().count::<StoredRowUnreadable>(), 1);
    w.api.shutdown().await;
}
on_both_engines!(cluster, cluster_state_is_merged_from_agent_reports);

/// A tenant admin who is not a platform admin cannot take over the platform admin (reset
/// its password, demote it) nor delete it; a platform admin can.
async fn only_a_platform_admin_manages_a_platform_admin(store: Store) {
    let w = world(store).await;
    let api = &w.api;
    let a = api
        .post(
            "/api/v1/users",
            &w.admin,
            json!({ "username": "ada", "password": "ada-password-12", "role": "admin" }),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let ada = api.token("acme", "ada", "ada-password-12").await;
    let a = api
        .patch(
            "/api/v1/users/admin",
            &ada,
            json!({ "password": "taken-over-pw-1" }),
        )
        .await;
    assert_eq!(a.status, 403, "{:?}", a.body);
    let a = api
        .patch("/api/v1/users/admin", &ada, json!({ "role": "noc" }))
        .await;
    assert_eq!(a.status, 403, "{:?}", a.body);
    assert_eq!(api.delete("/api/v1/users/admin", &ada).await.status, 403);
    api.token("acme", "admin", ADMIN_PW).await;
    // Ada still manages the tenant's other users, and the platform admin manages Ada.
    let a = api
        .patch(
            "/api/v1/users/nina",
            &ada,
            json!({ "display_name": "Nina" }),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = api
        .patch("/api/v1/users/ada", &w.admin, json!({ "role": "noc" }))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    w.api.shutdown().await;
}
on_both_engines!(
    platform_admin,
    only_a_platform_admin_manages_a_platform_admin
);

/// Attempts on a locked account do not lock it again: nobody can keep an admin locked out
/// with a few requests per lock period.
async fn a_locked_account_is_not_locked_again_by_attempts_while_locked(store: Store) {
    let auth = AuthConfig {
        lockout_after_failures: 3,
        lockout_s: 1,
        ..test_auth()
    };
    let w = world_with(store, Some(MasterKey::generate().0), auth).await;
    let api = &w.api;
    for _ in 0..3 {
        assert_eq!(
            api.login("acme", "rob", "not-his-password").await.status,
            401
        );
    }
    // Locked: the attacker keeps trying.
    for _ in 0..5 {
        assert_eq!(
            api.login("acme", "rob", "not-his-password").await.status,
            401
        );
    }
    assert_eq!(api.login("acme", "rob", RO_PW).await.status, 401);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    api.token("acme", "rob", RO_PW).await;
    w.api.shutdown().await;
}
on_both_engines!(
    no_relock,
    a_locked_account_is_not_locked_again_by_attempts_while_locked
);

/// A connection that never finishes its headers is closed after the header deadline
/// (slowloris), instead of holding a connection slot for ever.
#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (store, _dir) = common::sqlite_store().await;
    let http = ispvm_server::config::HttpConfig {
        header_read_timeout_ms: 300,
        ..Default::default()
    };
    let state = AppState::new(
        store,
        ServerMetrics::new(),
        StatusPolicy {
            stale_after_ms: 30_000,
        },
        &test_auth(),
        None,
        TenantSettings::default(),
    )
    .expect("state")
    .with_http(&http);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(ispvm_server::http::serve(listener, state, stopped));
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server kept the half-sent request open");
    let _ = stop.send(true);
    let _ = task.await;
}

/// Liveness does not depend on the store (an orchestrator must not restart a server
/// because its database is down); readiness does; `/metrics` says it is OpenMetrics.
#[tokio::test]
async fn liveness_holds_when_the_store_is_gone_and_readiness_does_not() {
    let (store, _dir) = common::sqlite_store().await;
    let state = AppState::new(
        store.clone(),
        ServerMetrics::new(),
        StatusPolicy {
            stale_after_ms: 30_000,
        },
        &test_auth(),
        None,
        TenantSettings::default(),
    )
    .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(ispvm_server::http::serve(listener, state, stopped));
    let get = |path: &'static str| async move {
        let r = reqwest::get(format!("http://{addr}{path}"))
            .await
            .expect("answer");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (r.status().as_u16(), ct, r.text().await.expect("body"))
    };
    assert_eq!(get("/livez").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (status, ct, body) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(
        body.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );

    store.close().await;
    assert_eq!(get("/livez").await.0, 200, "alive without a store");
    let (status, _, body) = get("/readyz").await;
    assert_eq!(status, 503);
    assert!(!body.contains("closed"), "no store error text: {body}");
    let _ = stop.send(true);
    let _ = task.await;
}
