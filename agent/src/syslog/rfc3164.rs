//! BSD syslog, RFC 3164: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`.
//!
//! Real senders leave parts out, and the parser takes what is there:
//!
//! - no timestamp (RouterOS without `bsd-syslog`): no hostname either (RFC 3164 §4.3.2),
//!   the whole rest is the message;
//! - a timestamp with a one- or two-digit day, an optional year, fractional seconds, or an
//!   ISO 8601 timestamp in its place (rsyslog, RouterOS 7 `syslog-time-format=iso8601`);
//! - no hostname after the timestamp when the next word is clearly a tag (`sshd[1]:`) or
//!   RouterOS topics (`interface,info`);
//! - no tag: a tag is only taken when it ends with `:` (optionally `[pid]:`), so RouterOS
//!   topics stay in the message, where the RouterOS normaliser reads them.

use super::{Facility, Format, ParseError, SyslogMessage, SyslogSeverity};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const HOSTNAME_MAX: usize = 255;
const TAG_MAX: usize = 48;
const PID_MAX: usize = 32;

/// Parses what follows PRI (or the whole message when it had none).
pub(crate) fn parse_after_pri(
    facility: Facility,
    severity: SyslogSeverity,
    pri_present: bool,
    rest: &[u8],
) -> Result<SyslogMessage, ParseError> {
    let text = String::from_utf8_lossy(rest);
    let mut s: &str = &text;
    let mut timestamp = None;
    let mut hostname = None;
    if let Some(n) = bsd_timestamp(s).or_else(|| iso_timestamp(s)) {
        timestamp = Some(s[..n].to_owned());
        s = s[n..].strip_prefix(' ').unwrap_or(&s[n..]);
        let word_end = s.find(' ');
        if let Some(end) = word_end
            && looks_like_hostname(&s[..end])
        {
            hostname = Some(s[..end].to_owned());
            s = &s[end + 1..];
        }
    }
    let (app_name, proc_id, message) = match tag(s) {
        Some((name, pid, msg)) => (Some(name.to_owned()), pid.map(str::to_owned), msg),
        None => (None, None, s),
    };
    if message.is_empty() && app_name.is_none() && hostname.is_none() {
        return Err(ParseError::Empty);
    }
    Ok(SyslogMessage {
        format: Format::Rfc3164,
        facility,
        severity,
        pri_present,
        timestamp,
        hostname,
        app_name,
        proc_id,
        msg_id: None,
        structured_data: Vec::new(),
        message: message.to_owned(),
    })
}

fn digits(s: &[u8], at: usize, min: usize, max: usize) -> Option<usize> {
    let n = s
        .iter()
        .skip(at)
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    (n >= min).then_some(n)
}

fn byte(s: &[u8], at: usize) -> Option<u8> {
    s.get(at).copied()
}

/// `hh:mm:ss` with optional `.fraction` at `at`; returns the end.
fn clock(s: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    for part in 0..3 {
        if digits(s, i, 2, 2)? != 2 {
            return None;
        }
        i += 2;
        if part < 2 {
            if byte(s, i)? != b':' {
                return None;
            }
            i += 1;
        }
    }
    if byte(s, i) == Some(b'.')
        && let Some(n) = digits(s, i + 1, 1, 9)
    {
        i += 1 + n;
    }
    Some(i)
}

/// `Mmm dd hh:mm:ss`, `Mmm d hh:mm:ss`, `Mmm dd yyyy hh:mm:ss`, fractions allowed;
/// returns its length.
fn bsd_timestamp(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let month = s.get(..3)?;
    if !MONTHS.iter().any(|m| m.eq_ignore_ascii_case(month)) || byte(b, 3)? != b' ' {
        return None;
    }
    let mut i = 4;
    if byte(b, i)? == b' ' {
        i += 1; // space-padded day
    }
    let n = digits(b, i, 1, 2)?;
    i += n;
    if byte(b, i)? != b' ' {
        return None;
    }
    i += 1;
    if digits(b, i, 4, 4) == Some(4) && byte(b, i + 4) == Some(b' ') {
        i += 5; // a year, as some devices add
    }
    let end = clock(b, i)?;
    // The timestamp ends at a space or at the end of the message.
    match byte(b, end) {
        None | Some(b' ') => Some(end),
        _ => None,
    }
}

/// `yyyy-mm-ddThh:mm:ss[.frac][Z|±hh:mm]`; returns its length.
pub(crate) fn iso_timestamp(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if digits(b, 0, 4, 4)? != 4
        || byte(b, 4)? != b'-'
        || digits(b, 5, 2, 2)? != 2
        || byte(b, 7)? != b'-'
        || digits(b, 8, 2, 2)? != 2
        || !matches!(byte(b, 10)?, b'T' | b't')
    {
        return None;
    }
    let mut i = clock(b, 11)?;
    match byte(b, i) {
        Some(b'Z' | b'z') => i += 1,
        Some(b'+' | b'-') => {
            if digits(b, i + 1, 2, 2)? != 2
                || byte(b, i + 3)? != b':'
                || digits(b, i + 4, 2, 2)? != 2
            {
                return None;
            }
            i += 6;
        }
        _ => {}
    }
    match byte(b, i) {
        None | Some(b' ') => Some(i),
        _ => None,
    }
}

/// A hostname (or address) as devices write it: no tag punctuation, no RouterOS topic
/// list (`interface,info`), not ending with `:`.
fn looks_like_hostname(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= HOSTNAME_MAX
        && !word.ends_with(':')
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

/// `TAG: msg` or `TAG[PID]: msg` at the start of `s`: the tag, the pid and the message.
fn tag(s: &str) -> Option<(&str, Option<&str>, &str)> {
    let b = s.as_bytes();
    let name_len = b
        .iter()
        .take(TAG_MAX + 1)
        .take_while(|&&c| c > b' ' && c < 0x7f && c != b':' && c != b'[' && c != b']')
        .count();
    if name_len == 0 || name_len > TAG_MAX {
        return None;
    }
    let name = &s[..name_len];
    let mut i = name_len;
    let mut pid = None;
    if byte(b, i) == Some(b'[') {
        let len = b[i + 1..]
            .iter()
            .take(PID_MAX + 1)
            .take_while(|&&c| c > b' ' && c < 0x7f && c != b']')
            .count();
        if len > PID_MAX || byte(b, i + 1 + len) != Some(b']') {
            return None;
        }
        pid = Some(&s[i + 1..i + 1 + len]);
        i += len + 2;
    }
    if byte(b, i) != Some(b':') {
        return None;
    }
    i += 1;
    match byte(b, i) {
        None => Some((name, pid, "")),
        Some(b' ') => Some((name, pid, &s[i + 1..])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::syslog::{Format, ParseError, SyslogSeverity, parse};

    #[test]
    fn classic_bsd_line() {
        let m =
            parse(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
                .expect("parse");
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!(m.facility.as_str(), "auth");
        assert_eq!(m.severity, SyslogSeverity::Critical);
        assert_eq!(m.timestamp.as_deref(), Some("Oct 11 22:14:15"));
        assert_eq!(m.hostname.as_deref(), Some("mymachine"));
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.message, "'su root' failed for lonvick on /dev/pts/8");
    }

    #[test]
    fn routeros_bsd_syslog_line() {
        let m =
            parse(b"<30>Jan  5 10:00:01 edge1 interface,info ether1 link down\n").expect("parse");
        assert_eq!(m.facility.as_str(), "daemon");
        assert_eq!(m.severity, SyslogSeverity::Info);
        assert_eq!(m.timestamp.as_deref(), Some("Jan  5 10:00:01"));
        assert_eq!(m.hostname.as_deref(), Some("edge1"));
        assert_eq!(m.app_name, None);
        assert_eq!(m.message, "interface,info ether1 link down");
    }

    #[test]
    fn routeros_default_format_has_no_header() {
        // RouterOS without bsd-syslog: PRI, then topics and message.
        let m = parse(b"<30>interface,info ether1 link up (speed 1G, full duplex)").expect("parse");
        assert_eq!(m.timestamp, None);
        assert_eq!(m.hostname, None);
        assert_eq!(
            m.message,
            "interface,info ether1 link up (speed 1G, full duplex)"
        );
    }

    #[test]
    fn tolerated_variants() {
        // Single-digit day with one space, pid, year, fractions.
        let m = parse(b"<13>Feb 3 04:05:06 host sshd[1234]: Accepted publickey").expect("parse");
        assert_eq!(m.timestamp.as_deref(), Some("Feb 3 04:05:06"));
        assert_eq!(m.app_name.as_deref(), Some("sshd"));
        assert_eq!(m.proc_id.as_deref(), Some("1234"));
        let m = parse(b"<13>Feb 13 2024 04:05:06.123 host app: x").expect("parse");
        assert_eq!(m.timestamp.as_deref(), Some("Feb 13 2024 04:05:06.123"));
        assert_eq!(m.hostname.as_deref(), Some("host"));
        // ISO timestamp in the BSD position (rsyslog, RouterOS iso8601 time format).
        let m =
            parse(b"<30>2024-05-01T10:00:00+02:00 r1 system,info router rebooted").expect("parse");
        assert_eq!(m.timestamp.as_deref(), Some("2024-05-01T10:00:00+02:00"));
        assert_eq!(m.hostname.as_deref(), Some("r1"));
        assert_eq!(m.message, "system,info router rebooted");
        // Timestamp, no hostname, a tag.
        let m = parse(b"<13>Feb 13 04:05:06 kernel: boom").expect("parse");
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name.as_deref(), Some("kernel"));
        assert_eq!(m.message, "boom");
        // Timestamp, no hostname, RouterOS topics.
        let m = parse(b"<13>Feb 13 04:05:06 system,info hello").expect("parse");
        assert_eq!(m.hostname, None);
        assert_eq!(m.message, "system,info hello");
        // An IPv6 address as hostname.
        let m = parse(b"<13>Feb 13 04:05:06 2001:db8::1 app: x").expect("parse");
        assert_eq!(m.hostname.as_deref(), Some("2001:db8::1"));
        // No timestamp, but a tag.
        let m = parse(b"<13>myapp: something").expect("parse");
        assert_eq!(m.app_name.as_deref(), Some("myapp"));
        assert_eq!(m.message, "something");
    }

    #[test]
    fn not_a_timestamp_stays_in_the_message() {
        let m = parse(b"<13>Janet 5 10:00:00 said hi").expect("parse");
        assert_eq!(m.timestamp, None);
        assert_eq!(m.message, "Janet 5 10:00:00 said hi");
        let m = parse(b"<13>Jan 55 10:00:00x hi").expect("parse");
        assert_eq!(m.timestamp, None);
    }

    #[test]
    fn malformed_and_edge_cases() {
        assert_eq!(parse(b"<13>"), Err(ParseError::Empty));
        assert_eq!(parse(b"<13>   \n"), Err(ParseError::Empty));
        // Only a timestamp carries nothing.
        assert_eq!(parse(b"<13>Jan  5 10:00:00"), Err(ParseError::Empty));
        // Invalid UTF-8 after a PRI is decoded lossily, not refused.
        let m = parse(b"<13>bad \xff byte").expect("parse");
        assert!(m.message.contains('\u{fffd}'));
        // Over-long tag is not a tag.
        let long = format!("<13>{}: x", "a".repeat(60));
        let m = parse(long.as_bytes()).expect("parse");
        assert_eq!(m.app_name, None);
    }
}
