//! Traffic curves: how many bits per second an interface carries at any instant.
//!
//! ISP traffic follows the subscribers' day: lowest around 05:00 local time (about 30 %
//! of the evening peak), near 60 % at noon, peaking around 21:00. On top of that
//! sit a few slow wobbles so that two interfaces never move in lockstep.
//!
//! Every part of a curve is a cosine, so its integral has a closed form: the byte counter
//! of an interface is the exact integral of its rate since boot. Reading a counter twice,
//! one second apart, therefore gives exactly the rate of the curve over that second, no
//! matter how long the simulator has been running and without any stored state.

use crate::seed;
use std::f64::consts::TAU;

/// Mean of the daily shape.
const SHAPE_MEAN: f64 = 0.62;
/// Harmonics of the daily shape: (amplitude, period in hours, local hour of a crest).
/// Fitted to a typical residential ISP day: about 0.31 at 05:00, 0.6 at noon, 1.0 at
/// 21:15.
const SHAPE_HARMONICS: [(f64, f64, f64); 3] = [
    (0.268, 24.0, 19.51),
    (0.132, 12.0, 9.95),
    (0.018, 8.0, 5.88),
];

/// The daily waves, crests shifted by `shift_s` and moved to UTC by `utc_offset_s`.
fn daily_waves(utc_offset_s: f64, shift_s: f64) -> impl Iterator<Item = Wave> {
    SHAPE_HARMONICS
        .into_iter()
        .map(move |(amp, period_h, crest_h)| Wave {
            amp,
            period_s: period_h * 3600.0,
            peak_at_s: crest_h * 3600.0 - utc_offset_s + shift_s,
        })
}

/// `amp * cos(2π (t - peak_at) / period)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Wave {
    amp: f64,
    period_s: f64,
    peak_at_s: f64,
}

impl Wave {
    /// The angle at `t`, reduced to one period first so huge Unix times keep precision.
    fn angle(&self, t: f64) -> f64 {
        TAU * ((t - self.peak_at_s) % self.period_s) / self.period_s
    }

    fn value(&self, t: f64) -> f64 {
        self.amp * self.angle(t).cos()
    }

    /// `∫ value dt` from `t0` to `t1`.
    fn integral(&self, t0: f64, t1: f64) -> f64 {
        self.amp * self.period_s / TAU * (self.angle(t1).sin() - self.angle(t0).sin())
    }
}

/// The daily shape, in `[~0.3, 1.0]`, at Unix time `unix_s` for a place whose local time
/// is UTC + `utc_offset_s`. Used for traffic and for things that follow it (CPU load,
/// temperature, PPPoE sessions).
pub fn diurnal(unix_s: f64, utc_offset_s: f64) -> f64 {
    SHAPE_MEAN
        + daily_waves(utc_offset_s, 0.0)
            .map(|w| w.value(unix_s))
            .sum::<f64>()
}

/// Local solar time offset from UTC for a longitude (15° per hour), in seconds.
///
/// Solar time rather than a time zone: it needs no tz database and puts the evening
/// peak where the subscribers' evening is.
pub fn utc_offset_for_longitude(lon: f64) -> f64 {
    if lon.is_finite() {
        lon.clamp(-180.0, 180.0) / 15.0 * 3600.0
    } else {
        0.0
    }
}

/// One direction of traffic on one interface, as a closed-form function of time.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficCurve {
    /// Bits per second at a shape value of 1.0 (the peak utilisation times line rate).
    peak_bps: f64,
    waves: Vec<Wave>,
}

impl TrafficCurve {
    /// A curve for a link of `capacity_bps` whose evening peak uses `peak_utilisation`
    /// of it (clamped to `0..=0.9`, so that noise never pushes it over line rate).
    ///
    /// `seed` picks the noise and a shift of the peak of up to ±40 minutes; the same seed
    /// gives the same curve.
    pub fn new(seed: u64, capacity_bps: f64, peak_utilisation: f64, utc_offset_s: f64) -> Self {
        let capacity = if capacity_bps.is_finite() {
            capacity_bps.max(0.0)
        } else {
            0.0
        };
        let utilisation = if peak_utilisation.is_finite() {
            peak_utilisation.clamp(0.0, 0.9)
        } else {
            0.0
        };
        let shift = seed::between(seed, 1, -2400.0, 2400.0);
        let mut waves: Vec<Wave> = daily_waves(utc_offset_s, shift).collect();
        // Noise: three slow wobbles (about 1.5, 10 and 45 minutes), 6 % at most together.
        for (i, (amp, lo, hi)) in [
            (0.025, 90.0, 200.0),
            (0.02, 400.0, 900.0),
            (0.015, 1800.0, 3600.0),
        ]
        .into_iter()
        .enumerate()
        {
            let salt = 10 + 2 * i as u64;
            let period = seed::between(seed, salt, lo, hi);
            waves.push(Wave {
                amp,
                period_s: period,
                peak_at_s: seed::between(seed, salt + 1, 0.0, period),
            });
        }
        TrafficCurve {
            peak_bps: capacity * utilisation,
            waves,
        }
    }

    /// A curve that is always zero (an interface nobody sends through).
    pub fn idle() -> Self {
        TrafficCurve {
            peak_bps: 0.0,
            waves: Vec::new(),
        }
    }

    /// Bits per second at Unix time `unix_s`.
    pub fn rate_bps(&self, unix_s: f64) -> f64 {
        if self.peak_bps == 0.0 {
            return 0.0;
        }
        let shape = SHAPE_MEAN + self.waves.iter().map(|w| w.value(unix_s)).sum::<f64>();
        self.peak_bps * shape.max(0.0)
    }

    /// Bytes carried between two Unix times (0 if `to <= from`).
    pub fn bytes_between(&self, from_s: f64, to_s: f64) -> f64 {
        if self.peak_bps == 0.0 || to_s <= from_s || !from_s.is_finite() || !to_s.is_finite() {
            return 0.0;
        }
        let mean = SHAPE_MEAN * (to_s - from_s);
        let waves: f64 = self.waves.iter().map(|w| w.integral(from_s, to_s)).sum();
        (self.peak_bps * (mean + waves) / 8.0).max(0.0)
    }

    /// Bits per second at the nominal evening peak, without noise.
    pub fn peak_bps(&self) -> f64 {
        self.peak_bps
    }

    /// Rates the curve can never leave, in bits per second (a conservative envelope).
    pub fn bounds_bps(&self) -> (f64, f64) {
        let swing: f64 = self.waves.iter().map(|w| w.amp.abs()).sum();
        (
            (self.peak_bps * (SHAPE_MEAN - swing)).max(0.0),
            self.peak_bps * (SHAPE_MEAN + swing),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_S: f64 = 86_400.0;
    /// 2024-11-20 00:00:00 UTC.
    const MIDNIGHT: f64 = 1_732_060_800.0;

    #[test]
    fn shape_peaks_in_the_evening_and_dips_at_dawn() {
        let at = |h: f64| diurnal(MIDNIGHT + h * 3600.0, 0.0);
        assert!(at(21.25) > 0.98, "{}", at(21.25));
        assert!(at(5.0) < 0.33, "{}", at(5.0));
        assert!(at(12.0) > 0.5 && at(12.0) < 0.65, "{}", at(12.0));
        let (mut max_h, mut max_v, mut min_h, mut min_v) = (0.0, 0.0, 0.0, 2.0);
        for q in 0..96 {
            let h = f64::from(q) / 4.0;
            let v = at(h);
            assert!((0.28..=1.01).contains(&v), "{h}: {v}");
            if v > max_v {
                (max_h, max_v) = (h, v);
            }
            if v < min_v {
                (min_h, min_v) = (h, v);
            }
        }
        assert!((20.0..=22.0).contains(&max_h), "{max_h}");
        assert!((4.0..=6.0).contains(&min_h), "{min_h}");
        // Two hours east, the peak comes two hours earlier in UTC.
        assert!((diurnal(MIDNIGHT + 19.0 * 3600.0, 7200.0) - at(21.0)).abs() < 1e-9);
    }

    #[test]
    fn counters_integrate_the_rate() {
        let curve = TrafficCurve::new(42, 10e9, 0.6, -2000.0);
        let (lo, hi) = curve.bounds_bps();
        assert!(hi <= 10e9 && lo > 0.0);
        let mut t = MIDNIGHT;
        while t < MIDNIGHT + DAY_S {
            let one_second = curve.bytes_between(t, t + 1.0) * 8.0;
            let rate = curve.rate_bps(t + 0.5);
            assert!((one_second - rate).abs() / rate < 1e-4, "{t}");
            assert!(rate >= lo && rate <= hi);
            t += 1234.5;
        }
        // Additive over long spans, with the precision a 64-bit counter needs.
        let week = curve.bytes_between(MIDNIGHT, MIDNIGHT + 7.0 * DAY_S);
        let split = curve.bytes_between(MIDNIGHT, MIDNIGHT + 3.3 * DAY_S)
            + curve.bytes_between(MIDNIGHT + 3.3 * DAY_S, MIDNIGHT + 7.0 * DAY_S);
        assert!((week - split).abs() < 1e3);
        let mean_rate = week * 8.0 / (7.0 * DAY_S);
        assert!((mean_rate / curve.peak_bps() - SHAPE_MEAN).abs() < 0.01);
    }

    #[test]
    fn degenerate_inputs_are_safe() {
        let idle = TrafficCurve::idle();
        assert_eq!(idle.rate_bps(MIDNIGHT), 0.0);
        assert_eq!(idle.bytes_between(MIDNIGHT, MIDNIGHT + 10.0), 0.0);
        let nan = TrafficCurve::new(1, f64::NAN, f64::INFINITY, 0.0);
        assert_eq!(nan.bytes_between(0.0, 100.0), 0.0);
        let c = TrafficCurve::new(1, 1e9, 0.5, 0.0);
        assert_eq!(c.bytes_between(10.0, 5.0), 0.0);
        assert_eq!(c.bytes_between(f64::NAN, 5.0), 0.0);
        assert_eq!(utc_offset_for_longitude(f64::NAN), 0.0);
        assert_eq!(utc_offset_for_longitude(15.0), 3600.0);
    }
}
