//! Wall-clock helpers: every timestamp on the wire is Unix milliseconds (UTC), an `i64`,
//! because it encodes compactly, compares cheaply and means the same in SQLite and
//! PostgreSQL.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current wall-clock time in Unix milliseconds; 0 if the clock is before 1970.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
