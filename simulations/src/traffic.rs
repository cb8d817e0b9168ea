//! Traffic curves: how many bits per second an interface carries at any instant.
//!
//! ISP traffic follows the subscribers' day: lowest around 05:00 local time (about 40 %
//! of the evening peak), rising through the day and peaking around 20:30. On top of that
//! sit a few slow wobbles so that two interfaces never move in lockstep.
//!
//! Every part of a curve is a cosine, so its integral has a closed form: the byte counter
//! of an interface is the exact integral of its rate since boot. Reading a counter twice,
//! one second apart, therefore gives exactly the rate of the curve over that second, no
//! matter how long the simulator has been running and without any stored state.

use crate::seed;
use std::f64::consts::TAU;

const DAY_S: f64 = 86_400.0;
/// Local time of the evening peak (20:30), in seconds after midnight.
const PEAK_LOCAL_S: f64 = 20.5 * 3600.0;
/// Mean of the daily shape; with the two harmonics below it spans about 0.39..1.0.
const SHAPE_MEAN: f64 = 0.60;
const SHAPE_DAILY: f64 = 0.30;
const SHAPE_HALF_DAILY: f64 = 0.10;

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

/// The daily shape, in `[~0.39, 1.0]`, at Unix time `unix_s` for a place whose local time
/// is UTC + `utc_offset_s`. Used for traffic and for things that follow it (CPU load,
/// temperature, PPPoE sessions).
pub fn diurnal(unix_s: f64, utc_offset_s: f64) -> f64 {
    let peak_at = PEAK_LOCAL_S - utc_offset_s;
    let daily = Wave {
        amp: SHAPE_DAILY,
        period_s: DAY_S,
        peak_at_s: peak_at,
    };
    let half = Wave {
        amp: SHAPE_HALF_DAILY,
        period_s: DAY_S / 2.0,
        peak_at_s: peak_at,
    };
    SHAPE_MEAN + daily.value(unix_s) + half.value(unix_s)
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
        let peak_at = PEAK_LOCAL_S - utc_offset_s + shift;
        let mut waves = vec![
            Wave {
                amp: SHAPE_DAILY,
                period_s: DAY_S,
                peak_at_s: peak_at,
            },
            Wave {
                amp: SHAPE_HALF_DAILY,
                period_s: DAY_S / 2.0,
                peak_at_s: peak_at,
            },
        ];
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

    /// 2024-11-20 00:00:00 UTC.
    const MIDNIGHT: f64 = 1_732_060_800.0;

    #[test]
    fn shape_peaks_in_the_evening_and_dips_at_dawn() {
        let at = |h: f64| diurnal(MIDNIGHT + h * 3600.0, 0.0);
        assert!(at(20.5) > 0.99);
        assert!(at(5.0) < 0.42);
        assert!(at(12.0) > at(5.0) && at(12.0) < at(20.0));
        for q in 0..96 {
            let v = at(f64::from(q) / 4.0);
            assert!((0.38..=1.0001).contains(&v), "{q}: {v}");
        }
        // Two hours east, the peak comes two hours earlier in UTC.
        assert!((diurnal(MIDNIGHT + 18.5 * 3600.0, 7200.0) - at(20.5)).abs() < 1e-9);
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
