//! The UDP echo service of every simulated router (RFC 862: a datagram comes back as it
//! came), the simulator's answer to ping.
//!
//! Nothing in an unprivileged process can answer ICMP for an address of its own, and
//! the kernel answers every ping to 127.0.0.1 itself, whatever is cut. So each router
//! gets a UDP port that behaves as its ICMP echo would on a real network: it answers
//! only while a path joins the sender's router and this one ([`crate::paths`]), drops
//! each direction with the path's loss and holds the reply for the path's round trip.
//! It answers while the router's management plane is down (the API is dead, pings are
//! fine: the distinction the root-cause analysis draws), and not while the router is
//! off or rebooting. A sender outside the model (an address that is not attached)
//! gets an answer whenever the router is on.

use crate::network::Network;
use crate::router_state::unix_seconds;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Largest datagram echoed (a jumbo frame's payload); larger ones are dropped, as a
/// router would drop what exceeds its MTU.
pub const MAX_ECHO_DATAGRAM: usize = 9_000;
/// Replies waiting out a path's delay at once, per router. Beyond it further echoes are
/// dropped: a full queue loses packets.
pub const MAX_DELAYED_ECHOES: usize = 4_096;

/// Answers echoes on `socket` for router `router` until `cancel`.
pub(crate) async fn serve(
    socket: UdpSocket,
    net: Arc<Network>,
    router: usize,
    cancel: CancellationToken,
) {
    let socket = Arc::new(socket);
    let delayed = Arc::new(Semaphore::new(MAX_DELAYED_ECHOES));
    // One byte more than the limit tells an oversized datagram from one that fits.
    let mut buf = vec![0u8; MAX_ECHO_DATAGRAM + 1];
    loop {
        let received = tokio::select! {
            () = cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let (n, peer) = match received {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(router, error = %e, "echo receive failed");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(10)) => continue,
                }
            }
        };
        let Some(datagram) = buf.get(..n).filter(|d| d.len() <= MAX_ECHO_DATAGRAM) else {
            continue;
        };
        let Some(delay) = round_trip(&net, peer, router) else {
            continue;
        };
        if delay.is_zero() {
            let _ = socket.send_to(datagram, peer).await;
            continue;
        }
        let Ok(permit) = Arc::clone(&delayed).try_acquire_owned() else {
            continue;
        };
        let (socket, net, cancel, datagram) = (
            Arc::clone(&socket),
            Arc::clone(&net),
            cancel.clone(),
            datagram.to_vec(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            // The path may have broken while the reply was on its way.
            if reachable(&net, peer, router) {
                let _ = socket.send_to(&datagram, peer).await;
            }
        });
    }
}

/// Whether an echo from `peer` gets through both ways now; the delay of its reply if so.
fn round_trip(net: &Network, peer: SocketAddr, router: usize) -> Option<Duration> {
    let now = unix_seconds(SystemTime::now());
    let path = net.reach(peer.ip(), router, now).quality()?;
    // An unattached sender has no path of its own: the router must still be on.
    net.path(router, router, now)?;
    if path.drops() || path.drops() {
        return None;
    }
    Some(path.delay.saturating_mul(2))
}

/// Whether `peer` and the router are joined now.
fn reachable(net: &Network, peer: SocketAddr, router: usize) -> bool {
    let now = unix_seconds(SystemTime::now());
    net.reach(peer.ip(), router, now).is_up() && net.path(router, router, now).is_some()
}
