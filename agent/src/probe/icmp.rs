//! The shared ICMP pinger: one `surge_ping::Client` (one socket and one receive task) per
//! address family, used by every ICMP target of the agent.
//!
//! One socket per target would cost a file descriptor and a receive task per target and,
//! with raw sockets, make the kernel copy every ICMP packet the host receives into every
//! one of them. With one socket per family the kernel copies each packet once, and
//! surge-ping's receive task hands it to the waiting echo by (address, identifier,
//! sequence). Every target gets its own identifier from [`IcmpPinger::session`] and
//! numbers its echoes itself, so replies go to the echo that asked for them even when
//! several targets ask the same address. On a datagram ("ping") socket the kernel owns
//! the identifier; replies are then matched by (address, sequence), and sessions start
//! at random sequence numbers so two targets on one address do not step on each other.
//!
//! Echoes pass a send window ([`SEND_WINDOW`]): at most that many may be sent and not yet
//! answered within the last [`WINDOW_HOLD`]. The reason is the socket's receive buffer:
//! replies from nearby targets (loopback, the LAN) come back faster than the receive
//! task is scheduled when hundreds of targets start a round at once, and a default
//! buffer (`net.core.rmem_default`, 208 KiB) overflows after about 128 echoes on a raw
//! socket, which also receives copies of the requests to local addresses. Dropped replies
//! would be reported as loss the network never had. Far targets release their place
//! after the hold time, so the window costs them nothing.
//!
//! Sockets open on first use and an open that fails is retried on the next round, so a
//! host whose IPv6 comes up late, or a privilege granted after start, heals by itself.
//!
//! With a source address ([`IcmpPinger::with_source`], the agent's `source_address`) the
//! socket of its family is bound to it (surge-ping's `bind`): echoes leave from that
//! address, and a raw socket then receives only packets addressed to it.

use super::ProbeError;
use super::config::{IcmpSocketMode, RoundPlan};
use super::join_all;
use super::stats::{EchoOutcome, RoundStats};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use surge_ping::{
    Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, Pinger, SurgeError,
};
use tokio::sync::Semaphore;

/// `SOCK_RAW`. surge-ping takes a `socket2::Type`, which the agent reaches through
/// surge-ping's `Config` rather than by depending on socket2 itself; `SOCK_RAW` is 3 on
/// Linux (every architecture) and on the BSDs.
const SOCK_RAW: i32 = 3;

/// Tries before giving up when another echo already waits on the same
/// (address, identifier, sequence).
const COLLISION_RETRIES: u16 = 4;
/// How far a colliding echo jumps in sequence space: far from the numbers the same
/// session is about to use.
const COLLISION_STRIDE: u16 = 0x4000 + 7;

/// Echoes sent and not yet answered within the last [`WINDOW_HOLD`], per socket; half of
/// what a default receive buffer holds (see the module documentation).
pub const SEND_WINDOW: usize = 64;
/// How long an unanswered echo keeps its place in the send window: long enough for a
/// nearby target's reply, short enough that slow targets do not throttle the others
/// (at most `SEND_WINDOW / WINDOW_HOLD` = 32 000 echoes/s toward far targets).
pub const WINDOW_HOLD: Duration = Duration::from_millis(2);

/// The kind of ICMP socket that was actually opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketKind {
    Raw,
    Dgram,
}

impl SocketKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SocketKind::Raw => "raw",
            SocketKind::Dgram => "dgram",
        }
    }
}

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn icmp(self) -> ICMP {
        match self {
            Family::V4 => ICMP::V4,
            Family::V6 => ICMP::V6,
        }
    }
}

/// What an ICMP packet delivered to an echo says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    EchoReply,
    TimeExceeded,
    /// Destination unreachable or any other error about our echo.
    Error,
}

pub(crate) fn classify(packet: &IcmpPacket) -> Answer {
    match packet {
        IcmpPacket::V4(p) => match p.get_icmp_type().0 {
            0 => Answer::EchoReply,
            11 => Answer::TimeExceeded,
            _ => Answer::Error,
        },
        IcmpPacket::V6(p) => match p.get_icmpv6_type().0 {
            129 => Answer::EchoReply,
            3 => Answer::TimeExceeded,
            _ => Answer::Error,
        },
    }
}

/// The address a packet came from (the target for a reply, a router for an error).
pub(crate) fn source(packet: &IcmpPacket) -> IpAddr {
    match packet {
        IcmpPacket::V4(p) => IpAddr::V4(p.get_source()),
        IcmpPacket::V6(p) => IpAddr::V6(p.get_source()),
    }
}

/// A surge-ping configuration for one socket. `ttl` is set on the socket, which is why
/// traceroute opens one socket per hop.
pub(crate) fn socket_config(
    family: Family,
    want: SocketKind,
    ttl: Option<u32>,
    source: Option<IpAddr>,
) -> Config {
    let mut builder = Config::builder().kind(family.icmp());
    if let Some(ip) = source.filter(|ip| ip.is_ipv4() == (family == Family::V4)) {
        builder = builder.bind(std::net::SocketAddr::new(ip, 0));
    }
    let mut config = builder.build();
    if want == SocketKind::Raw {
        config.sock_type_hint = SOCK_RAW.into();
    }
    config.ttl = ttl;
    config
}

/// Opens a client. surge-ping falls back to the other socket kind when the wanted one
/// cannot be opened; the kind actually opened is read back and reported.
pub(crate) fn open_client(
    family: Family,
    want: SocketKind,
    ttl: Option<u32>,
    source: Option<IpAddr>,
) -> Result<(Client, SocketKind), ProbeError> {
    if tokio::runtime::Handle::try_current().is_err() {
        // surge-ping spawns its receive task on the current runtime and would panic.
        return Err(ProbeError::NoRuntime);
    }
    let config = socket_config(family, want, ttl, source);
    let dgram = Config::default().sock_type_hint;
    let client = Client::new(&config).map_err(|source| ProbeError::Socket {
        family: family.as_str(),
        source,
    })?;
    let kind = if client.get_socket().get_type() == dgram {
        SocketKind::Dgram
    } else {
        SocketKind::Raw
    };
    Ok((client, kind))
}

#[derive(Clone)]
struct Shared {
    client: Client,
    kind: SocketKind,
    window: Arc<Semaphore>,
}

/// The agent's ICMP sockets, shared by every ICMP target; see the module documentation.
///
/// Create one per agent (it must be used from within the Tokio runtime that runs the
/// probers: the receive tasks live there) and hand an `Arc` of it to every prober.
pub struct IcmpPinger {
    mode: IcmpSocketMode,
    /// The agent's `source_address`, bound by the socket of its family.
    source: Option<IpAddr>,
    v4: Mutex<Option<Shared>>,
    v6: Mutex<Option<Shared>>,
    next_ident: AtomicU16,
}

impl std::fmt::Debug for IcmpPinger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcmpPinger")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The echo identity of one target: its identifier and its next sequence number.
#[derive(Debug, Clone)]
pub struct EchoSession {
    ident: u16,
    next_seq: u16,
}

impl EchoSession {
    pub fn ident(&self) -> u16 {
        self.ident
    }

    fn next_seq(&mut self) -> u16 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }
}

impl IcmpPinger {
    /// A pinger that opens its sockets on first use.
    pub fn new(mode: IcmpSocketMode) -> Self {
        IcmpPinger {
            mode,
            source: None,
            v4: Mutex::new(None),
            v6: Mutex::new(None),
            // Random start: raw sockets see the echoes of every process on the host, and
            // a second agent (or a restarted one with replies still in flight) must not
            // take the same identifiers.
            next_ident: AtomicU16::new(rand::random()),
        }
    }

    /// The same pinger sending from `source` (the agent's `source_address`). Probes of
    /// other kinds take it from here too, so one value reaches every prober.
    pub fn with_source(mut self, source: Option<IpAddr>) -> Self {
        self.source = source;
        self
    }

    /// The source address the agent's probes leave from, if one is set.
    pub fn source(&self) -> Option<IpAddr> {
        self.source
    }

    pub fn mode(&self) -> IcmpSocketMode {
        self.mode
    }

    /// A new echo identity for a target.
    pub fn session(&self) -> EchoSession {
        EchoSession {
            ident: self.next_ident.fetch_add(1, Ordering::Relaxed),
            next_seq: rand::random(),
        }
    }

    /// Opens (if needed) the socket of a family and says which kind it is; the agent
    /// calls it at start to log what it got and to fail early on a missing privilege.
    pub fn open(&self, family: Family) -> Result<SocketKind, ProbeError> {
        self.shared(family).map(|s| s.kind)
    }

    fn shared(&self, family: Family) -> Result<Shared, ProbeError> {
        let slot = match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        };
        // The lock only guards an Option; a panic while holding it cannot leave it torn.
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = guard.as_ref() {
            return Ok(shared.clone());
        }
        let want = match self.mode {
            IcmpSocketMode::Auto | IcmpSocketMode::Dgram => SocketKind::Dgram,
            IcmpSocketMode::Raw => SocketKind::Raw,
        };
        let (client, kind) = open_client(family, want, None, self.source)?;
        let refused = matches!(
            (self.mode, kind),
            (IcmpSocketMode::Raw, SocketKind::Dgram) | (IcmpSocketMode::Dgram, SocketKind::Raw)
        );
        if refused {
            return Err(ProbeError::SocketKind {
                family: family.as_str(),
                wanted: want,
            });
        }
        tracing::info!(
            family = family.as_str(),
            kind = kind.as_str(),
            "ICMP socket opened"
        );
        let shared = Shared {
            client,
            kind,
            window: Arc::new(Semaphore::new(SEND_WINDOW)),
        };
        *guard = Some(shared.clone());
        Ok(shared)
    }

    /// One echo to `target`, waiting up to `timeout` for the answer.
    pub async fn echo(
        &self,
        target: IpAddr,
        session: &mut EchoSession,
        timeout: Duration,
        payload: &[u8],
    ) -> Result<EchoOutcome, ProbeError> {
        let shared = self.shared(Family::of(&target))?;
        let seq = session.next_seq();
        Ok(echo_on(
            &shared.client,
            Some(&shared.window),
            target,
            session.ident,
            seq,
            timeout,
            payload,
        )
        .await)
    }

    /// One round: `plan.count` echoes, one every `plan.spacing`, all in flight together,
    /// each waiting up to `plan.timeout`.
    pub async fn round(
        &self,
        target: IpAddr,
        plan: &RoundPlan,
        session: &mut EchoSession,
    ) -> Result<RoundStats, ProbeError> {
        let shared = self.shared(Family::of(&target))?;
        let payload = payload(plan.payload_size);
        let start = tokio::time::Instant::now();
        let ident = session.ident;
        let echoes: Vec<_> = (0..plan.count)
            .map(|i| {
                let seq = session.next_seq();
                let client = &shared.client;
                let window = &shared.window;
                let payload = payload.as_slice();
                let at = start + plan.spacing.saturating_mul(u32::from(i));
                async move {
                    tokio::time::sleep_until(at).await;
                    echo_on(
                        client,
                        Some(window),
                        target,
                        ident,
                        seq,
                        plan.timeout,
                        payload,
                    )
                    .await
                }
            })
            .collect();
        let outcomes = join_all(echoes).await;
        Ok(RoundStats::from_outcomes(&outcomes))
    }
}

/// An echo payload: a recognisable pattern, so a capture shows whose packets these are.
pub fn payload(size: usize) -> Vec<u8> {
    b"ispvm-probe ".iter().copied().cycle().take(size).collect()
}

/// One echo through a client. Every answer from the network becomes an outcome; nothing
/// a remote host sends can make this fail or panic.
pub(crate) async fn echo_on(
    client: &Client,
    window: Option<&Semaphore>,
    target: IpAddr,
    ident: u16,
    seq: u16,
    timeout: Duration,
    payload: &[u8],
) -> EchoOutcome {
    let mut pinger = client.pinger(target, PingIdentifier(ident)).await;
    pinger.timeout(timeout);
    let mut seq = seq;
    for _ in 0..COLLISION_RETRIES {
        match windowed_ping(window, &mut pinger, seq, payload).await {
            Ok((packet, rtt)) => {
                return match classify(&packet) {
                    Answer::EchoReply => EchoOutcome::Reply {
                        rtt,
                        from: source(&packet),
                    },
                    Answer::TimeExceeded | Answer::Error => EchoOutcome::Unreachable,
                };
            }
            Err(SurgeError::Timeout { .. }) => return EchoOutcome::Timeout,
            Err(SurgeError::IOError(e)) => return EchoOutcome::SendFailed(e.kind()),
            Err(SurgeError::IdenticalRequests { .. }) => {
                seq = seq.wrapping_add(COLLISION_STRIDE);
            }
            Err(e) => {
                tracing::debug!(%target, error = %e, "echo failed locally");
                return EchoOutcome::SendFailed(std::io::ErrorKind::Other);
            }
        }
    }
    EchoOutcome::SendFailed(std::io::ErrorKind::AddrInUse)
}

/// One ping holding a place in the send window until it is answered or [`WINDOW_HOLD`]
/// has passed.
async fn windowed_ping(
    window: Option<&Semaphore>,
    pinger: &mut Pinger,
    seq: u16,
    payload: &[u8],
) -> Result<(IcmpPacket, Duration), SurgeError> {
    // The semaphore is never closed; were it, the echo would simply go unpaced.
    let place = match window {
        Some(w) => w.acquire().await.ok(),
        None => None,
    };
    let ping = pinger.ping(PingSequence(seq), payload);
    tokio::pin!(ping);
    tokio::select! {
        biased;
        answer = &mut ping => return answer,
        () = tokio::time::sleep(WINDOW_HOLD) => {}
    }
    drop(place);
    ping.await
}
