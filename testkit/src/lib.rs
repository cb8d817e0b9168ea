//! Helpers shared by the tests of every crate: stores on both engines (a fresh SQLite
//! file, a fresh PostgreSQL database; feature `store`, on by default) and the actor
//! tree over them with a test clock, sample batches,
//! free ports, and the check that generated files are current.
//!
//! A dev-dependency only: no production crate links it. The agent's tests use it without
//! the `store` feature, so they do not need the server.

mod generated;
mod net;
mod samples;
#[cfg(feature = "store")]
mod store;
#[cfg(feature = "store")]
mod tree;

pub use generated::assert_generated_file;
pub use net::{free_tcp_port, free_udp_port};
pub use samples::{T0, batch};
#[cfg(feature = "store")]
pub use store::{PgDb, execute_raw, pg_admin_url, pg_store, sqlite_store};
#[cfg(feature = "store")]
pub use tree::{FakeClock, import_rules, start_tree};
