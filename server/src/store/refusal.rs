//! Telling a database that refuses a value from a database that is failing.
//!
//! The difference decides what an agent does with its batch: a refused value will be
//! refused again on every retry, so the batch must be answered with a code the agent
//! does not retry (it sets the batch aside and moves on); a database that is away will
//! come back, so the batch must be retried. Anything not recognised is treated as
//! neither, and answered `internal` (retried, but not forever: the agent quarantines a
//! batch that keeps failing).

use sqlx::error::DatabaseError;

/// PostgreSQL SQLSTATE classes of a value refused: data exception (`22`: an invalid byte
/// sequence, a NUL in text, a number out of range), integrity constraint violation
/// (`23`, but not `23505`: a unique violation can be a race another attempt wins), and
/// program limit exceeded (`54`: an index row over the btree limit).
fn pg_permanent(code: &str) -> bool {
    (code.starts_with("22") || code.starts_with("23") || code.starts_with("54")) && code != "23505"
}

/// PostgreSQL SQLSTATE classes of a server that cannot serve now: connection exception
/// (`08`), insufficient resources (`53`), operator intervention (`57`: shutting down).
fn pg_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57")
}

/// SQLite primary result codes (the low byte of an extended code): `SQLITE_TOOBIG`,
/// `SQLITE_CONSTRAINT` (but not its unique and primary-key forms), `SQLITE_MISMATCH`.
fn sqlite_permanent(code: i64) -> bool {
    const UNIQUE: i64 = 2067;
    const PRIMARY_KEY: i64 = 1555;
    matches!(code & 0xff, 18..=20) && code != UNIQUE && code != PRIMARY_KEY
}

/// `SQLITE_BUSY`, `SQLITE_LOCKED`, `SQLITE_FULL`, `SQLITE_IOERR`.
fn sqlite_unavailable(code: i64) -> bool {
    matches!(code & 0xff, 5 | 6 | 13 | 10)
}

enum Engine {
    Postgres(String),
    Sqlite(i64),
    Unknown,
}

fn engine_code(db: &dyn DatabaseError) -> Engine {
    let Some(code) = db.code() else {
        return Engine::Unknown;
    };
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        Engine::Postgres(code.into_owned())
    } else if let Ok(n) = code.parse::<i64>() {
        Engine::Sqlite(n)
    } else {
        Engine::Unknown
    }
}

pub(super) fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => match engine_code(db.as_ref()) {
            Engine::Postgres(code) => pg_permanent(&code),
            Engine::Sqlite(code) => sqlite_permanent(code),
            Engine::Unknown => false,
        },
        // A value sqlx could not encode will not encode on a retry either.
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

pub(super) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => match engine_code(db.as_ref()) {
            Engine::Postgres(code) => pg_unavailable(&code),
            Engine::Sqlite(code) => sqlite_unavailable(code),
            Engine::Unknown => false,
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        assert!(pg_permanent("22021")); // invalid byte sequence (NUL)
        assert!(pg_permanent("54000")); // index row size exceeds the btree maximum
        assert!(pg_permanent("23503")); // foreign key
        assert!(!pg_permanent("23505")); // unique: a race
        assert!(!pg_permanent("40P01")); // deadlock
        assert!(pg_unavailable("08006"));
        assert!(pg_unavailable("53300"));
        assert!(!pg_unavailable("22021"));
        assert!(sqlite_permanent(18));
        assert!(sqlite_permanent(787)); // foreign key
        assert!(!sqlite_permanent(2067));
        assert!(sqlite_unavailable(5));
        assert!(sqlite_unavailable(517)); // BUSY_SNAPSHOT
    }
}
