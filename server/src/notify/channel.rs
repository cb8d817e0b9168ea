//! Notification channels: where a tenant's incident transitions go, as operators set
//! them through `/api/v1/notification-channels`.
//!
//! The spec is stored as it is given (validated); the secrets (a webhook's signing key,
//! an SMTP password) travel apart, write-only, and are sealed under the master key
//! like credential sets.

use crate::store::CatalogError;
use crate::store::catalog::validate;
use ispvm_actors::alert::Level;
use serde::{Deserialize, Serialize};

ispvm_proto::text_enum! {
    /// How a channel delivers.
    #[derive(utoipa::ToSchema)]
    pub enum ChannelKind {
        /// An HTTP POST of the JSON payload, signed with HMAC-SHA256.
        Webhook = "webhook",
        /// An email over SMTP.
        Email = "email",
    }
}

ispvm_proto::text_enum! {
    /// Whether the SMTP session must be encrypted with STARTTLS.
    #[derive(utoipa::ToSchema)]
    pub enum StartTls {
        /// Refuse to send unless the server offers STARTTLS (the default: incident
        /// mail names devices and subscriber counts).
        Required = "required",
        /// Use STARTTLS when the server offers it, plain text otherwise.
        Opportunistic = "opportunistic",
        /// Never encrypt (a relay on the same host).
        None = "none",
    }
}

/// Longest URL, host name, address or CA accepted.
const MAX_URL_LEN: usize = 2048;
const MAX_CA_LEN: usize = 64 * 1024;
const MAX_RECIPIENTS: usize = 50;
const MAX_SECRET_LEN: usize = 512;
/// Bounds of a webhook's timeout: long enough for a slow receiver, short enough that one
/// dead receiver does not hold the worker.
pub const MIN_TIMEOUT_MS: u64 = 100;
pub const MAX_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn yes() -> bool {
    true
}

fn default_starttls() -> StartTls {
    StartTls::Required
}

/// Where a webhook channel posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// `https://…` (or `http://…` for a receiver on a trusted network).
    pub url: String,
    /// How long one attempt may take, 100..=60000 ms (default 10000).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

/// Which SMTP server an email channel sends through, and to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    #[serde(default = "default_starttls")]
    pub starttls: StartTls,
    /// SMTP login (with `secret.smtp_password`); empty: no login.
    #[serde(default)]
    pub username: String,
    /// The sender address.
    pub from: String,
    /// The recipients (1 to 50).
    pub to: Vec<String>,
    /// A private CA (PEM) the SMTP server's certificate is signed by, trusted besides
    /// the system's CA store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_pem: Option<String>,
    /// How long one attempt may take, 100..=60000 ms (default 10000).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

/// What an operator sets on a channel (its secret apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    pub kind: ChannelKind,
    /// A disabled channel is given no deliveries.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only incidents of this severity or worse (default: every incident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Level>,
    /// With kind `webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSettings>,
    /// With kind `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSettings>,
}

/// The secret part of a channel. Never serialised toward clients; its `Debug` shows
/// only which fields are set.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NotificationChannelSecret)]
pub struct ChannelSecret {
    /// webhook: the key of the `X-ISPVM-Signature` HMAC (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// email: the SMTP password (with `email.username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password: Option<String>,
}

impl std::fmt::Debug for ChannelSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelSecret({:?}, values redacted)", self.fields())
    }
}

impl ChannelSecret {
    /// Names of the fields that are set.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("webhook_secret", &self.webhook_secret),
            ("smtp_password", &self.smtp_password),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect()
    }

    pub(crate) fn validate(&self) -> Result<(), CatalogError> {
        for (name, value) in [
            ("webhook_secret", &self.webhook_secret),
            ("smtp_password", &self.smtp_password),
        ] {
            let Some(v) = value else { continue };
            let field = format!("secret.{name}");
            if v.is_empty() {
                return Err(CatalogError::invalid(field, "is empty"));
            }
            if v.len() > MAX_SECRET_LEN {
                return Err(CatalogError::invalid(
                    field,
                    format!("is over {MAX_SECRET_LEN} bytes"),
                ));
            }
            if v.chars().any(char::is_control) {
                return Err(CatalogError::invalid(field, "contains a control character"));
            }
        }
        if self.webhook_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(CatalogError::invalid(
                "secret.webhook_secret",
                "is at least 16 characters (it signs what receivers trust)",
            ));
        }
        Ok(())
    }
}

fn timeout(field: &str, ms: u64) -> Result<(), CatalogError> {
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&ms) {
        return Err(CatalogError::invalid(
            field,
            format!("must be within {MIN_TIMEOUT_MS}..={MAX_TIMEOUT_MS}"),
        ));
    }
    Ok(())
}

/// An email address as SMTP takes it: `local@domain`, no spaces or angle brackets.
fn address(field: &str, a: &str) -> Result<(), CatalogError> {
    let ok = a.len() <= 254
        && a.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'));
    if ok {
        Ok(())
    } else {
        Err(CatalogError::invalid(field, "is not an email address"))
    }
}

impl WebhookSettings {
    fn validate(&self) -> Result<(), CatalogError> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| CatalogError::invalid("webhook.url", e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(CatalogError::invalid(
                "webhook.url",
                "must be an http:// or https:// URL with a host",
            ));
        }
        if self.url.len() > MAX_URL_LEN {
            return Err(CatalogError::invalid("webhook.url", "is too long"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(CatalogError::invalid(
                "webhook.url",
                "must not carry credentials (receivers check the signature instead)",
            ));
        }
        timeout("webhook.timeout_ms", self.timeout_ms)
    }
}

impl EmailSettings {
    fn validate(&self, secret_fields: &[&str]) -> Result<(), CatalogError> {
        validate::text("email.smtp_host", &self.smtp_host, validate::MAX_NAME_LEN)?;
        if self.smtp_host.is_empty() || self.smtp_host.contains(['/', ' ', '@']) {
            return Err(CatalogError::invalid(
                "email.smtp_host",
                "must be a host name or address",
            ));
        }
        if self.smtp_port == 0 {
            return Err(CatalogError::invalid("email.smtp_port", "must not be 0"));
        }
        validate::text("email.username", &self.username, validate::MAX_NAME_LEN)?;
        if self.username.is_empty() == secret_fields.contains(&"smtp_password") {
            return Err(CatalogError::invalid(
                "email.username",
                "email.username and secret.smtp_password go together",
            ));
        }
        address("email.from", &self.from)?;
        if self.to.is_empty() || self.to.len() > MAX_RECIPIENTS {
            return Err(CatalogError::invalid(
                "email.to",
                format!("lists 1 to {MAX_RECIPIENTS} recipients"),
            ));
        }
        for (i, a) in self.to.iter().enumerate() {
            address(&format!("email.to[{i}]"), a)?;
        }
        if let Some(pem) = &self.tls_ca_pem {
            if pem.len() > MAX_CA_LEN || !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(CatalogError::invalid(
                    "email.tls_ca_pem",
                    "must be a PEM certificate (BEGIN CERTIFICATE)",
                ));
            }
            lettre::transport::smtp::client::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| CatalogError::invalid("email.tls_ca_pem", e.to_string()))?;
        }
        timeout("email.timeout_ms", self.timeout_ms)
    }
}

impl ChannelSpec {
    /// Checks the fields against the secret fields the channel holds (or will hold).
    pub fn validate(&self, secret_fields: &[&str]) -> Result<(), CatalogError> {
        validate::name("name", &self.name)?;
        let only = |allowed: &str| -> Result<(), CatalogError> {
            match secret_fields.iter().find(|f| **f != allowed) {
                Some(f) => Err(CatalogError::invalid(
                    format!("secret.{f}"),
                    format!("does not belong to a {} channel", self.kind),
                )),
                None => Ok(()),
            }
        };
        match self.kind {
            ChannelKind::Webhook => {
                if self.email.is_some() {
                    return Err(CatalogError::invalid("email", "a webhook channel has none"));
                }
                let Some(w) = &self.webhook else {
                    return Err(CatalogError::invalid("webhook", "is required"));
                };
                w.validate()?;
                only("webhook_secret")?;
                if !secret_fields.contains(&"webhook_secret") {
                    return Err(CatalogError::invalid(
                        "secret.webhook_secret",
                        "is required (it signs every request)",
                    ));
                }
            }
            ChannelKind::Email => {
                if self.webhook.is_some() {
                    return Err(CatalogError::invalid(
                        "webhook",
                        "an email channel has none",
                    ));
                }
                let Some(e) = &self.email else {
                    return Err(CatalogError::invalid("email", "is required"));
                };
                only("smtp_password")?;
                e.validate(secret_fields)?;
            }
        }
        Ok(())
    }

    /// Whether an incident of `severity` goes to this channel.
    pub fn accepts(&self, severity: Level) -> bool {
        self.enabled && self.min_severity.is_none_or(|m| severity >= m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> ChannelSpec {
        ChannelSpec {
            name: "NOC".into(),
            kind: ChannelKind::Webhook,
            enabled: true,
            min_severity: None,
            webhook: Some(WebhookSettings {
                url: "https://hooks.example.net/ispvm".into(),
                timeout_ms: 5000,
            }),
            email: None,
        }
    }

    #[test]
    fn a_webhook_needs_its_signing_secret_and_nothing_else() {
        assert!(hook().validate(&["webhook_secret"]).is_ok());
        assert!(hook().validate(&[]).is_err());
        assert!(
            hook()
                .validate(&["webhook_secret", "smtp_password"])
                .is_err()
        );
        let mut bad = hook();
        bad.webhook = Some(WebhookSettings {
            url: "ftp://x".into(),
            timeout_ms: 5000,
        });
        assert!(bad.validate(&["webhook_secret"]).is_err());
    }

    #[test]
    fn email_checks_addresses_and_login_pairs() {
        let mut spec = ChannelSpec {
            kind: ChannelKind::Email,
            webhook: None,
            email: Some(EmailSettings {
                smtp_host: "smtp.example.net".into(),
                smtp_port: 587,
                starttls: StartTls::Required,
                username: String::new(),
                from: "noc@example.net".into(),
                to: vec!["oncall@example.net".into()],
                tls_ca_pem: None,
                timeout_ms: 10_000,
            }),
            ..hook()
        };
        assert!(spec.validate(&[]).is_ok());
        assert!(spec.validate(&["smtp_password"]).is_err());
        if let Some(e) = spec.email.as_mut() {
            e.to = vec!["not an address".into()];
        }
        assert!(spec.validate(&[]).is_err());
    }

    #[test]
    fn severity_filter_lets_worse_through() {
        let mut spec = hook();
        spec.min_severity = Some(Level::Critical);
        assert!(spec.accepts(Level::Critical));
        assert!(!spec.accepts(Level::Warning));
        spec.enabled = false;
        assert!(!spec.accepts(Level::Critical));
    }

    #[test]
    fn a_short_or_empty_secret_is_refused() {
        let s = ChannelSecret {
            webhook_secret: Some("short".into()),
            smtp_password: None,
        };
        assert!(s.validate().is_err());
        assert!(format!("{s:?}").contains("redacted"));
    }
}
