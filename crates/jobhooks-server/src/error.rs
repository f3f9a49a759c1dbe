//! What the API answers when a request cannot be served: JSON bodies with Django REST framework's
//! shapes (`{"field": ["message"]}` for validation, `{"detail": "…"}` otherwise) and the status
//! that fits. Bad input is never a 500; a store failure is, and its cause is logged, not sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jobhooks_dispatch::PressError;
use jobhooks_model::ports::BackupError;
use jobhooks_model::{
    CatalogError, ChangeError, MaintenanceError, QueueError, StorageFailure, StoreError, ValidationErrors,
};

/// The body of a refusal that is not a validation error.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Detail {
    /// What was wrong, and what to do.
    pub detail: String,
}

/// The refusals an endpoint may answer, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Refusals {
    /// Bad input: `{"field": ["message"]}` for validation, `{"detail": "…"}` otherwise (413 for
    /// a body over 1 MiB).
    #[response(status = 400)]
    BadInput(ValidationErrors),
    /// No valid token.
    #[response(status = 401)]
    Unauthenticated(Detail),
    /// The caller lacks the permission named, or may not do this for the reason given.
    #[response(status = 403)]
    Forbidden(Detail),
    /// What the path names does not exist.
    #[response(status = 404)]
    NotFound(Detail),
    /// The record is not in a state that allows this.
    #[response(status = 409)]
    Conflict(Detail),
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No credentials, or credentials that are not valid (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller lacks a permission (403).
    #[error("You do not have permission to perform this action: {0} is required.")]
    Forbidden(String),
    /// The caller may not do this, for another reason given (403).
    #[error("{0}")]
    Refused(String),
    /// Nothing at this address (404): what is missing, as the store says it (``job hook `x` does
    /// not exist``).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Fields failed validation (400), with SEMANTICS' messages by field.
    #[error("validation failed")]
    Validation(ValidationErrors),
    /// The request conflicts with the state of a record (409).
    #[error("{0}")]
    Conflict(String),
    /// The body could not be read as the endpoint's JSON (400, or 413 when too large, 415 when not
    /// JSON).
    #[error("{detail}")]
    Body {
        /// The status that says why.
        status: StatusCode,
        /// What was wrong.
        detail: String,
    },
    /// Too many callers hold what this request needs (429).
    #[error("{0}")]
    Busy(String),
    /// The request ran out of time (503).
    #[error("{0}")]
    TimedOut(String),
    /// The store failed (500).
    #[error("the store failed")]
    Storage(#[source] StorageFailure),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = |status: StatusCode, detail: String| (status, Json(Detail { detail }).into_response());
        let (status, mut response) = match &self {
            ApiError::Unauthenticated(_) => detail(StatusCode::UNAUTHORIZED, self.to_string()),
            ApiError::Forbidden(_) | ApiError::Refused(_) => detail(StatusCode::FORBIDDEN, self.to_string()),
            ApiError::NotFound(_) => detail(StatusCode::NOT_FOUND, self.to_string()),
            ApiError::BadRequest(_) => detail(StatusCode::BAD_REQUEST, self.to_string()),
            ApiError::Validation(errors) => (StatusCode::BAD_REQUEST, Json(drf_errors(errors)).into_response()),
            ApiError::Conflict(_) => detail(StatusCode::CONFLICT, self.to_string()),
            ApiError::Body { status, detail: text } => detail(*status, text.clone()),
            ApiError::Busy(_) => detail(StatusCode::TOO_MANY_REQUESTS, self.to_string()),
            ApiError::TimedOut(_) => detail(StatusCode::SERVICE_UNAVAILABLE, self.to_string()),
            ApiError::Storage(failure) => {
                tracing::error!(error = %failure, "a request failed in the store");
                detail(StatusCode::INTERNAL_SERVER_ERROR, "The store failed; see the server's log.".into())
            }
        };
        *response.status_mut() = status;
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Token"));
        }
        response
    }
}

impl ApiError {
    /// 404: the record of `kind` under `key` does not exist, in the store's words.
    pub fn missing(kind: &'static str, key: impl std::fmt::Display) -> Self {
        StoreError::not_found(kind, key).into()
    }
}

impl From<StorageFailure> for ApiError {
    fn from(failure: StorageFailure) -> Self {
        ApiError::Storage(failure)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Validation(errors) => ApiError::Validation(errors),
            StoreError::Invalid(error) => ApiError::BadRequest(error.to_string()),
            StoreError::NotFound { .. } => ApiError::NotFound(error.to_string()),
            StoreError::Storage(failure) => ApiError::Storage(failure),
            other => ApiError::Conflict(other.to_string()),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        StoreError::from(error).into()
    }
}

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        StoreError::from(error).into()
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        StoreError::from(error).into()
    }
}

impl From<MaintenanceError> for ApiError {
    fn from(error: MaintenanceError) -> Self {
        match error {
            MaintenanceError::Refused { reason } => ApiError::Conflict(reason),
            other => StoreError::from(other).into(),
        }
    }
}

impl From<BackupError> for ApiError {
    fn from(error: BackupError) -> Self {
        match error {
            BackupError::Target { .. } => {
                let mut errors = ValidationErrors::default();
                errors.add("path", error.to_string());
                ApiError::Validation(errors)
            }
            BackupError::Storage(failure) => ApiError::Storage(failure),
            other => ApiError::Conflict(other.to_string()),
        }
    }
}

impl From<PressError> for ApiError {
    fn from(error: PressError) -> Self {
        match error {
            PressError::Store(error) => error.into(),
            PressError::NoSuchObject { .. } => ApiError::BadRequest(error.to_string()),
            PressError::NotAButtonReceiver { .. } | PressError::NotAvailable { .. } | PressError::Disabled { .. } => {
                ApiError::BadRequest(error.to_string())
            }
            other => ApiError::Refused(other.to_string()),
        }
    }
}

/// Validation errors as Django REST framework sends them: by field, and those of no single field
/// under `non_field_errors`.
fn drf_errors(errors: &ValidationErrors) -> serde_json::Map<String, serde_json::Value> {
    errors
        .iter()
        .map(|(field, messages)| {
            let field = if field == ValidationErrors::NON_FIELD { "non_field_errors" } else { field };
            (field.to_owned(), serde_json::json!(messages))
        })
        .collect()
}
