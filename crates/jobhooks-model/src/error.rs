//! Typed errors with messages a user can act on.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that does not satisfy the model's rules (found by a validating constructor).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A content type is not `app_label.model`.
    #[error(
        "invalid content type `{value}`: expected `app_label.model` (lowercase ascii letters, digits and underscores, e.g. `dcim.device`)"
    )]
    InvalidContentType {
        /// The rejected text.
        value: String,
    },
    /// A name is empty or too long.
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidName {
        /// Which name (`name`, `group_name`, `username`, …).
        field: &'static str,
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A button text longer than the limit.
    #[error("button text is {len} characters long; at most {max} are allowed")]
    TextTooLong {
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A button class that is not one of the listed ones.
    #[error("invalid button class `{value}`: expected one of default, primary, success, info, warning, danger, link")]
    InvalidButtonClass {
        /// The rejected text.
        value: String,
    },
    /// An action that is not create, update or delete.
    #[error("invalid action `{value}`: expected create, update or delete")]
    InvalidAction {
        /// The rejected text.
        value: String,
    },
    /// An object's data that is not a JSON object.
    #[error("invalid data of {object}: an object's data must be a JSON object, not {found}")]
    InvalidObjectData {
        /// The object (`content_type id`).
        object: String,
        /// What it was instead (`an array`, `null`, …).
        found: &'static str,
    },
    /// A hook or a button without any content type.
    #[error("at least one content type is required")]
    NoContentTypes,
}

/// Validation errors keyed by field, in the shape of Django's form errors: each field has one or
/// more messages, and errors that concern no single field are under `__all__`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct ValidationErrors(BTreeMap<String, Vec<String>>);

impl ValidationErrors {
    /// The key for errors that concern no single field.
    pub const NON_FIELD: &'static str = "__all__";

    /// Adds `message` to `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    /// No error was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The messages recorded for `field`.
    pub fn field(&self, field: &str) -> &[String] {
        self.0.get(field).map_or(&[], Vec::as_slice)
    }

    /// Every message, in field order.
    pub fn messages(&self) -> impl Iterator<Item = &str> {
        self.0.values().flatten().map(String::as_str)
    }

    /// Every `(field, messages)` pair, in field order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (field, messages) in self.iter() {
            for message in messages {
                if !first {
                    f.write_str("\n")?;
                }
                first = false;
                if field == Self::NON_FIELD {
                    f.write_str(message)?;
                } else {
                    write!(f, "{field}: {message}")?;
                }
            }
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// The storage itself failed: what any port may meet, whatever it was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageFailure {
    /// A stored record could not be decoded.
    #[error("corrupt {kind} record `{key}`: {reason}; restore the store from a backup or remove the record")]
    Corrupt {
        /// What kind of record.
        kind: &'static str,
        /// Its key.
        key: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// The backend failed (IO error, full disk, …). Nothing of the operation was written. The
    /// backend's own error is its source.
    #[error(transparent)]
    Backend(BackendError),
}

impl From<BackendError> for StorageFailure {
    fn from(error: BackendError) -> Self {
        StorageFailure::Backend(error)
    }
}

/// Why a [`Catalog`](crate::ports::Catalog) operation failed. Nothing was written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The input broke a rule.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// A hook, button or user failed validation.
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// The job, hook or button named does not exist.
    #[error("{kind} `{key}` does not exist")]
    NotFound {
        /// What kind of record (`job`, `job hook`, `job button`).
        kind: &'static str,
        /// Its key.
        key: String,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageFailure),
}

/// Why an operation of the change log ([`ChangeStore`](crate::ports::ChangeStore), a
/// [`ChangeSession`](crate::ChangeSession)) failed. Nothing was written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// The input broke a rule.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// The object to delete does not exist.
    #[error("{kind} `{key}` does not exist")]
    NotFound {
        /// What kind of record (`object`).
        kind: &'static str,
        /// Its key.
        key: String,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageFailure),
}

/// Why a [`JobQueue`](crate::ports::JobQueue) operation failed. Nothing was written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The job to queue a run of does not exist.
    #[error("{kind} `{key}` does not exist")]
    NotFound {
        /// What kind of record (`job`).
        kind: &'static str,
        /// Its key.
        key: String,
    },
    /// A run's writes broke a rule.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// The operation does not apply to the run in its current state.
    #[error("refused: {reason}")]
    Refused {
        /// Why, and what to do instead.
        reason: String,
    },
    /// A lease expired and another worker took the run over; this worker's outcome was discarded.
    #[error("the lease on run {run} expired and was taken over; its outcome was discarded")]
    LeaseLost {
        /// The run.
        run: u64,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageFailure),
}

/// Why a [`QueueMaintenance`](crate::ports::QueueMaintenance) operation failed. Nothing was
/// written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MaintenanceError {
    /// The run to replay does not exist.
    #[error("{kind} `{key}` does not exist")]
    NotFound {
        /// What kind of record (`job result`).
        kind: &'static str,
        /// Its key.
        key: String,
    },
    /// The operation does not apply to the run in its current state.
    #[error("refused: {reason}")]
    Refused {
        /// Why, and what to do instead.
        reason: String,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageFailure),
}

/// Any storage error, for code that uses several ports at once (the dispatcher, the command
/// line). Each port's own error converts into it variant by variant, keeping its source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The input broke a rule; nothing was written.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// A hook, button or user failed validation; nothing was written.
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// A record the operation needs does not exist.
    #[error("{kind} `{key}` does not exist")]
    NotFound {
        /// What kind of record (`job`, `job hook`, `object`, …).
        kind: &'static str,
        /// Its key.
        key: String,
    },
    /// The operation does not apply to the record in its current state; nothing was written.
    #[error("refused: {reason}")]
    Refused {
        /// Why, and what to do instead.
        reason: String,
    },
    /// A lease expired and another worker took the run over; this worker's outcome was discarded.
    #[error("the lease on run {run} expired and was taken over; its outcome was discarded")]
    LeaseLost {
        /// The run.
        run: u64,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageFailure),
}

impl From<CatalogError> for StoreError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Invalid(e) => StoreError::Invalid(e),
            CatalogError::Validation(e) => StoreError::Validation(e),
            CatalogError::NotFound { kind, key } => StoreError::NotFound { kind, key },
            CatalogError::Storage(e) => StoreError::Storage(e),
        }
    }
}

impl From<ChangeError> for StoreError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Invalid(e) => StoreError::Invalid(e),
            ChangeError::NotFound { kind, key } => StoreError::NotFound { kind, key },
            ChangeError::Storage(e) => StoreError::Storage(e),
        }
    }
}

impl From<QueueError> for StoreError {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::NotFound { kind, key } => StoreError::NotFound { kind, key },
            QueueError::Invalid(e) => StoreError::Invalid(e),
            QueueError::Refused { reason } => StoreError::Refused { reason },
            QueueError::LeaseLost { run } => StoreError::LeaseLost { run },
            QueueError::Storage(e) => StoreError::Storage(e),
        }
    }
}

impl From<MaintenanceError> for StoreError {
    fn from(error: MaintenanceError) -> Self {
        match error {
            MaintenanceError::NotFound { kind, key } => StoreError::NotFound { kind, key },
            MaintenanceError::Refused { reason } => StoreError::Refused { reason },
            MaintenanceError::Storage(e) => StoreError::Storage(e),
        }
    }
}

impl From<ChangeError> for QueueError {
    /// A run's writes commit like any change: their errors are the run's.
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Invalid(e) => QueueError::Invalid(e),
            ChangeError::NotFound { kind, key } => QueueError::NotFound { kind, key },
            ChangeError::Storage(e) => QueueError::Storage(e),
        }
    }
}

impl From<crate::IllegalTransition> for QueueError {
    fn from(illegal: crate::IllegalTransition) -> Self {
        QueueError::Refused { reason: illegal.to_string() }
    }
}

impl From<crate::IllegalTransition> for MaintenanceError {
    fn from(illegal: crate::IllegalTransition) -> Self {
        MaintenanceError::Refused { reason: illegal.to_string() }
    }
}

impl From<BackendError> for StoreError {
    fn from(error: BackendError) -> Self {
        StoreError::Storage(StorageFailure::Backend(error))
    }
}

/// A failure of a storage backend: what it was doing, and the backend's own error as its
/// [`source`](std::error::Error::source), so that the chain reaches the IO error.
///
/// ```
/// use jobhooks_model::{BackendError, StorageFailure, error_chain};
/// let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device");
/// let error = StorageFailure::Backend(BackendError::new("cannot flush the store", io));
/// assert_eq!(error.to_string(), "storage failed: cannot flush the store");
/// assert_eq!(error_chain(&error), "storage failed: cannot flush the store: no space left on device");
/// ```
#[derive(Clone)]
pub struct BackendError {
    context: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// `source`, which happened while doing `context`.
    pub fn new(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { context: context.into(), source: Some(std::sync::Arc::new(source)) }
    }

    /// A failure the backend describes itself, with no error of its own underneath.
    pub fn message(context: impl Into<String>) -> Self {
        Self { context: context.into(), source: None }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage failed: {}", self.context)
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendError").field("context", &self.context).field("source", &self.source).finish()
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        self.context == other.context
            && self.source.as_ref().map(ToString::to_string) == other.source.as_ref().map(ToString::to_string)
    }
}

/// An error's message followed by those of its sources, `: `-separated: what to show a person.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl StoreError {
    /// A [`StoreError::NotFound`].
    pub fn not_found(kind: &'static str, key: impl fmt::Display) -> Self {
        StoreError::NotFound { kind, key: key.to_string() }
    }
}

impl CatalogError {
    /// A [`CatalogError::NotFound`].
    pub fn not_found(kind: &'static str, key: impl fmt::Display) -> Self {
        CatalogError::NotFound { kind, key: key.to_string() }
    }
}

impl StorageFailure {
    /// A [`StorageFailure::Corrupt`] record.
    pub fn corrupt(kind: &'static str, key: impl fmt::Display, reason: impl fmt::Display) -> Self {
        StorageFailure::Corrupt { kind, key: key.to_string(), reason: reason.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_display_field_and_message() {
        let mut errors = ValidationErrors::default();
        errors.add(ValidationErrors::NON_FIELD, "You must select at least one type: create, update, and/or delete.");
        errors.add("enabled", "The selected Job is not installed and enabled");
        assert_eq!(
            errors.to_string(),
            "You must select at least one type: create, update, and/or delete.\nenabled: The selected Job is not installed and enabled"
        );
        assert_eq!(errors.field("enabled"), ["The selected Job is not installed and enabled"]);
        assert!(errors.field("name").is_empty());
        assert_eq!(
            serde_json::to_value(&errors).unwrap()["enabled"][0],
            "The selected Job is not installed and enabled"
        );
    }

    #[test]
    fn port_errors_convert_variant_by_variant_and_keep_their_source() {
        let io = std::io::Error::other("no space left on device");
        let failure = StorageFailure::Backend(BackendError::new("cannot flush the store", io));
        let queue = QueueError::Storage(failure.clone());
        let any = StoreError::from(queue);
        assert_eq!(any, StoreError::Storage(failure));
        assert_eq!(error_chain(&any), "storage failed: cannot flush the store: no space left on device");
        assert_eq!(StoreError::from(QueueError::LeaseLost { run: 7 }), StoreError::LeaseLost { run: 7 });
        let missing = CatalogError::not_found("job hook", "h1");
        assert_eq!(missing.to_string(), "job hook `h1` does not exist");
        assert_eq!(StoreError::from(missing), StoreError::not_found("job hook", "h1"));
        let refused = MaintenanceError::Refused { reason: "not dead".into() };
        assert_eq!(StoreError::from(refused).to_string(), "refused: not dead");
    }
}
