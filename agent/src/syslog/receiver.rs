//! The sockets: one UDP socket and one TCP listener, each on its own task.
//!
//! - UDP: one message per datagram (RFC 5426); datagrams over `max_udp_bytes` are dropped
//!   as malformed. When the queue to the normaliser is full, datagrams are dropped and
//!   counted (the socket must keep draining).
//! - TCP (RFC 6587): each frame is either octet-counted (`LEN SP MSG`) or ends at LF
//!   (CR LF and NUL tolerated), decided per frame, so a sender may mix them. Frames over
//!   `max_tcp_frame_bytes` are skipped (and counted) without buffering them. At most
//!   `max_tcp_connections` connections are served; connections from addresses that map
//!   to no device are refused when unknown sources are dropped; an idle connection is
//!   closed after `tcp_idle_timeout_ms`. A full queue slows TCP senders down instead of
//!   losing their messages.

use super::Transport;
use super::config::SyslogConfig;
use super::pipeline::{Admission, Gate, RawMessage};
use crate::internal_events::InternalEvent;
use crate::internal_events::syslog::{Dropped, Malformed, Refused, SyslogEvent, SyslogMetrics};
use ispvm_proto::time::now_ms;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// Bytes read from a TCP connection at once.
const READ_CHUNK: usize = 16 * 1024;
/// Longest octet count accepted in a frame header (digits).
const OCTET_COUNT_DIGITS: usize = 9;
/// Pause after a socket error, so a persistent one cannot spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The bound sockets.
#[derive(Debug)]
pub struct Bound {
    pub udp: Option<UdpSocket>,
    pub tcp: Option<TcpListener>,
}

impl Bound {
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|s| s.local_addr().ok())
    }
}

/// Binds the configured sockets (port 0 picks a free port).
pub async fn bind(config: &SyslogConfig) -> io::Result<Bound> {
    let udp = if config.udp {
        Some(UdpSocket::bind(SocketAddr::new(config.bind, config.udp_port)).await?)
    } else {
        None
    };
    let tcp = if config.tcp {
        Some(TcpListener::bind(SocketAddr::new(config.bind, config.tcp_port)).await?)
    } else {
        None
    };
    Ok(Bound { udp, tcp })
}

/// Receives datagrams until the queue closes.
pub async fn run_udp(
    socket: UdpSocket,
    max_bytes: usize,
    gate: Arc<Gate>,
    queue: mpsc::Sender<RawMessage>,
    metrics: Arc<SyslogMetrics>,
) {
    // One byte more than allowed: a datagram that fills it was longer than the limit
    // (the kernel truncates what does not fit).
    let mut buf = vec![0u8; max_bytes + 1];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "syslog UDP receive error");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let source = peer.ip().to_canonical();
        SyslogEvent::Received {
            transport: Transport::Udp,
        }
        .emit(&metrics);
        if n > max_bytes {
            SyslogEvent::Malformed {
                transport: Transport::Udp,
                source,
                reason: Malformed::Oversize,
                error: None,
            }
            .emit(&metrics);
            continue;
        }
        let now = Instant::now();
        let Admission::Admit(device) = gate.admit(source, Transport::Udp, now) else {
            continue;
        };
        let raw = RawMessage {
            source,
            device,
            transport: Transport::Udp,
            bytes: buf[..n].to_vec(),
            received_ms: now_ms(),
            received_at: now,
        };
        match queue.try_send(raw) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => SyslogEvent::Dropped {
                reason: Dropped::QueueFull,
                count: 1,
            }
            .emit(&metrics),
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// TCP limits.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub max_frame: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl TcpLimits {
    pub fn from_config(config: &SyslogConfig) -> TcpLimits {
        TcpLimits {
            max_frame: config.max_tcp_frame_bytes,
            max_connections: config.max_tcp_connections,
            idle_timeout: config.tcp_idle_timeout(),
        }
    }
}

/// Accepts connections until the queue closes; connections end with this task.
pub async fn run_tcp(
    listener: TcpListener,
    limits: TcpLimits,
    gate: Arc<Gate>,
    queue: mpsc::Sender<RawMessage>,
    metrics: Arc<SyslogMetrics>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Dropping the set (this task aborted) aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = connections.join_next() => continue,
            () = queue.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait and go on.
                tracing::warn!(error = %e, "syslog TCP accept failed");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let source = peer.ip().to_canonical();
        if gate.device(source).is_none() {
            SyslogEvent::TcpRefused {
                source,
                reason: Refused::UnknownSource,
            }
            .emit(&metrics);
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            SyslogEvent::TcpRefused {
                source,
                reason: Refused::ConnectionLimit,
            }
            .emit(&metrics);
            continue;
        };
        let (gate, queue, metrics) = (gate.clone(), queue.clone(), metrics.clone());
        connections.spawn(async move {
            SyslogEvent::TcpOpened { source }.emit(&metrics);
            let why = connection(stream, source, limits, &gate, &queue, &metrics).await;
            SyslogEvent::TcpClosed { source, why }.emit(&metrics);
            drop(permit);
        });
    }
}

/// Serves one connection; returns why it ended.
async fn connection(
    mut stream: TcpStream,
    source: std::net::IpAddr,
    limits: TcpLimits,
    gate: &Gate,
    queue: &mpsc::Sender<RawMessage>,
    metrics: &SyslogMetrics,
) -> &'static str {
    let mut framer = Framer::new(limits.max_frame);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut frames = Vec::new();
    loop {
        let read = tokio::time::timeout(limits.idle_timeout, stream.read(&mut chunk)).await;
        let eof = match read {
            Err(_) => return "idle timeout",
            Ok(Err(_)) => return "read error",
            Ok(Ok(0)) => {
                framer.finish(&mut frames);
                true
            }
            Ok(Ok(n)) => {
                framer.push(&chunk[..n], &mut frames);
                false
            }
        };
        for frame in frames.drain(..) {
            SyslogEvent::Received {
                transport: Transport::Tcp,
            }
            .emit(metrics);
            let bytes = match frame {
                Frame::Message(b) => b,
                other => {
                    let reason = if other == Frame::Oversize {
                        Malformed::Oversize
                    } else {
                        Malformed::Truncated
                    };
                    SyslogEvent::Malformed {
                        transport: Transport::Tcp,
                        source,
                        reason,
                        error: None,
                    }
                    .emit(metrics);
                    continue;
                }
            };
            let now = Instant::now();
            let Admission::Admit(device) = gate.admit(source, Transport::Tcp, now) else {
                continue;
            };
            let raw = RawMessage {
                source,
                device,
                transport: Transport::Tcp,
                bytes,
                received_ms: now_ms(),
                received_at: now,
            };
            if queue.send(raw).await.is_err() {
                return "receiver stopping";
            }
        }
        if eof {
            return "closed by peer";
        }
    }
}

/// What a framer cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    /// A frame over the limit, skipped.
    Oversize,
    /// An octet-counted frame the peer did not finish before closing.
    Truncated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    No,
    /// The rest of an over-long octet-counted frame.
    Bytes(usize),
    /// The rest of an over-long LF-terminated frame.
    ToLf,
}

/// RFC 6587 framing, octet counting or LF termination per frame, with bounded memory:
/// the buffer never holds more than the frame limit plus a header and one read.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max: usize,
    skip: Skip,
}

impl Framer {
    pub fn new(max_frame: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            max: max_frame,
            skip: Skip::No,
        }
    }

    /// Bytes buffered, waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes read from the connection; complete frames are appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Frame>) {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            match self.skip {
                Skip::Bytes(n) => {
                    let take = n.min(self.buf.len() - pos);
                    pos += take;
                    if take < n {
                        self.skip = Skip::Bytes(n - take);
                        break;
                    }
                    self.skip = Skip::No;
                }
                Skip::ToLf => match self.buf[pos..].iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        pos += i + 1;
                        self.skip = Skip::No;
                    }
                    None => {
                        pos = self.buf.len();
                        break;
                    }
                },
                Skip::No => {}
            }
            // Separators between frames.
            while pos < self.buf.len() && matches!(self.buf[pos], b'\n' | b'\r' | b'\0' | b' ') {
                pos += 1;
            }
            if pos >= self.buf.len() {
                break;
            }
            let rest = &self.buf[pos..];
            if matches!(rest[0], b'1'..=b'9') {
                let digits = rest
                    .iter()
                    .take(OCTET_COUNT_DIGITS + 1)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                match rest.get(digits) {
                    None if digits <= OCTET_COUNT_DIGITS => break, // header incomplete
                    Some(b' ') if digits <= OCTET_COUNT_DIGITS => {
                        let len = rest[..digits]
                            .iter()
                            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
                        let header = digits + 1;
                        if len > self.max {
                            out.push(Frame::Oversize);
                            pos += header;
                            self.skip = Skip::Bytes(len);
                            continue;
                        }
                        if rest.len() < header + len {
                            break; // frame incomplete
                        }
                        out.push(Frame::Message(rest[header..header + len].to_vec()));
                        pos += header + len;
                        continue;
                    }
                    // Digits not followed by a space: an LF-terminated frame that starts
                    // with a digit.
                    _ => {}
                }
            }
            let rest = &self.buf[pos..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if i > self.max {
                        out.push(Frame::Oversize);
                    } else {
                        out.push(Frame::Message(trim_cr(&rest[..i]).to_vec()));
                    }
                    pos += i + 1;
                }
                None => {
                    if rest.len() > self.max {
                        out.push(Frame::Oversize);
                        pos = self.buf.len();
                        self.skip = Skip::ToLf;
                    }
                    break;
                }
            }
        }
        self.buf.drain(..pos);
    }

    /// The peer closed: a last LF-less frame counts as a frame (what senders that omit
    /// the final LF expect); an incomplete octet-counted frame is lost.
    pub fn finish(&mut self, out: &mut Vec<Frame>) {
        let rest = std::mem::take(&mut self.buf);
        if self.skip != Skip::No {
            self.skip = Skip::No;
            return;
        }
        let start = rest
            .iter()
            .position(|b| !matches!(b, b'\n' | b'\r' | b'\0' | b' '))
            .unwrap_or(rest.len());
        let rest = &rest[start..];
        if rest.is_empty() {
            return;
        }
        let digits = rest
            .iter()
            .take(OCTET_COUNT_DIGITS + 1)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if matches!(rest[0], b'1'..=b'9')
            && digits <= OCTET_COUNT_DIGITS
            && rest.get(digits).is_none_or(|&b| b == b' ')
        {
            out.push(Frame::Truncated); // an octet-counted frame cut short
            return;
        }
        if rest.len() > self.max {
            out.push(Frame::Oversize);
        } else {
            out.push(Frame::Message(trim_cr(rest).to_vec()));
        }
    }
}

fn trim_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out);
            assert!(f.buffered() <= max + OCTET_COUNT_DIGITS + 1 + c.len());
        }
        f.finish(&mut out);
        out
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(s.as_bytes().to_vec())
    }

    #[test]
    fn lf_framing() {
        assert_eq!(
            frames(100, &[b"<13>a\n<13>b\r\n", b"<13>c"]),
            vec![msg("<13>a"), msg("<13>b"), msg("<13>c")]
        );
    }

    #[test]
    fn octet_counting_split_anywhere() {
        let stream = b"5 <13>a6 <13>bb\n7 <13>ccc";
        let all = frames(100, &[stream]);
        assert_eq!(all, vec![msg("<13>a"), msg("<13>bb"), msg("<13>ccc")]);
        // Every split point gives the same frames.
        for cut in 0..stream.len() {
            assert_eq!(
                frames(100, &[&stream[..cut], &stream[cut..]]),
                all,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn mixed_framing_and_lf_inside_counted_frames() {
        let out = frames(100, &[b"<13>lf\n12 <13>two\nline<13>next\n"]);
        assert_eq!(
            out,
            vec![msg("<13>lf"), msg("<13>two\nline"), msg("<13>next")]
        );
    }

    #[test]
    fn oversize_frames_are_skipped() {
        let big = vec![b'x'; 300];
        let mut counted = b"300 ".to_vec();
        counted.extend_from_slice(&big);
        counted.extend_from_slice(b"3 <1>");
        let out = frames(100, &[&counted[..50], &counted[50..]]);
        assert_eq!(out, vec![Frame::Oversize, msg("<1>")]);

        let mut lf = big.clone();
        lf.extend_from_slice(b"\n<13>after\n");
        let out = frames(100, &[&lf[..120], &lf[120..]]);
        assert_eq!(out, vec![Frame::Oversize, msg("<13>after")]);
        // An absurd count does not allocate; the stream just skips.
        let out = frames(100, &[b"999999999 <13>x"]);
        assert_eq!(out, vec![Frame::Oversize]);
        // More digits than any count: taken as an LF frame.
        let out = frames(100, &[b"12345678901 x\n"]);
        assert_eq!(out, vec![msg("12345678901 x")]);
    }

    #[test]
    fn truncated_counted_frame_at_eof_is_dropped() {
        assert_eq!(frames(100, &[b"10 <13>ab"]), vec![Frame::Truncated]);
        assert_eq!(
            frames(100, &[b"<13>a\n10"]),
            vec![msg("<13>a"), Frame::Truncated]
        );
    }
}
