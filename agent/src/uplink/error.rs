//! Why a batch did not get an answer, with the cause kept as the error's source.

use ispvm_proto::codec::{DecodeError, EncodeError};
use ispvm_transport::quic::EndpointError;
use std::error::Error;
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// A cause of any type (quinn, rustls, hyper, I/O), kept for `source()`.
pub type Cause = Box<dyn Error + Send + Sync>;

/// Why a batch did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("cannot connect to the server at {addr}: {}", chain(.source.as_ref()))]
    Connect {
        addr: SocketAddr,
        #[source]
        source: Cause,
    },
    #[error("cannot resolve the server address {target:?}: {source}")]
    Resolve {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no server address is configured")]
    NoAddress,
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The exchange broke. The message walks the causes: quinn's "connection lost" alone
    /// would hide the server's close reason (e.g. "too many connections").
    #[error("stream failed: {}", chain(.0.as_ref()))]
    Stream(#[source] Cause),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("cannot compress the batch: {0}")]
    Compress(#[source] std::io::Error),
    #[error("server sent an unreadable acknowledgement{}: {source}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    BadAck {
        status: Option<u16>,
        #[source]
        source: DecodeError,
    },
    #[error("QUIC failed and no HTTPS fallback is configured")]
    NoFallback,
}

impl UplinkError {
    pub(crate) fn connect(addr: SocketAddr, source: impl Into<Cause>) -> Self {
        UplinkError::Connect {
            addr,
            source: source.into(),
        }
    }

    pub(crate) fn stream(source: impl Into<Cause>) -> Self {
        UplinkError::Stream(source.into())
    }
}

/// An error and its causes on one line.
fn chain(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        // Some errors repeat their source in their own message.
        if !text.ends_with(&next) {
            let _ = write!(text, ": {next}");
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_and_shown() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = UplinkError::connect("127.0.0.1:4433".parse().expect("addr"), io);
        assert_eq!(
            e.to_string(),
            "cannot connect to the server at 127.0.0.1:4433: refused"
        );
        let source = e.source().expect("source kept");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the I/O error itself");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
