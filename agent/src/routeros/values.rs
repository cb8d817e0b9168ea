//! Parsers for the value formats RouterOS prints.

/// Parses a RouterOS duration: `1w2d3h4m5s`, `3h12m9s`, `45s`, `500ms` (rounded down),
/// or the older `hh:mm:ss` / `1d02:03:04` forms. Returns seconds.
pub fn parse_duration_s(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.contains(':') {
        return parse_clock_form(text);
    }
    let mut total: u64 = 0;
    let mut number: u64 = 0;
    let mut have_digit = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(d) = c.to_digit(10) {
            number = number.checked_mul(10)?.checked_add(u64::from(d))?;
            have_digit = true;
            continue;
        }
        if !have_digit {
            return None;
        }
        let unit: u64 = match c {
            'w' => 604_800,
            'd' => 86_400,
            'h' => 3_600,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0 // milliseconds: below the resolution we report
            }
            'm' => 60,
            's' => 1,
            'u' | 'n' if chars.peek() == Some(&'s') => {
                chars.next();
                0
            }
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(unit)?)?;
        number = 0;
        have_digit = false;
    }
    if have_digit {
        return None;
    }
    Some(total)
}

fn parse_clock_form(text: &str) -> Option<u64> {
    let (days, clock) = match text.split_once('d') {
        Some((d, rest)) => (d.parse::<u64>().ok()?, rest),
        None => (0, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return None;
    };
    let h: u64 = h.parse().ok()?;
    let m: u64 = m.parse().ok()?;
    let s: u64 = s.split('.').next()?.parse().ok()?;
    Some(days * 86_400 + h * 3_600 + m * 60 + s)
}

/// Parses a RouterOS boolean (`true`/`false`, `yes`/`no`).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// The version number of a RouterOS `version` string such as `7.16.1 (stable)`.
pub fn version_number(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_s("1w2d3h4m5s"), Some(788_645));
        assert_eq!(parse_duration_s("45s"), Some(45));
        assert_eq!(parse_duration_s("3m"), Some(180));
        assert_eq!(parse_duration_s("1m500ms"), Some(60));
        assert_eq!(parse_duration_s("01:02:03"), Some(3_723));
        assert_eq!(parse_duration_s("2d01:00:00"), Some(176_400));
        for bad in ["", "s", "5x", "12", "1h2", "::"] {
            assert_eq!(parse_duration_s(bad), None, "{bad}");
        }
    }

    #[test]
    fn versions_and_bools() {
        assert_eq!(version_number("7.16.1 (stable)"), "7.16.1");
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("no"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
