//! chitchat's `Transport` over QUIC with mutual TLS.
//!
//! One quinn endpoint per agent, bound to its gossip address, both accepts and connects,
//! so the remote address of every incoming connection is the sender's gossip address and
//! chitchat's replies reach the right place. Every gossip message travels on its own
//! unidirectional stream (a message can exceed a datagram). Each peer has one reused
//! outgoing connection driven by its own task behind a bounded queue: `send` never waits
//! on a handshake or a write, so a dead or slow peer delays nobody else; when its queue is
//! full, messages to it are dropped and counted, as UDP gossip would lose them.
//!
//! The CA's revocation list is re-read while gossip runs ([`ispvm_transport::crl_watch`]): when it
//! changes, both TLS configurations are rebuilt and every open connection is closed, so
//! peers reconnect under the new list and a revoked one is refused.

use super::screen::{self, AddressBook};
use async_trait::async_trait;
use chitchat::transport::{Socket, Transport};
use chitchat::{ChitchatMessage, Deserializable, Serializable};
use ispvm_transport::identity::PeerIdentity;
use ispvm_transport::pki::GOSSIP_DNS_NAME;
use ispvm_transport::refusal::{Refusal, RefusalCounters};
use ispvm_transport::tls::{TlsError, TlsMaterial};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// ALPN of agent ↔ agent gossip.
pub const ALPN_GOSSIP: &[u8] = b"ispvm-gossip/1";
/// Largest gossip message read from a peer. chitchat keeps its messages under one UDP
/// datagram (65,507 bytes); anything much larger is not chitchat and is refused.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Messages waiting for one peer before newer ones are dropped.
const PEER_QUEUE: usize = 64;
/// Received messages waiting for the gossip loop before newer ones are dropped.
const INBOX: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed connection attempt, messages to that peer are dropped (not queued
/// behind another handshake) for this long.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(500);
/// A peer task with nothing to send for this long ends; the next message starts another.
const PEER_IDLE: Duration = Duration::from_secs(60);
/// Keep-alive below the idle timeout keeps a quiet peer's connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(2);
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// An address that failed to prove a name is not dialled again for this long.
const PROOF_BACKOFF: Duration = Duration::from_secs(5);
/// Proof dials in flight at once; addresses beyond wait for a later mention.
const MAX_PROOFS: usize = 16;
/// QUIC application close codes.
const CLOSE_WRONG_IDENTITY: u32 = 0x10;
const CLOSE_NEW_CRL: u32 = 0x11;

/// Counters of one node's gossip transport.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub messages_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Dropped because the peer's queue was full or the peer was unreachable.
    pub messages_dropped: AtomicU64,
    /// Received bytes that were not a chitchat message, or too large (also unfolded).
    pub messages_malformed: AtomicU64,
    /// Digest entries and delta sections left out because no certificate naming the
    /// node has answered at its address yet.
    pub entries_unproven: AtomicU64,
    /// ... because a certificate naming another node answered there: a member speaking
    /// as another.
    pub entries_forged: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connect_failures: AtomicU64,
    /// Peers refused at or right after the handshake, by reason.
    pub refusals: Arc<RefusalCounters>,
}

/// A point-in-time copy of [`TransportStats`] for the cluster-state API.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TransportSnapshot {
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    pub messages_dropped: u64,
    pub messages_malformed: u64,
    pub entries_unproven: u64,
    pub entries_forged: u64,
    pub connections_opened: u64,
    pub connections_accepted: u64,
    pub connect_failures: u64,
    pub refused: std::collections::BTreeMap<&'static str, u64>,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl TransportStats {
    pub fn snapshot(&self) -> TransportSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportSnapshot {
            messages_sent: get(&self.messages_sent),
            bytes_sent: get(&self.bytes_sent),
            messages_received: get(&self.messages_received),
            bytes_received: get(&self.bytes_received),
            messages_dropped: get(&self.messages_dropped),
            messages_malformed: get(&self.messages_malformed),
            entries_unproven: get(&self.entries_unproven),
            entries_forged: get(&self.entries_forged),
            connections_opened: get(&self.connections_opened),
            connections_accepted: get(&self.connections_accepted),
            connect_failures: get(&self.connect_failures),
            refused: self
                .refusals
                .snapshot()
                .into_iter()
                .map(|(r, n)| (r.as_str(), n))
                .collect(),
        }
    }
}

/// Peers this node neither sends to nor hears from, for partition drills: cutting a link
/// makes the transport behave as if the network between the two had failed.
#[derive(Debug, Default)]
pub struct LinkCuts {
    cut: Mutex<HashSet<SocketAddr>>,
}

impl LinkCuts {
    pub fn cut(&self, peer: SocketAddr) {
        if let Ok(mut c) = self.cut.lock() {
            c.insert(peer);
        }
    }

    pub fn heal(&self, peer: SocketAddr) {
        if let Ok(mut c) = self.cut.lock() {
            c.remove(&peer);
        }
    }

    pub fn heal_all(&self) {
        if let Ok(mut c) = self.cut.lock() {
            c.clear();
        }
    }

    fn is_cut(&self, peer: &SocketAddr) -> bool {
        self.cut.lock().map(|c| c.contains(peer)).unwrap_or(false)
    }
}

/// chitchat [`Transport`] over QUIC: peers must hold a certificate of the deployment CA,
/// not expired, not revoked, for the same tenant as ours.
pub struct QuicTransport {
    material: TlsMaterial,
    tenant: String,
    stats: Arc<TransportStats>,
    cuts: Arc<LinkCuts>,
    crl_check: Duration,
}

impl QuicTransport {
    pub fn new(material: TlsMaterial, tenant: impl Into<String>) -> Self {
        QuicTransport {
            material,
            tenant: tenant.into(),
            stats: Arc::default(),
            cuts: Arc::default(),
            crl_check: ispvm_transport::crl_watch::CHECK_EVERY,
        }
    }

    /// Re-reads the revocation list this often instead of every 10 s.
    pub fn with_crl_check(mut self, every: Duration) -> Self {
        self.crl_check = every;
        self
    }

    pub fn stats(&self) -> Arc<TransportStats> {
        self.stats.clone()
    }

    pub fn link_cuts(&self) -> Arc<LinkCuts> {
        self.cuts.clone()
    }

    /// The endpoint, and the client configuration connections are made with.
    fn endpoint(
        &self,
        listen: SocketAddr,
    ) -> Result<(quinn::Endpoint, quinn::ClientConfig), TransportError> {
        let (server, client) = quic_configs(&self.material, &self.stats.refusals)?;
        let endpoint =
            quinn::Endpoint::server(server, listen).map_err(|source| TransportError::Bind {
                addr: listen,
                source,
            })?;
        Ok((endpoint, client))
    }
}

/// Both directions' QUIC configurations from `material`.
fn quic_configs(
    material: &TlsMaterial,
    refusals: &Arc<RefusalCounters>,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), TransportError> {
    {
        let server = material.server_config_counting(&[ALPN_GOSSIP], refusals)?;
        let client = material.client_config_counting(&[ALPN_GOSSIP], refusals)?;
        let server = QuicServerConfig::try_from(server)
            .map_err(|e| TransportError::Tls(TlsError::Quic(e)))?;
        let client = QuicClientConfig::try_from(client)
            .map_err(|e| TransportError::Tls(TlsError::Quic(e)))?;
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(KEEP_ALIVE));
        if let Ok(idle) = IDLE_TIMEOUT.try_into() {
            transport.max_idle_timeout(Some(idle));
        }
        let transport = Arc::new(transport);
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server));
        server.transport_config(transport.clone());
        let mut client = quinn::ClientConfig::new(Arc::new(client));
        client.transport_config(transport);
        Ok((server, client))
    }
}

/// Why the gossip transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot bind gossip UDP {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the accept side and the peer tasks share.
#[derive(Clone)]
struct Shared {
    tenant: Arc<str>,
    stats: Arc<TransportStats>,
    cuts: Arc<LinkCuts>,
    /// Open connections both ways, closed when the revocation list changes.
    conns: Arc<Mutex<Vec<quinn::Connection>>>,
    /// What outgoing connections are made with (replaced with the revocation list).
    client: Arc<Mutex<quinn::ClientConfig>>,
    /// Bumped with every new revocation list: a connection whose handshake began under
    /// an older list is closed rather than kept (it raced the change).
    epoch: Arc<AtomicU64>,
    /// Which name each gossip address proved with its certificate.
    book: Arc<AddressBook>,
    /// Addresses being dialled to prove their name, or recently dialled.
    proving: Arc<Mutex<HashMap<SocketAddr, Instant>>>,
}

impl Shared {
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Keeps `conn`, whose handshake began at `epoch`, for closing at the next change
    /// of the revocation list; closes it at once if a change happened meanwhile.
    fn track(&self, conn: &quinn::Connection, epoch: u64) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if epoch != self.epoch() {
            conn.close(CLOSE_NEW_CRL.into(), b"revocation list changed");
            return false;
        }
        conns.retain(|c| c.close_reason().is_none());
        conns.push(conn.clone());
        true
    }

    /// Applies a new revocation list's configurations and closes every open
    /// connection; peers reconnect under the new list.
    fn renew(
        &self,
        endpoint: &quinn::Endpoint,
        server: quinn::ServerConfig,
        client: quinn::ClientConfig,
    ) {
        endpoint.set_server_config(Some(server));
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = client;
        let conns = {
            let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            self.epoch.fetch_add(1, Ordering::SeqCst);
            std::mem::take(&mut *conns)
        };
        for c in conns {
            c.close(CLOSE_NEW_CRL.into(), b"revocation list changed");
        }
    }

    /// Checks the verified peer certificate names an agent of our tenant, and that the
    /// revocation list did not change since the handshake began at `epoch`; records the
    /// name the certificate proves at the peer's address.
    fn admit(&self, conn: &quinn::Connection, epoch: u64) -> bool {
        let peer = PeerIdentity::of_connection(conn)
            .ok()
            .filter(|id| id.organization.as_deref() == Some(&*self.tenant));
        let Some(peer) = peer else {
            self.stats.refusals.record(Refusal::WrongIdentity);
            tracing::warn!(peer = %conn.remote_address(), "gossip peer of another tenant refused");
            conn.close(CLOSE_WRONG_IDENTITY.into(), b"wrong tenant");
            return false;
        };
        if !self.track(conn, epoch) {
            return false;
        }
        self.book.prove(conn.remote_address(), &peer.common_name);
        true
    }
}

#[async_trait]
impl Transport for QuicTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let (endpoint, client) = self.endpoint(listen_addr)?;
        let local = endpoint.local_addr()?;
        let shared = Shared {
            tenant: self.tenant.as_str().into(),
            stats: self.stats.clone(),
            cuts: self.cuts.clone(),
            conns: Arc::default(),
            client: Arc::new(Mutex::new(client)),
            epoch: Arc::default(),
            book: Arc::default(),
            proving: Arc::default(),
        };
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX);
        let accept = tokio::spawn(accept_loop(endpoint.clone(), inbox_tx, shared.clone()));
        let crl_watch = {
            let (endpoint, shared) = (endpoint.clone(), shared.clone());
            ispvm_transport::crl_watch::spawn(self.material.clone(), self.crl_check, move |m| {
                match quic_configs(m, &shared.stats.refusals) {
                    Ok((server, client)) => shared.renew(&endpoint, server, client),
                    Err(e) => {
                        tracing::error!(error = %e, "new revocation list not applied to gossip")
                    }
                }
            })
        };
        Ok(Box::new(QuicSocket {
            endpoint,
            local,
            inbox: inbox_rx,
            peers: HashMap::new(),
            shared,
            accept,
            crl_watch,
        }))
    }
}

struct QuicSocket {
    endpoint: quinn::Endpoint,
    local: SocketAddr,
    inbox: mpsc::Receiver<(SocketAddr, ChitchatMessage)>,
    peers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    shared: Shared,
    accept: tokio::task::JoinHandle<()>,
    crl_watch: tokio::task::JoinHandle<()>,
}

impl Drop for QuicSocket {
    fn drop(&mut self) {
        self.accept.abort();
        self.crl_watch.abort();
        self.endpoint.close(0u32.into(), b"gossip stopped");
    }
}

impl QuicSocket {
    fn peer(&mut self, to: SocketAddr) -> &mpsc::Sender<Vec<u8>> {
        let stale = self.peers.get(&to).is_none_or(|tx| tx.is_closed());
        if stale {
            // Forget peers whose tasks ended, so the map holds current peers only.
            self.peers.retain(|_, tx| !tx.is_closed());
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            tokio::spawn(peer_task(
                self.endpoint.clone(),
                to,
                rx,
                self.shared.clone(),
            ));
            self.peers.insert(to, tx);
        }
        &self.peers[&to]
    }
}

#[async_trait]
impl Socket for QuicSocket {
    async fn send(&mut self, to: SocketAddr, msg: ChitchatMessage) -> anyhow::Result<()> {
        if to == self.local || self.shared.cuts.is_cut(&to) {
            return Ok(());
        }
        let bytes = msg.serialize_to_vec();
        if self.peer(to).try_send(bytes).is_err() {
            bump(&self.shared.stats.messages_dropped, 1);
        }
        Ok(())
    }

    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        self.inbox
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("gossip endpoint closed"))
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    inbox: mpsc::Sender<(SocketAddr, ChitchatMessage)>,
    shared: Shared,
) {
    while let Some(incoming) = endpoint.accept().await {
        let inbox = inbox.clone();
        let shared = shared.clone();
        let endpoint = endpoint.clone();
        let epoch = shared.epoch();
        tokio::spawn(async move {
            // A certificate we refuse fails here and was counted by our verifier.
            let conn = match timeout(CONNECT_TIMEOUT, incoming).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    count_distrust(&e, &shared);
                    return;
                }
                Err(_) => return,
            };
            if !shared.admit(&conn, epoch) {
                return;
            }
            bump(&shared.stats.connections_accepted, 1);
            receive_from(conn, endpoint, inbox, shared).await;
        });
    }
}

/// TLS alerts a connecting peer sends when *it* refuses our certificate because it
/// trusts another CA: unknown_ca (48) and bad_certificate (42).
const DISTRUST_ALERTS: [u8; 2] = [48, 42];

/// In TLS 1.3 the connecting side checks our certificate before it sends its own, so a
/// peer of another deployment aborts before our verifier sees anything. Its alert says
/// why; count it as a peer of another CA.
fn count_distrust(error: &quinn::ConnectionError, shared: &Shared) {
    if let quinn::ConnectionError::ConnectionClosed(close) = error
        && DISTRUST_ALERTS
            .iter()
            .any(|a| close.error_code == quinn::TransportErrorCode::crypto(*a))
    {
        shared.stats.refusals.record(Refusal::UnknownCa);
        tracing::warn!(error = %error, "gossip peer of another CA refused");
    }
}

/// Reads every stream of one incoming connection, in order, into the inbox.
async fn receive_from(
    conn: quinn::Connection,
    endpoint: quinn::Endpoint,
    inbox: mpsc::Sender<(SocketAddr, ChitchatMessage)>,
    shared: Shared,
) {
    let from = conn.remote_address();
    while let Ok(mut stream) = conn.accept_uni().await {
        let bytes = match timeout(READ_TIMEOUT, stream.read_to_end(MAX_MESSAGE_BYTES)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(quinn::ReadToEndError::TooLong)) => {
                bump(&shared.stats.messages_malformed, 1);
                continue;
            }
            Ok(Err(_)) | Err(_) => continue,
        };
        if shared.cuts.is_cut(&from) {
            continue;
        }
        let screened = match screen::screen(&bytes, &shared.book) {
            Ok(s) => s,
            Err(e) => {
                bump(&shared.stats.messages_malformed, 1);
                tracing::debug!(peer = %from, error = %e, "gossip message dropped");
                continue;
            }
        };
        bump(&shared.stats.entries_unproven, screened.unproven);
        for addr in screened.to_prove {
            prove(&endpoint, addr, &shared);
        }
        if screened.contradicted > 0 {
            bump(&shared.stats.entries_forged, screened.contradicted);
            tracing::warn!(peer = %from, entries = screened.contradicted, "gossip about a member at an address that proved another name was left out");
        }
        let mut cursor: &[u8] = &screened.bytes;
        let msg = match ChitchatMessage::deserialize(&mut cursor) {
            Ok(msg) if cursor.is_empty() => msg,
            _ => {
                bump(&shared.stats.messages_malformed, 1);
                tracing::debug!(peer = %from, "malformed gossip message dropped");
                continue;
            }
        };
        bump(&shared.stats.messages_received, 1);
        bump(&shared.stats.bytes_received, bytes.len() as u64);
        if inbox.try_send((from, msg)).is_err() {
            bump(&shared.stats.messages_dropped, 1);
        }
    }
}

/// Sends one peer's queued messages over one reused connection.
async fn peer_task(
    endpoint: quinn::Endpoint,
    to: SocketAddr,
    mut queue: mpsc::Receiver<Vec<u8>>,
    shared: Shared,
) {
    let mut conn: Option<quinn::Connection> = None;
    let mut unreachable_until: Option<Instant> = None;
    while let Ok(Some(bytes)) = timeout(PEER_IDLE, queue.recv()).await {
        if unreachable_until.is_some_and(|t| Instant::now() < t) {
            bump(&shared.stats.messages_dropped, 1);
            continue;
        }
        if conn.as_ref().is_none_or(|c| c.close_reason().is_some()) {
            conn = connect(&endpoint, to, &shared).await;
            if conn.is_none() {
                bump(&shared.stats.connect_failures, 1);
                bump(&shared.stats.messages_dropped, 1);
                unreachable_until = Some(Instant::now() + RECONNECT_BACKOFF);
                continue;
            }
            unreachable_until = None;
        }
        let Some(c) = conn.as_ref() else { continue };
        let len = bytes.len() as u64;
        let write = async {
            let mut stream = c.open_uni().await?;
            stream.write_all(&bytes).await?;
            stream.finish()?;
            Ok::<_, anyhow::Error>(())
        };
        match timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => {
                bump(&shared.stats.messages_sent, 1);
                bump(&shared.stats.bytes_sent, len);
            }
            _ => {
                bump(&shared.stats.messages_dropped, 1);
                if let Some(c) = conn.take() {
                    c.close(0u32.into(), b"write failed");
                }
            }
        }
    }
    if let Some(c) = conn {
        c.close(0u32.into(), b"idle");
    }
}

/// Dials `addr` in the background so its certificate proves which node answers there
/// ([`Shared::admit`] records it); at most [`MAX_PROOFS`] at once, and an address is not
/// dialled again within [`PROOF_BACKOFF`], so naming addresses costs a peer little.
fn prove(endpoint: &quinn::Endpoint, addr: SocketAddr, shared: &Shared) {
    if shared.cuts.is_cut(&addr) {
        return;
    }
    {
        let now = Instant::now();
        let mut proving = shared.proving.lock().unwrap_or_else(|p| p.into_inner());
        proving.retain(|_, since| now.duration_since(*since) < PROOF_BACKOFF);
        if proving.contains_key(&addr) || proving.len() >= MAX_PROOFS {
            return;
        }
        proving.insert(addr, now);
    }
    let (endpoint, shared) = (endpoint.clone(), shared.clone());
    tokio::spawn(async move {
        if let Some(conn) = connect(&endpoint, addr, &shared).await {
            conn.close(0u32.into(), b"proved");
        }
    });
}

async fn connect(
    endpoint: &quinn::Endpoint,
    to: SocketAddr,
    shared: &Shared,
) -> Option<quinn::Connection> {
    let (config, epoch) = {
        let client = shared.client.lock().unwrap_or_else(|p| p.into_inner());
        (client.clone(), shared.epoch())
    };
    let connecting = endpoint.connect_with(config, to, GOSSIP_DNS_NAME).ok()?;
    let conn = timeout(CONNECT_TIMEOUT, connecting).await.ok()?.ok()?;
    if !shared.admit(&conn, epoch) {
        return None;
    }
    bump(&shared.stats.connections_opened, 1);
    Some(conn)
}
