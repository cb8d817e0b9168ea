//! Ports for test servers.
//!
//! Most servers under test bind port 0 and report what they got; these are for the few
//! that must be told a port up front (a child process, a configuration file). The port
//! is free when returned; another process could take it before it is used, which on a
//! test machine is rare enough to accept.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};

/// A TCP port free on 127.0.0.1 right now.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port on loopback")
}

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port on loopback")
}
