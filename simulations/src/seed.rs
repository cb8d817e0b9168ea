//! Deterministic pseudo-randomness derived from names.
//!
//! Every simulated value that should look random (a router's uptime offset, an interface's
//! share of the traffic, a MAC address) is a pure function of ids, so the same topology
//! gives the same ISP on every run and a test can predict what a router will answer.

/// A 64-bit seed from a list of names (FNV-1a over the parts, then a splitmix64 finaliser
/// so that similar names give unrelated seeds).
pub fn seed_of(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator, so ["ab", "c"] and ["a", "bc"] differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// The splitmix64 finaliser: a bijection that spreads every input bit over the output.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A sub-seed for one purpose (`salt`) of a seed.
pub fn derive(seed: u64, salt: u64) -> u64 {
    mix(seed ^ mix(salt))
}

/// A number in `[0, 1)` for one purpose of a seed.
pub fn unit(seed: u64, salt: u64) -> f64 {
    // 53 random bits: exactly representable, strictly below 1.
    (derive(seed, salt) >> 11) as f64 / (1u64 << 53) as f64
}

/// A number in `[lo, hi)` for one purpose of a seed.
pub fn between(seed: u64, salt: u64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(seed, salt)
}

/// An integer in `[lo, hi]` for one purpose of a seed.
pub fn int_between(seed: u64, salt: u64, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    lo + derive(seed, salt) % (hi - lo + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_spread() {
        assert_eq!(seed_of(&["r1", "ether1"]), seed_of(&["r1", "ether1"]));
        assert_ne!(seed_of(&["r1", "ether1"]), seed_of(&["r1", "ether2"]));
        assert_ne!(seed_of(&["ab", "c"]), seed_of(&["a", "bc"]));
        let s = seed_of(&["x"]);
        for salt in 0..1000 {
            let u = unit(s, salt);
            assert!((0.0..1.0).contains(&u));
            let b = between(s, salt, 5.0, 6.0);
            assert!((5.0..6.0).contains(&b));
            assert!((3..=7).contains(&int_between(s, salt, 3, 7)));
        }
        assert_eq!(int_between(s, 1, 9, 9), 9);
    }
}
