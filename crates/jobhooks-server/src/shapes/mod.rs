//! Nautobot 2.4's representations of jobhooks' records, as its REST API sends them: every record
//! has `id`, an absolute `url`, `display` and `object_type`; related records are
//! `{"id", "object_type", "url"}` at `?depth=0` (the default) and the whole record at `?depth=1`;
//! choices are `{"value", "label"}`.
//!
//! The views serialize for the API's answers and deserialize for its clients (the `jobhooks` CLI
//! reads them back into the model's types with `?depth=1`, where each related record is whole).
//! A few fields jobhooks adds to Nautobot's (a job's `class_path`, a change's `prechange`) say so
//! where they are declared; Nautobot's clients ignore fields they do not know.

mod catalog;
mod changes;
mod runs;

pub use catalog::{JobButtonView, JobHookView, JobView, UserView};
pub use changes::ObjectChangeView;
pub use runs::{JobLogView, JobResultView, log_id, parse_log_id};

use jobhooks_model::{JobRecord, RecordKind, User, derived_id};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The deepest `?depth=` Nautobot answers.
pub const MAX_DEPTH: u8 = 10;

/// A related record at `?depth=0`: what it is and where to read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Brief {
    /// Its id: a UUID, or a number for results and changes.
    #[schema(value_type = String)]
    pub id: Value,
    /// Its type, `app_label.model`.
    pub object_type: String,
    /// Its absolute address in the API.
    pub url: String,
}

/// A related record: brief at depth 0, whole deeper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Related<T> {
    /// The whole record (`?depth=1` or deeper).
    Whole(Box<T>),
    /// Its id, type and address (`?depth=0`).
    Brief(Brief),
}

impl<T> Related<T> {
    /// The whole record, or what to ask for to get it.
    pub fn whole(self, field: &'static str) -> Result<T, ShapeError> {
        match self {
            Related::Whole(record) => Ok(*record),
            Related::Brief(_) => Err(ShapeError::NotWhole { field }),
        }
    }
}

/// A choice field: the stored value and its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Choice {
    /// The value, as filters and writes take it.
    pub value: String,
    /// How Nautobot shows it.
    pub label: String,
}

impl Choice {
    pub(crate) fn new(value: &str, label: &str) -> Self {
        Self { value: value.to_owned(), label: label.to_owned() }
    }
}

/// Why an answer does not read back into the model's types.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// A related record came brief where the whole one is needed.
    #[error("the answer's `{field}` is not the whole record: ask with ?depth=1")]
    NotWhole {
        /// The field.
        field: &'static str,
    },
    /// A field holds a value the model does not take.
    #[error("the answer's `{field}` is not valid: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// What shaping a record needs to know: where the API is, how deep to nest, and the jobs and
/// users that records relate to.
#[derive(Debug, Clone)]
pub struct Shaper {
    origin: String,
    depth: u8,
    jobs: std::collections::BTreeMap<String, JobRecord>,
    users: std::collections::BTreeMap<String, User>,
}

impl Shaper {
    /// Links under `origin` (`https://host:port`, or empty for relative links), nesting `depth`
    /// levels of related records.
    pub fn new(origin: impl Into<String>, depth: u8) -> Self {
        Self { origin: origin.into(), depth: depth.min(MAX_DEPTH), jobs: Default::default(), users: Default::default() }
    }

    /// Knows `jobs`, for the records that relate to them.
    pub fn with_jobs(mut self, jobs: impl IntoIterator<Item = JobRecord>) -> Self {
        self.jobs = jobs.into_iter().map(|job| (job.class_path.clone(), job)).collect();
        self
    }

    /// Knows `users`, for the records that relate to them at depth 1 and deeper.
    pub fn with_users(mut self, users: impl IntoIterator<Item = User>) -> Self {
        self.users = users.into_iter().map(|user| (user.username.clone(), user)).collect();
        self
    }

    /// How deep related records nest.
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// The shaper one level down, for a related record's own relations.
    fn nested(&self) -> Self {
        Self { depth: self.depth.saturating_sub(1), ..self.clone() }
    }

    /// The absolute address of `path` (which starts with `/api/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    fn brief(&self, id: Value, object_type: &str, path: String) -> Brief {
        Brief { id, object_type: object_type.to_owned(), url: self.url(&path) }
    }

    /// The id of the job with `class_path`, if it is recorded.
    pub fn job_id(&self, class_path: &str) -> Option<Uuid> {
        self.jobs.get(class_path).map(|job| job.id)
    }

    /// The class path a job filter's value names: a known job's id names its class path; any
    /// other value is taken as a class path.
    pub fn job_class_path(&self, reference: &str) -> String {
        let by_id = reference.parse::<Uuid>().ok().and_then(|id| self.jobs.values().find(|job| job.id == id));
        by_id.map_or_else(|| reference.to_owned(), |job| job.class_path.clone())
    }

    /// The job with `class_path`, related: `None` when no such job is recorded.
    pub fn related_job(&self, class_path: &str) -> Option<Related<JobView>> {
        let job = self.jobs.get(class_path)?;
        Some(if self.depth == 0 {
            Related::Brief(self.brief(Value::String(job.id.to_string()), JobView::OBJECT_TYPE, JobView::path(job.id)))
        } else {
            Related::Whole(Box::new(JobView::of(job, &self.nested())))
        })
    }

    /// The user `username`, related: brief at depth 0, whole deeper when the user is known.
    pub fn related_user(&self, username: &str) -> Related<UserView> {
        let id = user_id(username);
        match self.users.get(username) {
            Some(user) if self.depth > 0 => Related::Whole(Box::new(UserView::related(user, self))),
            _ => Related::Brief(self.brief(Value::String(id.to_string()), UserView::OBJECT_TYPE, UserView::path(id))),
        }
    }
}

/// A user's id: derived from the username (users are named, not numbered, in jobhooks).
pub fn user_id(username: &str) -> Uuid {
    derived_id(RecordKind::User, username)
}

/// The origin (`scheme://authority`) of an absolute request URI; empty for a relative one.
pub fn origin_of(uri: &axum::http::Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => String::new(),
    }
}
