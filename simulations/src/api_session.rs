//! One RouterOS API connection to a simulated router.
//!
//! [`Session`] is the protocol state machine (login, dispatch, tags, listens) with no
//! I/O, so it is tested sentence by sentence; [`serve`] runs it over any byte stream
//! (plain TCP or TLS). Nothing a peer sends can make either panic: malformed framing or a
//! sentence that is not a command ends the connection with `!fatal` and a reason, as a
//! real router does.
//!
//! [`serve`] also applies the faults that concern the API itself: it drops the
//! connection when the router becomes unreachable (down, rebooting, management plane
//! failed), delays replies of a slow API and cuts a flaky API's replies in the middle.
//!
//! And it follows the path from the peer ([`Session::with_peer`], see [`crate::paths`]):
//! while no path joins the peer's router and this one, the session neither answers nor
//! closes (what a client sees behind a cut link: silence, then its own timeout); what the
//! peer sends meanwhile waits, as TCP would retransmit it, and is answered once the path
//! is back. A router that rebooted meanwhile has forgotten the connection and closes
//! it. Congestion on the path delays every reply by the path's round trip.

use crate::commands::{self, Ctx};
use crate::legacy_login;
use crate::listen::Listens;
use crate::network::{ApiState, Network};
use crate::router_state::unix_seconds;
use crate::topology::Credentials;
use ispvm_proto::routeros::{
    Command, FrameLimits, Reply, ReplyKind, Sentence, decode_sentence, encode_sentence,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// How often open listens look for interface changes.
const LISTEN_POLL: Duration = Duration::from_millis(200);
/// How often a session held by a broken path looks at the path again (a reboot ending
/// changes no fault, so the change notification alone is not enough).
pub const PATH_RECHECK: Duration = Duration::from_millis(100);
/// Most bytes a held session keeps from its peer until the path is back: more than any
/// client pipelines, so reaching it means a misbehaving peer, which is then cut off.
const MAX_HELD_BYTES: usize = 1 << 20;

/// What to do after a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send these replies and keep reading.
    Reply(Vec<Reply>),
    /// Send these replies, then close the connection.
    Close(Vec<Reply>),
}

/// A `!fatal` with its reason word.
pub fn fatal(reason: impl Into<String>) -> Reply {
    let mut reply = Reply::new(ReplyKind::Fatal);
    reply.fatal_message = Some(reason.into());
    reply
}

/// The state of one API connection.
#[derive(Debug)]
pub struct Session {
    net: Arc<Network>,
    router: usize,
    credentials: Arc<Credentials>,
    logged_in: bool,
    /// The challenge of a pre-6.43 login in progress.
    challenge: Option<[u8; 16]>,
    listens: Listens,
    /// Where the client is, for the path its packets take; `None` outside the model.
    peer: Option<std::net::IpAddr>,
}

impl Session {
    /// A session on router `router` (topology index) of `net`.
    pub fn new(net: Arc<Network>, router: usize, credentials: Arc<Credentials>) -> Self {
        Session {
            net,
            router,
            credentials,
            logged_in: false,
            challenge: None,
            listens: Listens::default(),
            peer: None,
        }
    }

    /// The same session for a client at `peer`: it then answers only while a path joins
    /// the router `peer` is attached to and this one (see [`crate::attach`]).
    pub fn with_peer(mut self, peer: std::net::IpAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Where the client stands toward this router at `now_s`.
    pub fn reach(&self, now_s: f64) -> crate::paths::Reach {
        match self.peer {
            Some(peer) => self.net.reach(peer, self.router, now_s),
            None => crate::paths::Reach::Outside,
        }
    }

    /// The router this session talks to.
    pub fn router(&self) -> usize {
        self.router
    }

    /// Whether listens are open (and [`Session::poll`] should be called).
    pub fn has_listens(&self) -> bool {
        !self.listens.is_empty()
    }

    /// Replies of open listens for changes up to `now_s`.
    pub fn poll(&mut self, now_s: f64) -> Vec<Reply> {
        match Ctx::new(&self.net, self.router, now_s) {
            Some(ctx) => self.listens.poll(&ctx),
            None => Vec::new(),
        }
    }

    /// Answers one sentence received at Unix time `now_s`.
    pub fn handle(&mut self, sentence: &Sentence, now_s: f64) -> Outcome {
        // Empty sentences are keepalives; RouterOS ignores them.
        if sentence.words.is_empty() {
            return Outcome::Reply(Vec::new());
        }
        let command = match Command::from_sentence(sentence) {
            Ok(c) => c,
            Err(e) => return Outcome::Close(vec![fatal(format!("malformed command: {e}"))]),
        };
        if command.path == "/quit" {
            // `!fatal` belongs to the connection, not to the command: no tag.
            return Outcome::Close(vec![fatal("session terminated on request")]);
        }
        let replies = if command.path == "/login" {
            self.login(&command)
        } else if !self.logged_in {
            vec![
                Reply::trap(None, "not logged in"),
                Reply::new(ReplyKind::Done),
            ]
        } else if command.path == "/cancel" {
            // Replies carry the tags of what they answer, set by the listens.
            return Outcome::Reply(self.listens.cancel(&command));
        } else if command.path == "/interface/listen" {
            if let Some(ctx) = Ctx::new(&self.net, self.router, now_s) {
                self.listens.start(&command, &ctx);
            }
            Vec::new()
        } else {
            commands::execute(&self.net, self.router, &command, now_s)
        };
        Outcome::Reply(
            replies
                .into_iter()
                .map(|r| r.with_tag(command.tag.clone()))
                .collect(),
        )
    }

    fn refuse_login(&mut self) -> Vec<Reply> {
        self.logged_in = false;
        vec![
            Reply::trap(None, "invalid user name or password (6)"),
            Reply::new(ReplyKind::Done),
        ]
    }

    /// `/login`: name and password in the clear (RouterOS ≥ 6.43), or the MD5 challenge
    /// flow of older versions (see [`legacy_login`]).
    fn login(&mut self, command: &Command) -> Vec<Reply> {
        let version = self.net.model(self.router).map(|m| m.version);
        if version.is_some_and(|v| !legacy_login::uses_plain_login(v)) {
            let (Some(name), Some(response)) = (command.attr("name"), command.attr("response"))
            else {
                let challenge = legacy_login::new_challenge();
                self.challenge = Some(challenge);
                return vec![Reply::new(ReplyKind::Done).with_attr("ret", hex::encode(challenge))];
            };
            let ok = self.challenge.take().is_some_and(|challenge| {
                name == self.credentials.username
                    && legacy_login::verify(response, &self.credentials.password, &challenge)
            });
            if !ok {
                return self.refuse_login();
            }
            self.logged_in = true;
            return vec![Reply::new(ReplyKind::Done)];
        }
        let ok = command.attr("name") == Some(self.credentials.username.as_str())
            && command.attr("password") == Some(self.credentials.password.as_str());
        if ok {
            self.logged_in = true;
            vec![Reply::new(ReplyKind::Done)]
        } else {
            self.refuse_login()
        }
    }
}

/// Takes the next complete sentence off the front of `buf` and answers it; `None` when
/// `buf` holds no complete sentence yet. Framing errors become a closing `!fatal`.
fn next_outcome(session: &mut Session, buf: &mut Vec<u8>, now_s: f64) -> Option<Outcome> {
    match decode_sentence(buf, &FrameLimits::default()) {
        Ok(Some((sentence, used))) => {
            buf.drain(..used.min(buf.len()));
            Some(session.handle(&sentence, now_s))
        }
        Ok(None) => None,
        Err(e) => {
            buf.clear();
            Some(Outcome::Close(vec![fatal(format!(
                "invalid API framing: {e}"
            ))]))
        }
    }
}

/// Answers every complete sentence at the front of `buf`, removing them from it.
///
/// Returns the bytes to send and whether the connection must be closed after sending
/// them (a `!fatal` was produced; anything after it in `buf` is ignored). An incomplete
/// sentence stays in `buf` until more bytes arrive; the frame limits bound how much that
/// can be.
pub fn answer_buffered(session: &mut Session, buf: &mut Vec<u8>, now_s: f64) -> (Vec<u8>, bool) {
    let mut wire = Vec::new();
    while let Some(outcome) = next_outcome(session, buf, now_s) {
        let (replies, close) = match outcome {
            Outcome::Reply(r) => (r, false),
            Outcome::Close(r) => (r, true),
        };
        for reply in &replies {
            encode_sentence(&reply.to_sentence(), &mut wire);
        }
        if close {
            buf.clear();
            return (wire, true);
        }
    }
    (wire, false)
}

/// Why [`serve`] stops writing.
enum Stop {
    /// The peer, the network or a fault ended the connection.
    Gone,
}

/// Writes replies as the router's API state allows: after the slow-API delay, and cut
/// in the middle of a sentence by a flaky API.
async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    replies: &[Reply],
    state: ApiState,
    path_delay: Duration,
    cancel: &CancellationToken,
) -> Result<(), Stop> {
    let ApiState::Up {
        delay,
        drop_per_mille,
    } = state
    else {
        return Err(Stop::Gone);
    };
    if replies.is_empty() {
        return Ok(());
    }
    let delay = delay.saturating_add(path_delay);
    if !delay.is_zero() {
        tokio::select! {
            () = cancel.cancelled() => return Err(Stop::Gone),
            () = tokio::time::sleep(delay) => {}
        }
    }
    let mut wire = Vec::new();
    for reply in replies {
        let start = wire.len();
        encode_sentence(&reply.to_sentence(), &mut wire);
        if drop_per_mille > 0 && rand::random_range(0..1000u32) < drop_per_mille {
            // Half a sentence, then the connection dies: what a client sees when a
            // router's API process hangs up mid-reply.
            let cut = start + (wire.len() - start) / 2;
            wire.truncate(cut.max(start + 1).min(wire.len()));
            let _ = stream.write_all(&wire).await;
            let _ = stream.flush().await;
            return Err(Stop::Gone);
        }
    }
    let written = tokio::select! {
        () = cancel.cancelled() => return Err(Stop::Gone),
        r = stream.write_all(&wire) => r,
    };
    if written.is_err() {
        return Err(Stop::Gone);
    }
    let _ = stream.flush().await;
    Ok(())
}

/// Serves one connection until the peer leaves, a `!fatal` is sent, the router's API
/// becomes unreachable (fault), or `cancel` fires.
pub async fn serve<S>(mut stream: S, mut session: Session, cancel: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let net = Arc::clone(&session.net);
    let router = session.router;
    let mut changes = net.subscribe();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    let mut ticker = tokio::time::interval(LISTEN_POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let booted = boot_at(&net, router, unix_seconds(SystemTime::now()));
    loop {
        let now = unix_seconds(SystemTime::now());
        let Some(path) = session.reach(now).quality() else {
            // No path: silence. Keep what the peer sends for later; notice if it leaves.
            let read = tokio::select! {
                () = cancel.cancelled() => return,
                _ = changes.changed() => continue,
                () = tokio::time::sleep(PATH_RECHECK) => continue,
                r = stream.read(&mut chunk), if buf.len() < MAX_HELD_BYTES => r,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
            continue;
        };
        if boot_at(&net, router, now) > booted {
            tracing::debug!(router, "API session dropped: the router rebooted meanwhile");
            return;
        }
        let state = net.api_state(router, now);
        if state == ApiState::Unreachable {
            tracing::debug!(router, "API session dropped: router unreachable");
            return;
        }
        // A request and its reply each cross the path once.
        let path_delay = path.delay.saturating_mul(2);
        if buf.is_empty() {
            let read = tokio::select! {
                () = cancel.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
                _ = ticker.tick(), if session.has_listens() => {
                    let replies = session.poll(unix_seconds(SystemTime::now()));
                    if send(&mut stream, &replies, state, path_delay, &cancel).await.is_err() {
                        return;
                    }
                    continue;
                }
                r = stream.read(&mut chunk) => r,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
        let mut answered = false;
        loop {
            let now = unix_seconds(SystemTime::now());
            let Some(path) = session.reach(now).quality() else {
                // The path broke between two sentences: hold the rest.
                break;
            };
            let Some(outcome) = next_outcome(&mut session, &mut buf, now) else {
                break;
            };
            answered = true;
            let state = net.api_state(router, now);
            let (replies, close) = match outcome {
                Outcome::Reply(r) => (r, false),
                Outcome::Close(r) => (r, true),
            };
            let path_delay = path.delay.saturating_mul(2);
            if send(&mut stream, &replies, state, path_delay, &cancel)
                .await
                .is_err()
            {
                return;
            }
            if close {
                let _ = stream.shutdown().await;
                return;
            }
        }
        if !answered && !buf.is_empty() && session.reach(unix_seconds(SystemTime::now())).is_up() {
            // Held bytes that are only the start of a sentence: read the rest (or look
            // at the router and the path again when a fault changes).
            let read = tokio::select! {
                () = cancel.cancelled() => return,
                _ = changes.changed() => continue,
                r = stream.read(&mut chunk) => r,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
    }
}

/// When router `router` last booted, as of `now_s`.
fn boot_at(net: &Network, router: usize, now_s: f64) -> f64 {
    net.with_log(|log| net.boot_s(log, router, now_s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    const NOW: f64 = 1_732_050_000.0;

    fn session() -> Session {
        let t = Topology::demo();
        let credentials = t.credentials.clone();
        let net = Network::new(t, SystemTime::now());
        let index = net.index_of("lis1-bng1").expect("router");
        Session::new(Arc::new(net), index, Arc::new(credentials))
    }

    fn replies(outcome: Outcome) -> Vec<Reply> {
        match outcome {
            Outcome::Reply(r) => r,
            Outcome::Close(r) => panic!("closed: {r:?}"),
        }
    }

    fn cmd(c: Command) -> Sentence {
        c.to_sentence()
    }

    #[test]
    fn login_flow_and_tags() {
        let mut s = session();
        let r = replies(s.handle(
            &cmd(Command::new("/system/identity/print").with_tag("a")),
            NOW,
        ));
        assert_eq!(r[0].get("message"), Some("not logged in"));
        assert!(r.iter().all(|x| x.tag.as_deref() == Some("a")));
        let r = replies(
            s.handle(
                &cmd(Command::new("/login")
                    .with_attr("name", "monitor")
                    .with_attr("password", "nope")),
                NOW,
            ),
        );
        assert_eq!(r[0].kind, ReplyKind::Trap);
        assert_eq!(
            r[0].get("message"),
            Some("invalid user name or password (6)")
        );
        assert_eq!(r[1].kind, ReplyKind::Done);
        let r = replies(
            s.handle(
                &cmd(Command::new("/login")
                    .with_attr("name", "monitor")
                    .with_attr("password", "monitor-secret")
                    .with_tag("7")),
                NOW,
            ),
        );
        assert_eq!(
            r,
            vec![Reply::new(ReplyKind::Done).with_tag(Some("7".into()))]
        );
        let r = replies(s.handle(&cmd(Command::new("/system/identity/print")), NOW));
        assert_eq!(r[0].get("name"), Some("LIS1-BNG1"));
        assert!(r[0].tag.is_none());
        assert!(replies(s.handle(&Sentence::default(), NOW)).is_empty());
    }

    #[test]
    fn quit_and_garbage_close() {
        let mut s = session();
        match s.handle(&cmd(Command::new("/quit")), NOW) {
            Outcome::Close(r) => {
                assert_eq!(
                    r[0].fatal_message.as_deref(),
                    Some("session terminated on request")
                )
            }
            other => panic!("{other:?}"),
        }
        for garbage in [
            Sentence::new(["hello"]),
            Sentence::new(["/interface/print", "junk"]),
            Sentence::new([vec![0xFFu8, 0xFE]]),
        ] {
            assert!(
                matches!(s.handle(&garbage, NOW), Outcome::Close(r) if r[0].kind == ReplyKind::Fatal)
            );
        }
    }

    #[test]
    fn pipelined_sentences_and_partial_input() {
        let mut s = session();
        let mut wire = Vec::new();
        let login = Command::new("/login")
            .with_attr("name", "monitor")
            .with_attr("password", "monitor-secret");
        encode_sentence(&login.to_sentence(), &mut wire);
        encode_sentence(
            &Command::new("/system/identity/print").to_sentence(),
            &mut wire,
        );
        // Everything but the last byte: only the login is complete.
        let mut buf = wire[..wire.len() - 1].to_vec();
        let (out, close) = answer_buffered(&mut s, &mut buf, NOW);
        assert!(!close);
        let mut expected = Vec::new();
        encode_sentence(&Reply::new(ReplyKind::Done).to_sentence(), &mut expected);
        assert_eq!(out, expected);
        assert!(!buf.is_empty());
        buf.push(0);
        let (out, close) = answer_buffered(&mut s, &mut buf, NOW);
        assert!(!close && buf.is_empty());
        let first = decode_sentence(&out, &FrameLimits::default())
            .expect("framed")
            .expect("complete");
        assert_eq!(
            Reply::from_sentence(&first.0).expect("reply").get("name"),
            Some("LIS1-BNG1")
        );
    }

    proptest::proptest! {
        /// No byte sequence makes a session panic, and whatever it answers is well framed.
        #[test]
        fn arbitrary_bytes_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..8),
            log_in in proptest::bool::ANY,
        ) {
            let mut s = session();
            let mut buf = Vec::new();
            if log_in {
                let login = Command::new("/login")
                    .with_attr("name", "monitor")
                    .with_attr("password", "monitor-secret");
                encode_sentence(&login.to_sentence(), &mut buf);
            }
            for chunk in chunks {
                buf.extend_from_slice(&chunk);
                let (out, close) = answer_buffered(&mut s, &mut buf, NOW);
                let mut rest = &out[..];
                while !rest.is_empty() {
                    let (sentence, used) = decode_sentence(rest, &FrameLimits::default())
                        .expect("well framed")
                        .expect("complete");
                    proptest::prop_assert!(Reply::from_sentence(&sentence).is_ok());
                    rest = &rest[used..];
                }
                if close {
                    break;
                }
            }
        }

        /// Any sentence of printable words gets an answer, never a panic.
        #[test]
        fn arbitrary_commands_never_panic(words in proptest::collection::vec("[ -~]{0,24}", 0..6)) {
            let mut s = session();
            let login = Command::new("/login")
                .with_attr("name", "monitor")
                .with_attr("password", "monitor-secret");
            let _ = s.handle(&login.to_sentence(), NOW);
            let mut sentence = Sentence::new(words.iter().map(|w| w.as_bytes().to_vec()));
            let _ = s.handle(&sentence, NOW);
            // The same words after a known command path.
            sentence.words.insert(0, b"/interface/print".to_vec());
            let _ = s.handle(&sentence, NOW);
        }
    }
}
