//! The meaning of words: commands a client sends and replies a router gives.
//!
//! Word forms: a command word (`/system/resource/print`), attribute words (`=key=value`;
//! the value may itself contain `=`), API attribute words (`.tag=7`, `.proplist=a,b`),
//! query words (`?name=ether1`, `?>rx-byte=0`, `?-`, `?#|`), and reply words (`!re`,
//! `!done`, `!trap`, `!fatal`, `!empty`). Text is decoded as UTF-8, lossily: RouterOS
//! allows legacy code pages in names and comments, and a monitor must not fail on them.

use super::sentence::Sentence;
use std::borrow::Cow;

/// A sentence that is framed correctly but means nothing valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("empty sentence")]
    Empty,
    #[error("{0:?} is not a command word")]
    NotACommand(String),
    #[error("{0:?} is not a reply word")]
    NotAReply(String),
    #[error("unexpected word {0:?}")]
    UnexpectedWord(String),
}

fn text(word: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(word)
}

/// Splits `=key=value` (without its leading `=`) at the first `=`.
fn split_attr(rest: &str) -> (String, String) {
    match rest.split_once('=') {
        Some((k, v)) => (k.to_owned(), v.to_owned()),
        None => (rest.to_owned(), String::new()),
    }
}

/// A command sent to a router.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// The command word, e.g. `/interface/print` or `/login`.
    pub path: String,
    /// `=key=value` words, in order.
    pub attributes: Vec<(String, String)>,
    /// `.tag`: replies to this command carry the same tag.
    pub tag: Option<String>,
    /// `.proplist`: the properties a `print` should return.
    pub proplist: Option<Vec<String>>,
    /// Query words without their leading `?`, e.g. `type=ether`, `-`, `#|`.
    pub queries: Vec<String>,
}

impl Command {
    pub fn new(path: impl Into<String>) -> Self {
        Command {
            path: path.into(),
            ..Command::default()
        }
    }

    #[must_use]
    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    #[must_use]
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    #[must_use]
    pub fn with_proplist<I: IntoIterator<Item = S>, S: Into<String>>(mut self, props: I) -> Self {
        self.proplist = Some(props.into_iter().map(Into::into).collect());
        self
    }

    #[must_use]
    pub fn with_query(mut self, query: impl Into<String>) -> Self {
        self.queries.push(query.into());
        self
    }

    /// The value of an attribute word, if given.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn to_sentence(&self) -> Sentence {
        let mut words: Vec<Vec<u8>> = vec![self.path.clone().into_bytes()];
        for (k, v) in &self.attributes {
            words.push(format!("={k}={v}").into_bytes());
        }
        if let Some(props) = &self.proplist {
            words.push(format!(".proplist={}", props.join(",")).into_bytes());
        }
        for q in &self.queries {
            words.push(format!("?{q}").into_bytes());
        }
        if let Some(tag) = &self.tag {
            words.push(format!(".tag={tag}").into_bytes());
        }
        Sentence { words }
    }

    pub fn from_sentence(sentence: &Sentence) -> Result<Self, MessageError> {
        let mut words = sentence.words.iter();
        let first = words.next().ok_or(MessageError::Empty)?;
        let path = text(first);
        if !path.starts_with('/') {
            return Err(MessageError::NotACommand(path.into_owned()));
        }
        let mut cmd = Command::new(path.into_owned());
        for word in words {
            let w = text(word);
            if let Some(rest) = w.strip_prefix('=') {
                cmd.attributes.push(split_attr(rest));
            } else if let Some(rest) = w.strip_prefix('?') {
                cmd.queries.push(rest.to_owned());
            } else if let Some(rest) = w.strip_prefix('.') {
                let (k, v) = split_attr(rest);
                match k.as_str() {
                    "tag" => cmd.tag = Some(v),
                    "proplist" => {
                        cmd.proplist = Some(
                            v.split(',')
                                .filter(|p| !p.is_empty())
                                .map(str::to_owned)
                                .collect(),
                        )
                    }
                    // Other API attributes (.id as `.id=*1` without `=`) are kept as
                    // ordinary attributes under their dotted name.
                    _ => cmd.attributes.push((format!(".{k}"), v)),
                }
            } else {
                return Err(MessageError::UnexpectedWord(w.into_owned()));
            }
        }
        Ok(cmd)
    }
}

/// The kind of a reply sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// One item of data.
    Re,
    /// The command finished.
    Done,
    /// The command failed; `category` and `message` say why. `!done` still follows.
    Trap,
    /// The router is closing the connection; the message is the next word.
    Fatal,
    /// The command has no data (RouterOS ≥ 7.18); `!done` still follows.
    Empty,
}

impl ReplyKind {
    pub const fn word(self) -> &'static str {
        match self {
            ReplyKind::Re => "!re",
            ReplyKind::Done => "!done",
            ReplyKind::Trap => "!trap",
            ReplyKind::Fatal => "!fatal",
            ReplyKind::Empty => "!empty",
        }
    }

    /// Whether this reply ends the command it answers. `!empty` does not: RouterOS 7.18
    /// sends `!done` after it.
    pub const fn is_final(self) -> bool {
        matches!(self, ReplyKind::Done | ReplyKind::Fatal)
    }
}

/// A reply sentence from a router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    pub tag: Option<String>,
    /// `=key=value` words, in order.
    pub attributes: Vec<(String, String)>,
    /// For `!fatal`: the reason, given as a bare word.
    pub fatal_message: Option<String>,
}

impl Reply {
    pub fn new(kind: ReplyKind) -> Self {
        Reply {
            kind,
            tag: None,
            attributes: Vec::new(),
            fatal_message: None,
        }
    }

    /// A `!trap` with RouterOS's `category` (omitted when `None`) and `message`.
    pub fn trap(category: Option<u8>, message: impl Into<String>) -> Self {
        let mut r = Reply::new(ReplyKind::Trap);
        if let Some(c) = category {
            r.attributes.push(("category".into(), c.to_string()));
        }
        r.attributes.push(("message".into(), message.into()));
        r
    }

    #[must_use]
    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    #[must_use]
    pub fn with_tag(mut self, tag: Option<String>) -> Self {
        self.tag = tag;
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn to_sentence(&self) -> Sentence {
        let mut words: Vec<Vec<u8>> = vec![self.kind.word().as_bytes().to_vec()];
        if let Some(m) = &self.fatal_message {
            words.push(m.clone().into_bytes());
        }
        for (k, v) in &self.attributes {
            words.push(format!("={k}={v}").into_bytes());
        }
        if let Some(tag) = &self.tag {
            words.push(format!(".tag={tag}").into_bytes());
        }
        Sentence { words }
    }

    pub fn from_sentence(sentence: &Sentence) -> Result<Self, MessageError> {
        let mut words = sentence.words.iter();
        let first = text(words.next().ok_or(MessageError::Empty)?).into_owned();
        let kind = match first.as_str() {
            "!re" => ReplyKind::Re,
            "!done" => ReplyKind::Done,
            "!trap" => ReplyKind::Trap,
            "!fatal" => ReplyKind::Fatal,
            "!empty" => ReplyKind::Empty,
            _ => return Err(MessageError::NotAReply(first)),
        };
        let mut reply = Reply::new(kind);
        for word in words {
            let w = text(word);
            if let Some(rest) = w.strip_prefix('=') {
                reply.attributes.push(split_attr(rest));
            } else if let Some(tag) = w.strip_prefix(".tag=") {
                reply.tag = Some(tag.to_owned());
            } else if kind == ReplyKind::Fatal && reply.fatal_message.is_none() {
                reply.fatal_message = Some(w.into_owned());
            } else {
                return Err(MessageError::UnexpectedWord(w.into_owned()));
            }
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trip() {
        let cmd = Command::new("/interface/print")
            .with_proplist(["name", "running", "rx-byte"])
            .with_query("type=ether")
            .with_query("#|")
            .with_attr("count-only", "")
            .with_tag("12");
        let back = Command::from_sentence(&cmd.to_sentence()).expect("parse");
        assert_eq!(back, cmd);
    }

    #[test]
    fn attribute_values_may_contain_equals() {
        let s = Sentence::new(["!re", "=comment=a=b=c", ".tag=3"]);
        let r = Reply::from_sentence(&s).expect("parse");
        assert_eq!(r.get("comment"), Some("a=b=c"));
        assert_eq!(r.tag.as_deref(), Some("3"));
    }

    #[test]
    fn trap_and_fatal() {
        let trap = Reply::trap(Some(0), "no such command prefix");
        let back = Reply::from_sentence(&trap.to_sentence()).expect("parse");
        assert_eq!(back.get("category"), Some("0"));
        assert_eq!(back.get("message"), Some("no such command prefix"));
        let fatal =
            Reply::from_sentence(&Sentence::new(["!fatal", "session terminated"])).expect("parse");
        assert_eq!(fatal.fatal_message.as_deref(), Some("session terminated"));
        assert!(fatal.kind.is_final());
    }

    #[test]
    fn nonsense_is_an_error() {
        assert_eq!(
            Command::from_sentence(&Sentence::default()),
            Err(MessageError::Empty)
        );
        assert!(Command::from_sentence(&Sentence::new(["print"])).is_err());
        assert!(Reply::from_sentence(&Sentence::new(["!ok"])).is_err());
        assert!(Reply::from_sentence(&Sentence::new(["!re", "junk"])).is_err());
    }
}
