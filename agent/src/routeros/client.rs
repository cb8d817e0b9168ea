//! A RouterOS API session: connect, log in, run commands.
//!
//! Router safety (ARCHITECTURE §3) starts here: every network wait is bounded (connect
//! timeout, per-command timeout), what a router sends is decoded within explicit frame
//! limits, and the poller keeps one session per router and reuses it.

use ispvm_proto::routeros::{
    Command, FrameLimits, Reply, ReplyKind, decode_sentence, encode_sentence,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How to reach and log in to one router.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub addr: SocketAddr,
    pub username: String,
    pub password: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub limits: FrameLimits,
}

impl SessionConfig {
    pub fn new(addr: SocketAddr, username: String, password: String) -> Self {
        SessionConfig {
            addr,
            username,
            password,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            limits: FrameLimits::default(),
        }
    }
}

/// Why a RouterOS API exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout { addr: SocketAddr, after: Duration },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("login refused: {0}")]
    LoginRefused(String),
    #[error("{command} timed out after {after:?}")]
    Timeout { command: String, after: Duration },
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("router closed the connection")]
    Closed,
    #[error("router sent an invalid frame: {0}")]
    Frame(#[from] ispvm_proto::routeros::FrameError),
    #[error("router sent an invalid reply: {0}")]
    Reply(#[from] ispvm_proto::routeros::message::MessageError),
    #[error("{command} failed (category {category:?}): {message}")]
    Trap {
        command: String,
        category: Option<String>,
        message: String,
    },
    #[error("router ended the session: {0}")]
    Fatal(String),
}

impl ClientError {
    /// Whether the session is unusable after this error (it must be reopened).
    pub fn breaks_session(&self) -> bool {
        !matches!(self, ClientError::Trap { .. })
    }
}

/// One logged-in API session.
#[derive(Debug)]
pub struct RouterOsClient {
    stream: TcpStream,
    buf: Vec<u8>,
    config: SessionConfig,
}

impl RouterOsClient {
    /// Connects and logs in (RouterOS ≥ 6.43 flow: name and password in `/login`).
    pub async fn connect(config: SessionConfig) -> Result<Self, ClientError> {
        let stream = timeout(config.connect_timeout, TcpStream::connect(config.addr))
            .await
            .map_err(|_| ClientError::ConnectTimeout {
                addr: config.addr,
                after: config.connect_timeout,
            })?
            .map_err(|source| ClientError::Connect {
                addr: config.addr,
                source,
            })?;
        stream.set_nodelay(true)?;
        let mut client = RouterOsClient {
            stream,
            buf: Vec::with_capacity(4096),
            config,
        };
        let login = Command::new("/login")
            .with_attr("name", client.config.username.clone())
            .with_attr("password", client.config.password.clone());
        match client.run(&login).await {
            Ok(_) => Ok(client),
            Err(ClientError::Trap { message, .. }) => Err(ClientError::LoginRefused(message)),
            Err(other) => Err(other),
        }
    }

    /// Runs a command and returns its `!re` replies and the final reply (`!done` or
    /// `!empty`, which may carry attributes such as `ret` for `count-only`).
    pub async fn run(&mut self, command: &Command) -> Result<(Vec<Reply>, Reply), ClientError> {
        let after = self.config.command_timeout;
        timeout(after, self.exchange(command))
            .await
            .map_err(|_| ClientError::Timeout {
                command: command.path.clone(),
                after,
            })?
    }

    /// Runs a `print` and returns its items.
    pub async fn print(&mut self, command: &Command) -> Result<Vec<Reply>, ClientError> {
        Ok(self.run(command).await?.0)
    }

    async fn exchange(&mut self, command: &Command) -> Result<(Vec<Reply>, Reply), ClientError> {
        let mut out = Vec::new();
        encode_sentence(&command.to_sentence(), &mut out);
        self.stream.write_all(&out).await?;
        let mut items = Vec::new();
        let mut trap: Option<Reply> = None;
        loop {
            let reply = self.read_reply().await?;
            match reply.kind {
                ReplyKind::Re => items.push(reply),
                ReplyKind::Trap => trap = Some(reply),
                ReplyKind::Fatal => {
                    return Err(ClientError::Fatal(reply.fatal_message.unwrap_or_default()));
                }
                ReplyKind::Done | ReplyKind::Empty => {
                    if let Some(t) = trap {
                        return Err(ClientError::Trap {
                            command: command.path.clone(),
                            category: t.get("category").map(str::to_owned),
                            message: t.get("message").unwrap_or_default().to_owned(),
                        });
                    }
                    return Ok((items, reply));
                }
            }
        }
    }

    async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        loop {
            if let Some((sentence, used)) = decode_sentence(&self.buf, &self.config.limits)? {
                self.buf.drain(..used);
                // Empty sentences carry nothing; RouterOS does not send them, skip if any.
                if sentence.words.is_empty() {
                    continue;
                }
                return Ok(Reply::from_sentence(&sentence)?);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
