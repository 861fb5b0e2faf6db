//! The server's settings: the `[http]` section of a config file.
//!
//! ```toml
//! [http]
//! address = "0.0.0.0:8080"
//! # Account ids are replaced by keyed pseudonyms for these roles.
//! pseudonymise = ["liaison"]
//! pseudonym_key_env = "MODSIGNAL_PSEUDONYM_KEY"
//! max_page = 500
//! default_page = 50
//! max_revisions = 32
//!
//! [[http.tokens]]
//! token_env = "MODSIGNAL_TOKEN_LIAISON"
//! role = "liaison"
//!
//! [[http.tokens]]
//! token = "a-long-random-string-for-the-analysts"
//! role = "analyst"
//! ```
//!
//! A token or the pseudonym key may be written in the file (`token`, `pseudonym_key`) or, better,
//! named by the environment variable that holds it (`token_env`, `pseudonym_key_env`), so that
//! the file can be shared and the secrets kept in the deployment's secret store. `Debug` output
//! never shows a token or the key.

use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;

use crate::store::{DEFAULT_MAX_REVISIONS, MIN_MAX_REVISIONS};

/// The default listening address.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8080";
/// The default and largest page of `/api/v1/flags`.
pub const DEFAULT_PAGE: usize = 50;
pub const DEFAULT_MAX_PAGE: usize = 500;
/// Tokens and the pseudonym key shorter than this are refused: they could be guessed.
pub const MIN_SECRET_LEN: usize = 16;

/// What a bearer token lets its holder see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Police liaison officers: raised flags only.
    Liaison,
    /// Trust-and-safety analysts: every flag.
    Analyst,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Liaison => "liaison",
            Role::Analyst => "analyst",
        }
    }
}

/// A secret string (a token or a key) whose `Debug` output is `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One bearer token and its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    pub token: Secret,
    pub role: Role,
}

/// Everything the HTTP server needs. Build it with [`ApiConfig::new`] and set fields, or from a
/// config file's deserialised `[http]` section with [`ApiConfig::from_section`]. Its `Debug` output hides tokens and the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    pub address: SocketAddr,
    pub tokens: Vec<TokenConfig>,
    /// Roles that see keyed pseudonyms (`pseud:` and 32 hex digits) instead of account ids.
    pub pseudonymise: Vec<Role>,
    /// The HMAC-SHA256 key of the pseudonyms; required when `pseudonymise` is not empty. The
    /// same key gives the same pseudonyms on every instance and across restarts.
    pub pseudonym_key: Option<Secret>,
    /// The page size of `/api/v1/flags` when the request gives none.
    pub default_page: usize,
    /// The largest page of `/api/v1/flags` a request may ask for.
    pub max_page: usize,
    /// The cap on revisions kept per flag (see [`crate::FlagStore`]).
    pub max_revisions: usize,
}

/// A setting that cannot be used, with what was wrong. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("http.{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("http.{field}: the environment variable {var} is not set")]
    MissingEnv { field: &'static str, var: String },
}

/// The `[http]` section as written.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub address: Option<String>,
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    #[serde(default)]
    pub pseudonymise: Vec<Role>,
    pub pseudonym_key: Option<String>,
    pub pseudonym_key_env: Option<String>,
    pub default_page: Option<usize>,
    pub max_page: Option<usize>,
    pub max_revisions: Option<usize>,
}

/// One `[[http.tokens]]` entry: the token itself or the environment variable holding it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub role: Role,
}

impl ApiConfig {
    /// Defaults for everything but the address; no tokens (so every API request is refused
    /// until some are added).
    pub fn new(address: SocketAddr) -> ApiConfig {
        ApiConfig {
            address,
            tokens: Vec::new(),
            pseudonymise: Vec::new(),
            pseudonym_key: None,
            default_page: DEFAULT_PAGE,
            max_page: DEFAULT_MAX_PAGE,
            max_revisions: DEFAULT_MAX_REVISIONS,
        }
    }

    /// Resolves a section's secrets from `env` and validates the result.
    pub fn from_section(section: HttpSection, env: impl Fn(&str) -> Option<String>) -> Result<ApiConfig, ConfigError> {
        let Ok(address) = section.address.as_deref().unwrap_or(DEFAULT_ADDRESS).parse() else {
            return Err(ConfigError::Invalid {
                field: "address",
                reason: "must be an IP address and port such as 0.0.0.0:8080".to_owned(),
            });
        };
        let secret = |field: &'static str, inline: Option<String>, var: Option<String>| match (inline, var) {
            (Some(_), Some(_)) => Err(ConfigError::Invalid {
                field,
                reason: format!("give either {field} or {field}_env, not both"),
            }),
            (Some(s), None) => Ok(Some(Secret(s))),
            (None, Some(var)) => match env(&var) {
                Some(s) => Ok(Some(Secret(s))),
                None => Err(ConfigError::MissingEnv { field, var }),
            },
            (None, None) => Ok(None),
        };
        let mut tokens = Vec::new();
        for entry in section.tokens {
            let Some(token) = secret("token", entry.token, entry.token_env)? else {
                return Err(ConfigError::Invalid {
                    field: "tokens",
                    reason: "each entry needs token or token_env".to_owned(),
                });
            };
            tokens.push(TokenConfig {
                token,
                role: entry.role,
            });
        }
        let config = ApiConfig {
            address,
            tokens,
            pseudonymise: section.pseudonymise,
            pseudonym_key: secret("pseudonym_key", section.pseudonym_key, section.pseudonym_key_env)?,
            default_page: section.default_page.unwrap_or(DEFAULT_PAGE),
            max_page: section.max_page.unwrap_or(DEFAULT_MAX_PAGE),
            max_revisions: section.max_revisions.unwrap_or(DEFAULT_MAX_REVISIONS),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every field; [`crate::ApiState::new`] calls this first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.tokens.is_empty() {
            return invalid(
                "tokens",
                "at least one token is needed: without one no request is served".into(),
            );
        }
        for (i, t) in self.tokens.iter().enumerate() {
            if t.token.0.chars().count() < MIN_SECRET_LEN {
                return invalid(
                    "tokens",
                    format!("token {} is shorter than {MIN_SECRET_LEN} characters", i + 1),
                );
            }
            if t.token.0.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return invalid(
                    "tokens",
                    format!("token {} contains spaces or control characters", i + 1),
                );
            }
            if self.tokens[..i].iter().any(|o| o.token == t.token) {
                return invalid("tokens", format!("token {} is given twice", i + 1));
            }
        }
        match &self.pseudonym_key {
            None if !self.pseudonymise.is_empty() => {
                return invalid("pseudonym_key", "is required when pseudonymise names a role".into());
            }
            Some(k) if k.0.len() < MIN_SECRET_LEN => {
                return invalid("pseudonym_key", format!("must be at least {MIN_SECRET_LEN} bytes"));
            }
            _ => {}
        }
        if self.max_page == 0 {
            return invalid("max_page", "must be at least 1".into());
        }
        if self.default_page == 0 || self.default_page > self.max_page {
            return invalid("default_page", "must be between 1 and max_page".into());
        }
        if self.max_revisions < MIN_MAX_REVISIONS {
            return invalid("max_revisions", format!("must be at least {MIN_MAX_REVISIONS}"));
        }
        Ok(())
    }

    /// Whether a role sees pseudonyms instead of account ids.
    pub fn pseudonymises(&self, role: Role) -> bool {
        self.pseudonymise.contains(&role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config file's `[http]` section, deserialised as the binary hands it over, made into a
    /// configuration with the environment `env`.
    fn config(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<ApiConfig, String> {
        #[derive(Deserialize)]
        struct File {
            http: HttpSection,
        }
        let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        ApiConfig::from_section(file.http, env).map_err(|e| e.to_string())
    }

    const FILE: &str = r#"
[kafka]
brokers = "ignored:9092"

[http]
address = "0.0.0.0:9000"
pseudonymise = ["liaison"]
pseudonym_key_env = "KEY"
max_page = 100

[[http.tokens]]
token_env = "LIAISON"
role = "liaison"

[[http.tokens]]
token = "analyst-token-0123456789"
role = "analyst"
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("a-very-secret-pseudonym-key".into()),
            "LIAISON" => Some("liaison-token-0123456789".into()),
            _ => None,
        }
    }

    #[test]
    fn reads_the_section_and_takes_secrets_from_the_environment() {
        let c = config(FILE, env).unwrap();
        assert_eq!(c.address.to_string(), "0.0.0.0:9000");
        assert_eq!(c.tokens.len(), 2);
        assert_eq!(c.tokens[0].token.expose(), "liaison-token-0123456789");
        assert_eq!(c.tokens[0].role, Role::Liaison);
        assert_eq!(c.tokens[1].role, Role::Analyst);
        assert!(c.pseudonymises(Role::Liaison) && !c.pseudonymises(Role::Analyst));
        assert_eq!(c.max_page, 100);
        assert_eq!(c.default_page, DEFAULT_PAGE);
        assert_eq!(c.max_revisions, DEFAULT_MAX_REVISIONS);
    }

    #[test]
    fn debug_output_hides_tokens_and_the_key() {
        let c = config(FILE, env).unwrap();
        let shown = format!("{c:?}");
        for secret in [
            "liaison-token-0123456789",
            "analyst-token-0123456789",
            "a-very-secret-pseudonym-key",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("***") && shown.contains("Liaison"), "{shown}");
    }

    #[test]
    fn refuses_what_cannot_work() {
        let err = |text: &str| config(text, env).unwrap_err();
        assert!(err("[http]\n").contains("at least one token"));
        assert!(err("[http]\ntokens = [{ token = \"short\", role = \"analyst\" }]").contains("shorter than 16"));
        assert!(err("[http]\ntokens = [{ token_env = \"NOPE\", role = \"analyst\" }]").contains("NOPE is not set"));
        assert!(
            err("[http]\ntokens = [{ token = \"analyst-token-0123456789\", role = \"chief\" }]")
                .contains("unknown variant")
        );
        assert!(
            err("[http]\npseudonymise = [\"liaison\"]\ntokens = [{ token = \"analyst-token-0123456789\", role = \"analyst\" }]")
                .contains("http.pseudonym_key: is required")
        );
        assert!(err("[http]\naddress = \"nowhere\"\n").contains("http.address"));
        assert!(err("[http]\nport = 1\n").contains("unknown field"));
        let e = err(
            "[http]\ntokens = [{ token = \"analyst-token-0123456789\", role = \"analyst\" }, { token = \"analyst-token-0123456789\", role = \"liaison\" }]",
        );
        assert!(e.contains("given twice") && !e.contains("0123456789"), "{e}");
    }
}
