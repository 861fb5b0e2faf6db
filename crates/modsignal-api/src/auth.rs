//! Who is asking: bearer tokens and their roles, and the keyed pseudonyms of account ids.

use std::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Role, TokenConfig};

/// What marks a pseudonym, so that a reader never mistakes one for an account id.
pub const PSEUDONYM_PREFIX: &str = "pseud:";

/// Finds the role of a presented bearer token.
///
/// Tokens are kept only as SHA-256 digests and a presented token's digest is compared with
/// every one of them in constant time: how long a check takes says nothing about how much of a
/// token was right, nor about the tokens' lengths.
pub struct Authenticator {
    tokens: Vec<([u8; 32], Role)>,
}

impl Authenticator {
    pub fn new(tokens: &[TokenConfig]) -> Authenticator {
        Authenticator {
            tokens: tokens.iter().map(|t| (digest(t.token.expose()), t.role)).collect(),
        }
    }

    /// The role of `presented`, if it is one of the configured tokens.
    pub fn role(&self, presented: &str) -> Option<Role> {
        let d = digest(presented);
        let mut found = None;
        for (token, role) in &self.tokens {
            if bool::from(token.ct_eq(&d)) {
                found = Some(*role);
            }
        }
        found
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Replaces account ids with keyed pseudonyms: `pseud:` and the first 128 bits of
/// HMAC-SHA256(key, account) in hex. The same key gives the same pseudonym everywhere (in
/// lists, flags, exports, the dashboard, on every instance), so a reader can follow one
/// account across flags without learning who it is; without the key a pseudonym cannot be
/// turned back into an id, nor can an id be tested against it.
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl Pseudonymiser {
    pub fn new(key: &[u8]) -> Pseudonymiser {
        Pseudonymiser {
            mac: Hmac::new_from_slice(key).expect("HMAC takes a key of any length"),
        }
    }

    pub fn account(&self, account: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(account.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut out = String::with_capacity(PSEUDONYM_PREFIX.len() + 32);
        out.push_str(PSEUDONYM_PREFIX);
        for b in &bytes[..16] {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// A message id as a pseudonymised reader sees it. AT Protocol ids
    /// (`at://did:plc:…/app.bsky.feed.post/…`) name their author's account in the authority,
    /// so it is replaced by that account's pseudonym; ids of other platforms carry no account
    /// and are left as they are.
    pub fn message_id(&self, id: &str) -> String {
        match split_at_uri(id) {
            Some((authority, rest)) => format!("at://{}{rest}", self.account(authority)),
            None => id.to_owned(),
        }
    }
}

/// Splits `at://AUTHORITY/rest` into the authority and `/rest` (or "").
pub(crate) fn split_at_uri(id: &str) -> Option<(&str, &str)> {
    let tail = id.strip_prefix("at://")?;
    let end = tail.find('/').unwrap_or(tail.len());
    (end > 0).then(|| tail.split_at(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn finds_the_role_of_a_configured_token_only() {
        let auth = Authenticator::new(&[
            TokenConfig {
                token: Secret::new("liaison-token-0123456789"),
                role: Role::Liaison,
            },
            TokenConfig {
                token: Secret::new("analyst-token-0123456789"),
                role: Role::Analyst,
            },
        ]);
        assert_eq!(auth.role("liaison-token-0123456789"), Some(Role::Liaison));
        assert_eq!(auth.role("analyst-token-0123456789"), Some(Role::Analyst));
        assert_eq!(auth.role("analyst-token-012345678"), None);
        assert_eq!(auth.role(""), None);
    }

    #[test]
    fn pseudonyms_are_keyed_stable_and_prefixed() {
        let a = Pseudonymiser::new(b"key number one, long enough");
        let b = Pseudonymiser::new(b"key number two, long enough");
        let p = a.account("u1");
        assert!(
            p.starts_with(PSEUDONYM_PREFIX) && p.len() == PSEUDONYM_PREFIX.len() + 32,
            "{p}"
        );
        assert_eq!(p, a.account("u1"));
        assert_ne!(p, a.account("u2"));
        assert_ne!(p, b.account("u1"));
        // HMAC-SHA256 with key "key" over "The quick brown fox jumps over the lazy dog" (RFC 4231
        // style test vector from Wikipedia), first 16 bytes.
        assert_eq!(
            Pseudonymiser::new(b"key").account("The quick brown fox jumps over the lazy dog"),
            "pseud:f7bc83f430538424b13298e6aa6fb143"
        );
    }

    #[test]
    fn at_uris_lose_their_author() {
        let p = Pseudonymiser::new(b"a key that is long enough");
        let id = "at://did:plc:abc/app.bsky.feed.post/3k";
        let shown = p.message_id(id);
        assert_eq!(
            shown,
            format!("at://{}/app.bsky.feed.post/3k", p.account("did:plc:abc"))
        );
        assert!(!shown.contains("did:plc:abc"));
        assert_eq!(p.message_id("113521810937939154"), "113521810937939154");
        assert_eq!(p.message_id("at://"), "at://");
    }
}
