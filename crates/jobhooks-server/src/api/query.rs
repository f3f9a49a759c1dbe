//! The query string of a list or a record, read as Nautobot reads it: `limit`, `offset` and
//! `depth` for every endpoint, and the endpoint's own filters. Filters are strict, as Nautobot's
//! `STRICT_FILTERING`: a parameter the endpoint does not know is a 400 naming it, never ignored
//! (a script that filters on a misspelt field must not act on every record). A filter given more
//! than once matches any of its values.

use std::collections::BTreeMap;

use axum::http::Uri;
use jobhooks_model::ValidationErrors;

use crate::shapes::{MAX_DEPTH, Shaper, origin_of};
use crate::{ApiError, PageQuery};

/// Parameters every endpoint takes besides its filters (`format`, `exclude_m2m` and `include` are
/// Nautobot's, sent by its clients, and change nothing here).
const COMMON: &[&str] = &["limit", "offset", "depth", "format", "exclude_m2m", "include"];

/// A list's or a record's query: its page, its depth and its filters.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub(crate) page: PageQuery,
    pub(crate) depth: u8,
    filters: BTreeMap<String, Vec<String>>,
}

impl ListQuery {
    /// Reads `uri`'s query, refusing any parameter that is neither common nor in `filters`.
    pub(crate) fn of(uri: &Uri, filters: &[&str]) -> Result<Self, ApiError> {
        let mut query = ListQuery::default();
        let mut errors = ValidationErrors::default();
        for (key, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            let number = |errors: &mut ValidationErrors| match value.parse::<usize>() {
                Ok(number) => Some(number),
                Err(_) => {
                    errors.add(key.as_ref(), "A whole number is required.");
                    None
                }
            };
            match key.as_ref() {
                "limit" => query.page.limit = number(&mut errors),
                "offset" => query.page.offset = number(&mut errors),
                "depth" => match number(&mut errors) {
                    Some(depth) if depth <= usize::from(MAX_DEPTH) => query.depth = depth as u8,
                    Some(_) => errors.add("depth", format!("Ensure this value is less than or equal to {MAX_DEPTH}.")),
                    None => {}
                },
                key if COMMON.contains(&key) => {}
                key if filters.contains(&key) => {
                    query.filters.entry(key.to_owned()).or_default().push(value.into_owned());
                }
                key => errors.add(key, "Unknown filter field"),
            }
        }
        errors.into_result().map_err(ApiError::Validation)?;
        Ok(query)
    }

    /// The values given for `key` (none when it is not given).
    pub(crate) fn values(&self, key: &str) -> &[String] {
        self.filters.get(key).map_or(&[], Vec::as_slice)
    }

    /// The values given for `key`, owned: a list field of a store's filter.
    pub(crate) fn strings(&self, key: &str) -> Vec<String> {
        self.values(key).to_vec()
    }

    /// The values given for `key`, each parsed by `parse`; a value it refuses is a 400 on `key`
    /// with its message.
    pub(crate) fn parsed<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, ApiError> {
        let mut errors = ValidationErrors::default();
        let mut parsed = Vec::new();
        for value in self.values(key) {
            match parse(value) {
                Ok(value) => parsed.push(value),
                Err(message) => errors.add(key, message),
            }
        }
        errors.into_result().map_err(ApiError::Validation)?;
        Ok(parsed)
    }

    /// The ids given for `key`; one that is not a UUID is refused with Django's message.
    pub(crate) fn uuids(&self, key: &str) -> Result<Vec<uuid::Uuid>, ApiError> {
        self.parsed(key, |value| value.parse().map_err(|_| format!("“{value}” is not a valid UUID.")))
    }

    /// The content types given for `key`; a name that cannot be one is refused.
    pub(crate) fn content_types(&self, key: &str) -> Result<Vec<jobhooks_model::ContentType>, ApiError> {
        self.parsed(key, |value| jobhooks_model::ContentType::new(value).map_err(|error| error.to_string()))
    }

    /// Whether `candidate` passes the filter `key`: it is not given, or some value of it matches.
    pub(crate) fn admits(&self, key: &str, matches: impl Fn(&str) -> bool) -> bool {
        let values = self.values(key);
        values.is_empty() || values.iter().any(|value| matches(value))
    }

    /// The boolean filter `key` (`true`/`false`, `1`/`0`, any case), if given.
    pub(crate) fn flag(&self, key: &'static str) -> Result<Option<bool>, ApiError> {
        let Some(value) = self.values(key).last() else { return Ok(None) };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(super::field_error(
                key,
                format!("Select a valid choice. {value} is not one of the available choices."),
            )),
        }
    }

    /// Whether the flag `key` is not given or equals `value`.
    pub(crate) fn admits_flag(&self, key: &'static str, value: bool) -> Result<bool, ApiError> {
        Ok(self.flag(key)?.is_none_or(|wanted| wanted == value))
    }

    /// Whether `text` contains the `q` filter's value, in any case.
    pub(crate) fn admits_search(&self, texts: &[&str]) -> bool {
        self.admits("q", |q| {
            let q = q.to_lowercase();
            texts.iter().any(|text| text.to_lowercase().contains(&q))
        })
    }

    /// A shaper for this request's links and depth.
    pub(crate) fn shaper(&self, uri: &Uri) -> Shaper {
        Shaper::new(origin_of(uri), self.depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str, filters: &[&str]) -> Result<ListQuery, ApiError> {
        ListQuery::of(&format!("/api/x/?{text}").parse().unwrap(), filters)
    }

    #[test]
    fn unknown_parameters_are_refused_by_name_and_known_ones_read() {
        let Err(ApiError::Validation(errors)) = query("nmae=x&limit=2", &["name"]) else { panic!("refused") };
        assert_eq!(errors.field("nmae"), ["Unknown filter field"]);
        let read = query("name=a&name=b%20c&limit=2&offset=4&depth=1&format=json", &["name"]).unwrap();
        assert_eq!(read.values("name"), ["a", "b c"]);
        assert_eq!((read.page.limit, read.page.offset, read.depth), (Some(2), Some(4), 1));
        assert!(read.admits("name", |value| value == "b c") && !read.admits("name", |value| value == "d"));
        assert!(read.admits("other", |_| false), "a filter not given admits everything");
        assert!(query("depth=11", &[]).is_err() && query("limit=-1", &[]).is_err());
        assert_eq!(query("enabled=False", &["enabled"]).unwrap().flag("enabled").unwrap(), Some(false));
        assert!(query("enabled=maybe", &["enabled"]).unwrap().flag("enabled").is_err());
    }
}
