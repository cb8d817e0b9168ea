//! The incident notifier (issue 13): tells people about incident transitions (opened,
//! escalated, root cause changed, resolved) through the channels a tenant sets up,
//! once per transition and channel, never once per suppressed alert.
//!
//! - [`channel`]: what a channel is (webhook, email) and how it is checked;
//! - [`delivery`]: the unit stored before sending, and its states;
//! - [`hold`]: silenced and in-maintenance transitions are recorded, not sent;
//! - [`payload`]: what a notification says;
//! - [`webhook`], [`email`]: the two ways out;
//! - [`worker`]: plans, sends, retries, records.

pub mod channel;
pub mod delivery;
pub mod email;
pub mod hold;
pub mod payload;
pub mod webhook;
pub mod worker;

pub use worker::{Notifier, NotifyError, NotifyOptions, PassReport};
