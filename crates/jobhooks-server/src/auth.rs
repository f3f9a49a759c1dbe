//! Who is calling: `Authorization: Token <key>` (Nautobot's header), checked against the stored
//! token's hash, then the token's user. The key is never logged.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jobhooks_model::ports::Storage;
use jobhooks_model::{ApiToken, OffsetDateTime, TokenRefused, User};

use crate::{ApiError, AppState};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

impl Caller {
    /// Refuses with 403 unless the caller has `permission` (`app_label.codename`).
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        if self.0.has_perm(permission) { Ok(()) } else { Err(ApiError::Forbidden(permission.to_owned())) }
    }

    /// Refuses with 403 unless the caller is a superuser.
    pub fn require_superuser(&self) -> Result<(), ApiError> {
        if self.0.is_superuser {
            Ok(())
        } else {
            Err(ApiError::Refused("You do not have permission to perform this action: only superusers may.".into()))
        }
    }
}

impl<S: Storage + 'static> FromRequestParts<AppState<S>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthenticated("Authentication credentials were not provided.".into()))?;
        let key =
            header.to_str().ok().and_then(|value| value.strip_prefix("Token ")).map(str::trim).ok_or_else(|| {
                ApiError::Unauthenticated("Invalid token header: use `Authorization: Token <key>`.".into())
            })?;
        let invalid = |refused: TokenRefused| ApiError::Unauthenticated(format!("Invalid token: {refused}."));
        let id = ApiToken::id_of_key(key).map_err(invalid)?;
        let token = state.store.get_token(id).await?.ok_or(invalid(TokenRefused::Unknown))?;
        token.accepts(key, OffsetDateTime::now_utc()).map_err(invalid)?;
        let user = state.store.get_user(&token.user).await?.ok_or(invalid(TokenRefused::Unknown))?;
        Ok(Caller(user))
    }
}
