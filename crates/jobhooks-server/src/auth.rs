//! Who is calling: `Authorization: Token <key>` (Nautobot's header), checked against the stored
//! token's hash, then the token's user. The key is never logged.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jobhooks_model::ports::Storage;
use jobhooks_model::{ApiToken, OffsetDateTime, TokenRefused, User};

use crate::{ApiError, AppState};

/// The authenticated caller of a request: the token's user, and the token it came with.
#[derive(Debug, Clone)]
pub struct Caller(pub User, pub ApiToken);

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
        // The keyword in any case, as Django REST framework reads it.
        let key = header
            .to_str()
            .ok()
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(keyword, _)| keyword.eq_ignore_ascii_case("token"))
            .map(|(_, key)| key.trim())
            .ok_or_else(|| {
                ApiError::Unauthenticated("Invalid token header: use `Authorization: Token <key>`.".into())
            })?;
        let invalid = |refused: TokenRefused| ApiError::Unauthenticated(format!("Invalid token: {refused}."));
        let id = ApiToken::id_of_key(key).map_err(invalid)?;
        let token = state.store.get_token(id).await?.ok_or(invalid(TokenRefused::Unknown))?;
        token.accepts(key, OffsetDateTime::now_utc()).map_err(invalid)?;
        let user = state.store.get_user(&token.user).await?.ok_or(invalid(TokenRefused::Unknown))?;
        // A read-only token reads: every other method is refused before anything is read or done.
        if !token.write_enabled && !parts.method.is_safe() {
            return Err(ApiError::Refused(READ_ONLY_TOKEN.into()));
        }
        Ok(Caller(user, token))
    }
}

/// Whether `password` is the web password of `username`. A refusal does the same hashing work (a
/// decoy hash when the user is unknown or has none) and then waits the configured delay, so that
/// neither its time nor its answer tells who exists. Used by the login page and by token
/// provisioning.
pub(crate) async fn verify_password<S: Storage + 'static>(
    state: &AppState<S>,
    username: &str,
    password: String,
) -> Result<bool, jobhooks_model::StorageFailure> {
    let stored = match state.store.get_user(username).await? {
        Some(_) => state.store.get_password(username).await?,
        None => None,
    };
    let cost = state.ui.password_cost;
    let verified = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => hash.verify(&password),
        None => {
            jobhooks_model::PasswordHash::decoy(cost).verify(&password);
            false
        }
    })
    .await
    .unwrap_or(false);
    if !verified {
        tokio::time::sleep(state.ui.refused_login_delay).await;
    }
    Ok(verified)
}

/// The refusal of a write with a read-only token.
pub(crate) const READ_ONLY_TOKEN: &str =
    "You do not have permission to perform this action: this token is read-only (write_enabled is false).";

/// A permission an endpoint needs, as a type, so that [`Allowed`] checks it before the body is
/// read: a caller without it gets 403, whatever the body.
pub trait Needs: Send + Sync {
    /// `app_label.codename`.
    const PERMISSION: &'static str;
}

/// The caller, once it is known to have `P`'s permission.
#[derive(Debug, Clone)]
pub struct Allowed<P>(pub Caller, std::marker::PhantomData<P>);

impl<S: Storage + 'static, P: Needs> FromRequestParts<AppState<S>> for Allowed<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(P::PERMISSION)?;
        Ok(Allowed(caller, std::marker::PhantomData))
    }
}

/// Declares permission types for [`Allowed`].
macro_rules! permissions {
    ($($name:ident = $permission:literal;)*) => {
        $(
            #[doc = concat!("`", $permission, "`.")]
            #[derive(Debug, Clone, Copy)]
            pub struct $name;

            impl Needs for $name {
                const PERMISSION: &'static str = $permission;
            }
        )*
    };
}

permissions! {
    ViewJobHook = "extras.view_jobhook";
    AddJobHook = "extras.add_jobhook";
    ChangeJobHook = "extras.change_jobhook";
    DeleteJobHook = "extras.delete_jobhook";
    ViewJobButton = "extras.view_jobbutton";
    AddJobButton = "extras.add_jobbutton";
    ChangeJobButton = "extras.change_jobbutton";
    DeleteJobButton = "extras.delete_jobbutton";
    ViewJob = "extras.view_job";
    ChangeJob = "extras.change_job";
    ViewJobResult = "extras.view_jobresult";
    ViewObjectChange = "extras.view_objectchange";
}
