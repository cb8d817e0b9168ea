//! A tiny RouterOS API client built from the proto codec, shared by the integration
//! tests: it talks to the simulated routers the way the agent will, over TCP or TLS.

#![allow(dead_code)]

use ispvm_proto::routeros::{
    Command, FrameLimits, Reply, ReplyKind, decode_sentence, encode_sentence,
};
use ispvm_sim::{RunningRouter, Topology, VirtualIsp};
use md5::{Digest, Md5};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

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
