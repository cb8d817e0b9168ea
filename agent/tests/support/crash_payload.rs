//! The records the crash writer appends and the SIGKILL test checks: both sides compute
//! them from (run, counter), so the test knows exactly what each record must hold.
//! Included by `src/bin/buffer-crash-writer.rs` and `tests/buffer_crash.rs`.

/// Payload of record `counter` of run `run`: the two numbers, then a length and filler
/// that follow from them. Every eighth record is large (up to 1 MiB) so that a kill often
/// lands in the middle of a write.
pub fn payload(run: u32, counter: u64) -> Vec<u8> {
    let seed = splitmix((u64::from(run) << 40) ^ counter);
    let len = if counter % 8 == 7 {
        (seed % (1 << 20)) as usize
    } else {
        (seed % 2048) as usize
    };
    let start = ((seed >> 24) % (1 << 20)) as usize;
    let mut p = Vec::with_capacity(12 + len);
    p.extend_from_slice(&run.to_le_bytes());
    p.extend_from_slice(&counter.to_le_bytes());
    p.extend_from_slice(&noise()[start..start + len]);
    p
}

/// 2 MiB of fixed pseudo-random bytes, made once: payloads are slices of it, so making a
/// payload costs a copy and the writer spends its time in the buffer, where kills should land.
fn noise() -> &'static [u8] {
    static NOISE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    NOISE.get_or_init(|| {
        (0..(2u64 << 20) / 8)
            .flat_map(|i| splitmix(i).to_le_bytes())
            .collect()
    })
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
