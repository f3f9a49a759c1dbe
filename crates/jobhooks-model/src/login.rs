//! Logging in to the web pages: a password stored as an Argon2id hash, and a login session kept in
//! the store (so that it works across processes and survives a restart) whose cookie carries a key
//! the store keeps only the SHA-256 of, as it does for API tokens.
//!
//! A session key reads `js_{id}_{secret}`: `id` (16 hex digits) names the stored session and
//! `secret` (64 hex digits) is what the hash protects. A session ends when its user logs out, when
//! it has been idle longer than the configured time, and when the user's password changes.
//!
//! ```
//! use jobhooks_model::{LoginSession, PasswordCost, PasswordHash, OffsetDateTime};
//! use time::Duration;
//!
//! let hash = PasswordHash::new("correct horse", PasswordCost::Cheapest).unwrap();
//! assert!(hash.verify("correct horse"));
//! assert!(!hash.verify("battery staple"));
//!
//! let now = OffsetDateTime::now_utc();
//! let opened = LoginSession::open("alice", now, "Firefox");
//! let id = LoginSession::id_of_key(&opened.key).unwrap();
//! assert_eq!(id, opened.session.id);
//! let idle = Duration::days(14);
//! assert!(opened.session.accepts(&opened.key, now, idle).is_ok());
//! assert!(opened.session.accepts(&opened.key, now + Duration::days(15), idle).is_err());
//! ```

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::token::{constant_time_eq, sha256_hex};
use crate::{CatalogError, ModelError};

/// The longest password accepted, in bytes (Argon2 hashes any length; this bounds the work a
/// caller can ask for).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// How much work hashing a password takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PasswordCost {
    /// OWASP's recommendation for Argon2id: 19 MiB of memory, 2 passes (about 30 ms here).
    #[default]
    Recommended,
    /// The least Argon2 allows: for tests only, where hundreds of logins run.
    Cheapest,
}

impl PasswordCost {
    fn params(self) -> argon2::Params {
        let (memory_kib, passes) = match self {
            PasswordCost::Recommended => (19 * 1024, 2),
            PasswordCost::Cheapest => (argon2::Params::MIN_M_COST, 1),
        };
        argon2::Params::new(memory_kib, passes, 1, None).unwrap_or_default()
    }

    fn hasher(self) -> argon2::Argon2<'static> {
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, self.params())
    }
}

/// Why a password cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordRefused {
    /// An empty password.
    #[error("the password is empty; choose one of at least 8 characters")]
    Empty,
    /// Too short to resist guessing.
    #[error("the password has {length} characters; choose one of at least 8")]
    TooShort {
        /// How many it has.
        length: usize,
    },
    /// Longer than [`MAX_PASSWORD_LEN`].
    #[error("the password is longer than {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    /// A stored hash that is not an Argon2 PHC string.
    #[error("not an Argon2 password hash: {0}")]
    NotAHash(String),
}

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;

/// A password's Argon2id hash, as a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). The
/// parameters travel with the hash, so a hash made with other costs still verifies.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PasswordHash(…)")
    }
}

impl PasswordHash {
    /// Hashes `password` with a new random salt.
    pub fn new(password: &str, cost: PasswordCost) -> Result<Self, PasswordRefused> {
        let length = password.chars().count();
        if length == 0 {
            return Err(PasswordRefused::Empty);
        }
        if length < MIN_PASSWORD_LEN {
            return Err(PasswordRefused::TooShort { length });
        }
        if password.len() > MAX_PASSWORD_LEN {
            return Err(PasswordRefused::TooLong);
        }
        let salt = SaltString::encode_b64(Uuid::new_v4().as_bytes())
            .map_err(|error| PasswordRefused::NotAHash(error.to_string()))?;
        let hash = cost
            .hasher()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|error| PasswordRefused::NotAHash(error.to_string()))?;
        Ok(Self(hash.to_string()))
    }

    /// A stored hash, checked to be an Argon2 PHC string.
    pub fn from_phc(phc: impl Into<String>) -> Result<Self, PasswordRefused> {
        let phc = phc.into();
        let parsed = argon2::password_hash::PasswordHash::new(&phc)
            .map_err(|error| PasswordRefused::NotAHash(error.to_string()))?;
        if !parsed.algorithm.as_str().starts_with("argon2") {
            return Err(PasswordRefused::NotAHash(format!("algorithm {} is not Argon2", parsed.algorithm)));
        }
        Ok(Self(phc))
    }

    /// Whether `password` is the one hashed (in constant time, by Argon2's verifier).
    pub fn verify(&self, password: &str) -> bool {
        if password.len() > MAX_PASSWORD_LEN {
            return false;
        }
        let Ok(parsed) = argon2::password_hash::PasswordHash::new(&self.0) else { return false };
        argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
    }

    /// A hash of no one's password at `cost`, to verify against when the user is unknown or has
    /// no password, so that a refusal takes as long whoever was named.
    pub fn decoy(cost: PasswordCost) -> &'static PasswordHash {
        static RECOMMENDED: OnceLock<PasswordHash> = OnceLock::new();
        static CHEAPEST: OnceLock<PasswordHash> = OnceLock::new();
        let cell = match cost {
            PasswordCost::Recommended => &RECOMMENDED,
            PasswordCost::Cheapest => &CHEAPEST,
        };
        cell.get_or_init(|| {
            let secret = Uuid::new_v4().simple().to_string();
            PasswordHash::new(&secret, cost).expect("a 32-character password is accepted")
        })
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = PasswordRefused;

    fn try_from(phc: String) -> Result<Self, Self::Error> {
        Self::from_phc(phc)
    }
}

impl From<PasswordHash> for String {
    fn from(hash: PasswordHash) -> Self {
        hash.0
    }
}

/// A login session as the store keeps it: whose it is and the hash of its key, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSession {
    /// The session's public name, the middle of its key (16 hex digits).
    pub id: String,
    /// The user logged in.
    pub user: String,
    /// SHA-256 of the whole key, in hex.
    pub key_hash: String,
    /// When the user logged in.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When the session was last used (kept to within [`LoginSession::TOUCH_EVERY`]).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// The browser's `User-Agent` when it logged in (at most 200 characters), to tell sessions
    /// apart in a listing.
    #[serde(default)]
    pub user_agent: String,
}

/// A session just opened: the key, for the cookie, and the record to store.
#[derive(Debug, Clone)]
pub struct OpenedLogin {
    /// The cookie's value.
    pub key: String,
    /// What the store keeps.
    pub session: LoginSession,
}

/// Why a session key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginRefused {
    /// The key is not of the form `js_{id}_{secret}`.
    #[error("the session cookie is malformed")]
    Malformed,
    /// No stored session has this key (it was ended, or never existed).
    #[error("the session has ended")]
    Unknown,
    /// Idle longer than allowed.
    #[error("the session expired after being idle")]
    Expired,
}

const PREFIX: &str = "js_";
const ID_LEN: usize = 16;
const MAX_USER_AGENT: usize = 200;

fn microseconds(time: OffsetDateTime) -> OffsetDateTime {
    crate::to_microseconds(time)
}

impl LoginSession {
    /// How stale `last_seen` may get before a request writes it again: a session is not written
    /// on every page view.
    pub const TOUCH_EVERY: Duration = Duration::minutes(1);

    /// Opens a session for `user`: a new random key and its record.
    pub fn open(user: &str, now: OffsetDateTime, user_agent: &str) -> OpenedLogin {
        let id = Uuid::new_v4().simple().to_string()[..ID_LEN].to_owned();
        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let key = format!("{PREFIX}{id}_{secret}");
        let now = microseconds(now);
        let user_agent: String =
            user_agent.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT).collect::<String>();
        let session = LoginSession {
            id,
            user: user.to_owned(),
            key_hash: sha256_hex(&key),
            created: now,
            last_seen: now,
            user_agent,
        };
        OpenedLogin { key, session }
    }

    /// The id a key names, when it is of the form `js_{id}_{secret}`.
    pub fn id_of_key(key: &str) -> Result<&str, LoginRefused> {
        let rest = key.strip_prefix(PREFIX).ok_or(LoginRefused::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(LoginRefused::Malformed)?;
        let hex = |part: &str| part.bytes().all(|byte| byte.is_ascii_hexdigit());
        if id.len() != ID_LEN || !hex(id) || secret.is_empty() || secret.len() > 128 || !hex(secret) {
            return Err(LoginRefused::Malformed);
        }
        Ok(id)
    }

    /// Whether `key` is this session's key and the session has not been idle for `idle` at `now`.
    /// The hashes are compared in constant time.
    pub fn accepts(&self, key: &str, now: OffsetDateTime, idle: Duration) -> Result<(), LoginRefused> {
        if !constant_time_eq(&sha256_hex(key), &self.key_hash) {
            return Err(LoginRefused::Unknown);
        }
        if self.last_seen + idle <= now {
            return Err(LoginRefused::Expired);
        }
        Ok(())
    }

    /// Whether a request at `now` should record that the session was used.
    pub fn needs_touch(&self, now: OffsetDateTime) -> bool {
        now - self.last_seen >= Self::TOUCH_EVERY
    }

    /// The CSRF token of the session whose key is `key`: every form posted in the session must
    /// carry it. It is derived from the key, so it is bound to the session and needs no storage,
    /// and it does not reveal the key.
    pub fn csrf_token(key: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"jobhooks csrf\0");
        hasher.update(key.as_bytes());
        hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether `offered` is the CSRF token of the session whose key is `key` (constant time).
    pub fn csrf_matches(key: &str, offered: &str) -> bool {
        constant_time_eq(&Self::csrf_token(key), offered)
    }
}

/// The rule every store applies before adding `session`: its user exists (`NotFound`) and no stored
/// session has its id (`Invalid`).
pub fn validate_new_login(session: &LoginSession, user_exists: bool, id_taken: bool) -> Result<(), CatalogError> {
    if !user_exists {
        return Err(CatalogError::NotFound { kind: "user", key: session.user.clone() });
    }
    if id_taken {
        let reason = "another session has this id; log in again".to_owned();
        return Err(CatalogError::Invalid(ModelError::InvalidName {
            field: "session id",
            value: session.id.clone(),
            reason,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_password_verifies_and_a_wrong_one_does_not() {
        let hash = PasswordHash::new("s3cret-enough", PasswordCost::Cheapest).unwrap();
        assert!(hash.verify("s3cret-enough"));
        assert!(!hash.verify("s3cret-enougH"));
        assert!(!hash.as_str().contains("s3cret"));
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert_eq!(PasswordHash::from_phc(hash.as_str().to_owned()).unwrap(), hash);
        assert!(!format!("{hash:?}").contains("argon2"), "Debug never prints the hash");
    }

    #[test]
    fn short_empty_and_huge_passwords_are_refused_with_their_reason() {
        assert_eq!(PasswordHash::new("", PasswordCost::Cheapest), Err(PasswordRefused::Empty));
        assert_eq!(PasswordHash::new("short", PasswordCost::Cheapest), Err(PasswordRefused::TooShort { length: 5 }));
        let huge = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert_eq!(PasswordHash::new(&huge, PasswordCost::Cheapest), Err(PasswordRefused::TooLong));
        assert!(matches!(PasswordHash::from_phc("plain"), Err(PasswordRefused::NotAHash(_))));
    }

    #[test]
    fn a_hash_made_at_one_cost_verifies_whatever_the_cost_of_the_verifier() {
        let recommended = PasswordHash::new("long enough", PasswordCost::Recommended).unwrap();
        assert!(recommended.verify("long enough"));
        assert!(!PasswordHash::decoy(PasswordCost::Cheapest).verify("long enough"));
    }

    #[test]
    fn a_session_expires_after_its_idle_time_and_is_touched_at_most_once_a_minute() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let opened = LoginSession::open("alice", now, "agent\u{7}with bell");
        assert_eq!(opened.session.user_agent, "agentwith bell");
        let idle = Duration::hours(1);
        assert_eq!(opened.session.accepts(&opened.key, now + Duration::minutes(59), idle), Ok(()));
        assert_eq!(opened.session.accepts(&opened.key, now + idle, idle), Err(LoginRefused::Expired));
        assert!(!opened.session.needs_touch(now + Duration::seconds(59)));
        assert!(opened.session.needs_touch(now + Duration::seconds(60)));
        let other = LoginSession::open("alice", now, "");
        assert_eq!(opened.session.accepts(&other.key, now, idle), Err(LoginRefused::Unknown));
    }

    #[test]
    fn the_csrf_token_is_bound_to_its_session() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let one = LoginSession::open("alice", now, "");
        let two = LoginSession::open("alice", now, "");
        let token = LoginSession::csrf_token(&one.key);
        assert!(LoginSession::csrf_matches(&one.key, &token));
        assert!(!LoginSession::csrf_matches(&two.key, &token));
        assert!(!LoginSession::csrf_matches(&one.key, ""));
        assert!(!token.contains(&one.key[3..19]));
    }

    proptest! {
        #[test]
        fn only_well_formed_keys_name_a_session(key in ".{0,80}") {
            if let Ok(id) = LoginSession::id_of_key(&key) {
                prop_assert_eq!(id.len(), ID_LEN);
                prop_assert!(key.starts_with(PREFIX));
            }
        }

        #[test]
        fn an_opened_key_names_its_session(user in "[a-z]{1,12}") {
            let opened = LoginSession::open(&user, OffsetDateTime::UNIX_EPOCH, "");
            prop_assert_eq!(LoginSession::id_of_key(&opened.key), Ok(opened.session.id.as_str()));
            prop_assert_eq!(opened.session.accepts(&opened.key, OffsetDateTime::UNIX_EPOCH, Duration::days(1)), Ok(()));
        }
    }
}
