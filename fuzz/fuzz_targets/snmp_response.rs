//! SNMP responses: whatever answers at a device's address sends these datagrams. The
//! agent decodes them with `snmp2` and converts the values (`Reply::from_bytes`, the
//! path every answer takes), as SNMPv1/v2c and as SNMPv3 under a user's keys.
//!
//! Checks that neither decoding panics, whatever the bytes, and that the text of every
//! OCTET STRING value reads as bounded text without control characters.

#![no_main]

use ispvm_agent::snmp::session::{Reply, Value};
use libfuzzer_sys::fuzz_target;
use snmp2::v3::{Auth, AuthProtocol, Cipher, Security};
use std::sync::{Mutex, OnceLock};

/// A v3 user with authentication and privacy; its keys are derived once (key
/// localisation is deliberately slow).
fn security() -> &'static Mutex<Security> {
    static SECURITY: OnceLock<Mutex<Security>> = OnceLock::new();
    SECURITY.get_or_init(|| {
        let mut s = Security::new(b"monitor", b"authpassword")
            .with_auth_protocol(AuthProtocol::Sha1)
            .with_auth(Auth::AuthPriv {
                cipher: Cipher::Aes128,
                privacy_password: b"privpassword".to_vec(),
            });
        // Any engine id: the fuzzer's bytes claim their own.
        if let Ok(with) = s.clone().with_engine_id(b"\x80\x00\x1f\x88\x04fuzz") {
            s = with;
        }
        Mutex::new(s)
    })
}

fn check(reply: &Reply) {
    for v in &reply.varbinds {
        if let Value::Bytes(_) = &v.value
            && let Some(text) = v.value.as_text(255)
        {
            assert!(text.chars().count() <= 255);
            assert!(!text.chars().any(char::is_control));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = Reply::from_bytes(data, None) {
        check(&reply);
    }
    let mut security = security().lock().unwrap_or_else(|p| p.into_inner());
    if let Ok(reply) = Reply::from_bytes(data, Some(&mut security)) {
        check(&reply);
    }
});
