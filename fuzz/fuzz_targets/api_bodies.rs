//! JSON bodies of the HTTP API's writes: any logged-in user with a write role sends
//! them, and a browser, a script or an attacker with a session can send anything.
//!
//! The input's first byte picks the resource; the rest is the body. Checks that reading
//! the body as that resource's specification and validating it never panics, and that a
//! specification that validates serializes to JSON that reads and validates the same.

#![no_main]

use ispvm_server::store::catalog::{
    CredentialSpec, DeviceSpec, EdgeSpec, LinkSpec, MaintenanceSpec, ProfileSpec, ServiceSpec,
    SiteSpec,
};
use ispvm_server::store::users::UserSpec;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads `body` as `T`, validates it with `validate`, and checks the round trip.
fn body<T, E>(bytes: &[u8], validate: impl Fn(&mut T) -> Result<(), E>)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(mut spec) = serde_json::from_slice::<T>(bytes) else {
        return;
    };
    if validate(&mut spec).is_err() {
        return;
    }
    let json = serde_json::to_vec(&spec).expect("a valid spec serializes");
    let mut again: T = serde_json::from_slice(&json).expect("and reads back");
    assert!(validate(&mut again).is_ok(), "a valid spec read back is invalid");
    assert_eq!(again, spec, "a valid spec changed on the way through JSON");
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 9 {
        0 => body::<SiteSpec, _>(rest, |s| s.validate()),
        1 => body::<DeviceSpec, _>(rest, |s| s.validate()),
        2 => body::<LinkSpec, _>(rest, |s| s.validate()),
        3 => body::<EdgeSpec, _>(rest, |s| s.validate()),
        4 => body::<ServiceSpec, _>(rest, |s| s.validate()),
        5 => body::<CredentialSpec, _>(rest, |s| s.validate(&[])),
        6 => body::<ProfileSpec, _>(rest, |s| s.validate()),
        7 => body::<MaintenanceSpec, _>(rest, |s| s.validate()),
        _ => body::<UserSpec, _>(rest, |s| s.validate()),
    }
});
