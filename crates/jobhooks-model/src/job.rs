//! Jobs, their runs, and what a run leaves behind.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ChangeId, ObjectRef};

/// What kind of receiver a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Runs when a matching object change commits.
    JobHookReceiver,
    /// Runs when a person presses a job button.
    JobButtonReceiver,
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobKind::JobHookReceiver => "job hook receiver",
            JobKind::JobButtonReceiver => "job button receiver",
        })
    }
}

/// The stored record of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobRecord {
    /// Its id: derived from the class path it was first recorded under
    /// ([`derived_id`](crate::derived_id)), and kept when the job is renamed.
    #[serde(default)]
    pub id: Uuid,
    /// Its identity: `module_path!()` + `::` + type name.
    pub class_path: String,
    /// Its display name.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Hook or button receiver.
    pub kind: JobKind,
    /// Linked into the running program.
    pub installed: bool,
    /// Allowed to run. A new job starts disabled.
    pub enabled: bool,
    /// Left out of the job listing unless asked for. Receivers are hidden by default.
    pub hidden: bool,
    /// What a sync disabled when it found the job no longer linked, so that
    /// [`plan_job_restore`](crate::plan_job_restore) can enable it again; `None` when nothing is
    /// waiting to be restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<Suspension>,
    /// When it was first recorded (`None` for a job recorded before jobs kept times).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub created: Option<OffsetDateTime>,
    /// When its record last changed.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<OffsetDateTime>,
}

/// What a [`SyncMode::Full`](crate::SyncMode::Full) sync disabled when it marked a job not
/// installed: the job's own `enabled` flag, and the hooks and buttons it turned off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Suspension {
    /// Whether the job was enabled.
    pub enabled: bool,
    /// The hooks the sync disabled, by name.
    #[serde(default)]
    pub hooks: Vec<String>,
    /// The buttons the sync disabled, by name.
    #[serde(default)]
    pub buttons: Vec<String>,
}

impl JobRecord {
    /// The record of a job first seen linked: installed, disabled until someone enables it, hidden
    /// (as receivers are), with the id derived from its class path.
    pub fn new(class_path: impl Into<String>, name: impl Into<String>, kind: JobKind) -> Self {
        let class_path = class_path.into();
        Self {
            id: crate::derived_id(crate::RecordKind::Job, &class_path),
            class_path,
            name: name.into(),
            description: String::new(),
            kind,
            installed: true,
            enabled: false,
            hidden: true,
            suspended: None,
            created: None,
            last_updated: None,
        }
    }

    /// The record as a store writes it at `now`: its id derived from its class path if it has
    /// none, `created` if it has none, and `last_updated` now.
    pub fn stamped(mut self, now: OffsetDateTime) -> Self {
        let class_path = self.class_path.clone();
        crate::record_id::stamp(&mut self.id, &mut self.created, &mut self.last_updated, now, || {
            crate::derived_id(crate::RecordKind::Job, &class_path)
        });
        self
    }

    /// The module part of the class path (Nautobot's `module_name`).
    pub fn module_name(&self) -> &str {
        self.class_path.rsplit_once("::").map_or("", |(module, _)| module)
    }

    /// The type name part of the class path (Nautobot's `job_class_name`).
    pub fn job_class_name(&self) -> &str {
        self.class_path.rsplit_once("::").map_or(self.class_path.as_str(), |(_, name)| name)
    }

    /// Whether anything may run the job now.
    pub fn is_runnable(&self) -> bool {
        self.installed && self.enabled
    }
}

/// The id of one job run (and of its result). Ids grow with enqueue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The inputs of a run: what a receiver is called with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum JobInputs {
    /// A job hook run: the change that triggered it.
    Hook {
        /// The change's id.
        object_change: ChangeId,
        /// The hook that queued it, for an outbound webhook's run (whose hook says where to send);
        /// `None` for a hook that runs its own receiver.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hook: Option<uuid::Uuid>,
    },
    /// A job button run: the object the button was pressed on.
    Button {
        /// The object's id.
        object_pk: String,
        /// The object's content type, `app_label.model`.
        object_model_name: String,
    },
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Queued, not started.
    Pending,
    /// A worker is running it.
    Started,
    /// Finished without error.
    Success,
    /// Finished with an error.
    Failure,
    /// Failed, and queued to run again after a backoff.
    Retrying,
    /// Failed on every allowed attempt; kept for inspection and replay.
    DeadLettered,
}

impl JobStatus {
    /// Whether the run is over (success, failure or dead-lettered).
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Success | JobStatus::Failure | JobStatus::DeadLettered)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Started => "STARTED",
            JobStatus::Success => "SUCCESS",
            JobStatus::Failure => "FAILURE",
            JobStatus::Retrying => "RETRYING",
            JobStatus::DeadLettered => "DEAD_LETTERED",
        })
    }
}

/// The level of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detail for debugging.
    Debug,
    /// Progress.
    Info,
    /// Something went right.
    Success,
    /// Something looks wrong.
    Warning,
    /// Something went wrong: the run fails.
    Failure,
    /// An error.
    Error,
    /// A severe error.
    Critical,
}

impl LogLevel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Success => "success",
            LogLevel::Warning => "warning",
            LogLevel::Failure => "failure",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object a log entry is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoggedObject {
    /// Its text.
    pub repr: String,
    /// Its type and id.
    pub reference: ObjectRef,
}

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// How severe.
    pub level: LogLevel,
    /// Which part of the run wrote it (`initialization`, `main`, `post_run`, …).
    pub grouping: String,
    /// The text.
    pub message: String,
    /// The object it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<LoggedObject>,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.level, self.message)
    }
}

/// The result of one job run: its status and its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobResult {
    /// The run's id.
    pub id: RunId,
    /// The job's class path.
    pub job: String,
    /// Who it runs as.
    pub user: Option<String>,
    /// What it was called with.
    pub inputs: JobInputs,
    /// Where it stands.
    pub status: JobStatus,
    /// How many times it has been started.
    pub attempts: u32,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When it (last) started.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started: Option<OffsetDateTime>,
    /// When it finished.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed: Option<OffsetDateTime>,
    /// What it logged, across attempts.
    pub logs: Vec<LogEntry>,
}

impl JobResult {
    /// A new pending result.
    pub fn pending(
        id: RunId,
        job: impl Into<String>,
        user: Option<String>,
        inputs: JobInputs,
        created: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            job: job.into(),
            user,
            inputs,
            status: JobStatus::Pending,
            attempts: 0,
            created,
            started: None,
            completed: None,
            logs: Vec::new(),
        }
    }

    /// The change a hook run was triggered by.
    pub fn change_id(&self) -> Option<ChangeId> {
        match self.inputs {
            JobInputs::Hook { object_change, .. } => Some(object_change),
            JobInputs::Button { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_have_nautobot_names() {
        assert_eq!(
            serde_json::to_value(JobInputs::Hook { object_change: ChangeId(3), hook: None }).unwrap(),
            json!({"object_change": 3})
        );
        let button = JobInputs::Button { object_pk: "7".into(), object_model_name: "dcim.location".into() };
        let value = serde_json::to_value(&button).unwrap();
        assert_eq!(value, json!({"object_pk": "7", "object_model_name": "dcim.location"}));
        assert_eq!(serde_json::from_value::<JobInputs>(value).unwrap(), button);
    }

    #[test]
    fn statuses_are_upper_case_and_some_are_final() {
        assert_eq!(serde_json::to_value(JobStatus::DeadLettered).unwrap(), json!("DEAD_LETTERED"));
        assert_eq!(JobStatus::Success.to_string(), "SUCCESS");
        assert!(JobStatus::Failure.is_final() && !JobStatus::Retrying.is_final() && !JobStatus::Pending.is_final());
    }

    #[test]
    fn result_round_trips() {
        let mut result = JobResult::pending(
            RunId(1),
            "a::B",
            None,
            JobInputs::Hook { object_change: ChangeId(2), hook: None },
            OffsetDateTime::UNIX_EPOCH,
        );
        result.logs.push(LogEntry {
            time: OffsetDateTime::UNIX_EPOCH,
            level: LogLevel::Success,
            grouping: "post_run".into(),
            message: "Job completed".into(),
            object: None,
        });
        let json = serde_json::to_string(&result).unwrap();
        assert_eq!(serde_json::from_str::<JobResult>(&json).unwrap(), result);
        assert_eq!(result.change_id(), Some(ChangeId(2)));
        assert_eq!(result.logs[0].to_string(), "success Job completed");
    }
}

/// A job as the program that links it describes it: what the registry hands the store to sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// `module_path!()` + `::` + type name.
    pub class_path: String,
    /// Display name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Hook or button receiver.
    pub kind: JobKind,
    /// Hidden from the job listing unless asked for.
    pub hidden: bool,
    /// Class paths the job was recorded under by earlier versions of the program: a sync renames
    /// a stored job found under one of them (with its hooks and buttons) to `class_path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_class_paths: Vec<String>,
}
