//! What a peer's gossip message may tell us, decided before chitchat reads it.
//!
//! chitchat trusts its input in two ways we cannot accept from a network peer:
//!
//! - **Size.** A delta is a run of zstd blocks, each unfolding to up to 64 KiB, with no
//!   bound on the total: a 128 KiB message of highly compressible blocks unfolds to
//!   hundreds of MiB. Here every block's size is bounded as it is decompressed, and so is
//!   the total ([`MAX_UNFOLDED_BYTES`]).
//! - **Identity.** Any member may state anything about any node id, so an agent holding
//!   a certificate of the tenant could announce itself under another agent's name (a new
//!   generation at its own address) and take that agent's routers. Here a node id is
//!   believed only at a gossip address where a certificate naming it answered: every
//!   admitted connection records its address and the certificate's common name in an
//!   [`AddressBook`], and digest entries and delta sections about a node whose address
//!   proved another name, or nothing yet, are left out before chitchat sees the message.
//!   An address nothing has answered from yet is dialled by the transport to prove it
//!   ([`Screened::to_prove`]); from then on what others relay about that node is
//!   believed too.
//!
//! The message is then rebuilt in chitchat's own wire format (delta blocks stored
//! uncompressed) and handed to chitchat's parser. What a relaying member says about a
//! node already proven (its key-values and heartbeats) is not signed and stays believed;
//! see `docs/cluster.md`.

use chitchat::{ChitchatId, Deserializable, Serializable};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The most a message's delta may unfold to. chitchat fills a message up to one UDP
/// datagram (65,507 bytes) of compressed blocks; node state values are short text, so
/// real deltas unfold to a few hundred KiB at most.
pub const MAX_UNFOLDED_BYTES: usize = 1024 * 1024;
/// chitchat's own bound on one block, before and after decompression.
const MAX_BLOCK_BYTES: usize = u16::MAX as usize;
/// Addresses remembered; the oldest proof is forgotten first beyond this.
const MAX_ADDRESSES: usize = 16_384;

const MAGIC: u16 = 45_139;
const PROTOCOL_V0: u8 = 0;
const SYN: u8 = 0;
const SYN_ACK: u8 = 1;
const ACK: u8 = 2;
const BAD_CLUSTER: u8 = 3;

const BLOCK_END: u8 = 0;
const BLOCK_COMPRESSED: u8 = 1;
const BLOCK_PLAIN: u8 = 2;

const OP_NODE: u8 = 0;
const OP_KEY_VALUE: u8 = 1;
const OP_SET_MAX_VERSION: u8 = 2;

/// Why a message was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    #[error("not a chitchat message: {0}")]
    Malformed(&'static str),
    #[error("the delta unfolds to more than {MAX_UNFOLDED_BYTES} bytes")]
    TooLarge,
}

/// The common name proven at each gossip address, by the certificates of the
/// connections made to and accepted from it.
#[derive(Debug, Default)]
pub struct AddressBook {
    inner: Mutex<Proofs>,
}

#[derive(Debug, Default)]
struct Proofs {
    /// Address → (order of proof, name).
    names: HashMap<SocketAddr, (u64, Arc<str>)>,
    next: u64,
}

impl AddressBook {
    /// Records that the certificate at `addr` names `name` (a newer proof replaces an
    /// older one: an agent moved or was replaced).
    pub fn prove(&self, addr: SocketAddr, name: &str) {
        let mut proofs = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let tick = proofs.next;
        proofs.next += 1;
        if proofs.names.len() >= MAX_ADDRESSES && !proofs.names.contains_key(&addr) {
            let oldest = proofs
                .names
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(a, _)| *a);
            if let Some(a) = oldest {
                proofs.names.remove(&a);
            }
        }
        proofs.names.insert(addr, (tick, name.into()));
    }

    /// What is known of `id`'s address.
    pub fn belief(&self, id: &ChitchatId) -> Belief {
        let proofs = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match proofs.names.get(&id.gossip_advertise_addr) {
            Some((_, name)) if **name == *id.node_id => Belief::Proven,
            Some(_) => Belief::Contradicted,
            None => Belief::Unproven,
        }
    }
}

/// Whether a node id is believed at its stated address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Belief {
    /// A certificate naming it answered there.
    Proven,
    /// A certificate naming someone else answered there: a forgery.
    Contradicted,
    /// Nothing answered there yet.
    Unproven,
}

/// A message fit for chitchat, and what was left out of it.
#[derive(Debug)]
pub struct Screened {
    pub bytes: Vec<u8>,
    /// Digest entries and delta sections about nodes not proven at their address.
    pub unproven: u64,
    /// Their addresses, once each: dialling them proves or contradicts the names.
    pub to_prove: Vec<SocketAddr>,
    /// ... and about nodes whose address proved another name.
    pub contradicted: u64,
}

/// Checks a received message against the size bounds and `book`, and rebuilds it with
/// only what may be believed.
pub fn screen(bytes: &[u8], book: &AddressBook) -> Result<Screened, ScreenError> {
    let mut out = Screened {
        bytes: Vec::with_capacity(bytes.len()),
        unproven: 0,
        to_prove: Vec::new(),
        contradicted: 0,
    };
    let mut buf = bytes;
    let header = take(&mut buf, 4, "header")?;
    if u16::from_le_bytes([header[0], header[1]]) != MAGIC {
        return Err(ScreenError::Malformed("bad magic number"));
    }
    if header[2] != PROTOCOL_V0 {
        return Err(ScreenError::Malformed("unknown protocol version"));
    }
    out.bytes.extend_from_slice(header);
    match header[3] {
        SYN => {
            digest(&mut buf, book, &mut out)?;
            let start = buf;
            String::deserialize(&mut buf).map_err(|_| ScreenError::Malformed("cluster id"))?;
            out.bytes
                .extend_from_slice(&start[..start.len() - buf.len()]);
        }
        SYN_ACK => {
            digest(&mut buf, book, &mut out)?;
            delta(&mut buf, book, &mut out)?;
        }
        ACK => delta(&mut buf, book, &mut out)?,
        BAD_CLUSTER => {}
        _ => return Err(ScreenError::Malformed("unknown message type")),
    }
    if !buf.is_empty() {
        return Err(ScreenError::Malformed("bytes after the message"));
    }
    Ok(out)
}

fn take<'a>(buf: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], ScreenError> {
    if buf.len() < n {
        return Err(ScreenError::Malformed(what));
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Ok(head)
}

fn read_u16(buf: &mut &[u8], what: &'static str) -> Result<u16, ScreenError> {
    let b = take(buf, 2, what)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn chitchat_id(buf: &mut &[u8]) -> Result<ChitchatId, ScreenError> {
    ChitchatId::deserialize(buf).map_err(|_| ScreenError::Malformed("node id"))
}

/// Counts a left-out entry about `id`; true when it may be kept.
fn admit(id: &ChitchatId, book: &AddressBook, out: &mut Screened) -> bool {
    match book.belief(id) {
        Belief::Proven => true,
        Belief::Contradicted => {
            out.contradicted += 1;
            false
        }
        Belief::Unproven => {
            out.unproven += 1;
            if !out.to_prove.contains(&id.gossip_advertise_addr) {
                out.to_prove.push(id.gossip_advertise_addr);
            }
            false
        }
    }
}

/// A digest: a count, then per node its id and heartbeat, GC version and max version.
fn digest(buf: &mut &[u8], book: &AddressBook, out: &mut Screened) -> Result<(), ScreenError> {
    let count = read_u16(buf, "digest count")?;
    let mut kept: Vec<u8> = Vec::new();
    let mut kept_count: u16 = 0;
    for _ in 0..count {
        let id = chitchat_id(buf)?;
        let versions = take(buf, 24, "digest entry")?;
        if admit(&id, book, out) {
            id.serialize(&mut kept);
            kept.extend_from_slice(versions);
            kept_count += 1;
        }
    }
    kept_count.serialize(&mut out.bytes);
    out.bytes.extend_from_slice(&kept);
    Ok(())
}

/// A delta: its blocks unfolded within bounds, its operations walked, the sections of
/// nodes not believed left out, the rest written back as plain blocks.
fn delta(buf: &mut &[u8], book: &AddressBook, out: &mut Screened) -> Result<(), ScreenError> {
    let unfolded = unfold(buf)?;
    let mut ops: &[u8] = &unfolded;
    let mut kept: Vec<u8> = Vec::with_capacity(unfolded.len());
    // Whether the operations of the current node section are kept; none before the first.
    let mut keeping: Option<bool> = None;
    while !ops.is_empty() {
        let start = ops;
        let tag = take(&mut ops, 1, "operation tag")?[0];
        match tag {
            OP_NODE => {
                let id = chitchat_id(&mut ops)?;
                take(&mut ops, 16, "node operation")?;
                keeping = Some(admit(&id, book, out));
            }
            OP_KEY_VALUE => {
                for what in ["key", "value"] {
                    let len = read_u16(&mut ops, what)?;
                    take(&mut ops, usize::from(len), what)?;
                }
                take(&mut ops, 9, "key-value operation")?;
            }
            OP_SET_MAX_VERSION => {
                take(&mut ops, 8, "max-version operation")?;
            }
            _ => return Err(ScreenError::Malformed("unknown delta operation")),
        }
        match keeping {
            Some(true) => kept.extend_from_slice(&start[..start.len() - ops.len()]),
            Some(false) => {}
            None => return Err(ScreenError::Malformed("operation before any node")),
        }
    }
    for block in kept.chunks(MAX_BLOCK_BYTES) {
        out.bytes.push(BLOCK_PLAIN);
        // chunks() of MAX_BLOCK_BYTES always fit a u16.
        u16::try_from(block.len())
            .unwrap_or(u16::MAX)
            .serialize(&mut out.bytes);
        out.bytes.extend_from_slice(block);
    }
    out.bytes.push(BLOCK_END);
    Ok(())
}

/// The bytes of a delta's blocks, decompressed, with the total bounded.
fn unfold(buf: &mut &[u8]) -> Result<Vec<u8>, ScreenError> {
    let mut unfolded = Vec::new();
    loop {
        let kind = take(buf, 1, "block type")?[0];
        if kind == BLOCK_END {
            return Ok(unfolded);
        }
        let len = usize::from(read_u16(buf, "block length")?);
        let block = take(buf, len, "block")?;
        let room = MAX_UNFOLDED_BYTES - unfolded.len();
        match kind {
            BLOCK_COMPRESSED => {
                let cap = room.min(MAX_BLOCK_BYTES);
                let plain = zstd::bulk::decompress(block, cap).map_err(|_| {
                    if cap < MAX_BLOCK_BYTES {
                        ScreenError::TooLarge
                    } else {
                        ScreenError::Malformed("block does not decompress")
                    }
                })?;
                unfolded.extend_from_slice(&plain);
            }
            BLOCK_PLAIN => {
                if block.len() > room {
                    return Err(ScreenError::TooLarge);
                }
                unfolded.extend_from_slice(block);
            }
            _ => return Err(ScreenError::Malformed("unknown block type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chitchat::ChitchatMessage;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn id(name: &str, port: u16) -> ChitchatId {
        ChitchatId::new(name, 7, addr(port))
    }

    fn header(kind: u8) -> Vec<u8> {
        let mut b = MAGIC.to_le_bytes().to_vec();
        b.extend([PROTOCOL_V0, kind]);
        b
    }

    fn digest_of(ids: &[ChitchatId]) -> Vec<u8> {
        let mut b = Vec::new();
        u16::try_from(ids.len()).expect("few").serialize(&mut b);
        for (i, id) in ids.iter().enumerate() {
            id.serialize(&mut b);
            for v in [100 + i as u64, 0, 3] {
                v.serialize(&mut b);
            }
        }
        b
    }

    /// The operations of one node section with one key-value.
    fn section(id: &ChitchatId, key: &str, value: &str) -> Vec<u8> {
        let mut b = vec![OP_NODE];
        id.serialize(&mut b);
        0u64.serialize(&mut b);
        0u64.serialize(&mut b);
        b.push(OP_KEY_VALUE);
        key.serialize(&mut b);
        value.serialize(&mut b);
        1u64.serialize(&mut b);
        b.push(0);
        b
    }

    fn compressed_blocks(plain: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for chunk in plain.chunks(16_384) {
            let z = zstd::bulk::compress(chunk, 0).expect("compress");
            b.push(BLOCK_COMPRESSED);
            u16::try_from(z.len()).expect("small").serialize(&mut b);
            b.extend(z);
        }
        b.push(BLOCK_END);
        b
    }

    fn ack(ops: &[u8]) -> Vec<u8> {
        let mut b = header(ACK);
        b.extend(compressed_blocks(ops));
        b
    }

    fn keys(msg: &ChitchatMessage) -> String {
        format!("{msg:?}")
    }

    #[test]
    fn sections_about_proven_nodes_pass_and_chitchat_reads_them() {
        let book = AddressBook::default();
        book.prove(addr(1), "agent-1");
        book.prove(addr(2), "agent-2");
        let mut ops = section(&id("agent-1", 1), "site", "lis");
        ops.extend(section(&id("agent-2", 2), "site", "opo"));
        let s = screen(&ack(&ops), &book).expect("screened");
        assert_eq!((s.unproven, s.contradicted), (0, 0));
        let msg = ChitchatMessage::deserialize(&mut &s.bytes[..]).expect("chitchat reads it");
        let text = keys(&msg);
        assert!(text.contains("lis") && text.contains("opo"), "{text}");
    }

    #[test]
    fn a_member_cannot_speak_as_another() {
        let book = AddressBook::default();
        book.prove(addr(1), "agent-1");
        book.prove(addr(2), "agent-2");
        // agent-2's address announced under agent-1's name, and agent-1's name at an
        // address nothing has answered from.
        let mut ops = section(&id("agent-1", 2), "site", "forged");
        ops.extend(section(&id("agent-1", 9), "site", "elsewhere"));
        ops.extend(section(&id("agent-2", 2), "site", "opo"));
        let s = screen(&ack(&ops), &book).expect("screened");
        assert_eq!((s.unproven, s.contradicted), (1, 1));
        assert_eq!(s.to_prove, vec![addr(9)]);
        let text = keys(&ChitchatMessage::deserialize(&mut &s.bytes[..]).expect("reads"));
        assert!(
            !text.contains("forged") && !text.contains("elsewhere"),
            "{text}"
        );
        assert!(text.contains("opo"), "{text}");
    }

    #[test]
    fn digest_entries_are_screened_too() {
        let book = AddressBook::default();
        book.prove(addr(1), "agent-1");
        let mut msg = header(SYN);
        msg.extend(digest_of(&[id("agent-1", 1), id("agent-2", 1)]));
        "ispvm-acme".serialize(&mut msg);
        let s = screen(&msg, &book).expect("screened");
        assert_eq!(s.contradicted, 1);
        let read = ChitchatMessage::deserialize(&mut &s.bytes[..]).expect("reads");
        let text = keys(&read);
        assert!(
            text.contains("agent-1") && !text.contains("agent-2"),
            "{text}"
        );
        assert!(text.contains("ispvm-acme"), "{text}");
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let book = AddressBook::default();
        // 64 KiB of zeros compresses to a few bytes; 40 of them unfold past the bound
        // in a message of a few KiB.
        let zeros = vec![0u8; MAX_BLOCK_BYTES];
        let z = zstd::bulk::compress(&zeros, 19).expect("compress");
        let mut msg = header(ACK);
        for _ in 0..40 {
            msg.push(BLOCK_COMPRESSED);
            u16::try_from(z.len()).expect("small").serialize(&mut msg);
            msg.extend(&z);
        }
        msg.push(BLOCK_END);
        assert!(msg.len() < 8 * 1024, "{}", msg.len());
        assert_eq!(
            screen(&msg, &book).expect_err("refused"),
            ScreenError::TooLarge
        );
    }

    #[test]
    fn truncated_or_trailing_bytes_are_malformed() {
        let book = AddressBook::default();
        book.prove(addr(1), "agent-1");
        let whole = ack(&section(&id("agent-1", 1), "site", "lis"));
        for cut in 0..whole.len() {
            assert!(screen(&whole[..cut], &book).is_err(), "cut at {cut}");
        }
        let mut longer = whole.clone();
        longer.push(0);
        assert!(screen(&longer, &book).is_err());
        assert!(screen(&whole, &book).is_ok());
    }

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .filter(|w| !w.starts_with('#'))
            .map(|b| u8::from_str_radix(b, 16).expect("hex"))
            .collect()
    }

    /// The fuzz target's seeds must reach past screening into chitchat, or the fuzzer
    /// starts from nothing.
    #[test]
    fn the_fuzz_seeds_are_real_messages() {
        let book = AddressBook::default();
        book.prove(SocketAddr::from(([127, 0, 0, 1], 1)), "a");
        book.prove(SocketAddr::from(([127, 0, 0, 1], 2)), "b");
        for (seed, expect) in [
            (
                include_str!("../../../fuzz/seeds/gossip_message/syn.hex"),
                "ispvm-acme",
            ),
            (
                include_str!("../../../fuzz/seeds/gossip_message/ack.hex"),
                "lis",
            ),
        ] {
            let s = screen(&hex(seed), &book).expect("screened");
            assert_eq!((s.unproven, s.contradicted), (0, 0));
            let mut cursor: &[u8] = &s.bytes;
            let msg = ChitchatMessage::deserialize(&mut cursor).expect("chitchat reads it");
            assert!(cursor.is_empty());
            assert!(keys(&msg).contains(expect), "{msg:?}");
        }
    }

    #[test]
    fn a_newer_proof_replaces_an_older_one() {
        let book = AddressBook::default();
        book.prove(addr(1), "agent-1");
        book.prove(addr(1), "agent-9");
        assert_eq!(book.belief(&id("agent-1", 1)), Belief::Contradicted);
        assert_eq!(book.belief(&id("agent-9", 1)), Belief::Proven);
    }
}
