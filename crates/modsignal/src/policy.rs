//! Loading the risk policy.

use std::path::Path;

use modsignal_core::Policy;

/// The shipped policy, `config/policy.toml`, compiled in so the binary runs with no files.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../../config/policy.toml");

#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error(transparent)]
    Settings(crate::settings::SettingsError),
    #[error("cannot read policy file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("policy {origin} is not valid TOML for the policy: {source}")]
    Parse { origin: String, source: toml::de::Error },
    #[error("policy {origin} breaks the model's promises: {source}")]
    Invalid {
        origin: String,
        source: modsignal_core::policy::PolicyError,
    },
}

/// Parses and validates a policy. Settings missing from the text keep their defaults.
pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyLoadError> {
    let policy: Policy = toml::from_str(text).map_err(|source| PolicyLoadError::Parse {
        origin: origin.into(),
        source,
    })?;
    policy.validate().map_err(|source| PolicyLoadError::Invalid {
        origin: origin.into(),
        source,
    })?;
    Ok(policy)
}

/// The policy from `path`, or the embedded default, with the `MODSIGNAL__POLICY__…`
/// variables of the environment laid over it (see [`crate::settings`]).
pub fn load(path: Option<&Path>) -> Result<Policy, PolicyLoadError> {
    let (text, origin) = match path {
        None => (
            DEFAULT_POLICY_TOML.to_owned(),
            "(embedded config/policy.toml)".to_owned(),
        ),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| PolicyLoadError::Read {
                path: p.display().to_string(),
                source,
            })?;
            (text, p.display().to_string())
        }
    };
    let text = crate::settings::overlay(&text, &origin, crate::settings::Scope::Policy, std::env::vars())
        .map_err(PolicyLoadError::Settings)?;
    parse(&text, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_is_the_default() {
        assert_eq!(load(None).unwrap(), Policy::default());
    }

    #[test]
    fn a_partial_policy_keeps_the_other_defaults() {
        let p = parse("[weights]\nhate = 2.0\n", "test").unwrap();
        assert_eq!(p.weights.hate, 2.0);
        assert_eq!(p.weights.minor, Policy::default().weights.minor);
    }

    #[test]
    fn bad_policies_are_refused_with_their_reason() {
        let e = parse("[weights]\nhate = -2.0\n", "test").unwrap_err();
        assert!(e.to_string().contains("hate"), "{e}");
        let e = parse("[weigths]\nhate = 2.0\n", "test").unwrap_err();
        assert!(e.to_string().contains("weigths"), "{e}");
    }
}
