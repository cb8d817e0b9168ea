//! A RouterOS API session: connect (TCP or TLS), log in, run tagged commands.
//!
//! Router safety (ARCHITECTURE §3) starts here. One session per router carries several
//! commands at once, told apart by `.tag` (at most `max_in_flight`, 3 by default, so a
//! poller never piles work onto a router); every wait is bounded (connect timeout,
//! per-command timeout); what a router sends is decoded within explicit frame limits by a
//! single reader task that hands each reply to the command it answers.

use super::transport::{self, Stream, TlsOptions, TransportError};
use ispvm_proto::routeros::{
    Command, FrameLimits, Reply, ReplyKind, decode_sentence, encode_sentence,
};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How to reach and log in to one router.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub addr: SocketAddr,
    pub username: String,
    pub password: String,
    /// API-SSL when set.
    pub tls: Option<TlsOptions>,
    /// Local address the connection leaves from (`source_address`); the system's
    /// choice when `None`.
    pub source: Option<std::net::IpAddr>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Commands in flight at once on the session.
    pub max_in_flight: usize,
    pub limits: FrameLimits,
}

impl SessionConfig {
    pub fn new(addr: SocketAddr, username: String, password: String) -> Self {
        SessionConfig {
            addr,
            username,
            password,
            tls: None,
            source: None,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            max_in_flight: 3,
            limits: FrameLimits::default(),
        }
    }
}

/// Why a RouterOS API exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("login refused: {0}")]
    LoginRefused(String),
    #[error("{command} timed out after {after:?}")]
    Timeout { command: String, after: Duration },
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("session closed: {0}")]
    Closed(String),
    #[error("{command} failed (category {category:?}): {message}")]
    Trap {
        command: String,
        category: Option<String>,
        message: String,
    },
    #[error("router ended the session: {0}")]
    Fatal(String),
    #[error("router broke the protocol: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Whether the session is unusable after this error (it must be reopened). A trap is
    /// an answer: the session is fine.
    pub fn breaks_session(&self) -> bool {
        !matches!(self, ClientError::Trap { .. })
    }
}

/// Commands waiting for replies, by tag.
#[derive(Default)]
struct Pending {
    waiting: HashMap<String, mpsc::UnboundedSender<Reply>>,
    /// Why the session ended, once it has.
    closed: Option<String>,
}

struct Inner {
    pending: Mutex<Pending>,
    writer: tokio::sync::Mutex<WriteHalf<Box<dyn Stream>>>,
    next_tag: AtomicU64,
    in_flight: Semaphore,
    config: SessionConfig,
    reader: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One logged-in API session. Cloning gives another handle to the same session.
#[derive(Clone)]
pub struct RouterOsClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RouterOsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterOsClient")
            .field("addr", &self.inner.config.addr)
            .finish()
    }
}

fn lock(pending: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    // A poisoned lock only means a holder panicked; the map itself is still consistent.
    pending.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads sentences and hands each reply to the command whose tag it carries.
async fn read_loop(
    mut rd: ReadHalf<Box<dyn Stream>>,
    inner: std::sync::Weak<Inner>,
    limits: FrameLimits,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 8192];
    let reason = loop {
        match decode_sentence(&buf, &limits) {
            Ok(Some((sentence, used))) => {
                buf.drain(..used);
                if sentence.words.is_empty() {
                    continue;
                }
                let reply = match Reply::from_sentence(&sentence) {
                    Ok(r) => r,
                    Err(e) => break format!("invalid reply: {e}"),
                };
                let Some(inner) = inner.upgrade() else { return };
                if reply.kind == ReplyKind::Fatal {
                    let p = lock(&inner.pending);
                    for tx in p.waiting.values() {
                        let _ = tx.send(reply.clone());
                    }
                    break format!("!fatal {}", reply.fatal_message.unwrap_or_default());
                }
                dispatch(&inner, reply);
            }
            Ok(None) => match rd.read(&mut chunk).await {
                Ok(0) => break "router closed the connection".to_owned(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => break format!("read failed: {e}"),
            },
            Err(e) => break format!("invalid frame: {e}"),
        }
    };
    if let Some(inner) = inner.upgrade() {
        let mut p = lock(&inner.pending);
        p.closed = Some(reason);
        // Dropping the senders wakes every waiting command with "closed".
        p.waiting.clear();
    }
}

fn dispatch(inner: &Inner, reply: Reply) {
    let Some(tag) = reply.tag.clone() else {
        tracing::debug!(kind = ?reply.kind, "untagged reply ignored");
        return;
    };
    let mut p = lock(&inner.pending);
    let finished = reply.kind.is_final();
    if let Some(tx) = p.waiting.get(&tag) {
        let _ = tx.send(reply);
    }
    if finished {
        p.waiting.remove(&tag);
    }
}

/// A streaming command (`listen`, `follow`): replies arrive until it is cancelled.
pub struct Listener {
    client: RouterOsClient,
    tag: String,
    rx: mpsc::UnboundedReceiver<Reply>,
    command: String,
}

impl Listener {
    /// The next pushed item; `None` when the command ended.
    pub async fn next(&mut self) -> Option<Result<Reply, ClientError>> {
        loop {
            let reply = self.rx.recv().await?;
            return match reply.kind {
                ReplyKind::Re => Some(Ok(reply)),
                ReplyKind::Empty => continue,
                ReplyKind::Trap => Some(Err(trap(&self.command, &reply))),
                ReplyKind::Fatal => Some(Err(ClientError::Fatal(
                    reply.fatal_message.unwrap_or_default(),
                ))),
                ReplyKind::Done => None,
            };
        }
    }

    /// Asks the router to stop the command and waits until it has.
    pub async fn cancel(mut self) -> Result<(), ClientError> {
        let cancel = Command::new("/cancel").with_attr("tag", self.tag.clone());
        self.client.run(&cancel).await?;
        let after = self.client.inner.config.command_timeout;
        let drain = async { while self.rx.recv().await.is_some() {} };
        timeout(after, drain)
            .await
            .map_err(|_| ClientError::Timeout {
                command: "/cancel".into(),
                after,
            })
    }
}

fn trap(command: &str, reply: &Reply) -> ClientError {
    ClientError::Trap {
        command: command.to_owned(),
        category: reply.get("category").map(str::to_owned),
        message: reply.get("message").unwrap_or_default().to_owned(),
    }
}

impl RouterOsClient {
    /// Connects (TCP or TLS) and logs in: the RouterOS ≥ 6.43 flow (name and password),
    /// falling back to the MD5 challenge flow when the router answers with a challenge.
    pub async fn connect(config: SessionConfig) -> Result<Self, ClientError> {
        let stream = transport::open(
            config.addr,
            config.source,
            config.tls.as_ref(),
            config.connect_timeout,
        )
        .await?;
        let (rd, wr) = tokio::io::split(stream);
        let limits = config.limits;
        let max = config.max_in_flight.max(1);
        let inner = Arc::new_cyclic(|weak| Inner {
            pending: Mutex::new(Pending::default()),
            writer: tokio::sync::Mutex::new(wr),
            next_tag: AtomicU64::new(1),
            in_flight: Semaphore::new(max),
            reader: tokio::spawn(read_loop(rd, weak.clone(), limits)),
            config,
        });
        let client = RouterOsClient { inner };
        client.login().await?;
        Ok(client)
    }

    async fn login(&self) -> Result<(), ClientError> {
        let c = &self.inner.config;
        let plain = Command::new("/login")
            .with_attr("name", c.username.clone())
            .with_attr("password", c.password.clone());
        let done = match self.run(&plain).await {
            Ok((_, done)) => done,
            Err(ClientError::Trap { message, .. }) => {
                return Err(ClientError::LoginRefused(message));
            }
            Err(e) => return Err(e),
        };
        let Some(challenge) = done.get("ret") else {
            return Ok(());
        };
        // RouterOS before 6.43: answer the challenge with MD5(0 ‖ password ‖ challenge).
        let challenge = hex::decode(challenge)
            .map_err(|e| ClientError::Protocol(format!("login challenge is not hex: {e}")))?;
        let mut md5 = Md5::new();
        md5.update([0u8]);
        md5.update(c.password.as_bytes());
        md5.update(&challenge);
        let response = format!("00{}", hex::encode(md5.finalize()));
        let legacy = Command::new("/login")
            .with_attr("name", c.username.clone())
            .with_attr("response", response);
        match self.run(&legacy).await {
            Ok(_) => Ok(()),
            Err(ClientError::Trap { message, .. }) => Err(ClientError::LoginRefused(message)),
            Err(e) => Err(e),
        }
    }

    fn register(&self) -> Result<(String, mpsc::UnboundedReceiver<Reply>), ClientError> {
        let tag = self
            .inner
            .next_tag
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut p = lock(&self.inner.pending);
        if let Some(reason) = &p.closed {
            return Err(ClientError::Closed(reason.clone()));
        }
        p.waiting.insert(tag.clone(), tx);
        Ok((tag, rx))
    }

    fn unregister(&self, tag: &str) {
        lock(&self.inner.pending).waiting.remove(tag);
    }

    fn closed_reason(&self) -> String {
        lock(&self.inner.pending)
            .closed
            .clone()
            .unwrap_or_else(|| "session ended".into())
    }

    async fn send(&self, command: &Command, tag: &str) -> Result<(), ClientError> {
        let mut tagged = command.clone();
        tagged.tag = Some(tag.to_owned());
        let mut out = Vec::new();
        encode_sentence(&tagged.to_sentence(), &mut out);
        let mut w = self.inner.writer.lock().await;
        let written = timeout(self.inner.config.command_timeout, w.write_all(&out)).await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ClientError::Io(e)),
            Err(_) => Err(ClientError::Timeout {
                command: command.path.clone(),
                after: self.inner.config.command_timeout,
            }),
        }
    }

    /// Runs a command and returns its `!re` replies and the final `!done` (which may carry
    /// attributes such as `ret` for `count-only`).
    pub async fn run(&self, command: &Command) -> Result<(Vec<Reply>, Reply), ClientError> {
        let _slot = self
            .inner
            .in_flight
            .acquire()
            .await
            .map_err(|_| ClientError::Closed("session shut".into()))?;
        let (tag, mut rx) = self.register()?;
        if let Err(e) = self.send(command, &tag).await {
            self.unregister(&tag);
            return Err(e);
        }
        let collect = async {
            let mut items = Vec::new();
            let mut failed: Option<Reply> = None;
            while let Some(reply) = rx.recv().await {
                match reply.kind {
                    ReplyKind::Re => items.push(reply),
                    ReplyKind::Empty => {}
                    ReplyKind::Trap => failed = Some(reply),
                    ReplyKind::Fatal => {
                        return Err(ClientError::Fatal(reply.fatal_message.unwrap_or_default()));
                    }
                    ReplyKind::Done => {
                        return match failed {
                            Some(t) => Err(trap(&command.path, &t)),
                            None => Ok((items, reply)),
                        };
                    }
                }
            }
            Err(ClientError::Closed(self.closed_reason()))
        };
        let after = self.inner.config.command_timeout;
        match timeout(after, collect).await {
            Ok(result) => result,
            Err(_) => {
                self.unregister(&tag);
                Err(ClientError::Timeout {
                    command: command.path.clone(),
                    after,
                })
            }
        }
    }

    /// Runs a `print` and returns its items.
    pub async fn print(&self, command: &Command) -> Result<Vec<Reply>, ClientError> {
        Ok(self.run(command).await?.0)
    }

    /// Counts the items of a menu (`<path>/print count-only`) without transferring them.
    pub async fn count(&self, path: &str) -> Result<u64, ClientError> {
        let command = Command::new(format!("{path}/print")).with_attr("count-only", "");
        let (_, done) = self.run(&command).await?;
        done.get("ret")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ClientError::Protocol(format!("{path} count-only gave no number")))
    }

    /// Starts a streaming command (e.g. `/interface/listen`). It does not take one of the
    /// `max_in_flight` slots: it costs the router nothing while idle.
    pub async fn listen(&self, command: &Command) -> Result<Listener, ClientError> {
        let (tag, rx) = self.register()?;
        if let Err(e) = self.send(command, &tag).await {
            self.unregister(&tag);
            return Err(e);
        }
        Ok(Listener {
            client: self.clone(),
            tag,
            rx,
            command: command.path.clone(),
        })
    }

    /// Whether the session has ended (the router closed it or broke the protocol).
    pub fn is_closed(&self) -> bool {
        lock(&self.inner.pending).closed.is_some()
    }
}
