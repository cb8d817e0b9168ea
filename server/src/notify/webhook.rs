//! Webhook delivery: an HTTP POST of the JSON payload, signed so the receiver can tell
//! it came from this server and was not changed on the way.

use super::channel::WebhookSettings;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// The signature header: `sha256=<hex HMAC-SHA256 of the exact body>`.
pub const SIGNATURE_HEADER: &str = "X-ISPVM-Signature";
/// The idempotency key header: `tenant:incident:seq:channel`, the same on every retry.
pub const DELIVERY_HEADER: &str = "X-ISPVM-Delivery";
/// Most of a receiver's answer kept in the error (enough to see why it refused).
const ERROR_BODY_CHARS: usize = 200;

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the signing key is missing (set secret.webhook_secret)")]
    NoSecret,
    #[error("the receiver answered {status}: {body}")]
    Status {
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("request failed: {0}")]
    Transport(#[source] reqwest::Error),
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The HTTP client every webhook attempt shares: rustls with the system's roots, no
/// redirects (a receiver that moved is a configuration to fix, not something to follow
/// with a signed body).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ispvm-notifier/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Posts `body` once; any answer but 2xx, and any transport error, is a failure.
pub async fn send(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    secret: Option<&str>,
    delivery_id: &str,
    body: Vec<u8>,
) -> Result<(), WebhookError> {
    let secret = secret.ok_or(WebhookError::NoSecret)?;
    let sig = signature(secret.as_bytes(), &body);
    let resp = client
        .post(&settings.url)
        .timeout(Duration::from_millis(settings.timeout_ms))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, sig)
        .header(DELIVERY_HEADER, delivery_id)
        .body(body)
        .send()
        .await
        .map_err(WebhookError::Transport)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    Err(WebhookError::Status {
        status,
        body: text.chars().take(ERROR_BODY_CHARS).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_rfc_4231_hmac() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
