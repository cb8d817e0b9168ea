//! A tiny RouterOS API client built from the proto codec, shared by the integration
//! tests: it talks to the simulated routers the way the agent will, over TCP or TLS.

#![allow(dead_code)]

use ispvm_proto::routeros::{
    Command, FrameLimits, Reply, ReplyKind, decode_sentence, encode_sentence,
};
use ispvm_sim::{RunningRouter, Topology, VirtualIsp};
use md5::{Digest, Md5};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const WAIT: Duration = Duration::from_secs(5);

pub struct Client<S = TcpStream> {
    pub stream: S,
    pub buf: Vec<u8>,
}

impl Client<TcpStream> {
    pub async fn connect(router: &RunningRouter) -> Client {
        let stream = timeout(WAIT, TcpStream::connect(router.addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Client::over(stream)
    }
}

/// What reading a reply gave.
#[derive(Debug)]
pub enum Read {
    Reply(Reply),
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn over(stream: S) -> Client<S> {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    pub async fn send(&mut self, command: &Command) {
        let mut wire = Vec::new();
        encode_sentence(&command.to_sentence(), &mut wire);
        self.send_raw(&wire).await;
    }

    /// The next reply within `wait`; `Closed` on EOF or reset.
    pub async fn reply_within(&mut self, wait: Duration) -> Option<Read> {
        loop {
            if let Some((sentence, used)) =
                decode_sentence(&self.buf, &FrameLimits::default()).expect("router frames well")
            {
                self.buf.drain(..used);
                return Some(Read::Reply(
                    Reply::from_sentence(&sentence).expect("a reply sentence"),
                ));
            }
            let mut chunk = [0u8; 4096];
            let n = match timeout(wait, self.stream.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(n)) => n,
                Ok(Err(_)) => 0,
            };
            if n == 0 {
                return Some(Read::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next reply, or `None` when the router closed the connection.
    pub async fn reply(&mut self) -> Option<Reply> {
        match self.reply_within(WAIT).await.expect("reply in time") {
            Read::Reply(r) => Some(r),
            Read::Closed => None,
        }
    }

    /// Replies up to and including the final one (`!done`, `!fatal`).
    pub async fn replies(&mut self) -> Vec<Reply> {
        let mut out = Vec::new();
        loop {
            let reply = self.reply().await.expect("connection open");
            let last = matches!(reply.kind, ReplyKind::Done | ReplyKind::Fatal);
            out.push(reply);
            if last {
                return out;
            }
        }
    }

    pub async fn call(&mut self, command: Command) -> Vec<Reply> {
        self.send(&command).await;
        self.replies().await
    }

    /// Logs in with either flow: if the router answers with a challenge (RouterOS before
    /// 6.43), answers it with the MD5 response.
    pub async fn login_as(&mut self, name: &str, password: &str) -> Vec<Reply> {
        let first = self
            .call(
                Command::new("/login")
                    .with_attr("name", name)
                    .with_attr("password", password),
            )
            .await;
        let Some(challenge) = first.first().and_then(|r| r.get("ret")).map(str::to_owned) else {
            return first;
        };
        let challenge = hex::decode(challenge).expect("hex challenge");
        let mut md5 = Md5::new();
        md5.update([0u8]);
        md5.update(password.as_bytes());
        md5.update(&challenge);
        let response = format!("00{}", hex::encode(md5.finalize()));
        self.call(
            Command::new("/login")
                .with_attr("name", name)
                .with_attr("response", response),
        )
        .await
    }

    pub async fn login(&mut self, router: &RunningRouter) {
        let r = self
            .login_as(&router.credentials.username, &router.credentials.password)
            .await;
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].kind, ReplyKind::Done);
    }

    /// Waits for the router to close the connection (EOF), failing on anything else.
    pub async fn expect_closed(&mut self) {
        assert!(self.reply().await.is_none(), "connection should be closed");
    }
}

pub async fn demo_isp() -> VirtualIsp {
    VirtualIsp::start(Topology::demo(), LOCALHOST)
        .await
        .expect("start demo ISP")
}

pub fn router<'a>(isp: &'a VirtualIsp, id: &str) -> &'a RunningRouter {
    isp.router(id).expect("router in topology")
}

pub fn keys(reply: &Reply) -> Vec<&str> {
    reply.attributes.iter().map(|(k, _)| k.as_str()).collect()
}

/// A logged-in session on a router.
pub async fn session(isp: &VirtualIsp, id: &str) -> Client {
    let r = router(isp, id);
    let mut c = Client::connect(r).await;
    c.login(r).await;
    c
}

/// A TLS connector trusting the PEM CA `ca_pem` (a virtual ISP's, for API-SSL).
pub fn tls_connector(ca_pem: &str) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("PEM")).expect("add root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A TCP connection to `to` from source address `from` (an attachment).
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind the source");
    timeout(WAIT, socket.connect(to))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// What a burst of UDP echoes gave.
#[derive(Debug, Default)]
pub struct Echoes {
    pub sent: usize,
    pub rtts: Vec<Duration>,
}

impl Echoes {
    pub fn lost(&self) -> usize {
        self.sent - self.rtts.len()
    }

    pub fn mean_ms(&self) -> f64 {
        let total: f64 = self.rtts.iter().map(|d| d.as_secs_f64() * 1e3).sum();
        total / self.rtts.len().max(1) as f64
    }
}

/// Sends `count` numbered datagrams from `from` to an echo service at `to`, one every
/// `spacing`, and collects the replies that come back within `wait` of the last send.
pub async fn echoes(
    from: IpAddr,
    to: SocketAddr,
    count: usize,
    spacing: Duration,
    wait: Duration,
) -> Echoes {
    let socket = UdpSocket::bind(SocketAddr::new(from, 0))
        .await
        .expect("bind the source");
    let mut sent_at = Vec::with_capacity(count);
    let mut out = Echoes {
        sent: count,
        rtts: Vec::new(),
    };
    let mut seen = vec![false; count];
    let mut buf = [0u8; 64];
    let mut record = |n: usize, buf: &[u8], sent_at: &[Instant], out: &mut Echoes| {
        let Some(bytes) = buf.get(..n).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
            return;
        };
        let seq = u64::from_be_bytes(bytes) as usize;
        if let (Some(at), Some(flag)) = (sent_at.get(seq), seen.get_mut(seq))
            && !*flag
        {
            *flag = true;
            out.rtts.push(at.elapsed());
        }
    };
    for seq in 0..count {
        sent_at.push(Instant::now());
        socket
            .send_to(&(seq as u64).to_be_bytes(), to)
            .await
            .expect("send");
        let next = Instant::now() + spacing;
        while let Ok(Ok(n)) = tokio::time::timeout_at(next.into(), socket.recv(&mut buf)).await {
            record(n, &buf, &sent_at, &mut out);
        }
    }
    let end = Instant::now() + wait;
    while let Ok(Ok(n)) = tokio::time::timeout_at(end.into(), socket.recv(&mut buf)).await {
        record(n, &buf, &sent_at, &mut out);
    }
    out
}
