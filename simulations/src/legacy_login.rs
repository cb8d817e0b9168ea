//! The login of RouterOS before 6.43: an MD5 challenge and response.
//!
//! The router answers `/login` with `!done =ret=<challenge>` (16 random bytes as 32 hex
//! digits); the client proves it knows the password by sending
//! `/login =name=<user> =response=00<hex(md5(0x00 ++ password ++ challenge))>`. Routers
//! from 6.43 on take the password in the clear instead, so both flows must be simulated
//! for a client that meets both in the field.

use crate::topology::RosVersion;
use md5::{Digest, Md5};

/// Whether this version uses the plain (≥ 6.43) login.
pub fn uses_plain_login(version: RosVersion) -> bool {
    (version.major, version.minor) >= (6, 43)
}

/// A fresh random challenge.
pub fn new_challenge() -> [u8; 16] {
    rand::random()
}

/// The `response` a client holding `password` must send for `challenge`.
pub fn expected_response(password: &str, challenge: &[u8]) -> String {
    let mut md5 = Md5::new();
    md5.update([0u8]);
    md5.update(password.as_bytes());
    md5.update(challenge);
    format!("00{}", hex::encode(md5.finalize()))
}

/// Whether `response` proves knowledge of `password` (hex digits in either case).
pub fn verify(response: &str, password: &str, challenge: &[u8]) -> bool {
    response.eq_ignore_ascii_case(&expected_response(password, challenge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_is_md5_of_zero_password_challenge() {
        // md5(0x00 ++ "" ++ 16 zero bytes), computed independently with Python hashlib.
        let challenge = [0u8; 16];
        let r = expected_response("", &challenge);
        assert_eq!(r, "00f3c8bdb6b9df478f227af2ce61c8a5a1");
        assert!(verify(&r.to_ascii_uppercase(), "", &challenge));
        assert!(!verify(&r, "x", &challenge));
        assert!(uses_plain_login(RosVersion::parse("6.43").expect("v")));
        assert!(uses_plain_login(RosVersion::parse("7.1").expect("v")));
        assert!(!uses_plain_login(RosVersion::parse("6.40.9").expect("v")));
        assert_ne!(new_challenge(), new_challenge());
    }
}
