//! How model values are spelled in the schema's columns, and read back. Every column is the
//! store's own spelling: a change to the model's serde attributes cannot change what is stored.
//! Reading checks what it reads the way the model's constructors do; a row that fails is corrupt.

use jobhooks_model::{
    Action, ButtonClass, ChangeContextKind, ContentType, JobKind, JobStatus, LogEntry, LogLevel, LoggedObject,
    ObjectRef, OffsetDateTime, Permission, StorageFailure,
};
use serde::{Deserialize, Serialize};

/// A row that does not hold what the schema promises.
pub(crate) fn corrupt(
    kind: &'static str,
    key: impl std::fmt::Display,
    reason: impl std::fmt::Display,
) -> StorageFailure {
    StorageFailure::corrupt(kind, key, reason)
}

pub(crate) fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::JobHookReceiver => "job_hook_receiver",
        JobKind::JobButtonReceiver => "job_button_receiver",
    }
}

pub(crate) fn kind_of(name: &str) -> Option<JobKind> {
    match name {
        "job_hook_receiver" => Some(JobKind::JobHookReceiver),
        "job_button_receiver" => Some(JobKind::JobButtonReceiver),
        _ => None,
    }
}

pub(crate) fn status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Pending => "PENDING",
        JobStatus::Started => "STARTED",
        JobStatus::Success => "SUCCESS",
        JobStatus::Failure => "FAILURE",
        JobStatus::Retrying => "RETRYING",
        JobStatus::DeadLettered => "DEAD_LETTERED",
    }
}

pub(crate) fn status_of(name: &str) -> Option<JobStatus> {
    [
        JobStatus::Pending,
        JobStatus::Started,
        JobStatus::Success,
        JobStatus::Failure,
        JobStatus::Retrying,
        JobStatus::DeadLettered,
    ]
    .into_iter()
    .find(|status| status_name(*status) == name)
}

pub(crate) fn action_name(action: Action) -> &'static str {
    action.as_str()
}

pub(crate) fn action_of(name: &str) -> Option<Action> {
    name.parse().ok()
}

pub(crate) fn context_name(kind: ChangeContextKind) -> &'static str {
    kind.as_str()
}

pub(crate) fn context_of(name: &str) -> Option<ChangeContextKind> {
    ChangeContextKind::from_name(name)
}

pub(crate) fn button_class_of(name: &str) -> Option<ButtonClass> {
    name.parse().ok()
}

pub(crate) fn content_types(names: Vec<String>) -> Result<Vec<ContentType>, String> {
    names.into_iter().map(|name| ContentType::new(name).map_err(|e| e.to_string())).collect()
}

pub(crate) fn content_type_names(content_types: &[ContentType]) -> Vec<String> {
    content_types.iter().map(|ct| ct.as_str().to_owned()).collect()
}

/// A permission in the `permissions` column.
#[derive(Serialize, Deserialize)]
pub(crate) struct PermissionRecord {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jobs: Option<Vec<String>>,
}

pub(crate) fn permission_records(permissions: &[Permission]) -> Vec<PermissionRecord> {
    permissions
        .iter()
        .map(|permission| PermissionRecord { name: permission.name.clone(), jobs: permission.jobs.clone() })
        .collect()
}

pub(crate) fn permissions(records: Vec<PermissionRecord>) -> Vec<Permission> {
    records.into_iter().map(|record| Permission { jobs: record.jobs, ..Permission::new(record.name) }).collect()
}

/// A log entry in the `logs` column.
#[derive(Serialize, Deserialize)]
pub(crate) struct LogRecord {
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    level: String,
    grouping: String,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object: Option<LoggedObjectRecord>,
}

/// The object a log entry is about.
#[derive(Serialize, Deserialize)]
pub(crate) struct LoggedObjectRecord {
    repr: String,
    content_type: String,
    id: String,
}

const LEVELS: [LogLevel; 7] = [
    LogLevel::Debug,
    LogLevel::Info,
    LogLevel::Success,
    LogLevel::Warning,
    LogLevel::Failure,
    LogLevel::Error,
    LogLevel::Critical,
];

pub(crate) fn log_records(logs: &[LogEntry]) -> Vec<LogRecord> {
    logs.iter()
        .map(|entry| LogRecord {
            time: entry.time,
            level: entry.level.as_str().to_owned(),
            grouping: entry.grouping.clone(),
            message: entry.message.clone(),
            object: entry.object.as_ref().map(|object| LoggedObjectRecord {
                repr: object.repr.clone(),
                content_type: object.reference.content_type().as_str().to_owned(),
                id: object.reference.id().to_owned(),
            }),
        })
        .collect()
}

pub(crate) fn log_entries(records: Vec<LogRecord>) -> Result<Vec<LogEntry>, String> {
    records
        .into_iter()
        .map(|record| {
            let level = LEVELS
                .into_iter()
                .find(|level| level.as_str() == record.level)
                .ok_or_else(|| format!("unknown log level `{}`", record.level))?;
            let object = record
                .object
                .map(|object| {
                    let content_type = ContentType::new(object.content_type).map_err(|e| e.to_string())?;
                    let reference = ObjectRef::new(content_type, object.id).map_err(|e| e.to_string())?;
                    Ok::<_, String>(LoggedObject { repr: object.repr, reference })
                })
                .transpose()?;
            Ok(LogEntry { time: record.time, level, grouping: record.grouping, message: record.message, object })
        })
        .collect()
}

/// The key of an object's line of runs: its type, a slash (which no content type holds), its id.
pub(crate) fn line_key(reference: &ObjectRef) -> String {
    format!("{}/{}", reference.content_type(), reference.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_what_they_name() {
        for status in [
            JobStatus::Pending,
            JobStatus::Started,
            JobStatus::Success,
            JobStatus::Failure,
            JobStatus::Retrying,
            JobStatus::DeadLettered,
        ] {
            assert_eq!(status_of(status_name(status)), Some(status));
        }
        for kind in [JobKind::JobHookReceiver, JobKind::JobButtonReceiver] {
            assert_eq!(kind_of(kind_name(kind)), Some(kind));
        }
        for action in [Action::Create, Action::Update, Action::Delete] {
            assert_eq!(action_of(action_name(action)), Some(action));
        }
        for kind in [ChangeContextKind::Web, ChangeContextKind::JobHook, ChangeContextKind::Unknown] {
            assert_eq!(context_of(context_name(kind)), Some(kind));
        }
        assert_eq!(status_of("BOGUS"), None);
    }

    #[test]
    fn log_entries_round_trip_and_bad_ones_are_refused() {
        let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap();
        let logs: Vec<LogEntry> = LEVELS
            .into_iter()
            .map(|level| LogEntry {
                time: OffsetDateTime::UNIX_EPOCH,
                level,
                grouping: "main".into(),
                message: level.to_string(),
                object: Some(LoggedObject { repr: "d".into(), reference: reference.clone() }),
            })
            .collect();
        let json = serde_json::to_value(log_records(&logs)).unwrap();
        let records: Vec<LogRecord> = serde_json::from_value(json).unwrap();
        assert_eq!(log_entries(records).unwrap(), logs);
        let bad: Vec<LogRecord> = serde_json::from_value(serde_json::json!([
            {"time": "1970-01-01T00:00:00Z", "level": "loud", "grouping": "main", "message": "x"}
        ]))
        .unwrap();
        assert!(log_entries(bad).unwrap_err().contains("unknown log level"));
    }
}
