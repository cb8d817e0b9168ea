//! Configuration documents: TOML files with environment overrides.
//!
//! Both binaries read one TOML file and let the environment override any key, so a
//! container or a systemd unit can change one setting without templating the file. A
//! variable `PREFIX_SECTION__KEY=value` sets `[section] key = value`; `__` separates
//! levels and names are lower-cased. A value from the environment takes the type of the
//! field it sets: `ISPVM_AGENT_AGENT_ID=1001` is the string `"1001"` for a string field
//! and `ISPVM_HTTP__MAX_CONNECTIONS=512` the number 512 for a numeric one; a list is
//! written as a TOML array (`["a", "b"]`). A key the configuration does not have, in the
//! file or from the environment, is an error naming it: a misspelt setting must not be
//! silently ignored. This module takes the variables as an argument and does no I/O, so
//! it is tested without touching the process environment.

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use std::collections::HashSet;

/// A configuration that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration is not valid TOML: {0}")]
    Syntax(String),
    #[error("environment variable {var}: {key} is not a table, cannot set {rest} under it")]
    NotATable {
        var: String,
        key: String,
        rest: String,
    },
    #[error("configuration is invalid: {0}")]
    Invalid(String),
    #[error("unknown configuration keys (misspelt, or from another version?): {}", .0.join(", "))]
    UnknownKeys(Vec<String>),
}

fn scalar(raw: &str) -> toml::Value {
    if let Ok(v) = raw.parse::<i64>() {
        return toml::Value::Integer(v);
    }
    if let Ok(v) = raw.parse::<f64>() {
        return toml::Value::Float(v);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_owned()),
    }
}

/// Parses `toml_text`, applies every variable of `vars` that starts with `prefix`, and
/// deserialises the result; keys `T` does not have are refused.
pub fn load<T, I>(toml_text: &str, prefix: &str, vars: I) -> Result<T, SettingsError>
where
    T: DeserializeOwned,
    I: IntoIterator<Item = (String, String)>,
{
    let mut doc: toml::Table =
        toml::from_str(toml_text).map_err(|e| SettingsError::Syntax(e.to_string()))?;
    let mut overrides: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .collect();
    overrides.sort();
    let mut from_env: HashSet<Vec<String>> = HashSet::new();
    for (var, raw) in overrides {
        let path: Vec<String> = var[prefix.len()..]
            .split("__")
            .map(str::to_lowercase)
            .collect();
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut table = &mut doc;
        for (depth, key) in parents.iter().enumerate() {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| SettingsError::NotATable {
                    var: var.clone(),
                    key: key.clone(),
                    rest: path[depth + 1..].join("."),
                })?;
        }
        table.insert(last.clone(), toml::Value::String(raw));
        from_env.insert(path);
    }
    let mut unknown = Vec::new();
    let root = Node {
        value: toml::Value::Table(doc),
        path: Vec::new(),
        from_env: &from_env,
    };
    let config: T = serde_ignored::deserialize(root, |path| unknown.push(path.to_string()))
        .map_err(|e: toml::de::Error| SettingsError::Invalid(e.to_string()))?;
    if !unknown.is_empty() {
        return Err(SettingsError::UnknownKeys(unknown));
    }
    Ok(config)
}

/// A value of the merged document on its way into the configuration type. Values that
/// came from the environment are text; they are read as whatever the field asks for.
struct Node<'a> {
    value: toml::Value,
    path: Vec<String>,
    from_env: &'a HashSet<Vec<String>>,
}

impl<'a> Node<'a> {
    /// The text of a value set from the environment.
    fn env_text(&self) -> Option<&str> {
        match &self.value {
            toml::Value::String(s) if self.from_env.contains(&self.path) => Some(s),
            _ => None,
        }
    }

    fn child(&self, key: String, value: toml::Value) -> Node<'a> {
        let mut path = self.path.clone();
        path.push(key);
        Node {
            value,
            path,
            from_env: self.from_env,
        }
    }

    /// Reads environment text as `T`, or says which variable is wrong.
    fn parse<T: std::str::FromStr>(&self, text: &str, what: &str) -> Result<T, toml::de::Error> {
        text.trim().parse().map_err(|_| {
            de::Error::custom(format!(
                "{} from the environment is {text:?}, not {what}",
                self.path.join(".")
            ))
        })
    }
}

macro_rules! env_number {
    ($($method:ident => $visit:ident, $ty:ty, $what:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                match self.env_text() {
                    Some(text) => visitor.$visit(self.parse::<$ty>(text, $what)?),
                    None => self.deserialize_any(visitor),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Node<'_> {
    type Error = toml::de::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if let Some(text) = self.env_text() {
            // Nothing says what the field wants: read the text as TOML would.
            return scalar(text).deserialize_any(visitor);
        }
        let Node {
            value,
            path,
            from_env,
        } = self;
        match value {
            toml::Value::Table(table) => visitor.visit_map(Entries {
                entries: table.into_iter(),
                pending: None,
                parent: Node {
                    value: toml::Value::Boolean(false),
                    path,
                    from_env,
                },
            }),
            toml::Value::Array(items) => visitor.visit_seq(Items {
                items: items.into_iter().enumerate(),
                parent: Node {
                    value: toml::Value::Boolean(false),
                    path,
                    from_env,
                },
            }),
            other => other.deserialize_any(visitor),
        }
    }

    env_number! {
        deserialize_bool => visit_bool, bool, "true or false";
        deserialize_i8 => visit_i8, i8, "an integer";
        deserialize_i16 => visit_i16, i16, "an integer";
        deserialize_i32 => visit_i32, i32, "an integer";
        deserialize_i64 => visit_i64, i64, "an integer";
        deserialize_u8 => visit_u8, u8, "a non-negative integer";
        deserialize_u16 => visit_u16, u16, "a non-negative integer";
        deserialize_u32 => visit_u32, u32, "a non-negative integer";
        deserialize_u64 => visit_u64, u64, "a non-negative integer";
        deserialize_f32 => visit_f32, f32, "a number";
        deserialize_f64 => visit_f64, f64, "a number";
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.env_text() {
            Some(text) => visitor.visit_string(text.to_owned()),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.env_text() {
            Some(text) => {
                // A list from the environment is a TOML array: `["a", "b"]`.
                let doc: toml::Table = toml::from_str(&format!("v = {text}")).map_err(|_| {
                    de::Error::custom(format!(
                        "{} from the environment is {text:?}, not a TOML array such as [\"a\", \"b\"]",
                        self.path.join(".")
                    ))
                })?;
                let value = doc
                    .get("v")
                    .cloned()
                    .unwrap_or(toml::Value::Array(Vec::new()));
                Node {
                    value,
                    path: vec![],
                    from_env: self.from_env,
                }
                .deserialize_any(visitor)
            }
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value {
            toml::Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            other => other.deserialize_enum(name, variants, visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// The entries of a table, each read as a [`Node`].
struct Entries<'a> {
    entries: toml::map::IntoIter<String, toml::Value>,
    pending: Option<(String, toml::Value)>,
    parent: Node<'a>,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = toml::de::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let k = seed.deserialize(key.clone().into_deserializer())?;
        self.pending = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(self.parent.child(key, value))
    }
}

/// The items of an array, each read as a [`Node`].
struct Items<'a> {
    items: std::iter::Enumerate<std::vec::IntoIter<toml::Value>>,
    parent: Node<'a>,
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = toml::de::Error;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        match self.items.next() {
            Some((i, value)) => seed
                .deserialize(self.parent.child(i.to_string(), value))
                .map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Http {
        listen: String,
        workers: Option<i64>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Conf {
        name: String,
        http: Http,
        debug: Option<bool>,
    }

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_file() {
        let text = "name = \"a\"\n[http]\nlisten = \"127.0.0.1:1\"\n";
        let conf: Conf = load(
            text,
            "APP_",
            vars(&[
                ("APP_HTTP__LISTEN", "0.0.0.0:9"),
                ("APP_HTTP__WORKERS", "4"),
                ("APP_DEBUG", "true"),
                ("OTHER_NAME", "ignored"),
            ]),
        )
        .expect("load");
        assert_eq!(
            conf,
            Conf {
                name: "a".into(),
                http: Http {
                    listen: "0.0.0.0:9".into(),
                    workers: Some(4)
                },
                debug: Some(true)
            }
        );
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Agent {
        agent_id: String,
        port: u16,
        ratio: f64,
        enabled: bool,
        seeds: Vec<String>,
        nick: Option<String>,
        #[serde(default)]
        mode: Mode,
    }

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Quiet,
        Loud,
    }

    /// An environment value is read as the type of the field it sets: digits for a
    /// string field stay a string (`ISPVM_AGENT_AGENT_ID=1001` failed to load before).
    #[test]
    fn environment_values_take_the_type_of_their_field() {
        let a: Agent = load(
            "",
            "A_",
            vars(&[
                ("A_AGENT_ID", "1001"),
                ("A_PORT", "8728"),
                ("A_RATIO", "2"),
                ("A_ENABLED", "true"),
                ("A_SEEDS", r#"["10.0.0.1:7946", "10.0.0.2:7946"]"#),
                ("A_NICK", "42"),
                ("A_MODE", "loud"),
            ]),
        )
        .expect("load");
        assert_eq!(
            a,
            Agent {
                agent_id: "1001".into(),
                port: 8728,
                ratio: 2.0,
                enabled: true,
                seeds: vec!["10.0.0.1:7946".into(), "10.0.0.2:7946".into()],
                nick: Some("42".into()),
                mode: Mode::Loud,
            }
        );
        let err = load::<Agent, _>(
            "agent_id = \"a\"\nratio = 1.0\nenabled = true\nseeds = []",
            "A_",
            vars(&[("A_PORT", "eighty")]),
        )
        .expect_err("not a number");
        assert!(err.to_string().contains("port"), "{err}");
        assert!(err.to_string().contains("eighty"), "{err}");
    }

    /// A key the configuration does not have is an error that names it, from the file
    /// or from the environment.
    #[test]
    fn unknown_keys_are_errors() {
        let err = load::<Conf, _>(
            "name = \"a\"\n[http]\nlisten = \"x\"\nlistn = \"y\"\n",
            "APP_",
            vars(&[("APP_DEBGU", "true")]),
        )
        .expect_err("unknown keys");
        match err {
            SettingsError::UnknownKeys(keys) => {
                assert_eq!(keys, ["debgu", "http.listn"], "{keys:?}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn errors_are_clear() {
        assert!(matches!(
            load::<Conf, _>("name = ", "APP_", vec![]),
            Err(SettingsError::Syntax(_))
        ));
        assert!(matches!(
            load::<Conf, _>("name = \"a\"", "APP_", vec![]),
            Err(SettingsError::Invalid(_))
        ));
        assert!(matches!(
            load::<Conf, _>(
                "name = \"a\"\n[http]\nlisten = \"x\"",
                "APP_",
                vars(&[("APP_NAME__X", "1")])
            ),
            Err(SettingsError::NotATable { .. })
        ));
    }
}
