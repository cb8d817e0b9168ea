//! RouterOS's textual formats: durations, dates, version strings.
//!
//! RouterOS 7.10 switched dates from `nov/24/2024` to ISO `2024-11-24`; clients must cope
//! with both, so the simulator speaks whichever the simulated version would.

use crate::topology::RosVersion;

/// A duration as RouterOS prints it: `1w2d3h4m5s`, `3h12m9s`, `45s`; units that are zero
/// are left out, and zero itself is `0s`.
pub fn duration(total_s: u64) -> String {
    const UNITS: [(u64, char); 5] = [
        (7 * 86_400, 'w'),
        (86_400, 'd'),
        (3_600, 'h'),
        (60, 'm'),
        (1, 's'),
    ];
    if total_s == 0 {
        return "0s".to_owned();
    }
    let mut rest = total_s;
    let mut out = String::new();
    for (size, unit) in UNITS {
        let n = rest / size;
        rest %= size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push(unit);
        }
    }
    out
}

/// Calendar fields of a Unix time (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    /// Converts Unix seconds (days-from-civil inverse, proleptic Gregorian).
    pub fn from_unix(unix_s: i64) -> Civil {
        let days = unix_s.div_euclid(86_400);
        let secs = unix_s.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month: month as u32,
            day: day as u32,
            hour: (secs / 3600) as u32,
            minute: (secs % 3600 / 60) as u32,
            second: (secs % 60) as u32,
        }
    }

    fn month_abbrev(&self) -> &'static str {
        const NAMES: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        NAMES
            .get(self.month.saturating_sub(1) as usize)
            .copied()
            .unwrap_or("jan")
    }

    /// `2024-11-24` (RouterOS ≥ 7.10) or `nov/24/2024` (older).
    pub fn date(&self, iso: bool) -> String {
        if iso {
            format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
        } else {
            format!("{}/{:02}/{:04}", self.month_abbrev(), self.day, self.year)
        }
    }

    /// `14:03:32`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }

    /// Date and time separated by a space, in the version's date format.
    pub fn date_time(&self, iso: bool) -> String {
        format!("{} {}", self.date(iso), self.time())
    }
}

/// Whether this version prints ISO dates (RouterOS ≥ 7.10).
pub fn uses_iso_dates(version: RosVersion) -> bool {
    version.major > 7 || (version.major == 7 && version.minor >= 10)
}

/// `/system/resource` `version`: `7.16.1 (stable)`, `6.49.15 (long-term)`.
pub fn version_string(text: &str, version: RosVersion) -> String {
    let channel = if version.major == 6 && version.minor >= 48 {
        "long-term"
    } else {
        "stable"
    };
    format!("{} ({channel})", text.trim())
}

/// A plausible build time (Unix seconds) for a version: releases spaced as MikroTik's
/// roughly are (7.1 in December 2021, a minor release every ~10 weeks).
pub fn build_time_unix(version: RosVersion) -> i64 {
    const DAY: i64 = 86_400;
    let (anchor, per_minor, per_patch) = match version.major {
        // 2021-12-01
        7 => (1_638_316_800i64, 69 * DAY, 9 * DAY),
        // 2014-01-01
        6 => (1_388_534_400i64, 55 * DAY, 40 * DAY),
        // 2010-01-01
        _ => (1_262_304_000i64, 60 * DAY, 20 * DAY),
    };
    let minor = i64::from(version.minor.min(200));
    let patch = i64::from(version.patch.min(200));
    let hours = i64::from((version.minor * 7 + version.patch * 3) % 24);
    anchor + minor.saturating_sub(1) * per_minor + patch * per_patch + hours * 3600 + 1_712
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(3 * 3600 + 12 * 60 + 9), "3h12m9s");
        assert_eq!(
            duration(7 * 86_400 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5),
            "1w2d3h4m5s"
        );
        assert_eq!(duration(86_400 + 5), "1d5s");
    }

    #[test]
    fn dates() {
        let c = Civil::from_unix(1_732_406_400 + 14 * 3600 + 3 * 60 + 32);
        assert_eq!(c.date_time(true), "2024-11-24 14:03:32");
        assert_eq!(c.date_time(false), "nov/24/2024 14:03:32");
        assert_eq!(Civil::from_unix(0).date(true), "1970-01-01");
        assert_eq!(Civil::from_unix(951_782_400).date(true), "2000-02-29");
        assert_eq!(Civil::from_unix(-86_400).date(true), "1969-12-31");
    }

    #[test]
    fn versions() {
        let v7 = RosVersion::parse("7.16.1").expect("valid");
        let v6 = RosVersion::parse("6.49.15").expect("valid");
        assert!(uses_iso_dates(v7));
        assert!(!uses_iso_dates(v6));
        assert!(!uses_iso_dates(RosVersion::parse("7.9").expect("valid")));
        assert_eq!(version_string("7.16.1", v7), "7.16.1 (stable)");
        assert_eq!(version_string("6.49.15", v6), "6.49.15 (long-term)");
        let y = Civil::from_unix(build_time_unix(v7)).year;
        assert!((2024..=2025).contains(&y), "{y}");
        let y6 = Civil::from_unix(build_time_unix(v6)).year;
        assert!((2021..=2025).contains(&y6), "{y6}");
    }
}
