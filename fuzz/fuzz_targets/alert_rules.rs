//! Alert rules imported as JSON (`POST /api/v1/alert-rules/import`, or a file an
//! operator was handed): any admin of any tenant can send this text.
//!
//! Checks that `parse_document` never panics, and that every document it accepts
//! exports (as JSON) to a document that parses back to the same rules.

#![no_main]

use ispvm_actors::alert::rule::parse_document;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rules) = parse_document(text) else {
        return;
    };
    let exported = serde_json::to_string(&rules).expect("accepted rules must serialize");
    let again = parse_document(&exported).expect("an export must import");
    assert_eq!(again, rules, "export and import changed the rules");
});
