//! Helpers for tests that start a whole agent: TLS material it can start with, and its
//! own HTTP endpoint read as JSON.

#![allow(dead_code)]

use ispvm_transport::TlsMaterial;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;

/// A self-signed identity: the uplink needs TLS material even when no server answers.
pub fn tls() -> TlsMaterial {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["agent-t".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let der: CertificateDer<'static> = cert.der().clone();
    TlsMaterial {
        ca: vec![der.clone()],
        chain: vec![der],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        crls: Vec::new(),
        crl_path: None,
    }
}

/// Reads a JSON document over plain HTTP/1.1 (the agent's own endpoint).
pub async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}
