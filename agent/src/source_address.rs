//! The local source address every outgoing socket of the agent is bound to, when the
//! configuration sets one (`source_address`).
//!
//! On a multi-homed host (a management VLAN beside the customer-facing one, a loopback
//! the routers' firewalls allow) the kernel's choice of source address by route is not
//! always the one the routers and the server expect; the simulator also tells agents
//! apart by their source address (`docs/simulation.md`). The address applies to
//! connections of its own family; an IPv6 peer of an agent with an IPv4 source address
//! (or the reverse) gets the kernel's choice, since a socket cannot mix the two.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// The address to bind for talking to `peer`: `source` when it is of `peer`'s family.
pub fn for_peer(peer: IpAddr, source: Option<IpAddr>) -> Option<IpAddr> {
    source.filter(|s| s.is_ipv4() == peer.is_ipv4())
}

/// The local address (port chosen by the system) of a socket talking to `peer`.
pub fn local_for(peer: IpAddr, source: Option<IpAddr>) -> SocketAddr {
    match for_peer(peer, source) {
        Some(ip) => SocketAddr::new(ip, 0),
        None if peer.is_ipv4() => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        None => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    }
}

/// Connects to `peer` over TCP from `source` (when given and of its family).
pub async fn tcp_connect(peer: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(ip) = for_peer(peer.ip(), source) else {
        return TcpStream::connect(peer).await;
    };
    let socket = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(peer).await
}

/// A UDP socket for talking to `peer`, bound to `source` (when given and of its family).
pub async fn udp_for(peer: SocketAddr, source: Option<IpAddr>) -> io::Result<UdpSocket> {
    UdpSocket::bind(local_for(peer.ip(), source)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_leave_from_the_source_address() {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("listen");
        let server = listener.local_addr().expect("addr");
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
        let _client = tcp_connect(server, Some(source)).await.expect("connect");
        let (_, peer) = listener.accept().await.expect("accept");
        assert_eq!(peer.ip(), source);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(for_peer(v6, Some(source)), None, "another family");
        assert_eq!(
            local_for(v6, Some(source)),
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
        );
        let udp = udp_for(server, Some(source)).await.expect("bind");
        assert_eq!(udp.local_addr().expect("addr").ip(), source);
    }
}
