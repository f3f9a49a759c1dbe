//! Posted forms: `application/x-www-form-urlencoded` fields, read only after the request is known
//! to come from this site (its `Origin`) and from the logged-in user's own page (the session's CSRF
//! token, compared in constant time). A refused post writes nothing.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use jobhooks_model::ports::Storage;

use super::render::PageError;
use super::visitor::{Visitor, origin_is_ours};
use crate::AppState;

/// The hidden field every form carries.
pub(crate) const CSRF_FIELD: &str = "csrf_token";

/// A filter of a list page's query string, when it says something (empty means "any").
pub(crate) fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

/// The fields of a form, in the order sent; a name may repeat (checkboxes, multiple selects).
#[derive(Debug, Clone, Default)]
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).map(|(name, value)| (name.into_owned(), value.into_owned())).collect())
    }

    /// The first value of `name`, trimmed; `""` when absent.
    pub fn text(&self, name: &str) -> &str {
        self.0.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.trim())
    }

    /// The first value of `name` as sent (a password keeps its spaces).
    pub fn text_untrimmed(&self, name: &str) -> &str {
        self.0.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
    }

    /// Whether a checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(key, value)| key == name && value != "off" && !value.is_empty())
    }

    /// Every field except the CSRF token, for a form shown again with what was typed.
    pub fn typed(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut typed = serde_json::Map::new();
        for (name, value) in self.0.iter().filter(|(name, _)| name != CSRF_FIELD) {
            match typed.get_mut(name) {
                Some(serde_json::Value::Array(values)) => values.push(value.clone().into()),
                Some(first) => *first = serde_json::Value::Array(vec![first.take(), value.clone().into()]),
                None => {
                    typed.insert(name.clone(), value.clone().into());
                }
            }
        }
        typed
    }
}

/// A form posted by the logged-in user from one of this server's pages.
pub(crate) struct Posted {
    pub visitor: Visitor,
    pub form: FormData,
}

/// Django's words for a refused form.
pub(crate) const CSRF_REFUSED: &str =
    "CSRF verification failed. Request aborted. Reload the page you came from and submit the form again.";

impl<S: Storage + 'static> FromRequest<AppState<S>> for Posted {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, state).await?;
        if !origin_is_ours(&parts.headers) {
            return Err(PageError::forbidden(format!("{CSRF_REFUSED} (The form was sent from another site.)")));
        }
        let request = Request::from_parts(parts, body);
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| PageError::status(rejection.status(), rejection.body_text()))?;
        let form = FormData::parse(&body);
        if !visitor.csrf_matches(form.text(CSRF_FIELD)) {
            return Err(PageError::forbidden(CSRF_REFUSED.to_owned()));
        }
        Ok(Posted { visitor, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_repeat_trim_and_tick() {
        let form = FormData::parse(b"name=+a%20b+&ct=dcim.device&ct=&ct=dcim.site&on=on&csrf_token=x");
        assert_eq!(form.text("name"), "a b");
        assert!(form.checked("on"));
        assert!(!form.checked("off"));
        assert_eq!(form.text("missing"), "");
        let typed = form.typed();
        assert!(!typed.contains_key(CSRF_FIELD));
        assert_eq!(typed["ct"], serde_json::json!(["dcim.device", "", "dcim.site"]));
    }
}
