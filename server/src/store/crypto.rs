//! Credential secrets at rest: ChaCha20-Poly1305 under a master key that comes from the
//! environment, never from the database.
//!
//! A sealed secret is `v1:<key id>:<base64(nonce || ciphertext)>`. The nonce is random
//! per secret (96 bits; collisions are negligible at the number of secrets an ISP has),
//! and the associated data binds the ciphertext to its tenant and credential id, so a
//! row copied to another tenant or id does not open. The key id (the first 8 hex digits
//! of SHA-256 of the key) tells "sealed under another key" apart from "tampered".

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const NONCE_LEN: usize = 12;
const VERSION: &str = "v1";

/// The key credential secrets are sealed with: 32 bytes, given base64-encoded in
/// `ISPVM_MASTER_KEY` (or a file). Its `Debug` and `Serialize` never show the key.
#[derive(Clone)]
pub struct MasterKey {
    cipher: ChaCha20Poly1305,
    id: String,
}

/// A master key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the master key is not base64 (generate one with `openssl rand -base64 32`)")]
    Base64,
    #[error(
        "the master key is {0} bytes; it must be 32 (generate one with `openssl rand -base64 32`)"
    )]
    Length(usize),
    #[error("cannot read the master key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A sealed secret that does not open.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the sealed secret is malformed")]
    Malformed,
    #[error("the secret was sealed under another master key (key id {0})")]
    OtherKey(String),
    #[error("the sealed secret does not open (tampered, or moved to another tenant or id)")]
    Open,
    #[error("the secret is too long to seal")]
    TooLong,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id {}, key redacted)", self.id)
    }
}

impl MasterKey {
    fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != 32 {
            return Err(KeyError::Length(bytes.len()));
        }
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        Ok(MasterKey {
            cipher: ChaCha20Poly1305::new(Key::from_slice(bytes)),
            id,
        })
    }

    /// A key from its base64 text (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| KeyError::Base64)?;
        Self::from_bytes(&bytes)
    }

    /// A key from a file holding its base64 text.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_base64(&text)
    }

    /// A new random key and its base64 text (the demo keeps one in its data directory).
    pub fn generate() -> (Self, String) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let text = STANDARD.encode(bytes);
        match Self::from_bytes(&bytes) {
            Ok(key) => (key, text),
            // 32 bytes are always a valid key.
            Err(_) => unreachable!("a 32-byte key"),
        }
    }

    /// Short fingerprint of the key, safe to log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext`; `aad` must be given again to open it.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::TooLong)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        Ok(format!("{VERSION}:{}:{}", self.id, STANDARD.encode(blob)))
    }

    /// Opens what [`MasterKey::seal`] made with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(VERSION), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Malformed);
        };
        if id != self.id {
            return Err(SealError::OtherKey(id.to_owned()));
        }
        let blob = STANDARD.decode(b64).map_err(|_| SealError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| SealError::Open)
    }
}

impl<'de> serde::Deserialize<'de> for MasterKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        MasterKey::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for MasterKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_aad() {
        let (key, text) = MasterKey::generate();
        let again = MasterKey::from_base64(&text).expect("key");
        let sealed = key.seal(b"t1/c1", b"s3cret").expect("seal");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(again.open(b"t1/c1", &sealed).expect("open"), b"s3cret");
        assert!(matches!(key.open(b"t2/c1", &sealed), Err(SealError::Open)));
        let (other, _) = MasterKey::generate();
        assert!(matches!(
            other.open(b"t1/c1", &sealed),
            Err(SealError::OtherKey(_))
        ));
        assert!(matches!(key.open(b"", "v1:x"), Err(SealError::Malformed)));
        assert_ne!(key.seal(b"a", b"x").ok(), key.seal(b"a", b"x").ok());
    }

    #[test]
    fn bad_keys_are_refused_clearly() {
        assert!(matches!(
            MasterKey::from_base64("not base64!"),
            Err(KeyError::Base64)
        ));
        assert!(matches!(
            MasterKey::from_base64("AAAA"),
            Err(KeyError::Length(3))
        ));
        let (key, _) = MasterKey::generate();
        assert!(!format!("{key:?}").contains("key:"));
    }
}
