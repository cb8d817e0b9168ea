//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`.
//!
//! Header fields are printable US-ASCII with the RFC's length limits, `-` for "none".
//! Structured data is parsed with its escapes (`\"`, `\\`, `\]`); what a message may
//! carry is bounded (elements and parameters beyond the limits are skipped, never stored),
//! and broken structured data makes the message malformed rather than guessed at. A UTF-8
//! BOM at the start of MSG is removed; MSG that is not UTF-8 is decoded lossily.

use super::{Facility, Format, ParseError, SdElement, SyslogMessage, SyslogSeverity};

const TIMESTAMP_MAX: usize = 48;
const HOSTNAME_MAX: usize = 255;
const APP_NAME_MAX: usize = 48;
const PROCID_MAX: usize = 128;
const MSGID_MAX: usize = 32;
const SD_NAME_MAX: usize = 32;
/// Elements and parameters kept per message; more are parsed (to find MSG) but dropped.
pub const SD_ELEMENTS_KEPT: usize = 8;
pub const SD_PARAMS_KEPT: usize = 16;
const SD_VALUE_KEPT: usize = 512;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses what follows `<PRI>1 `.
pub(crate) fn parse_after_pri(
    facility: Facility,
    severity: SyslogSeverity,
    rest: &[u8],
) -> Result<SyslogMessage, ParseError> {
    let (timestamp, rest) = field(rest, TIMESTAMP_MAX)?;
    if let Some(ts) = timestamp
        && super::rfc3164::iso_timestamp(ts) != Some(ts.len())
    {
        return Err(ParseError::Header("timestamp is not RFC 3339"));
    }
    let (hostname, rest) = field(rest, HOSTNAME_MAX)?;
    let (app_name, rest) = field(rest, APP_NAME_MAX)?;
    let (proc_id, rest) = field(rest, PROCID_MAX)?;
    let (msg_id, rest) = msgid(rest)?;
    let (structured_data, rest) = structured_data(rest)?;
    let message = match rest {
        [] => String::new(),
        [b' ', msg @ ..] => {
            let msg = msg.strip_prefix(BOM).unwrap_or(msg);
            String::from_utf8_lossy(msg).into_owned()
        }
        _ => return Err(ParseError::StructuredData("no space after structured data")),
    };
    Ok(SyslogMessage {
        format: Format::Rfc5424,
        facility,
        severity,
        pri_present: true,
        timestamp: timestamp.map(str::to_owned),
        hostname: hostname.map(str::to_owned),
        app_name: app_name.map(str::to_owned),
        proc_id: proc_id.map(str::to_owned),
        msg_id: msg_id.map(str::to_owned),
        structured_data,
        message,
    })
}

/// A header field followed by one space: `None` for `-`.
fn field(bytes: &[u8], max: usize) -> Result<(Option<&str>, &[u8]), ParseError> {
    let len = bytes
        .iter()
        .take(max + 1)
        .take_while(|&&b| (33..=126).contains(&b))
        .count();
    if len == 0 {
        return Err(ParseError::Header("empty or non-printable field"));
    }
    if len > max {
        return Err(ParseError::Header("field too long"));
    }
    if bytes.get(len) != Some(&b' ') {
        return Err(ParseError::Header("field not followed by a space"));
    }
    // Printable ASCII is UTF-8.
    let text = std::str::from_utf8(&bytes[..len]).map_err(|_| ParseError::Header("not ASCII"))?;
    Ok(((text != "-").then_some(text), &bytes[len + 1..]))
}

/// MSGID, the last header field: a space follows, structured data comes next.
fn msgid(bytes: &[u8]) -> Result<(Option<&str>, &[u8]), ParseError> {
    field(bytes, MSGID_MAX)
}

/// `-` or one or more `[ID PARAM="VALUE" ...]`; returns the elements kept and the rest.
fn structured_data(bytes: &[u8]) -> Result<(Vec<SdElement>, &[u8]), ParseError> {
    match bytes.first() {
        Some(b'-') => return Ok((Vec::new(), &bytes[1..])),
        Some(b'[') => {}
        _ => return Err(ParseError::StructuredData("neither '-' nor '['")),
    }
    let mut elements = Vec::new();
    let mut i = 0;
    while bytes.get(i) == Some(&b'[') {
        i += 1;
        let (id, n) = sd_name(&bytes[i..])?;
        i += n;
        let mut params = Vec::new();
        loop {
            match bytes.get(i) {
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(b' ') => {
                    i += 1;
                    let (name, n) = sd_name(&bytes[i..])?;
                    i += n;
                    if bytes.get(i) != Some(&b'=') || bytes.get(i + 1) != Some(&b'"') {
                        return Err(ParseError::StructuredData("parameter without =\"value\""));
                    }
                    i += 2;
                    let (value, n) = sd_value(&bytes[i..])?;
                    i += n;
                    if params.len() < SD_PARAMS_KEPT {
                        params.push((name.to_owned(), value));
                    }
                }
                Some(_) => return Err(ParseError::StructuredData("unexpected byte in element")),
                None => return Err(ParseError::StructuredData("unterminated element")),
            }
        }
        if elements.len() < SD_ELEMENTS_KEPT {
            elements.push(SdElement {
                id: id.to_owned(),
                params,
            });
        }
    }
    Ok((elements, &bytes[i..]))
}

/// SD-ID or PARAM-NAME: 1–32 printable ASCII bytes other than `=`, space, `]` and `"`.
fn sd_name(bytes: &[u8]) -> Result<(&str, usize), ParseError> {
    let len = bytes
        .iter()
        .take(SD_NAME_MAX + 1)
        .take_while(|&&b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
        .count();
    if len == 0 {
        return Err(ParseError::StructuredData("empty name"));
    }
    if len > SD_NAME_MAX {
        return Err(ParseError::StructuredData("name over 32 bytes"));
    }
    let name = std::str::from_utf8(&bytes[..len])
        .map_err(|_| ParseError::StructuredData("name not ASCII"))?;
    Ok((name, len))
}

/// A PARAM-VALUE after its opening quote: the unescaped value (bounded) and the bytes
/// consumed, closing quote included.
fn sd_value(bytes: &[u8]) -> Result<(String, usize), ParseError> {
    let mut value = Vec::new();
    let mut i = 0;
    loop {
        match bytes.get(i) {
            None => return Err(ParseError::StructuredData("unterminated value")),
            Some(b'"') => break,
            Some(b'\\') => {
                // Only \" \\ \] are escapes; any other backslash stays as it is.
                match bytes.get(i + 1) {
                    Some(&c @ (b'"' | b'\\' | b']')) => {
                        if value.len() < SD_VALUE_KEPT {
                            value.push(c);
                        }
                        i += 2;
                    }
                    _ => {
                        if value.len() < SD_VALUE_KEPT {
                            value.push(b'\\');
                        }
                        i += 1;
                    }
                }
            }
            Some(&c) => {
                if value.len() < SD_VALUE_KEPT {
                    value.push(c);
                }
                i += 1;
            }
        }
    }
    Ok((String::from_utf8_lossy(&value).into_owned(), i + 1))
}

#[cfg(test)]
mod tests {
    use crate::syslog::{Format, ParseError, SyslogSeverity, parse};

    #[test]
    fn rfc_examples() {
        // RFC 5424 §6.5, example 1 (no structured data, BOM before MSG).
        let m = parse(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
        )
        .expect("parse");
        assert_eq!(m.format, Format::Rfc5424);
        assert_eq!(m.facility.as_str(), "auth");
        assert_eq!(m.severity, SyslogSeverity::Critical);
        assert_eq!(m.timestamp.as_deref(), Some("2003-10-11T22:14:15.003Z"));
        assert_eq!(m.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.proc_id, None);
        assert_eq!(m.msg_id.as_deref(), Some("ID47"));
        assert!(m.structured_data.is_empty());
        assert_eq!(m.message, "'su root' failed for lonvick on /dev/pts/8");

        // Example 3: structured data and a message.
        let m = parse(
            br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \xEF\xBB\xBFAn application event log entry..."#,
        )
        .expect("parse");
        assert_eq!(m.structured_data.len(), 1);
        let sd = &m.structured_data[0];
        assert_eq!(sd.id, "exampleSDID@32473");
        assert_eq!(
            sd.params,
            vec![
                ("iut".to_owned(), "3".to_owned()),
                ("eventSource".to_owned(), "Application".to_owned()),
                ("eventID".to_owned(), "1011".to_owned()),
            ]
        );
        // The escaped bytes in the raw literal: \xEF.. are literal text here, not a BOM.
        assert!(m.message.starts_with("\\xEF"));

        // Example 4: two elements, no MSG.
        let m = parse(
            br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#,
        )
        .expect("parse");
        assert_eq!(m.structured_data.len(), 2);
        assert_eq!(m.structured_data[1].params[0].1, "high");
        assert_eq!(m.message, "");
    }

    #[test]
    fn bom_and_escapes() {
        let mut line = br#"<14>1 2024-01-02T03:04:05+01:00 r1 app 42 - [x@1 q="a \"quoted\" \] \\ \n value"] "#.to_vec();
        line.extend_from_slice(b"\xEF\xBB\xBFh\xC3\xA9llo");
        let m = parse(&line).expect("parse");
        assert_eq!(m.proc_id.as_deref(), Some("42"));
        assert_eq!(
            m.structured_data[0].params[0].1,
            r#"a "quoted" ] \ \n value"#
        );
        assert_eq!(m.message, "héllo");
    }

    #[test]
    fn nil_fields() {
        let m = parse(b"<13>1 - - - - - -").expect("parse");
        assert_eq!(m.timestamp, None);
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name, None);
        assert_eq!(m.message, "");
    }

    #[test]
    fn broken_structured_data_is_malformed() {
        for bad in [
            &br#"<13>1 - h a - - [id p="unterminated"#[..],
            br#"<13>1 - h a - - [id p=unquoted] msg"#,
            br#"<13>1 - h a - - [] msg"#,
            br#"<13>1 - h a - - [id p="v"]junk"#,
            br#"<13>1 - h a - - junk msg"#,
            br#"<13>1 - h a - - [id"#,
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::StructuredData(_))),
                "{:?} -> {:?}",
                String::from_utf8_lossy(bad),
                parse(bad)
            );
        }
    }

    #[test]
    fn bounded_structured_data() {
        let mut line = String::from("<13>1 - h a - - ");
        for i in 0..20 {
            line.push_str(&format!("[e{i}"));
            for j in 0..40 {
                line.push_str(&format!(" p{j}=\"{}\"", "v".repeat(2000)));
            }
            line.push(']');
        }
        line.push_str(" tail");
        let m = parse(line.as_bytes()).expect("parse");
        assert_eq!(m.structured_data.len(), super::SD_ELEMENTS_KEPT);
        assert_eq!(m.structured_data[0].params.len(), super::SD_PARAMS_KEPT);
        assert_eq!(m.structured_data[0].params[0].1.len(), super::SD_VALUE_KEPT);
        assert_eq!(m.message, "tail");
    }

    #[test]
    fn bad_header_falls_back_to_bsd() {
        // "1 " followed by something that is not a 5424 header.
        let m = parse(b"<13>1 2 3").expect("parse");
        assert_eq!(m.format, Format::Rfc3164);
        let m = parse(b"<13>1 notatime host app - - - msg").expect("parse");
        assert_eq!(m.format, Format::Rfc3164);
        let long_host = format!("<13>1 - {} a - - - m", "h".repeat(300));
        assert_eq!(
            parse(long_host.as_bytes()).map(|m| m.format),
            Ok(Format::Rfc3164)
        );
    }
}
