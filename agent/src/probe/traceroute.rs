//! Traceroute on demand: ICMP echoes with increasing TTL (hop limit on IPv6); each router
//! on the way answers "time exceeded" from its own address, the target answers the echo.
//!
//! The TTL is a socket option in surge-ping, so every hop gets its own short-lived raw
//! socket (this is diagnostics on demand, not the steady-state probing that shares one
//! socket). Only a raw socket receives the "time exceeded" answers: a datagram ping
//! socket gets ICMP errors on its error queue, which surge-ping does not read. Hops are
//! probed in waves of [`WAVE`] TTLs at once, so a 30-hop path with silent routers costs a
//! few timeouts rather than thirty, while a short path does not send 30 probes into the
//! target; the wave in which the target answers is the last.

use super::ProbeError;
use super::icmp::{Answer, Family, SocketKind, classify, open_client, payload, source};
use super::join_all;
use serde::Serialize;
use std::net::IpAddr;
use std::time::Duration;
use surge_ping::{PingIdentifier, PingSequence, SurgeError};

/// TTLs probed at once.
pub const WAVE: u8 = 8;
/// Upper bound of `max_hops`: IP's TTL is 8 bits and real paths stay far below 64.
pub const MAX_HOPS: u8 = 64;
/// Payload of a traceroute echo.
const PAYLOAD: usize = 32;

/// One hop of a path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    pub ttl: u8,
    /// Who answered at this TTL; `None` when nobody did within the timeout.
    pub address: Option<IpAddr>,
    pub rtt_ms: Option<f64>,
}

/// What one TTL's probe found.
struct Probe {
    hop: Hop,
    /// The target answered, or a router said it is unreachable: the path ends here.
    last: bool,
    /// The echo could not leave this host.
    send_error: Option<std::io::Error>,
}

/// The path to `target`, hop by hop, up to `max_hops` (1..=64) TTLs, each probe waiting
/// up to `timeout`. Ends at the hop where the target answers (or a router reports it
/// unreachable); when neither happens all `max_hops` hops are returned.
pub async fn traceroute(
    target: IpAddr,
    max_hops: u8,
    timeout: Duration,
) -> Result<Vec<Hop>, ProbeError> {
    let max_hops = max_hops.clamp(1, MAX_HOPS);
    let family = Family::of(&target);
    let ident: u16 = rand::random();
    let payload = payload(PAYLOAD);
    let mut hops = Vec::with_capacity(usize::from(max_hops));
    let mut first = 1u8;
    while first <= max_hops {
        let last = first.saturating_add(WAVE - 1).min(max_hops);
        let mut clients = Vec::with_capacity(usize::from(WAVE));
        for ttl in first..=last {
            let (client, kind) = open_client(family, SocketKind::Raw, Some(u32::from(ttl)), None)?;
            if kind != SocketKind::Raw {
                return Err(ProbeError::TracerouteNeedsRaw);
            }
            clients.push((ttl, client));
        }
        let probes = clients.iter().map(|(ttl, client)| {
            let payload = payload.as_slice();
            async move { probe_hop(client, target, ident, *ttl, timeout, payload).await }
        });
        let mut wave = join_all(probes.collect()).await;
        drop(clients);
        if first == 1 && wave.iter().all(|p| p.send_error.is_some()) {
            // Not one probe left the host: there is no route, which is an answer in
            // itself rather than a path of silent hops.
            if let Some(source) = wave.iter_mut().find_map(|p| p.send_error.take()) {
                return Err(ProbeError::Send { target, source });
            }
        }
        let mut reached = false;
        for probe in wave {
            hops.push(probe.hop);
            if probe.last {
                reached = true;
                break;
            }
        }
        if reached {
            break;
        }
        first = last.saturating_add(1);
        if last == max_hops {
            break;
        }
    }
    Ok(hops)
}

async fn probe_hop(
    client: &surge_ping::Client,
    target: IpAddr,
    ident: u16,
    ttl: u8,
    timeout: Duration,
    payload: &[u8],
) -> Probe {
    let mut pinger = client.pinger(target, PingIdentifier(ident)).await;
    pinger.timeout(timeout);
    let silent = Probe {
        hop: Hop {
            ttl,
            address: None,
            rtt_ms: None,
        },
        last: false,
        send_error: None,
    };
    // The sequence number is the TTL: unique within this traceroute, whose identifier is
    // its own, so each hop's answer reaches the probe that sent it.
    match pinger.ping(PingSequence(u16::from(ttl)), payload).await {
        Ok((packet, rtt)) => Probe {
            hop: Hop {
                ttl,
                address: Some(source(&packet)),
                rtt_ms: Some(rtt.as_secs_f64() * 1_000.0),
            },
            last: classify(&packet) != Answer::TimeExceeded,
            send_error: None,
        },
        Err(SurgeError::Timeout { .. }) => silent,
        Err(SurgeError::IOError(e)) => Probe {
            send_error: Some(e),
            ..silent
        },
        Err(e) => {
            tracing::debug!(%target, ttl, error = %e, "traceroute probe failed");
            silent
        }
    }
}
