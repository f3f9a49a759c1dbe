//! API tokens: the key is shown once, when the token is issued; stores keep its SHA-256 only.
//!
//! A key reads `jh_{id}_{secret}`: `id` (16 hex digits) names the stored token, so that a request's
//! token is found by a key lookup, and `secret` (64 hex digits, 244 random bits from the operating
//! system) is what the hash protects.
//!
//! ```
//! use jobhooks_model::{ApiToken, OffsetDateTime};
//! let now = OffsetDateTime::now_utc();
//! let issued = ApiToken::issue("alice", now, None, "laptop");
//! let id = ApiToken::id_of_key(&issued.key).unwrap();
//! assert_eq!(id, issued.token.id);
//! assert!(issued.token.accepts(&issued.key, now).is_ok());
//! assert!(issued.token.accepts("jh_0000000000000000_00", now).is_err());
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{CatalogError, ModelError};

/// A stored API token: whose it is and the hash of its key, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The token's public name, the middle of its key (16 hex digits).
    pub id: String,
    /// The user the token acts as.
    pub user: String,
    /// SHA-256 of the whole key, in hex.
    pub key_hash: String,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When it stops working (`None`: never).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub expires: Option<OffsetDateTime>,
    /// What it is for, as its owner wrote.
    #[serde(default)]
    pub description: String,
    /// Whether it may write (Nautobot's `write_enabled`): a read-only token is refused on every
    /// request that changes something.
    #[serde(default = "yes")]
    pub write_enabled: bool,
}

fn yes() -> bool {
    true
}

/// A token just issued: the key, to show once, and the record to store.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The key the client sends (`Authorization: Token <key>`).
    pub key: String,
    /// What the store keeps.
    pub token: ApiToken,
}

/// Why a key was refused. The message never repeats the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefused {
    /// The key is not of the form `jh_{id}_{secret}`.
    #[error("the token is malformed")]
    Malformed,
    /// No stored token has this key.
    #[error("the token is not valid")]
    Unknown,
    /// The token expired.
    #[error("the token has expired")]
    Expired,
}

const PREFIX: &str = "jh_";
const ID_LEN: usize = 16;

/// SHA-256 of `key`, in hex.
pub(crate) fn sha256_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn hash(key: &str) -> String {
    sha256_hex(key)
}

impl ApiToken {
    /// Issues a token for `user`: a new random key and its record.
    pub fn issue(
        user: &str,
        now: OffsetDateTime,
        expires: Option<OffsetDateTime>,
        description: impl Into<String>,
    ) -> IssuedToken {
        let id = Uuid::new_v4().simple().to_string()[..ID_LEN].to_owned();
        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let key = format!("{PREFIX}{id}_{secret}");
        // Times to the microsecond, the precision every store keeps.
        let micros = |time: OffsetDateTime| time.replace_nanosecond(time.nanosecond() / 1_000 * 1_000).unwrap_or(time);
        let (now, expires) = (micros(now), expires.map(micros));
        let token = ApiToken {
            id,
            user: user.to_owned(),
            key_hash: hash(&key),
            created: now,
            expires,
            description: description.into(),
            write_enabled: true,
        };
        IssuedToken { key, token }
    }

    /// The id a key names, when it is of the form `jh_{id}_{secret}`.
    pub fn id_of_key(key: &str) -> Result<&str, TokenRefused> {
        let rest = key.strip_prefix(PREFIX).ok_or(TokenRefused::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(TokenRefused::Malformed)?;
        let hex = |part: &str| part.bytes().all(|byte| byte.is_ascii_hexdigit());
        if id.len() != ID_LEN || !hex(id) || secret.is_empty() || !hex(secret) {
            return Err(TokenRefused::Malformed);
        }
        Ok(id)
    }

    /// Whether `key` is this token's key and the token has not expired at `now`. The hashes are
    /// compared in constant time.
    pub fn accepts(&self, key: &str, now: OffsetDateTime) -> Result<(), TokenRefused> {
        if !constant_time_eq(&hash(key), &self.key_hash) {
            return Err(TokenRefused::Unknown);
        }
        match self.expires {
            Some(expires) if expires <= now => Err(TokenRefused::Expired),
            _ => Ok(()),
        }
    }
}

/// Why a token may not make another (through the API, where a token is how the caller is known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MintRefused {
    /// Tokens are made by their own user, even for superusers, as in Nautobot.
    #[error(
        "a token is made by its own user: {user} may not make one for {other} (a superuser revokes tokens instead)"
    )]
    OtherUser {
        /// Whose token is asking.
        user: String,
        /// For whom.
        other: String,
    },
    /// A read-only token makes nothing.
    #[error("a read-only token cannot make tokens")]
    ReadOnly,
    /// A new token would outlive the one making it.
    #[error("a token cannot outlive the token that makes it: give an expiry no later than {limit}")]
    Outlives {
        /// When the making token expires (RFC 3339).
        limit: String,
    },
}

/// Whether `minter` (the token a request came with) may make a token for `user` that expires at
/// `expires` and may write when `write_enabled`: only for its own user, only if it may write
/// itself, and never one that outlives it. A token made this way can do nothing its maker could not.
pub fn may_mint(minter: &ApiToken, user: &str, expires: Option<OffsetDateTime>) -> Result<(), MintRefused> {
    if minter.user != user {
        return Err(MintRefused::OtherUser { user: minter.user.clone(), other: user.to_owned() });
    }
    if !minter.write_enabled {
        return Err(MintRefused::ReadOnly);
    }
    match (minter.expires, expires) {
        (Some(limit), None) => Err(MintRefused::Outlives { limit: rfc3339(limit) }),
        (Some(limit), Some(expires)) if expires > limit => Err(MintRefused::Outlives { limit: rfc3339(limit) }),
        _ => Ok(()),
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| time.to_string())
}

/// The rule every store applies before adding `token`: its user exists (`NotFound`) and no
/// stored token has its id (`Invalid`).
pub fn validate_new_token(token: &ApiToken, user_exists: bool, id_taken: bool) -> Result<(), CatalogError> {
    if !user_exists {
        return Err(CatalogError::NotFound { kind: "user", key: token.user.clone() });
    }
    if id_taken {
        let reason = "another token has this id; issue a new token".to_owned();
        return Err(CatalogError::Invalid(ModelError::InvalidName {
            field: "token id",
            value: token.id.clone(),
            reason,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::Duration;

    proptest! {
        /// A token minted under `may_mint` never outlives its maker, never belongs to another
        /// user, and is never made by a read-only token.
        #[test]
        fn a_minted_token_can_do_nothing_its_maker_could_not(
            minter_expires in proptest::option::of(0i64..1_000),
            expires in proptest::option::of(0i64..1_000),
            write in any::<bool>(),
            same_user in any::<bool>(),
        ) {
            let at = |minutes: i64| OffsetDateTime::UNIX_EPOCH + Duration::minutes(minutes);
            let mut minter = ApiToken::issue("alice", at(0), minter_expires.map(at), "").token;
            minter.write_enabled = write;
            let user = if same_user { "alice" } else { "bob" };
            if may_mint(&minter, user, expires.map(at)).is_ok() {
                prop_assert_eq!(user, "alice");
                prop_assert!(minter.write_enabled);
                if let Some(limit) = minter_expires {
                    prop_assert!(expires.is_some_and(|expires| expires <= limit));
                }
            }
        }
    }

    #[test]
    fn an_issued_key_is_accepted_until_it_expires_and_is_stored_only_as_its_hash() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let issued = ApiToken::issue("alice", now, Some(now + Duration::hours(1)), "ci");
        assert!(!issued.token.key_hash.contains(&issued.key[PREFIX.len() + ID_LEN + 1..]));
        assert_eq!(issued.token.accepts(&issued.key, now), Ok(()));
        assert_eq!(issued.token.accepts(&issued.key, now + Duration::hours(1)), Err(TokenRefused::Expired));
        let other = ApiToken::issue("alice", now, None, "");
        assert_ne!(other.key, issued.key);
        assert_eq!(issued.token.accepts(&other.key, now), Err(TokenRefused::Unknown));
    }

    #[test]
    fn keys_of_another_form_are_malformed() {
        for key in
            ["", "jh_", "jh_abc_def", "Token jh_0123456789abcdef_00", "jh_0123456789abcdeg_00", "jh_0123456789abcdef_"]
        {
            assert_eq!(ApiToken::id_of_key(key), Err(TokenRefused::Malformed), "{key}");
        }
        assert_eq!(ApiToken::id_of_key("jh_0123456789abcdef_00"), Ok("0123456789abcdef"));
    }

    proptest! {
        #[test]
        fn any_text_is_refused_or_names_an_id_without_panicking(key in ".{0,120}") {
            let now = OffsetDateTime::UNIX_EPOCH;
            let issued = ApiToken::issue("bob", now, None, "");
            if let Ok(id) = ApiToken::id_of_key(&key) {
                prop_assert_eq!(id.len(), ID_LEN);
            }
            prop_assert!(key == issued.key || issued.token.accepts(&key, now).is_err());
        }
    }
}
