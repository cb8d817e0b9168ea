//! One poll's conversation with an SNMP agent: requests with a timeout and retries, GETs
//! that skip objects the agent refuses, and bounded GETBULK walks.
//!
//! A session lives for one poll only. `snmp2`'s client keeps two 64 KiB buffers, far more
//! than a device's collection state should cost between polls; what is worth keeping (the
//! SNMPv3 engine and its localized keys) is kept by the collector in an [`EngineCache`].
//! After a timeout the socket is replaced before resending, so a late answer to the
//! abandoned request can never be taken for the answer to the next one.

use super::config::{SnmpConfig, SnmpCredentials, SnmpLimits};
use super::oids::dotted;
use snmp2::{AsyncSession, v3};
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// `tooBig`: the answer would not fit in one message.
const ERR_TOO_BIG: u32 = 1;

/// Why an SNMP poll failed.
#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    #[error("invalid SNMP configuration: {0}")]
    Config(String),
    #[error("cannot resolve the SNMP agent address {address:?}: {detail}")]
    Resolve { address: String, detail: String },
    #[error("cannot open a UDP socket towards {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The agent never answered. SNMP agents drop what they will not serve without a word,
    /// so this is also what a wrong community (v2c) or privacy key (v3) looks like.
    #[error(
        "no answer from the SNMP agent at {addr} ({attempts} attempt(s), {timeout_ms} ms each): {hint}"
    )]
    Timeout {
        addr: SocketAddr,
        attempts: u32,
        timeout_ms: u64,
        hint: &'static str,
    },
    /// The agent answered an SNMPv3 request with a refusal (a USM report).
    #[error("SNMPv3 authentication of user {user:?} with the agent at {addr} failed: {detail}")]
    Auth {
        addr: SocketAddr,
        user: String,
        detail: String,
    },
    /// The agent answered with an error status.
    #[error("the SNMP agent at {addr} answered error-status {status} ({name}) for {oid}")]
    Agent {
        addr: SocketAddr,
        status: u32,
        name: &'static str,
        oid: String,
    },
    /// Sending or receiving failed at the socket (e.g. an ICMP port unreachable came back).
    #[error("cannot exchange SNMP messages with {addr}: {detail}")]
    Transport { addr: SocketAddr, detail: String },
    #[error("malformed or unexpected SNMP answer from {addr}: {detail}")]
    Protocol { addr: SocketAddr, detail: String },
    #[error("the SNMP poll of {address} did not finish within {timeout_ms} ms")]
    Deadline { address: String, timeout_ms: u64 },
}

impl SnmpError {
    /// True when the agent stayed silent (down, filtered, wrong community or privacy key).
    pub fn is_timeout(&self) -> bool {
        matches!(self, SnmpError::Timeout { .. } | SnmpError::Deadline { .. })
    }

    /// True when an SNMPv3 agent refused the credentials.
    pub fn is_auth(&self) -> bool {
        matches!(self, SnmpError::Auth { .. })
    }
}

/// An SNMP value, owned (the client's values borrow its receive buffer).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    Oid(Vec<u64>),
    Counter32(u32),
    Gauge32(u32),
    Ticks(u32),
    Counter64(u64),
    IpAddress([u8; 4]),
    /// noSuchObject, noSuchInstance or endOfMibView: nothing there.
    Absent,
    /// A type the collector has no use for.
    Other,
}

impl Value {
    /// A non-negative number of any numeric type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) => u64::try_from(i).ok(),
            Value::Counter32(v) | Value::Gauge32(v) | Value::Ticks(v) => Some(u64::from(v)),
            Value::Counter64(v) => Some(v),
            _ => None,
        }
    }

    /// A signed number of any numeric type.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Counter32(v) | Value::Gauge32(v) | Value::Ticks(v) => Some(i64::from(v)),
            Value::Counter64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Text of an OCTET STRING: lossy UTF-8, without NULs and control characters, trimmed
    /// and at most `max` characters long.
    pub fn as_text(&self, max: usize) -> Option<String> {
        let Value::Bytes(bytes) = self else {
            return None;
        };
        let text: String = String::from_utf8_lossy(bytes)
            .chars()
            .filter(|c| !c.is_control())
            .take(max)
            .collect();
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Value::Absent)
    }

    fn from_wire(value: &snmp2::Value<'_>) -> Value {
        use snmp2::Value as W;
        match value {
            W::Integer(i) => Value::Int(*i),
            W::OctetString(b) => Value::Bytes(b.to_vec()),
            W::ObjectIdentifier(oid) => oid
                .iter()
                .map(|arcs| Value::Oid(arcs.collect()))
                .unwrap_or(Value::Other),
            W::Counter32(v) => Value::Counter32(*v),
            W::Unsigned32(v) => Value::Gauge32(*v),
            W::Timeticks(v) => Value::Ticks(*v),
            W::Counter64(v) => Value::Counter64(*v),
            W::IpAddress(a) => Value::IpAddress(*a),
            W::EndOfMibView | W::NoSuchObject | W::NoSuchInstance => Value::Absent,
            _ => Value::Other,
        }
    }
}

/// One variable binding of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Varbind {
    pub oid: Vec<u64>,
    pub value: Value,
}

/// What a walk of some columns found: per column, its rows as (index, value).
pub(crate) type Columns = Vec<Vec<(Vec<u64>, Value)>>;

/// The SNMPv3 engine of a device and the keys localized to it, kept between polls so a
/// poll needs neither the discovery exchange nor the (deliberately slow) key derivation.
#[derive(Clone)]
pub(crate) struct EngineCache {
    security: v3::Security,
    pub engine_id: Vec<u8>,
    boots: i64,
    time: i64,
    at: Instant,
}

impl EngineCache {
    /// Localizes the configured keys to `engine_id`.
    pub(crate) fn new(
        fresh: v3::Security,
        engine_id: Vec<u8>,
        boots: i64,
        time: i64,
    ) -> Result<Self, snmp2::Error> {
        let security = fresh.with_engine_id(&engine_id)?;
        Ok(EngineCache {
            security,
            engine_id,
            boots,
            time,
            at: Instant::now(),
        })
    }

    /// Records the engine's boots and time as just read.
    pub(crate) fn refresh(&mut self, boots: i64, time: i64) {
        self.boots = boots;
        self.time = time;
        self.at = Instant::now();
    }

    /// Security parameters whose engine time is advanced to now.
    fn security_now(&self) -> v3::Security {
        let elapsed = i64::try_from(self.at.elapsed().as_secs()).unwrap_or(i64::MAX);
        self.security
            .clone()
            .with_engine_boots_and_time(self.boots, self.time.saturating_add(elapsed))
    }
}

enum Mode {
    V2c { community: Vec<u8> },
    V3(Box<V3Mode>),
}

struct V3Mode {
    user: String,
    /// The configured credentials, not yet bound to an engine.
    fresh: v3::Security,
    cache: Option<EngineCache>,
}

struct Open {
    client: Box<AsyncSession>,
    /// SNMPv3 engine discovery done (always true for v2c and a cached engine).
    ready: bool,
}

enum Request<'a> {
    Get(&'a [Vec<u64>]),
    Bulk { oids: &'a [Vec<u64>], reps: u32 },
}

impl Request<'_> {
    fn oids(&self) -> &[Vec<u64>] {
        match self {
            Request::Get(oids) | Request::Bulk { oids, .. } => oids,
        }
    }
}

/// A device's answer as the collector reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub error_status: u32,
    pub error_index: u32,
    pub varbinds: Vec<Varbind>,
}

impl Reply {
    fn from_pdu(pdu: snmp2::Pdu<'_>) -> Reply {
        Reply {
            error_status: pdu.error_status,
            error_index: pdu.error_index,
            varbinds: pdu
                .varbinds
                .map(|(oid, value)| Varbind {
                    oid: oid.iter().map(|arcs| arcs.collect()).unwrap_or_default(),
                    value: Value::from_wire(&value),
                })
                .collect(),
        }
    }

    /// Decodes a response datagram (SNMPv1/v2c, or v3 under `security`) the way an
    /// answer from a device is read. The bytes come from whatever answers at the
    /// device's address; the fuzz target `snmp_response` feeds this arbitrary input.
    pub fn from_bytes(
        bytes: &[u8],
        security: Option<&mut v3::Security>,
    ) -> Result<Reply, snmp2::Error> {
        let pdu = match security {
            Some(s) => snmp2::Pdu::from_bytes_with_security(bytes, Some(s))?,
            None => snmp2::Pdu::from_bytes(bytes)?,
        };
        Ok(Reply::from_pdu(pdu))
    }
}

/// Outcome of one attempt at a request.
enum Attempt {
    Reply(Reply),
    /// No answer in time.
    Timeout,
    /// An answer to an earlier request arrived.
    Stale,
    /// The SNMPv3 engine state was updated from a report: ask again.
    AuthUpdated,
    Failed(SnmpError),
}

/// Runs a future and turns a panic inside it into a value, so that no answer from the
/// network can take the agent down even through the SNMP library.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Some(v)),
            Err(_) => Poll::Ready(None),
        }
    }
}

/// Name of an SNMP error-status, for messages.
fn status_name(status: u32) -> &'static str {
    match status {
        1 => "tooBig",
        2 => "noSuchName",
        3 => "badValue",
        4 => "readOnly",
        5 => "genErr",
        6 => "noAccess",
        13 => "resourceUnavailable",
        16 => "authorizationError",
        _ => "other",
    }
}

/// A conversation with one agent for the length of one poll.
pub(crate) struct Session {
    addr: SocketAddr,
    mode: Mode,
    limits: SnmpLimits,
    open: Option<Open>,
    /// Requests sent, resends included.
    pub requests: u32,
    /// A walk stopped at `max_oids_per_walk`.
    pub truncated: bool,
    /// SNMPv3 engine discoveries run.
    pub discoveries: u32,
}

impl Session {
    /// A session towards `addr`; the socket opens with the first request.
    pub(crate) fn new(addr: SocketAddr, config: &SnmpConfig, cache: Option<EngineCache>) -> Self {
        let mode = match &config.credentials {
            SnmpCredentials::V2c { community } => Mode::V2c {
                community: community.expose().as_bytes().to_vec(),
            },
            SnmpCredentials::V3(v3) => Mode::V3(Box::new(V3Mode {
                user: v3.user.clone(),
                fresh: v3.security(),
                cache,
            })),
        };
        Session {
            addr,
            mode,
            limits: config.limits.clone(),
            open: None,
            requests: 0,
            truncated: false,
            discoveries: 0,
        }
    }

    /// Whether this session runs on engine state kept from an earlier poll.
    pub(crate) fn uses_cached_engine(&self) -> bool {
        matches!(&self.mode, Mode::V3(v3) if v3.cache.is_some())
    }

    /// GETs scalars. Objects the agent does not have come back as [`Value::Absent`]; an
    /// object the agent refuses with an error status is dropped and the rest asked again.
    pub(crate) async fn get(&mut self, oids: &[&[u64]]) -> Result<Vec<Varbind>, SnmpError> {
        let mut asked: Vec<Vec<u64>> = oids.iter().map(|o| o.to_vec()).collect();
        while !asked.is_empty() {
            let reply = self.request(&Request::Get(&asked)).await?;
            if reply.error_status == 0 {
                return Ok(reply.varbinds);
            }
            let index = usize::try_from(reply.error_index).unwrap_or(0);
            if reply.error_status == ERR_TOO_BIG || index == 0 || index > asked.len() {
                return Err(self.agent_error(reply.error_status, asked.first()));
            }
            let dropped = asked.remove(index - 1);
            tracing::debug!(
                agent = %self.addr,
                oid = %dotted(&dropped),
                status = status_name(reply.error_status),
                "SNMP agent refused an object; skipping it"
            );
        }
        Ok(Vec::new())
    }

    /// Walks table columns side by side with GETBULK. Each column ends where the agent
    /// leaves it, reports the end of its MIB view, or stops advancing; the walk ends when
    /// every column has, or after `max_oids_per_walk` bindings (then `truncated` is set).
    pub(crate) async fn walk(&mut self, columns: &[&[u64]]) -> Result<Columns, SnmpError> {
        let mut found: Columns = vec![Vec::new(); columns.len()];
        let mut cursors: Vec<Vec<u64>> = columns.iter().map(|c| c.to_vec()).collect();
        let mut active: Vec<usize> = (0..columns.len()).collect();
        let budget = self.limits.max_oids_per_walk;
        let mut reps = self.limits.max_repetitions.max(1);
        let mut total = 0usize;
        while !active.is_empty() {
            if total >= budget {
                self.truncated = true;
                tracing::warn!(
                    agent = %self.addr,
                    limit = budget,
                    first_column = %columns.first().map(|c| dotted(c)).unwrap_or_default(),
                    "SNMP walk reached max_oids_per_walk; the remaining rows are skipped"
                );
                break;
            }
            // Do not ask for (much) more than the budget still allows.
            let left = budget - total;
            let per_column = u32::try_from(left.div_ceil(active.len())).unwrap_or(u32::MAX);
            let ask = reps.min(per_column).max(1);
            let oids: Vec<Vec<u64>> = active.iter().map(|&c| cursors[c].clone()).collect();
            let reply = self
                .request(&Request::Bulk {
                    oids: &oids,
                    reps: ask,
                })
                .await?;
            if reply.error_status != 0 {
                let index = usize::try_from(reply.error_index).unwrap_or(0);
                if reply.error_status == ERR_TOO_BIG && reps > 1 {
                    reps /= 2;
                    continue;
                }
                if (1..=active.len()).contains(&index) {
                    let column = active.remove(index - 1);
                    tracing::debug!(
                        agent = %self.addr,
                        column = %dotted(columns[column]),
                        status = status_name(reply.error_status),
                        "SNMP agent refused a column; skipping it"
                    );
                    continue;
                }
                return Err(self.agent_error(reply.error_status, oids.first()));
            }
            // GETBULK answers row-major: repetition r of active column p is binding
            // r * active.len() + p. An agent may cut the list short; the prefix still
            // follows that order.
            let width = active.len();
            let mut open = vec![true; width];
            let mut advanced = false;
            for (i, vb) in reply.varbinds.into_iter().enumerate() {
                let p = i % width;
                if !open[p] {
                    continue;
                }
                let column = active[p];
                let prefix = columns[column];
                let inside = vb.oid.len() > prefix.len() && vb.oid.starts_with(prefix);
                if !inside || vb.value.is_absent() || vb.oid <= cursors[column] {
                    open[p] = false;
                    continue;
                }
                cursors[column].clone_from(&vb.oid);
                found[column].push((vb.oid[prefix.len()..].to_vec(), vb.value));
                total += 1;
                advanced = true;
            }
            active = active
                .into_iter()
                .zip(open)
                .filter_map(|(c, open)| open.then_some(c))
                .collect();
            if !advanced {
                break;
            }
        }
        Ok(found)
    }

    fn agent_error(&self, status: u32, oid: Option<&Vec<u64>>) -> SnmpError {
        SnmpError::Agent {
            addr: self.addr,
            status,
            name: status_name(status),
            oid: oid.map(|o| dotted(o)).unwrap_or_default(),
        }
    }

    fn timeout_error(&self, attempts: u32) -> SnmpError {
        let hint = match self.mode {
            Mode::V2c { .. } => {
                "wrong community, agent down, or the traffic is filtered \
                 (an SNMPv2c agent ignores requests with a wrong community)"
            }
            Mode::V3(_) => {
                "agent down, traffic filtered, or wrong privacy key \
                 (an SNMPv3 agent ignores what it cannot decrypt)"
            }
        };
        SnmpError::Timeout {
            addr: self.addr,
            attempts,
            timeout_ms: self.limits.timeout_ms,
            hint,
        }
    }

    /// Sends a request until it is answered, resending on a fresh socket after a timeout
    /// or a stale answer, at most `retries` times.
    async fn request(&mut self, request: &Request<'_>) -> Result<Reply, SnmpError> {
        let mut attempts = 0u32;
        let mut resyncs = 0u32;
        loop {
            attempts += 1;
            self.requests = self.requests.saturating_add(1);
            match self.attempt(request).await {
                Attempt::Reply(reply) => return Ok(reply),
                Attempt::Timeout | Attempt::Stale if attempts <= self.limits.retries => {
                    self.open = None;
                }
                Attempt::Timeout => {
                    self.open = None;
                    return Err(self.timeout_error(attempts));
                }
                Attempt::Stale => {
                    self.open = None;
                    return Err(SnmpError::Protocol {
                        addr: self.addr,
                        detail: "answers kept arriving for earlier requests".into(),
                    });
                }
                Attempt::AuthUpdated => {
                    // Not a failure: the engine told us its boots/time. Bounded all the same.
                    attempts -= 1;
                    resyncs += 1;
                    if resyncs > 3 {
                        self.open = None;
                        return Err(self.auth_error(
                            "the agent keeps reporting a different engine boots/time".into(),
                        ));
                    }
                }
                Attempt::Failed(e) => {
                    self.open = None;
                    return Err(e);
                }
            }
        }
    }

    async fn attempt(&mut self, request: &Request<'_>) -> Attempt {
        let timeout = self.limits.timeout();
        let exchange = CatchPanic(Box::pin(self.exchange(request)));
        let outcome = tokio::time::timeout(timeout, exchange).await;
        match outcome {
            Err(_) => Attempt::Timeout,
            Ok(Some(attempt)) => attempt,
            Ok(None) => {
                self.open = None;
                Attempt::Failed(SnmpError::Protocol {
                    addr: self.addr,
                    detail: "the SNMP library failed on the answer".into(),
                })
            }
        }
    }

    async fn connect(&self) -> Result<Open, SnmpError> {
        let request_id = rand::random::<i32>() & 0x3fff_ffff;
        let socket_error = |source| SnmpError::Socket {
            addr: self.addr,
            source,
        };
        let (client, ready) = match &self.mode {
            Mode::V2c { community } => (
                AsyncSession::new_v2c(self.addr, community, request_id)
                    .await
                    .map_err(socket_error)?,
                true,
            ),
            Mode::V3(v3) => {
                let (security, ready) = match &v3.cache {
                    Some(cache) => (cache.security_now(), true),
                    None => (v3.fresh.clone(), false),
                };
                (
                    AsyncSession::new_v3(self.addr, request_id, security)
                        .await
                        .map_err(socket_error)?,
                    ready,
                )
            }
        };
        Ok(Open {
            client: Box::new(client),
            ready,
        })
    }

    async fn exchange(&mut self, request: &Request<'_>) -> Attempt {
        if self.open.is_none() {
            match self.connect().await {
                Ok(open) => self.open = Some(open),
                Err(e) => return Attempt::Failed(e),
            }
        }
        let addr = self.addr;
        let user = match &self.mode {
            Mode::V3(v3) => v3.user.as_str(),
            Mode::V2c { .. } => "",
        };
        let Some(open) = self.open.as_mut() else {
            return Attempt::Failed(SnmpError::Protocol {
                addr,
                detail: "no session".into(),
            });
        };
        if !open.ready {
            self.discoveries = self.discoveries.saturating_add(1);
            match open.client.init().await {
                Ok(()) => open.ready = true,
                Err(e) => return classify(addr, user, e),
            }
        }
        let mut wire = Vec::with_capacity(request.oids().len());
        for oid in request.oids() {
            match snmp2::Oid::from(oid) {
                Ok(o) => wire.push(o),
                Err(_) => {
                    return Attempt::Failed(SnmpError::Protocol {
                        addr,
                        detail: format!("cannot encode OID {}", dotted(oid)),
                    });
                }
            }
        }
        let refs: Vec<&snmp2::Oid<'_>> = wire.iter().collect();
        let answer = match request {
            Request::Get(_) => open.client.get_many(&refs).await,
            Request::Bulk { reps, .. } => open.client.getbulk(&refs, 0, *reps).await,
        };
        match answer {
            Ok(pdu) => Attempt::Reply(Reply::from_pdu(pdu)),
            Err(e) => classify(addr, user, e),
        }
    }

    fn auth_error(&self, detail: String) -> SnmpError {
        let user = match &self.mode {
            Mode::V3(v3) => v3.user.clone(),
            Mode::V2c { .. } => String::new(),
        };
        SnmpError::Auth {
            addr: self.addr,
            user,
            detail,
        }
    }
}

/// Sorts an error of the SNMP library into what the request loop does next.
fn classify(addr: SocketAddr, user: &str, error: snmp2::Error) -> Attempt {
    use snmp2::Error as E;
    use snmp2::v3::AuthErrorKind as K;
    let auth = |detail: String| {
        Attempt::Failed(SnmpError::Auth {
            addr,
            user: user.to_owned(),
            detail,
        })
    };
    match error {
        E::RequestIdMismatch => Attempt::Stale,
        E::AuthUpdated => Attempt::AuthUpdated,
        E::AuthFailure(K::NotAuthenticated) => auth(
            "the agent refused the request with an unauthenticated report \
             (unknown user name, wrong authentication key or protocol, \
             or a security level the user may not use)"
                .into(),
        ),
        E::AuthFailure(K::SignatureMismatch) => auth(
            "the answer's signature does not match: wrong authentication key or protocol".into(),
        ),
        E::AuthFailure(K::EngineIdMismatch) => {
            auth("the agent's SNMP engine changed (device replaced or reset)".into())
        }
        E::AuthFailure(kind) => auth(kind.to_string()),
        E::Crypto(detail) => auth(format!("cryptographic failure: {detail}")),
        E::Send | E::Receive => Attempt::Failed(SnmpError::Transport {
            addr,
            detail: format!(
                "{error} (nothing listens on the port, or the network refused the datagram)"
            ),
        }),
        other => Attempt::Failed(SnmpError::Protocol {
            addr,
            detail: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_seed_is_a_real_response() {
        let bytes: Vec<u8> = include_str!("../../../fuzz/seeds/snmp_response/v2c-get-response.hex")
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("hex"))
            .collect();
        let reply = Reply::from_bytes(&bytes, None).expect("decodes");
        assert_eq!(reply.varbinds.len(), 1);
        assert_eq!(reply.varbinds[0].oid, [1, 3, 6, 1, 2, 1, 1, 5, 0]);
        assert_eq!(reply.varbinds[0].value.as_text(16).as_deref(), Some("r1"));
    }

    #[test]
    fn values_convert() {
        assert_eq!(Value::Int(-1).as_u64(), None);
        assert_eq!(Value::Counter64(7).as_u64(), Some(7));
        assert_eq!(Value::Counter64(u64::MAX).as_i64(), None);
        assert_eq!(
            Value::Bytes(b"  ether1\0\n".to_vec()).as_text(64),
            Some("ether1".into())
        );
        assert_eq!(Value::Bytes(b"\0\0".to_vec()).as_text(64), None);
        assert_eq!(
            Value::Bytes("x".repeat(500).into_bytes()).as_text(10),
            Some("x".repeat(10))
        );
        assert_eq!(Value::Int(3).as_text(10), None);
    }

    fn boom() -> i32 {
        panic!("a library bug")
    }

    #[tokio::test]
    async fn panics_are_contained() {
        let caught = CatchPanic(Box::pin(async { boom() })).await;
        assert_eq!(caught, None);
        assert_eq!(CatchPanic(Box::pin(async { 2 })).await, Some(2));
    }
}
