//! Users and their permissions.

use serde::{Deserialize, Serialize};

use crate::{ModelError, validate_name};

/// The permission that allows running jobs.
pub const RUN_JOB_PERMISSION: &str = "extras.run_job";

/// One granted permission, Django style: `app_label.codename` (e.g. `dcim.add_location`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Permission {
    /// `app_label.codename`.
    pub name: String,
    /// Object-level limit for `extras.run_job`: when set, only these jobs (by class path) may be
    /// run. Ignored for other permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<String>>,
}

impl Permission {
    /// A permission without object-level limit.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), jobs: None }
    }

    /// `extras.run_job` limited to the given jobs.
    pub fn run_jobs<I: IntoIterator<Item = S>, S: Into<String>>(jobs: I) -> Self {
        Self { name: RUN_JOB_PERMISSION.to_owned(), jobs: Some(jobs.into_iter().map(Into::into).collect()) }
    }
}

/// A person (or service account) who makes changes and presses buttons.
///
/// ```
/// use jobhooks_model::{Permission, User};
/// let alice = User::new("alice").unwrap()
///     .with_permission(Permission::new("dcim.add_location"))
///     .with_permission(Permission::run_jobs(["app::jobs::Audit"]));
/// assert!(alice.has_perm("dcim.add_location"));
/// assert!(alice.can_run_job("app::jobs::Audit"));
/// assert!(!alice.can_run_job("app::jobs::Other"));
/// assert!(User::superuser("root").unwrap().can_run_job("anything"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(description = "A user and its permissions: Django's `app_label.codename`; a superuser has them all.")
)]
pub struct User {
    /// Unique login name.
    pub username: String,
    /// A superuser has every permission.
    #[serde(default)]
    pub is_superuser: bool,
    /// What the user may do.
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

impl User {
    /// A user without permissions. The name must be non-empty and at most 100 characters.
    pub fn new(username: impl Into<String>) -> Result<Self, ModelError> {
        let username = username.into();
        validate_name("username", &username)?;
        Ok(Self { username, is_superuser: false, permissions: Vec::new() })
    }

    /// A superuser.
    pub fn superuser(username: impl Into<String>) -> Result<Self, ModelError> {
        Ok(Self { is_superuser: true, ..Self::new(username)? })
    }

    /// Adds a permission.
    pub fn with_permission(mut self, permission: Permission) -> Self {
        self.permissions.push(permission);
        self
    }

    /// Whether the user has the permission `name` (`app_label.codename`), as Django's `has_perm`
    /// without an object: any grant counts, whatever its object-level limit.
    pub fn has_perm(&self, name: &str) -> bool {
        self.is_superuser || self.permissions.iter().any(|p| p.name == name)
    }

    /// Whether the user may run the job `class_path`: `extras.run_job` granted without limit or
    /// limited to a list that names the job.
    pub fn can_run_job(&self, class_path: &str) -> bool {
        self.is_superuser
            || self.permissions.iter().any(|p| {
                p.name == RUN_JOB_PERMISSION && p.jobs.as_ref().is_none_or(|jobs| jobs.iter().any(|j| j == class_path))
            })
    }
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions() {
        let plain = User::new("bob").unwrap();
        assert!(!plain.has_perm("dcim.add_location"));
        assert!(!plain.can_run_job("a::B"));
        let runner = User::new("carol").unwrap().with_permission(Permission::new(RUN_JOB_PERMISSION));
        assert!(runner.can_run_job("a::B"));
        let limited = User::new("dave").unwrap().with_permission(Permission::run_jobs(["a::B"]));
        assert!(limited.has_perm(RUN_JOB_PERMISSION), "any grant counts without an object");
        assert!(limited.can_run_job("a::B"));
        assert!(!limited.can_run_job("a::C"));
        let other = User::new("erin")
            .unwrap()
            .with_permission(Permission { name: "dcim.view_device".into(), jobs: Some(vec!["a::B".into()]) });
        assert!(!other.can_run_job("a::B"), "a job list on another permission grants nothing");
        let root = User::superuser("root").unwrap();
        assert!(root.has_perm("dcim.add_device") && root.can_run_job("x::Y"));
        assert!(User::new("").is_err());
    }
}
