//! Settings from the environment: every setting of the config file and of the policy can be
//! given by an environment variable, laid over the file's value, so that a container needs no
//! file at all.
//!
//! A variable `MODSIGNAL__{SECTION}__{KEY}` sets `KEY` of the config file's `[section]`
//! (`MODSIGNAL__HTTP__MAX_PAGE=100`, `MODSIGNAL__KAFKA__SNAPSHOT_INTERVAL=5m`); more `__` reach
//! nested tables. `MODSIGNAL__POLICY__{SECTION}__{KEY}` sets a policy setting
//! (`MODSIGNAL__POLICY__STREAM__LATENESS_SECS=600`). Names are case-insensitive and written in
//! lower case in the file. A value is read as a TOML value when it is one (`100`, `true`,
//! `["events"]`, `[{ token_env = "T", role = "analyst" }]`) and as a string otherwise (`5m`,
//! `kafka:9092`).
//!
//! The `MODSIGNAL_` variables of single command-line options (`MODSIGNAL_BROKERS`, …) are
//! another layer on top of these, as the options are. librdkafka settings, whose names hold
//! dots, come through `MODSIGNAL_KAFKA_PROPERTY` instead.
//!
//! The config file is read here, once: [`load_config`] lays the variables over it and
//! deserialises it into a [`ConfigFile`], whose sections go to the crates they configure
//! (`[kafka]` to `modsignal_kafka::KafkaSection::into_config`, `[http]` to
//! `modsignal_api::ApiConfig::from_section`). Neither crate parses TOML. A top-level section
//! this binary does not know is refused, so that a misspelt `[kafak]` is not silently ignored.

use std::path::Path;

/// The prefix of a settings variable.
pub const PREFIX: &str = "MODSIGNAL__";

/// Which file a variable sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The config file (`--config`).
    Config,
    /// The policy (`--policy`, or the embedded one).
    Policy,
}

/// A variable or a file that cannot be laid over or read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Only the parser's message and the line are kept: the parser's own display quotes the
    /// offending line, which may hold a token.
    #[error("{origin} is not valid TOML{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Toml {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    #[error("environment variable {name}: {reason}")]
    Var { name: String, reason: String },
}

/// The settings variables of `scope` in `vars`: (path in the file, raw value, variable name).
fn variables(scope: Scope, vars: impl IntoIterator<Item = (String, String)>) -> Vec<(Vec<String>, String, String)> {
    let mut found: Vec<(Vec<String>, String, String)> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(PREFIX)?;
            let mut path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let policy = path.first().is_some_and(|s| s == "policy");
            match (scope, policy) {
                (Scope::Policy, true) => {
                    path.remove(0);
                }
                (Scope::Config, false) => {}
                _ => return None,
            }
            Some((path, value, name))
        })
        .collect();
    // Variables come in no particular order; sorting keeps the outcome reproducible.
    found.sort();
    found
}

/// Whether any settings variable of `scope` is set in the process environment.
pub fn any_in_env(scope: Scope) -> bool {
    !variables(scope, std::env::vars()).is_empty()
}

fn value_of(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// `text` (TOML, from `origin`) with the variables of `scope` in `vars` laid over it.
pub fn overlay(
    text: &str,
    origin: &str,
    scope: Scope,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<String, SettingsError> {
    let found = variables(scope, vars);
    if found.is_empty() {
        return Ok(text.to_owned());
    }
    let mut table: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
    for (path, raw, name) in found {
        let (last, tables) = match path.split_last() {
            Some((last, tables)) if !last.is_empty() && tables.iter().all(|t| !t.is_empty()) => (last, tables),
            _ => {
                return Err(SettingsError::Var {
                    name,
                    reason: "write MODSIGNAL__SECTION__KEY".into(),
                });
            }
        };
        let mut at = &mut table;
        for t in tables {
            let entry = at
                .entry(t.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = match entry {
                toml::Value::Table(inner) => inner,
                _ => {
                    return Err(SettingsError::Var {
                        name,
                        reason: format!("`{t}` is a setting, not a section"),
                    });
                }
            };
        }
        at.insert(last.clone(), value_of(&raw));
    }
    Ok(toml::to_string(&table).expect("a TOML table writes as TOML"))
}

fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> SettingsError {
    SettingsError::Toml {
        origin: origin.to_owned(),
        line: e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1)),
        message: e.message().to_owned(),
    }
}

/// The config file: every section this binary knows, each as the crate it configures takes it.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The Kafka worker's settings; `run --config` with this section runs the worker.
    pub kafka: Option<modsignal_kafka::KafkaSection>,
    /// The HTTP server's settings: the query API, the dashboard and `/metrics`.
    pub http: Option<modsignal_api::HttpSection>,
}

/// `text` (TOML, from `origin`) as a [`ConfigFile`].
pub fn parse_config(text: &str, origin: &str) -> Result<ConfigFile, SettingsError> {
    toml::from_str(text).map_err(|e| toml_error(text, origin, &e))
}

/// The config file at `path` with the environment laid over it, deserialised: `None` when there
/// is neither a file nor a settings variable.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Option<ConfigFile>> {
    let Some(text) = config_text(path)? else {
        return Ok(None);
    };
    let origin = path.map_or("the MODSIGNAL__ variables".to_owned(), |p| {
        format!("the config file {}", p.display())
    });
    Ok(Some(parse_config(&text, &origin)?))
}

/// The config file's text with the environment laid over it: `None` when there is neither a
/// file nor a settings variable.
pub fn config_text(path: Option<&Path>) -> anyhow::Result<Option<String>> {
    use anyhow::Context;
    let text = match path {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read the config file {}", p.display()))?
        }
        None if any_in_env(Scope::Config) => String::new(),
        None => return Ok(None),
    };
    let origin = path.map_or("(no config file)".to_owned(), |p| p.display().to_string());
    Ok(Some(overlay(&text, &origin, Scope::Config, std::env::vars())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn variables_set_and_add_settings_of_any_section() {
        let text = "[http]\naddress = \"127.0.0.1:8080\"\nmax_page = 500\n\n[kafka]\nbrokers = \"a:9092\"\n";
        let out = overlay(
            text,
            "f",
            Scope::Config,
            vars(&[
                ("MODSIGNAL__HTTP__MAX_PAGE", "100"),
                ("MODSIGNAL__HTTP__TOKENS", r#"[{ token_env = "T", role = "analyst" }]"#),
                ("MODSIGNAL__KAFKA__SNAPSHOT_INTERVAL", "5m"),
                ("MODSIGNAL__KAFKA__INPUT_TOPICS", r#"["events", "labels"]"#),
                ("MODSIGNAL__KAFKA__FORMATS__EVENTS", "jetstream"),
                ("MODSIGNAL__POLICY__STREAM__LATENESS_SECS", "1"),
                ("MODSIGNAL_BROKERS", "ignored-here"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        let t: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(t["http"]["max_page"].as_integer(), Some(100));
        assert_eq!(t["http"]["address"].as_str(), Some("127.0.0.1:8080"));
        assert_eq!(t["http"]["tokens"][0]["role"].as_str(), Some("analyst"));
        assert_eq!(t["kafka"]["brokers"].as_str(), Some("a:9092"));
        assert_eq!(t["kafka"]["snapshot_interval"].as_str(), Some("5m"));
        assert_eq!(t["kafka"]["input_topics"].as_array().map(Vec::len), Some(2));
        assert_eq!(t["kafka"]["formats"]["events"].as_str(), Some("jetstream"));
        assert!(t.get("policy").is_none(), "policy variables belong to the policy");
    }

    #[test]
    fn policy_variables_set_the_policy() {
        let out = overlay(
            "[stream]\nretention_secs = 604800\n",
            "p",
            Scope::Policy,
            vars(&[
                ("MODSIGNAL__POLICY__STREAM__LATENESS_SECS", "600"),
                ("MODSIGNAL__HTTP__MAX_PAGE", "1"),
            ]),
        )
        .unwrap();
        let t: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(t["stream"]["lateness_secs"].as_integer(), Some(600));
        assert_eq!(t["stream"]["retention_secs"].as_integer(), Some(604800));
        assert!(t.get("http").is_none());
    }

    #[test]
    fn bad_variables_are_named() {
        let err = overlay(
            "[kafka]\nbrokers = \"a\"\n",
            "f",
            Scope::Config,
            vars(&[("MODSIGNAL__KAFKA__BROKERS__X", "1")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("MODSIGNAL__KAFKA__BROKERS__X"), "{err}");
        let err = overlay("", "f", Scope::Config, vars(&[("MODSIGNAL__KAFKA__", "1")])).unwrap_err();
        assert!(err.to_string().contains("MODSIGNAL__SECTION__KEY"), "{err}");
        assert!(overlay("not toml [", "f", Scope::Config, vars(&[("MODSIGNAL__A__B", "1")])).is_err());
        // Without variables the text is passed through untouched, comments and all.
        assert_eq!(overlay("# c\n", "f", Scope::Config, vars(&[])).unwrap(), "# c\n");
    }
}
