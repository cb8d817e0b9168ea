//! Syslog ingestion: routers send their logs to the agent over UDP or TCP; the agent turns
//! them into canonical events mapped to devices by the sender's address, and hands them
//! to the uplink like any other event (see docs/syslog.md).
//!
//! The path of one message:
//!
//! 1. [`receiver`]: a UDP socket and a TCP listener (octet-counting and LF framing) with
//!    explicit size limits and a connection limit. The [`pipeline::Gate`] maps the source
//!    address to a device key (unknown sources are dropped or mapped, as configured) and
//!    applies the per-source rate limit before anything is queued.
//! 2. [`parse`]: RFC 5424 or RFC 3164 ([`rfc5424`], [`rfc3164`]), tolerant of what real
//!    devices omit; facility and severity come from PRI.
//! 3. [`normalise`]: RouterOS topics and message formats ([`routeros`]) become typed
//!    events (link down/up, OSPF and BGP state changes, login failures); everything else
//!    becomes a `syslog` event. The original line is always kept (bounded) in `raw`.
//! 4. [`pipeline::Pipeline`]: severity filter, repeated-message suppression ([`dedup`])
//!    with "repeated N times" summaries, the event-only mark, and the counters of
//!    [`SyslogMetrics`].
//!
//! Nothing a sender can put on the wire makes this code panic: parsers work on bounded
//! byte slices and return errors that are counted as malformed messages.

pub mod config;
pub mod dedup;
pub mod events;
pub mod pipeline;
pub mod ratelimit;
pub mod receiver;
pub mod rfc3164;
pub mod rfc5424;
pub mod routeros;

pub use crate::internal_events::syslog::SyslogMetrics;
pub use config::{SyslogConfig, UnknownSources};
pub use pipeline::{Gate, Pipeline, RawMessage};

use serde::{Deserialize, Serialize};

/// How a message reached the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// Syslog severity (RFC 5424 §6.2.1), from most to least severe: a lower code is more
/// severe, so `Ord` follows the codes and "at least as severe as X" is `s <= X`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogSeverity {
    #[serde(alias = "emerg", alias = "panic")]
    Emergency = 0,
    Alert = 1,
    #[serde(alias = "crit")]
    Critical = 2,
    #[serde(alias = "err")]
    Error = 3,
    #[serde(alias = "warn")]
    Warning = 4,
    Notice = 5,
    #[serde(alias = "informational")]
    Info = 6,
    Debug = 7,
}

impl SyslogSeverity {
    /// The severity of a code 0–7 (the low three bits of PRI).
    pub const fn from_code(code: u8) -> SyslogSeverity {
        match code & 7 {
            0 => SyslogSeverity::Emergency,
            1 => SyslogSeverity::Alert,
            2 => SyslogSeverity::Critical,
            3 => SyslogSeverity::Error,
            4 => SyslogSeverity::Warning,
            5 => SyslogSeverity::Notice,
            6 => SyslogSeverity::Info,
            _ => SyslogSeverity::Debug,
        }
    }

    pub const fn code(self) -> u8 {
        self as u8
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            SyslogSeverity::Emergency => "emergency",
            SyslogSeverity::Alert => "alert",
            SyslogSeverity::Critical => "critical",
            SyslogSeverity::Error => "error",
            SyslogSeverity::Warning => "warning",
            SyslogSeverity::Notice => "notice",
            SyslogSeverity::Info => "info",
            SyslogSeverity::Debug => "debug",
        }
    }

    /// The event severity: the envelope has no emergency or alert, both become critical.
    pub const fn to_event(self) -> ispvm_proto::Severity {
        use ispvm_proto::Severity;
        match self {
            SyslogSeverity::Emergency | SyslogSeverity::Alert | SyslogSeverity::Critical => {
                Severity::Critical
            }
            SyslogSeverity::Error => Severity::Error,
            SyslogSeverity::Warning => Severity::Warning,
            SyslogSeverity::Notice => Severity::Notice,
            SyslogSeverity::Info => Severity::Info,
            SyslogSeverity::Debug => Severity::Debug,
        }
    }
}

/// Syslog facility, 0–23 (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Facility(u8);

impl Facility {
    /// `user`, the facility RFC 3164 §4.3.3 assumes when a message has no PRI.
    pub const USER: Facility = Facility(1);

    /// `None` above 23.
    pub const fn new(code: u8) -> Option<Facility> {
        if code <= 23 {
            Some(Facility(code))
        } else {
            None
        }
    }

    pub const fn code(self) -> u8 {
        self.0
    }

    pub const fn as_str(self) -> &'static str {
        const NAMES: [&str; 24] = [
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
            "authpriv", "ftp", "ntp", "security", "console", "clock", "local0", "local1", "local2",
            "local3", "local4", "local5", "local6", "local7",
        ];
        if (self.0 as usize) < NAMES.len() {
            NAMES[self.0 as usize]
        } else {
            "unknown"
        }
    }
}

/// Which syntax a message was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// BSD syslog, RFC 3164 (what RouterOS sends).
    Rfc3164,
    /// RFC 5424.
    Rfc5424,
}

impl Format {
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Rfc3164 => "rfc3164",
            Format::Rfc5424 => "rfc5424",
        }
    }
}

/// One structured-data element of an RFC 5424 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    pub id: String,
    pub params: Vec<(String, String)>,
}

/// A parsed syslog message. Header fields a sender left out (or sent as `-`) are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    pub format: Format,
    pub facility: Facility,
    pub severity: SyslogSeverity,
    /// False when the message had no PRI and the RFC 3164 default (user.notice) was used.
    pub pri_present: bool,
    /// The timestamp as the device wrote it; devices' clocks and time zones are not
    /// trusted, events carry the agent's receive time.
    pub timestamp: Option<String>,
    pub hostname: Option<String>,
    /// RFC 5424 APP-NAME, or the RFC 3164 tag (`sshd` of `sshd[42]: ...`).
    pub app_name: Option<String>,
    pub proc_id: Option<String>,
    pub msg_id: Option<String>,
    pub structured_data: Vec<SdElement>,
    /// The free-form message (after the tag for RFC 3164, after the BOM for RFC 5424).
    pub message: String,
}

/// Why bytes are not a syslog message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("invalid PRI: {0}")]
    Pri(&'static str),
    #[error("invalid RFC 5424 structured data: {0}")]
    StructuredData(&'static str),
    #[error("invalid RFC 5424 header: {0}")]
    Header(&'static str),
    #[error("binary data, not a text message")]
    Binary,
}

/// Longest PRI part: `<191>`.
const PRI_MAX_LEN: usize = 5;

/// Facility, severity and the bytes after PRI.
pub(crate) type Pri<'a> = (Facility, SyslogSeverity, &'a [u8]);

/// Reads `<PRI>` at the start of `bytes`: `Ok(None)` when there is no PRI at all (the
/// message does not start with `<`), else the facility, severity and the rest.
pub(crate) fn parse_pri(bytes: &[u8]) -> Result<Option<Pri<'_>>, ParseError> {
    if bytes.first() != Some(&b'<') {
        return Ok(None);
    }
    let end = bytes
        .iter()
        .take(PRI_MAX_LEN)
        .position(|&b| b == b'>')
        .ok_or(ParseError::Pri("no closing '>' within 5 bytes"))?;
    let digits = &bytes[1..end];
    if digits.is_empty() {
        return Err(ParseError::Pri("no digits"));
    }
    let mut value: u16 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(ParseError::Pri("not a number"));
        }
        value = value * 10 + u16::from(d - b'0');
    }
    if value > 191 {
        return Err(ParseError::Pri("above 191"));
    }
    // Both fit: value <= 191, so value >> 3 <= 23.
    let value = value as u8;
    let facility = Facility::new(value >> 3).ok_or(ParseError::Pri("facility above 23"))?;
    Ok(Some((
        facility,
        SyslogSeverity::from_code(value & 7),
        &bytes[end + 1..],
    )))
}

/// Removes what senders and framings leave at the end of a message: CR, LF, NUL and
/// trailing spaces.
pub(crate) fn trim_end(bytes: &[u8]) -> &[u8] {
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\r' | b'\n' | b'\0' | b' ' | b'\t') {
        end -= 1;
    }
    &bytes[..end]
}

/// Parses one syslog message: RFC 5424 when it says so (`<PRI>1 `) and its header reads,
/// RFC 3164 otherwise. A message without PRI is taken as RFC 3164 user.notice when it is
/// text (RFC 3164 §4.3.3); binary data is refused.
pub fn parse(bytes: &[u8]) -> Result<SyslogMessage, ParseError> {
    let bytes = trim_end(bytes);
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    match parse_pri(bytes)? {
        Some((facility, severity, rest)) => {
            if rest.starts_with(b"1 ") {
                match rfc5424::parse_after_pri(facility, severity, &rest[2..]) {
                    Ok(m) => return Ok(m),
                    // A header that does not read as RFC 5424 may still be a BSD line
                    // that happens to start with "1 "; broken structured data after a
                    // good header is a broken RFC 5424 message.
                    Err(ParseError::Header(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            rfc3164::parse_after_pri(facility, severity, true, rest)
        }
        None => {
            if looks_binary(bytes) {
                return Err(ParseError::Binary);
            }
            rfc3164::parse_after_pri(Facility::USER, SyslogSeverity::Notice, false, bytes)
        }
    }
}

/// True when bytes hold control characters other than tab, or are not UTF-8.
fn looks_binary(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.chars().any(|c| c.is_control() && c != '\t'),
        Err(_) => true,
    }
}

/// Text made safe for an event: control characters other than tab and newline (which
/// storage may refuse, NUL above all) written as `\u{..}` escapes, and cut at `max` bytes
/// on a character boundary with a `…` mark.
pub fn clean_text(s: &str, max: usize) -> String {
    clean(s, max, true)
}

/// Like [`clean_text`] for names (interfaces, peers): no control character at all.
pub fn clean_name(s: &str, max: usize) -> String {
    clean(s, max, false)
}

fn clean(s: &str, max: usize, keep_lines: bool) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 8);
    for c in s.chars() {
        if c.is_control() && !(keep_lines && (c == '\t' || c == '\n')) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
        if out.len() > max {
            break; // bounded work whatever the input's length
        }
    }
    if out.len() <= max {
        return out;
    }
    // Cut on a character boundary, leaving room for the 3-byte mark.
    let mut cut = max.saturating_sub(3);
    while cut > 0 && !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    if max >= 3 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pri_bounds() {
        assert!(
            matches!(parse_pri(b"<0>x"), Ok(Some((f, SyslogSeverity::Emergency, b"x"))) if f.code() == 0)
        );
        assert!(
            matches!(parse_pri(b"<191>x"), Ok(Some((f, SyslogSeverity::Debug, _))) if f.code() == 23)
        );
        assert_eq!(parse_pri(b"<192>x"), Err(ParseError::Pri("above 191")));
        assert_eq!(parse_pri(b"<>x"), Err(ParseError::Pri("no digits")));
        assert_eq!(parse_pri(b"<1a>x"), Err(ParseError::Pri("not a number")));
        assert_eq!(
            parse_pri(b"<1234>x"),
            Err(ParseError::Pri("no closing '>' within 5 bytes"))
        );
        assert_eq!(
            parse_pri(b"<"),
            Err(ParseError::Pri("no closing '>' within 5 bytes"))
        );
        assert_eq!(parse_pri(b"hello"), Ok(None));
    }

    #[test]
    fn severity_order_and_mapping() {
        assert!(SyslogSeverity::Critical < SyslogSeverity::Info);
        assert_eq!(SyslogSeverity::from_code(6), SyslogSeverity::Info);
        assert_eq!(
            SyslogSeverity::Alert.to_event(),
            ispvm_proto::Severity::Critical
        );
        assert_eq!(Facility::new(16).map(Facility::as_str), Some("local0"));
        assert_eq!(Facility::new(24), None);
    }

    #[test]
    fn dispatches_between_formats() {
        let m = parse(b"<165>1 2003-10-11T22:14:15.003Z host app - ID47 - hi\n").expect("5424");
        assert_eq!(m.format, Format::Rfc5424);
        let m = parse(b"<30>Jan  5 10:00:00 r1 interface,info ether1 link down").expect("3164");
        assert_eq!(m.format, Format::Rfc3164);
        // "1 " that is not a 5424 header: a BSD line.
        let m = parse(b"<13>1 apple a day").expect("3164");
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!(m.message, "1 apple a day");
    }

    #[test]
    fn missing_pri_and_garbage() {
        let m = parse(b"just some text").expect("default pri");
        assert!(!m.pri_present);
        assert_eq!(m.severity, SyslogSeverity::Notice);
        assert_eq!(m.facility, Facility::USER);
        assert_eq!(parse(b"\x00\x01\x02binary"), Err(ParseError::Binary));
        assert_eq!(parse(b"\xff\xfe"), Err(ParseError::Binary));
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"\r\n\0"), Err(ParseError::Empty));
        assert!(parse(b"<13>").is_err());
    }

    #[test]
    fn clean_text_escapes_and_bounds() {
        assert_eq!(clean_text("a\0b", 100), "a\\u{0}b");
        assert_eq!(clean_text("tab\tok\nline\r", 100), "tab\tok\nline\\u{d}");
        assert_eq!(clean_name("a\tb\nc", 100), "a\\u{9}b\\u{a}c");
        let long = "é".repeat(100);
        let c = clean_text(&long, 21);
        assert!(c.len() <= 21, "{}", c.len());
        assert!(c.ends_with('…'));
        assert_eq!(clean_text("short", 5), "short");
        assert_eq!(clean_text("toolong", 2), "");
    }
}
