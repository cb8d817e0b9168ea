//! UDP echo probes (RFC 862, port 7, or any service that sends a datagram back as it
//! came): ping where ICMP is filtered or the agent may not open ICMP sockets, and the
//! way the simulator's routers answer pings along their paths (`docs/simulation.md`).
//!
//! Each round opens one UDP socket (bound to the agent's `source_address` when set) and
//! sends `count` datagrams, one every `spacing`. Each carries a marker, a token drawn for
//! the round, its sequence number and the time it was sent; padding brings it to
//! `payload_size` (at least the [`HEADER_LEN`] bytes of that header). A reply counts only
//! if it carries this round's marker and token, a sequence number of the round not
//! answered yet, and exactly the send time recorded for it: anything else (a late reply
//! of an earlier round, a stranger's datagram, a corrupted echo) is ignored. The RTT is
//! the time since the echoed send time. No reply within `timeout` of its send is a loss;
//! so is an ICMP "port unreachable" (the socket reports it as a refused receive, which
//! cannot be told apart per echo, so those echoes simply time out).

use super::config::RoundPlan;
use super::stats::{EchoOutcome, RoundStats};
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Marks the agent's echo datagrams ("ISPVisualMonitor echo", version 1).
const MARKER: [u8; 4] = *b"IVE1";
/// Marker, token (8 bytes), sequence number (4), send time in ns (8).
pub const HEADER_LEN: usize = 24;

/// The instant send times are counted from (process-wide, so they fit in 8 bytes).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// The datagram of echo `seq` of the round `token`, sent at `sent_ns`.
fn datagram(token: u64, seq: u32, sent_ns: u64, payload_size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_size.max(HEADER_LEN));
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&token.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&sent_ns.to_be_bytes());
    out.resize(payload_size.max(HEADER_LEN), 0);
    out
}

/// `(sequence number, send time)` of a reply to the round `token`, if it is one.
fn parse(reply: &[u8], token: u64) -> Option<(u32, u64)> {
    if reply.get(..4)? != MARKER {
        return None;
    }
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(reply.get(at..at + 8)?.try_into().ok()?))
    };
    if word(4)? != token {
        return None;
    }
    let seq = u32::from_be_bytes(reply.get(12..16)?.try_into().ok()?);
    Some((seq, word(16)?))
}

/// One round of `plan.count` echoes to `target`, from `source` when given. `Err` only
/// when the socket cannot be opened (the round did not run).
pub async fn udp_echo_round(
    target: SocketAddr,
    source: Option<IpAddr>,
    plan: &RoundPlan,
) -> std::io::Result<RoundStats> {
    let socket = crate::source_address::udp_for(target, source).await?;
    socket.connect(target).await?;
    Ok(round_on(&socket, target, plan).await)
}

async fn round_on(socket: &UdpSocket, target: SocketAddr, plan: &RoundPlan) -> RoundStats {
    let count = usize::from(plan.count);
    let token: u64 = rand::random();
    let mut outcomes: Vec<Option<EchoOutcome>> = vec![None; count];
    // Send time of each echo (ns since the epoch) and when it stops waiting.
    let mut sent: Vec<Option<(u64, Instant)>> = vec![None; count];
    let start = Instant::now();
    let mut next_send = 0usize;
    let mut buf = vec![0u8; plan.payload_size.max(HEADER_LEN) + 1];
    loop {
        let now = Instant::now();
        // Send every echo that is due.
        while next_send < count {
            let due = start
                + plan
                    .spacing
                    .saturating_mul(u32::try_from(next_send).unwrap_or(u32::MAX));
            if due > now {
                break;
            }
            let at = Instant::now();
            let sent_ns = nanos_since_epoch(at);
            let seq = u32::try_from(next_send).unwrap_or(u32::MAX);
            let bytes = datagram(token, seq, sent_ns, plan.payload_size);
            match socket.send(&bytes).await {
                Ok(_) => {
                    if let Some(slot) = sent.get_mut(next_send) {
                        *slot = Some((sent_ns, at + plan.timeout));
                    }
                }
                Err(e) => {
                    if let Some(slot) = outcomes.get_mut(next_send) {
                        *slot = Some(EchoOutcome::SendFailed(e.kind()));
                    }
                }
            }
            next_send += 1;
        }
        // Echoes whose wait is over are lost.
        let now = Instant::now();
        for (outcome, sent) in outcomes.iter_mut().zip(&sent) {
            if outcome.is_none()
                && let Some((_, deadline)) = sent
                && *deadline <= now
            {
                *outcome = Some(EchoOutcome::Timeout);
            }
        }
        if next_send >= count && outcomes.iter().all(Option::is_some) {
            break;
        }
        // Wait for a reply, the next send, or the next deadline.
        let next_due = (next_send < count).then(|| {
            start
                + plan
                    .spacing
                    .saturating_mul(u32::try_from(next_send).unwrap_or(u32::MAX))
        });
        let next_deadline = outcomes
            .iter()
            .zip(&sent)
            .filter(|(o, _)| o.is_none())
            .filter_map(|(_, s)| s.map(|(_, d)| d))
            .min();
        let wake = match (next_due, next_deadline) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => now + Duration::from_millis(1),
        };
        let received =
            tokio::time::timeout_at(tokio::time::Instant::from_std(wake), socket.recv(&mut buf))
                .await;
        let Ok(Ok(n)) = received else {
            // A deadline, or a receive error (an ICMP error queued on the socket).
            continue;
        };
        let arrived = Instant::now();
        let Some((seq, sent_ns)) = buf.get(..n).and_then(|reply| parse(reply, token)) else {
            continue;
        };
        let index = usize::try_from(seq).unwrap_or(usize::MAX);
        let (Some(slot @ None), Some(Some((expected_ns, _)))) =
            (outcomes.get_mut(index), sent.get(index))
        else {
            continue;
        };
        if *expected_ns != sent_ns {
            continue;
        }
        let rtt = Duration::from_nanos(nanos_since_epoch(arrived).saturating_sub(sent_ns));
        *slot = Some(EchoOutcome::Reply {
            rtt,
            from: target.ip(),
        });
    }
    let outcomes: Vec<EchoOutcome> = outcomes.into_iter().flatten().collect();
    RoundStats::from_outcomes(&outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn plan(count: u16, timeout_ms: u64) -> RoundPlan {
        RoundPlan {
            count,
            spacing: Duration::from_millis(5),
            timeout: Duration::from_millis(timeout_ms),
            payload_size: 56,
        }
    }

    /// An echo service that answers each datagram `copies` times, and first a datagram
    /// of its own that is not an echo.
    async fn echo_server(copies: usize, mangle: bool) -> SocketAddr {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = socket.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let _ = socket.send_to(b"stranger", peer).await;
                let mut reply = buf[..n].to_vec();
                if mangle && let Some(b) = reply.get_mut(20) {
                    *b ^= 0xFF;
                }
                for _ in 0..copies {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        addr
    }

    #[test]
    fn datagrams_round_trip_and_strangers_are_refused() {
        let d = datagram(7, 3, 99, 10);
        assert_eq!(d.len(), HEADER_LEN, "never shorter than the header");
        assert_eq!(parse(&d, 7), Some((3, 99)));
        assert_eq!(parse(&d, 8), None, "another round");
        assert_eq!(parse(&d[..20], 7), None, "truncated");
        assert_eq!(parse(b"IVE1", 7), None);
        assert_eq!(datagram(1, 1, 1, 100).len(), 100);
    }

    #[tokio::test]
    async fn echoes_are_answered_once_each() {
        let server = echo_server(2, false).await;
        let stats = udp_echo_round(server, None, &plan(5, 500))
            .await
            .expect("round");
        assert_eq!((stats.sent, stats.received), (5, 5), "{stats:?}");
        assert_eq!(stats.loss_pct, 0.0);
        assert!(stats.avg_ms.is_some_and(|ms| ms < 100.0));
        assert!(stats.jitter_ms.is_some());
    }

    #[tokio::test]
    async fn corrupted_and_missing_replies_are_losses() {
        let mangled = echo_server(1, true).await;
        let stats = udp_echo_round(mangled, None, &plan(3, 100))
            .await
            .expect("round");
        assert_eq!((stats.sent, stats.received), (3, 0), "{stats:?}");
        assert_eq!(stats.loss_pct, 100.0);
        // Nothing listens there: every echo is lost, none is an error of the round.
        let closed = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let stats = udp_echo_round(
            closed,
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7))),
            &plan(3, 100),
        )
        .await
        .expect("round");
        assert_eq!((stats.sent, stats.received), (3, 0));
    }
}
