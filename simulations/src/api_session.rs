//! One RouterOS API connection to a simulated router.
//!
//! [`Session`] is the protocol state machine (login, dispatch, tags) with no I/O, so it is
//! tested sentence by sentence; [`serve`] runs it over a TCP stream. Nothing a peer sends
//! can make either panic: malformed framing or a sentence that is not a command ends the
//! connection with `!fatal` and a reason, as a real router does.

use crate::commands;
use crate::router_state::{RouterModel, unix_seconds};
use crate::topology::Credentials;
use ispvm_proto::routeros::{
    Command, FrameLimits, Reply, ReplyKind, Sentence, decode_sentence, encode_sentence,
};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

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
    model: Arc<RouterModel>,
    credentials: Arc<Credentials>,
    logged_in: bool,
}

impl Session {
    pub fn new(model: Arc<RouterModel>, credentials: Arc<Credentials>) -> Self {
        Session {
            model,
            credentials,
            logged_in: false,
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
        } else {
            commands::execute(&self.model, &command, now_s)
        };
        Outcome::Reply(
            replies
                .into_iter()
                .map(|r| r.with_tag(command.tag.clone()))
                .collect(),
        )
    }

    /// The RouterOS ≥ 6.43 login: name and password in the clear, in one command.
    fn login(&mut self, command: &Command) -> Vec<Reply> {
        let ok = command.attr("name") == Some(self.credentials.username.as_str())
            && command.attr("password") == Some(self.credentials.password.as_str());
        if ok {
            self.logged_in = true;
            vec![Reply::new(ReplyKind::Done)]
        } else {
            self.logged_in = false;
            vec![
                Reply::trap(None, "invalid user name or password (6)"),
                Reply::new(ReplyKind::Done),
            ]
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
    let limits = FrameLimits::default();
    let mut wire = Vec::new();
    loop {
        let outcome = match decode_sentence(buf, &limits) {
            Ok(Some((sentence, used))) => {
                buf.drain(..used.min(buf.len()));
                session.handle(&sentence, now_s)
            }
            Ok(None) => return (wire, false),
            Err(e) => {
                buf.clear();
                Outcome::Close(vec![fatal(format!("invalid API framing: {e}"))])
            }
        };
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
}

/// Serves one connection until the peer leaves, a `!fatal` is sent, or `cancel` fires.
pub async fn serve(mut stream: TcpStream, mut session: Session, cancel: CancellationToken) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let read = tokio::select! {
            () = cancel.cancelled() => return,
            r = stream.read(&mut chunk) => r,
        };
        match read {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "API session read failed");
                return;
            }
        }
        let (wire, close) =
            answer_buffered(&mut session, &mut buf, unix_seconds(SystemTime::now()));
        if !wire.is_empty() {
            let written = tokio::select! {
                () = cancel.cancelled() => return,
                r = stream.write_all(&wire) => r,
            };
            if let Err(e) = written {
                tracing::debug!(%peer, error = %e, "API session write failed");
                return;
            }
        }
        if close {
            tracing::debug!(%peer, "API session closed by the router");
            let _ = stream.shutdown().await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    const NOW: f64 = 1_732_050_000.0;

    fn session() -> Session {
        let t = Topology::demo();
        let model = RouterModel::from_topology(&t, "lis1-bng1", SystemTime::now()).expect("router");
        Session::new(Arc::new(model), Arc::new(t.credentials.clone()))
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
