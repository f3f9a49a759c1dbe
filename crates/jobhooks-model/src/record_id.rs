//! Ids and times of the catalog's records. Job hooks, job buttons and jobs carry a UUID, as
//! Nautobot's records do, and the times they were created and last changed.
//!
//! A new hook or button gets a random id (version 4) when it is first stored. A job gets an id
//! derived from its class path (version 3, in [`ID_NAMESPACE`]) when it is first recorded, so every
//! store gives a job the same id; the id stays with the record when it is renamed. A hook, button
//! or job stored before records had ids (or read from an export that has none) gets the id derived
//! from its kind and its name or class path: the same id on every read and in every store, written
//! down with the record's next change.

use time::OffsetDateTime;
use uuid::Uuid;

/// The namespace of the ids jobhooks derives from names (UUID version 3).
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f5b9e_5c2f_4c0e_9a51_7d1c3f0a2e44);

/// The kinds of catalog record that have ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// A job hook, named.
    JobHook,
    /// A job button, named.
    JobButton,
    /// A job, by class path.
    Job,
    /// A user, by username (a user's id is always derived).
    User,
}

impl RecordKind {
    /// The prefix of the derived ids' names: `job-hook:`, `job-button:`, `job:` or `user:`.
    pub fn prefix(self) -> &'static str {
        match self {
            RecordKind::JobHook => "job-hook:",
            RecordKind::JobButton => "job-button:",
            RecordKind::Job => "job:",
            RecordKind::User => "user:",
        }
    }
}

/// The id derived for the record of `kind` named `key`: UUID version 3 of the kind's prefix and
/// the key in [`ID_NAMESPACE`].
///
/// ```
/// use jobhooks_model::{RecordKind, derived_id};
/// let id = derived_id(RecordKind::Job, "app::Audit");
/// assert_eq!(id, derived_id(RecordKind::Job, "app::Audit"));
/// assert_ne!(id, derived_id(RecordKind::JobHook, "app::Audit"));
/// assert_eq!(id.get_version_num(), 3);
/// ```
pub fn derived_id(kind: RecordKind, key: &str) -> Uuid {
    let name = format!("{}{key}", kind.prefix());
    Uuid::new_v3(&ID_NAMESPACE, name.as_bytes())
}

/// When a record was created and last changed (`None` for one stored before records kept times).
pub(crate) fn stamp(
    id: &mut Uuid,
    created: &mut Option<OffsetDateTime>,
    last_updated: &mut Option<OffsetDateTime>,
    now: OffsetDateTime,
    new_id: impl FnOnce() -> Uuid,
) {
    if id.is_nil() {
        *id = new_id();
    }
    created.get_or_insert(now);
    *last_updated = Some(now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn derived_ids_are_stable_and_apart_by_kind_and_key(key in ".{0,40}", other in ".{0,40}") {
            let id = derived_id(RecordKind::JobHook, &key);
            prop_assert_eq!(id, derived_id(RecordKind::JobHook, &key));
            prop_assert_ne!(id, derived_id(RecordKind::JobButton, &key));
            prop_assert_eq!(key == other, id == derived_id(RecordKind::JobHook, &other));
            prop_assert_eq!(id.get_version_num(), 3);
        }
    }

    #[test]
    fn stamping_keeps_an_id_and_a_creation_time_and_moves_the_last_update() {
        let (first, later) = (OffsetDateTime::UNIX_EPOCH, OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1));
        let (mut id, mut created, mut updated) = (Uuid::nil(), None, None);
        stamp(&mut id, &mut created, &mut updated, first, || Uuid::from_u128(7));
        assert_eq!((id, created, updated), (Uuid::from_u128(7), Some(first), Some(first)));
        stamp(&mut id, &mut created, &mut updated, later, || Uuid::from_u128(8));
        assert_eq!((id, created, updated), (Uuid::from_u128(7), Some(first), Some(later)));
    }
}
