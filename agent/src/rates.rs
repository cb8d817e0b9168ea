//! Turning what routers report into canonical samples: counters into rates.
//!
//! Routers report monotonic counters (bytes, errors); operators want rates. A rate needs
//! two readings, survives a 32-bit counter wrapping, and must not invent a huge spike when
//! a counter resets because the router rebooted or an interface was reset.

use std::collections::HashMap;
use std::hash::Hash;

/// Width of a hardware counter, which decides where it wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterWidth {
    Bits32,
    Bits64,
}

/// Last reading of every counter, keyed by whatever identifies a counter.
#[derive(Debug)]
pub struct CounterRates<K> {
    last: HashMap<K, (u64, i64)>,
}

impl<K> Default for CounterRates<K> {
    fn default() -> Self {
        CounterRates {
            last: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash> CounterRates<K> {
    /// Records a reading taken at `ts_ms` and returns the rate per second since the
    /// previous one, or `None` when there is no usable previous reading (first reading,
    /// time not advancing, or a reset).
    pub fn update(&mut self, key: K, value: u64, ts_ms: i64, width: CounterWidth) -> Option<f64> {
        let previous = self.last.insert(key, (value, ts_ms));
        let (last_value, last_ts) = previous?;
        let elapsed_ms = ts_ms.checked_sub(last_ts)?;
        if elapsed_ms <= 0 {
            return None;
        }
        let delta = if value >= last_value {
            value - last_value
        } else {
            match width {
                // A 32-bit counter that was in its upper half and is now small wrapped;
                // anything else going backwards is a reset.
                CounterWidth::Bits32 if last_value > u64::from(u32::MAX / 2) => {
                    (u64::from(u32::MAX) - last_value) + value + 1
                }
                // A 64-bit counter never wraps within a poll interval: it was reset.
                _ => return None,
            }
        };
        Some(delta as f64 * 1000.0 / elapsed_ms as f64)
    }

    /// Forgets every reading, e.g. after the router rebooted.
    pub fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_from_two_readings() {
        let mut r = CounterRates::default();
        assert_eq!(r.update("a", 1_000, 0, CounterWidth::Bits64), None);
        assert_eq!(
            r.update("a", 11_000, 2_000, CounterWidth::Bits64),
            Some(5_000.0)
        );
    }

    #[test]
    fn wrap_of_32_bit_counter() {
        let mut r = CounterRates::default();
        r.update("a", u64::from(u32::MAX) - 99, 0, CounterWidth::Bits32);
        assert_eq!(r.update("a", 100, 1_000, CounterWidth::Bits32), Some(200.0));
    }

    #[test]
    fn reset_gives_no_rate_then_recovers() {
        let mut r = CounterRates::default();
        r.update("a", 5_000_000, 0, CounterWidth::Bits64);
        assert_eq!(r.update("a", 10, 1_000, CounterWidth::Bits64), None);
        assert_eq!(
            r.update("a", 1_010, 2_000, CounterWidth::Bits64),
            Some(1_000.0)
        );
        r.update("b", 1_000, 0, CounterWidth::Bits32);
        assert_eq!(r.update("b", 10, 1_000, CounterWidth::Bits32), None);
    }

    #[test]
    fn time_must_advance() {
        let mut r = CounterRates::default();
        r.update("a", 1, 1_000, CounterWidth::Bits64);
        assert_eq!(r.update("a", 2, 1_000, CounterWidth::Bits64), None);
    }
}
