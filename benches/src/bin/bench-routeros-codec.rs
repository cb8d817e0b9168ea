//! RouterOS API codec throughput: encode and incremental decode of a realistic stream.
//!
//! `cargo run --release -p ispvm-sim --bin bench-routeros-codec -- [--sentences 100000]`
//!
//! The stream is `!re` sentences of an `/interface/print` with 25 attributes each (what
//! a poll of a big router returns), tagged. Decoding is fed in 4 KiB chunks, as reads
//! from a socket arrive, through the same incremental `decode_sentence` the agent and
//! the simulator use.

use ispvm_proto::routeros::{FrameLimits, Reply, ReplyKind, decode_sentence, encode_sentence};
use std::process::ExitCode;
use std::time::Instant;

fn sentences_arg() -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--sentences") {
        None => Ok(100_000),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| "--sentences needs a number".to_owned()),
    }
}

fn interface_reply(i: usize) -> Reply {
    let mut r = Reply::new(ReplyKind::Re).with_tag(Some("poll-17".to_owned()));
    let n = i as u64;
    let attrs: [(&str, String); 25] = [
        (".id", format!("*{:X}", i % 64 + 1)),
        ("name", format!("sfp-sfpplus{}", i % 64 + 1)),
        ("default-name", format!("sfp-sfpplus{}", i % 64 + 1)),
        ("type", "ether".into()),
        ("mtu", "1500".into()),
        ("actual-mtu", "1500".into()),
        ("l2mtu", "1592".into()),
        ("max-l2mtu", "10218".into()),
        (
            "mac-address",
            format!("48:8F:5A:0C:{:02X}:{:02X}", i / 256 % 256, i % 256),
        ),
        ("last-link-up-time", "2026-11-20 04:12:55".into()),
        ("link-downs", (n % 7).to_string()),
        ("rx-byte", (184_467_440_737 + n * 1_234_567).to_string()),
        ("tx-byte", (98_765_432_101 + n * 765_432).to_string()),
        ("rx-packet", (152_000_000_000 + n * 1_000).to_string()),
        ("tx-packet", (88_000_000_000 + n * 700).to_string()),
        ("rx-drop", (n % 1000).to_string()),
        ("tx-drop", "0".into()),
        ("tx-queue-drop", (n % 5000).to_string()),
        ("rx-error", (n % 13).to_string()),
        ("tx-error", "0".into()),
        ("fp-rx-byte", (184_467_440_737 + n * 1_234_567).to_string()),
        ("fp-tx-byte", (98_765_432_101 + n * 765_432).to_string()),
        ("running", "true".into()),
        ("slave", "false".into()),
        ("disabled", "false".into()),
    ];
    for (k, v) in attrs {
        r.attributes.push((k.to_owned(), v));
    }
    r
}

fn main() -> ExitCode {
    let count = match sentences_arg() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // The sentences are built before timing: the benchmark is the codec, not formatting.
    let sentences: Vec<_> = (0..count)
        .map(|i| interface_reply(i).to_sentence())
        .collect();

    let start = Instant::now();
    let mut wire = Vec::with_capacity(count * 600);
    for s in &sentences {
        encode_sentence(s, &mut wire);
    }
    let encode = start.elapsed().as_secs_f64();
    let bytes = wire.len() as f64;

    let limits = FrameLimits::default();
    let start = Instant::now();
    let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut decoded = 0usize;
    let mut words = 0usize;
    for chunk in wire.chunks(4096) {
        buf.extend_from_slice(chunk);
        let mut used_total = 0;
        loop {
            match decode_sentence(buf.get(used_total..).unwrap_or_default(), &limits) {
                Ok(Some((sentence, used))) => {
                    used_total += used;
                    decoded += 1;
                    words += sentence.words.len();
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("decode error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        buf.drain(..used_total);
    }
    let decode = start.elapsed().as_secs_f64();
    if decoded != count {
        eprintln!("decoded {decoded} of {count} sentences");
        return ExitCode::FAILURE;
    }
    let mib = bytes / (1024.0 * 1024.0);
    println!("sentences:   {count} (!re of /interface/print, 25 attributes, tagged)");
    println!(
        "stream:      {mib:.1} MiB, {:.0} bytes/sentence, {words} words",
        bytes / count as f64
    );
    println!(
        "encode:      {:.0} MiB/s, {:.0} sentences/s",
        mib / encode,
        count as f64 / encode
    );
    println!(
        "decode:      {:.0} MiB/s, {:.0} sentences/s (4 KiB chunks, incremental)",
        mib / decode,
        count as f64 / decode
    );
    ExitCode::SUCCESS
}
