//! What the agent does to collected items before it buffers them, so that every batch it
//! buffers is one the server accepts: the sender's half of the checks in
//! [`crate::codec`].
//!
//! Routers, and worse, their neighbours (MNDP, LLDP and CDP announcements are chosen by
//! whoever is plugged in), supply text the agent does not control: NUL bytes, escape
//! sequences, kilobytes where a name was expected. A batch that carries one such string
//! must not be refused whole, or a single odd neighbour blinds a PoP. So text is
//! *cleaned* (control characters replaced, length cut on a character boundary), and an
//! item that still fails the server's check after cleaning (a NaN value, a timestamp
//! from a dead clock, an address that is not one) is *dropped alone*. [`pack`] then cuts
//! what is left into batches within the item and byte limits.

use crate::codec::check::{self, text_char_allowed};
use crate::codec::{EncodeError, Limits, retain_valid, to_bincode};
use crate::envelope::{Batch, Event, InventoryPatch, MetricSample};

/// What cleaning did, for the agent's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Text fields changed (control characters replaced or length cut).
    pub fields_fixed: usize,
    /// Event attributes dropped (over the count limit, or a key that is no name).
    pub attrs_dropped: usize,
    pub samples_dropped: usize,
    pub events_dropped: usize,
    pub inventory_dropped: usize,
    /// Cluster report entries dropped (members, owned routers, verdicts).
    pub cluster_dropped: usize,
}

impl Cleaned {
    /// Items lost whole (fields fixed are not losses).
    pub fn items_dropped(&self) -> usize {
        self.samples_dropped + self.events_dropped + self.inventory_dropped + self.cluster_dropped
    }

    pub fn add(&mut self, other: Cleaned) {
        self.fields_fixed += other.fields_fixed;
        self.attrs_dropped += other.attrs_dropped;
        self.samples_dropped += other.samples_dropped;
        self.events_dropped += other.events_dropped;
        self.inventory_dropped += other.inventory_dropped;
        self.cluster_dropped += other.cluster_dropped;
    }
}

/// Marks text that was cut (3 bytes in UTF-8).
const ELLIPSIS: char = '…';
/// Stands for a control character in a name or text.
const REPLACEMENT: char = char::REPLACEMENT_CHARACTER;

/// Replaces the characters `allowed` refuses, then cuts `s` to at most `max` bytes on a
/// character boundary, ending cut text with `…` when there is room. Returns whether `s`
/// changed.
fn clean_str(s: &mut String, max: usize, allowed: impl Fn(char) -> bool) -> bool {
    let mut changed = false;
    if s.chars().any(|c| !allowed(c)) {
        *s = s
            .chars()
            .map(|c| if allowed(c) { c } else { REPLACEMENT })
            .collect();
        changed = true;
    }
    if s.len() > max {
        let room = if max >= 2 * ELLIPSIS.len_utf8() {
            max - ELLIPSIS.len_utf8()
        } else {
            max
        };
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        if room < max {
            s.push(ELLIPSIS);
        }
        changed = true;
    }
    changed
}

/// Cleans free text (messages, models, attribute values).
pub fn clean_text(s: &mut String, limits: &Limits) -> bool {
    clean_str(s, limits.max_text_len, text_char_allowed)
}

/// Cleans a name or label (interface names, peers, neighbour identities): names are
/// parts of storage keys, so they are bounded like ids and hold no control character.
pub fn clean_name(s: &mut String, limits: &Limits) -> bool {
    clean_str(s, limits.max_id_len, |c| !c.is_control())
}

fn fixed(changed: bool) -> usize {
    usize::from(changed)
}

/// Keeps the samples the server accepts. Samples carry no free text to fix: only the
/// names in their entity keys.
pub fn clean_samples(samples: &mut Vec<MetricSample>, limits: &Limits) -> Cleaned {
    let mut out = Cleaned::default();
    let before = samples.len();
    samples.retain_mut(|s| {
        out.fields_fixed += clean_entity(&mut s.entity, limits);
        check::check_sample(0, s, limits).is_ok()
    });
    out.samples_dropped = before - samples.len();
    out
}

fn clean_entity(entity: &mut crate::envelope::EntityKey, limits: &Limits) -> usize {
    use crate::envelope::EntityKey;
    match entity {
        EntityKey::Interface { name, .. } => fixed(clean_name(name, limits)),
        EntityKey::Peer { peer, .. } => fixed(clean_name(peer, limits)),
        EntityKey::Device(_) | EntityKey::ProbeTarget(_) => 0,
    }
}

/// Cleans events (a `!trap` message of 64 KiB is cut, not refused) and keeps those the
/// server accepts.
pub fn clean_events(events: &mut Vec<Event>, limits: &Limits) -> Cleaned {
    let mut out = Cleaned::default();
    let before = events.len();
    events.retain_mut(|e| {
        out.fields_fixed += clean_entity(&mut e.entity, limits);
        out.fields_fixed += fixed(clean_text(&mut e.message, limits));
        let attrs = std::mem::take(&mut e.attrs);
        let count = attrs.len();
        for (mut k, mut v) in attrs {
            if e.attrs.len() >= limits.max_event_attrs {
                break;
            }
            out.fields_fixed += fixed(clean_name(&mut k, limits));
            out.fields_fixed += fixed(clean_text(&mut v, limits));
            if !k.is_empty() {
                e.attrs.insert(k, v);
            }
        }
        out.attrs_dropped += count - e.attrs.len();
        check::check_event(0, e, limits).is_ok()
    });
    out.events_dropped = before - events.len();
    out
}

/// Cleans inventory facts and keeps those the server accepts.
pub fn clean_inventory(inv: &mut InventoryPatch, limits: &Limits) -> Cleaned {
    let mut out = Cleaned::default();
    let before = inv.len();
    inv.devices.retain_mut(|d| {
        for text in [
            &mut d.name,
            &mut d.mgmt_addr,
            &mut d.model,
            &mut d.os_version,
        ] {
            out.fields_fixed += fixed(clean_text(text, limits));
        }
        check::check_device(0, d, limits).is_ok()
    });
    inv.interfaces.retain_mut(|i| {
        out.fields_fixed += fixed(clean_name(&mut i.name, limits));
        out.fields_fixed += fixed(clean_name(&mut i.kind, limits));
        check::check_interface(0, i, limits).is_ok()
    });
    inv.addresses.retain_mut(|a| {
        out.fields_fixed += fixed(clean_name(&mut a.interface, limits));
        check::check_address(0, a, limits).is_ok()
    });
    inv.neighbors.retain_mut(|n| {
        for name in [
            &mut n.interface,
            &mut n.identity,
            &mut n.mac,
            &mut n.address,
            &mut n.platform,
        ] {
            out.fields_fixed += fixed(clean_name(name, limits));
        }
        check::check_neighbor(0, n, limits).is_ok()
    });
    out.inventory_dropped = before - inv.len();
    out
}

/// Cleans every part of `batch` (see the module documentation).
pub fn clean_batch(batch: &mut Batch, limits: &Limits) -> Cleaned {
    let mut out = clean_samples(&mut batch.samples, limits);
    out.add(clean_events(&mut batch.events, limits));
    out.add(clean_inventory(&mut batch.inventory, limits));
    if let Some(report) = &mut batch.cluster {
        out.cluster_dropped = retain_valid(report, limits);
    }
    out
}

/// Batches made by [`pack`], each with its bincode encoding.
#[derive(Debug, Default)]
pub struct Packed {
    pub batches: Vec<(Batch, Vec<u8>)>,
    /// Items that did not fit in a batch of `max_bytes` even alone.
    pub dropped: usize,
}

/// Cuts a cleaned `batch` into batches within `limits` (items per kind, encoded bytes),
/// numbered from `*next_seq` on, which is advanced past the last one. Items keep their
/// order (a device comes before its interfaces), and the cluster report rides in the
/// first batch.
pub fn pack(batch: Batch, limits: &Limits, next_seq: &mut u64) -> Result<Packed, EncodeError> {
    let mut packed = Packed::default();
    fit(batch, limits, next_seq, &mut packed)?;
    Ok(packed)
}

fn within_counts(b: &Batch, limits: &Limits) -> bool {
    b.samples.len() <= limits.max_samples
        && b.events.len() <= limits.max_events
        && b.inventory.len() <= limits.max_inventory_items
}

fn items(b: &Batch) -> usize {
    b.samples.len() + b.events.len() + b.inventory.len()
}

fn fit(
    mut batch: Batch,
    limits: &Limits,
    next_seq: &mut u64,
    out: &mut Packed,
) -> Result<(), EncodeError> {
    batch.seq = *next_seq;
    if within_counts(&batch, limits) {
        let bytes = to_bincode(&batch)?;
        if bytes.len() <= limits.max_bytes {
            *next_seq += 1;
            out.batches.push((batch, bytes));
            return Ok(());
        }
    }
    match items(&batch) {
        0 | 1 if batch.cluster.is_some() => {
            // The report is state: the next one replaces it.
            out.dropped += 1;
            batch.cluster = None;
            if items(&batch) > 0 {
                fit(batch, limits, next_seq, out)?;
            }
        }
        0 | 1 => out.dropped += items(&batch),
        n => {
            let tail = split_tail(&mut batch, n - n / 2);
            fit(batch, limits, next_seq, out)?;
            fit(tail, limits, next_seq, out)?;
        }
    }
    Ok(())
}

/// Moves the last `take` items of `batch` (in the order samples, events, devices,
/// interfaces, addresses, neighbours) into a new batch with the same header.
fn split_tail(batch: &mut Batch, mut take: usize) -> Batch {
    let mut tail = batch.clone_header();
    fn move_tail<T>(from: &mut Vec<T>, to: &mut Vec<T>, take: &mut usize) {
        let k = (*take).min(from.len());
        *to = from.split_off(from.len() - k);
        *take -= k;
    }
    let (inv, tinv) = (&mut batch.inventory, &mut tail.inventory);
    move_tail(&mut inv.neighbors, &mut tinv.neighbors, &mut take);
    move_tail(&mut inv.addresses, &mut tinv.addresses, &mut take);
    move_tail(&mut inv.interfaces, &mut tinv.interfaces, &mut take);
    move_tail(&mut inv.devices, &mut tinv.devices, &mut take);
    move_tail(&mut batch.events, &mut tail.events, &mut take);
    move_tail(&mut batch.samples, &mut tail.samples, &mut take);
    tail
}

#[cfg(test)]
mod tests;
