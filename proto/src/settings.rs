//! Configuration documents: TOML files with environment overrides.
//!
//! Both binaries read one TOML file and let the environment override any key, so a
//! container or a systemd unit can change one setting without templating the file. A
//! variable `PREFIX_SECTION__KEY=value` sets `[section] key = value`; `__` separates
//! levels and names are lower-cased. Values are read as TOML scalars when they parse as
//! one (`true`, `42`, `1.5`), otherwise as strings. This module takes the variables as an
//! argument and does no I/O, so it is tested without touching the process environment.

use serde::de::DeserializeOwned;

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
/// deserialises the result.
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
        table.insert(last.clone(), scalar(&raw));
    }
    toml::Value::Table(doc)
        .try_into()
        .map_err(|e: toml::de::Error| SettingsError::Invalid(e.to_string()))
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
