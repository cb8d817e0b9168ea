//! What the SNMP collector polls and with which credentials.
//!
//! One [`SnmpConfig`] per device: the agent's address, SNMPv2c community or SNMPv3 USM
//! credentials, and the limits that keep a walk from hurting the device. Secrets are
//! wrapped in [`Secret`] so they never show in logs or `Debug` output.
//!
//! In TOML (the credentials are an internally tagged table):
//!
//! ```toml
//! [snmp]
//! address = "10.0.0.1:161"
//! [snmp.credentials]
//! version = "v3"
//! user = "monitor"
//! level = "auth_priv"
//! auth_protocol = "sha"
//! auth_key = "auth-pass-phrase"
//! priv_protocol = "aes128"
//! priv_key = "priv-pass-phrase"
//! [snmp.limits]
//! timeout_ms = 2000
//! retries = 1
//! ```

use super::SnmpError;
use serde::{Deserialize, Serialize};
use snmp2::v3;
use std::fmt;
use std::time::Duration;

/// The port SNMP agents listen on when the address names none.
pub const DEFAULT_PORT: u16 = 161;

/// Shortest pass phrase RFC 3414 §11.2 allows for deriving USM keys.
pub const MIN_KEY_LEN: usize = 8;

/// How to reach one device's SNMP agent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SnmpConfig {
    /// `host:port`, `host` (port 161), `ip`, `ip:port` or `[ipv6]:port`.
    pub address: String,
    pub credentials: SnmpCredentials,
    #[serde(default)]
    pub limits: SnmpLimits,
}

/// SNMPv2c community or SNMPv3 user-based security.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum SnmpCredentials {
    /// SNMPv2c: the community string travels in clear text.
    V2c { community: Secret },
    /// SNMPv3 with the user-based security model (RFC 3414).
    V3(V3Credentials),
}

/// An SNMPv3 USM user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct V3Credentials {
    /// USM user name (1 to 32 characters).
    pub user: String,
    #[serde(default)]
    pub level: SecurityLevel,
    #[serde(default)]
    pub auth_protocol: AuthProtocol,
    /// Authentication pass phrase (at least 8 characters).
    pub auth_key: Secret,
    #[serde(default)]
    pub priv_protocol: PrivProtocol,
    /// Privacy pass phrase (at least 8 characters); required for `auth_priv`, refused
    /// for `auth_no_priv`.
    #[serde(default)]
    pub priv_key: Option<Secret>,
    /// SNMPv3 context name; empty for the default context.
    #[serde(default)]
    pub context: String,
}

/// SNMPv3 security level. `noAuthNoPriv` is deliberately not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityLevel {
    /// Authenticated and encrypted (`authPriv`).
    #[default]
    #[serde(alias = "authPriv", alias = "authpriv")]
    AuthPriv,
    /// Authenticated, not encrypted (`authNoPriv`).
    #[serde(alias = "authNoPriv", alias = "authnopriv")]
    AuthNoPriv,
}

/// SNMPv3 authentication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthProtocol {
    /// HMAC-SHA-96 (`usmHMACSHAAuthProtocol`, RFC 3414): what RouterOS calls `SHA1`.
    #[default]
    #[serde(
        alias = "SHA",
        alias = "sha1",
        alias = "SHA1",
        alias = "SHA-1",
        alias = "sha-1"
    )]
    Sha,
    /// HMAC-SHA-256-192 (`usmHMAC192SHA256AuthProtocol`, RFC 7860).
    #[serde(alias = "SHA256", alias = "SHA-256", alias = "sha-256")]
    Sha256,
}

/// SNMPv3 privacy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivProtocol {
    /// AES-128 in CFB mode (`usmAesCfb128Protocol`, RFC 3826): what RouterOS calls `AES`.
    #[default]
    #[serde(
        alias = "aes",
        alias = "AES",
        alias = "AES128",
        alias = "AES-128",
        alias = "aes-128"
    )]
    Aes128,
}

/// Bounds on what one poll may cost the device and the agent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SnmpLimits {
    /// How long one request waits for its answer.
    pub timeout_ms: u64,
    /// Resends after a request timed out (0 to 5).
    pub retries: u32,
    /// GETBULK max-repetitions: rows asked per column per request (1 to 100).
    pub max_repetitions: u32,
    /// Most variable bindings one walk collects before it stops (the data gathered so far
    /// is kept, the rest is skipped and logged).
    pub max_oids_per_walk: usize,
    /// Deadline of a whole poll (address lookup, every request and retry).
    pub poll_timeout_ms: u64,
}

impl Default for SnmpLimits {
    fn default() -> Self {
        SnmpLimits {
            timeout_ms: 2_000,
            retries: 1,
            max_repetitions: 10,
            max_oids_per_walk: 50_000,
            poll_timeout_ms: 30_000,
        }
    }
}

impl SnmpLimits {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn poll_timeout(&self) -> Duration {
        Duration::from_millis(self.poll_timeout_ms)
    }

    fn validate(&self) -> Result<(), String> {
        if !(10..=60_000).contains(&self.timeout_ms) {
            return Err("limits.timeout_ms must be between 10 and 60000".into());
        }
        if self.retries > 5 {
            return Err("limits.retries must be at most 5".into());
        }
        if !(1..=100).contains(&self.max_repetitions) {
            return Err("limits.max_repetitions must be between 1 and 100".into());
        }
        if !(1..=1_000_000).contains(&self.max_oids_per_walk) {
            return Err("limits.max_oids_per_walk must be between 1 and 1000000".into());
        }
        if self.poll_timeout_ms < self.timeout_ms {
            return Err("limits.poll_timeout_ms must not be shorter than limits.timeout_ms".into());
        }
        Ok(())
    }
}

/// A community or pass phrase: serialised as the plain string, never printed.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the protocol code that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl SnmpConfig {
    /// An SNMPv2c target with default limits.
    pub fn v2c(address: impl Into<String>, community: impl Into<Secret>) -> Self {
        SnmpConfig {
            address: address.into(),
            credentials: SnmpCredentials::V2c {
                community: community.into(),
            },
            limits: SnmpLimits::default(),
        }
    }

    /// An SNMPv3 target with default limits.
    pub fn v3(address: impl Into<String>, credentials: V3Credentials) -> Self {
        SnmpConfig {
            address: address.into(),
            credentials: SnmpCredentials::V3(credentials),
            limits: SnmpLimits::default(),
        }
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: SnmpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks what serde cannot: non-empty address and community, USM name and key
    /// lengths, a privacy key exactly when the level needs one, sane limits.
    pub fn validate(&self) -> Result<(), SnmpError> {
        let bad = |why: String| Err(SnmpError::Config(why));
        if self.address.trim().is_empty() {
            return bad("address is empty".into());
        }
        match &self.credentials {
            SnmpCredentials::V2c { community } => {
                if community.expose().is_empty() {
                    return bad("the SNMPv2c community is empty".into());
                }
                if community.expose().len() > 255 {
                    return bad("the SNMPv2c community is longer than 255 bytes".into());
                }
            }
            SnmpCredentials::V3(v3) => v3.validate().map_err(SnmpError::Config)?,
        }
        self.limits.validate().map_err(SnmpError::Config)
    }
}

impl V3Credentials {
    /// `authPriv` with SHA and AES-128.
    pub fn auth_priv(
        user: impl Into<String>,
        auth_key: impl Into<Secret>,
        priv_key: impl Into<Secret>,
    ) -> Self {
        V3Credentials {
            user: user.into(),
            level: SecurityLevel::AuthPriv,
            auth_protocol: AuthProtocol::Sha,
            auth_key: auth_key.into(),
            priv_protocol: PrivProtocol::Aes128,
            priv_key: Some(priv_key.into()),
            context: String::new(),
        }
    }

    /// `authNoPriv` with SHA.
    pub fn auth_no_priv(user: impl Into<String>, auth_key: impl Into<Secret>) -> Self {
        V3Credentials {
            user: user.into(),
            level: SecurityLevel::AuthNoPriv,
            auth_protocol: AuthProtocol::Sha,
            auth_key: auth_key.into(),
            priv_protocol: PrivProtocol::Aes128,
            priv_key: None,
            context: String::new(),
        }
    }

    /// Replaces the authentication protocol.
    pub fn with_auth_protocol(mut self, protocol: AuthProtocol) -> Self {
        self.auth_protocol = protocol;
        self
    }

    fn validate(&self) -> Result<(), String> {
        if self.user.is_empty() || self.user.len() > 32 {
            return Err("the SNMPv3 user name must have 1 to 32 bytes".into());
        }
        if self.auth_key.expose().len() < MIN_KEY_LEN {
            return Err(format!(
                "the SNMPv3 auth_key of {:?} must have at least {MIN_KEY_LEN} characters",
                self.user
            ));
        }
        match (self.level, &self.priv_key) {
            (SecurityLevel::AuthPriv, None) => Err(format!(
                "SNMPv3 user {:?} has level auth_priv but no priv_key",
                self.user
            )),
            (SecurityLevel::AuthPriv, Some(key)) if key.expose().len() < MIN_KEY_LEN => {
                Err(format!(
                    "the SNMPv3 priv_key of {:?} must have at least {MIN_KEY_LEN} characters",
                    self.user
                ))
            }
            (SecurityLevel::AuthNoPriv, Some(_)) => Err(format!(
                "SNMPv3 user {:?} has a priv_key but level auth_no_priv; \
                 use level auth_priv to encrypt",
                self.user
            )),
            _ => Ok(()),
        }
    }

    /// The USM security parameters for `snmp2`, not yet bound to an engine.
    pub(crate) fn security(&self) -> v3::Security {
        let auth = match (self.level, &self.priv_key) {
            (SecurityLevel::AuthPriv, Some(key)) => v3::Auth::AuthPriv {
                cipher: match self.priv_protocol {
                    PrivProtocol::Aes128 => v3::Cipher::Aes128,
                },
                privacy_password: key.expose().as_bytes().to_vec(),
            },
            _ => v3::Auth::AuthNoPriv,
        };
        let protocol = match self.auth_protocol {
            AuthProtocol::Sha => v3::AuthProtocol::Sha1,
            AuthProtocol::Sha256 => v3::AuthProtocol::Sha256,
        };
        v3::Security::new(self.user.as_bytes(), self.auth_key.expose().as_bytes())
            .with_auth(auth)
            .with_auth_protocol(protocol)
            .with_context_name(&self.context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_secrets_hidden() {
        let text = r#"
            address = "10.0.0.1"
            [credentials]
            version = "v3"
            user = "monitor"
            level = "authPriv"
            auth_protocol = "SHA-256"
            auth_key = "auth-pass-1"
            priv_protocol = "AES"
            priv_key = "priv-pass-1"
        "#;
        let config: SnmpConfig = toml::from_str(text).expect("parses");
        config.validate().expect("valid");
        let SnmpCredentials::V3(v3) = &config.credentials else {
            panic!("not v3");
        };
        assert_eq!(v3.level, SecurityLevel::AuthPriv);
        assert_eq!(v3.auth_protocol, AuthProtocol::Sha256);
        assert_eq!(config.limits, SnmpLimits::default());
        let debug = format!("{config:?}");
        assert!(!debug.contains("auth-pass-1") && !debug.contains("priv-pass-1"));

        let v2: SnmpConfig = toml::from_str(
            "address = \"r1:1161\"\n[credentials]\nversion = \"v2c\"\ncommunity = \"s3cret\"\n",
        )
        .expect("parses");
        v2.validate().expect("valid");
        assert!(!format!("{v2:?}").contains("s3cret"));
    }

    #[test]
    fn validation_is_clear() {
        let short = SnmpConfig::v3("r1", V3Credentials::auth_priv("u", "short", "long-enough"));
        let err = short.validate().expect_err("short key");
        assert!(err.to_string().contains("auth_key"), "{err}");

        let mut no_priv = V3Credentials::auth_priv("u", "long-enough", "long-enough");
        no_priv.priv_key = None;
        let err = SnmpConfig::v3("r1", no_priv)
            .validate()
            .expect_err("no priv");
        assert!(err.to_string().contains("priv_key"), "{err}");

        let mut mixed = V3Credentials::auth_no_priv("u", "long-enough");
        mixed.priv_key = Some("long-enough".into());
        assert!(SnmpConfig::v3("r1", mixed).validate().is_err());

        assert!(SnmpConfig::v2c("r1", "").validate().is_err());
        assert!(SnmpConfig::v2c(" ", "public").validate().is_err());
        let limits = SnmpLimits {
            max_repetitions: 0,
            ..SnmpLimits::default()
        };
        assert!(
            SnmpConfig::v2c("r1", "public")
                .with_limits(limits)
                .validate()
                .is_err()
        );
    }
}
