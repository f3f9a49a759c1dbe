//! Job results and their log entries as Nautobot's API shows them.

use jobhooks_model::{JobInputs, JobResult, JobStatus, LogEntry, LogLevel, LoggedObject, OffsetDateTime, RunId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::catalog::{decoded, username_of};
use super::{Choice, JobView, Related, ShapeError, Shaper, UserView};

/// The label of a dead-lettered run's status, whose value is Celery's `FAILURE`.
pub const DEAD_LETTERED_LABEL: &str = "FAILURE (dead-lettered)";

/// A run's status as Celery's state, which Nautobot's clients wait on: `PENDING`, `STARTED` and
/// `RETRY` are still running; `SUCCESS` and `FAILURE` are final. A dead-lettered run failed on
/// every attempt it was allowed and waits for a person to replay it: it is final, `FAILURE`, with
/// the label [`DEAD_LETTERED_LABEL`].
pub fn status_choice(status: JobStatus) -> Choice {
    match status {
        JobStatus::Pending => Choice::new("PENDING", "PENDING"),
        JobStatus::Started => Choice::new("STARTED", "STARTED"),
        JobStatus::Success => Choice::new("SUCCESS", "SUCCESS"),
        JobStatus::Failure => Choice::new("FAILURE", "FAILURE"),
        JobStatus::Retrying => Choice::new("RETRY", "RETRY"),
        JobStatus::DeadLettered => Choice::new("FAILURE", DEAD_LETTERED_LABEL),
    }
}

/// The status a [`status_choice`] stands for.
pub fn status_of_choice(choice: &Choice) -> Option<JobStatus> {
    Some(match (choice.value.as_str(), choice.label.as_str()) {
        ("FAILURE", DEAD_LETTERED_LABEL) => JobStatus::DeadLettered,
        ("PENDING", _) => JobStatus::Pending,
        ("STARTED", _) => JobStatus::Started,
        ("SUCCESS", _) => JobStatus::Success,
        ("FAILURE", _) => JobStatus::Failure,
        ("RETRY", _) => JobStatus::Retrying,
        _ => return None,
    })
}

/// A job result (`extras.jobresult`): one run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResultView {
    /// The run's number.
    pub id: u64,
    /// `extras.jobresult`.
    pub object_type: String,
    /// The job's name, when it was queued and its status.
    pub display: String,
    /// Its address.
    pub url: String,
    /// The job's name.
    pub name: String,
    /// The job's class path.
    pub task_name: String,
    /// The job (`null` if the job is no longer recorded).
    #[schema(value_type = Object)]
    pub job_model: Option<Related<JobView>>,
    /// Where the run stands, as Celery's state.
    pub status: Choice,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub date_created: OffsetDateTime,
    /// When it (last) started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub date_started: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub date_done: Option<OffsetDateTime>,
    /// Who it runs as (`null` for a hook run of a change without a user).
    #[schema(value_type = Object)]
    pub user: Option<Related<UserView>>,
    /// Always empty.
    pub task_args: Vec<Value>,
    /// What it runs with: `{"object_change": id}` for a job hook's run, `{"object_pk",
    /// "object_model_name"}` for a job button's.
    #[schema(value_type = Object)]
    pub task_kwargs: Value,
    /// Always `{}`.
    #[schema(value_type = Object)]
    pub celery_kwargs: Value,
    /// Always `null`: receivers return nothing.
    #[schema(value_type = Object)]
    pub result: Value,
    /// The failure's message, for a run that failed.
    pub traceback: Option<String>,
    /// `{"attempts": n}`: how many times the run has started.
    #[schema(value_type = Object)]
    pub meta: Value,
    /// Always `null`: jobhooks runs jobs at once.
    #[schema(value_type = Object)]
    pub scheduled_job: Value,
    /// Always empty.
    pub files: Vec<Value>,
}

impl JobResultView {
    /// Its `object_type`.
    pub const OBJECT_TYPE: &'static str = "extras.jobresult";

    /// The path of the result of `run`.
    pub fn path(run: RunId) -> String {
        format!("/api/extras/job-results/{}/", run.0)
    }

    /// `result` as Nautobot shows it.
    pub fn of(result: &JobResult, shaper: &Shaper) -> Self {
        let job = shaper.related_job(&result.job);
        let name = match &job {
            Some(Related::Whole(job)) => job.name.clone(),
            _ => shaper.jobs.get(&result.job).map_or_else(|| result.job.clone(), |job| job.name.clone()),
        };
        let status = status_choice(result.status);
        let traceback = matches!(result.status, JobStatus::Failure | JobStatus::DeadLettered)
            .then(|| {
                result
                    .logs
                    .iter()
                    .rev()
                    .find(|entry| entry.level >= LogLevel::Failure)
                    .map(|entry| entry.message.clone())
            })
            .flatten();
        Self {
            id: result.id.0,
            object_type: Self::OBJECT_TYPE.to_owned(),
            display: format!("{name} started at {} ({})", rfc3339(result.created), status.label),
            url: shaper.url(&Self::path(result.id)),
            name,
            task_name: result.job.clone(),
            job_model: job,
            status,
            date_created: result.created,
            date_started: result.started,
            date_done: result.completed,
            user: result.user.as_deref().map(|user| shaper.related_user(user)),
            task_args: Vec::new(),
            task_kwargs: serde_json::to_value(&result.inputs).unwrap_or(Value::Null),
            celery_kwargs: json!({}),
            result: Value::Null,
            traceback,
            meta: json!({"attempts": result.attempts}),
            scheduled_job: Value::Null,
            files: Vec::new(),
        }
    }

    /// The model's result this view shows, with `logs` as its log (the view has none: they are
    /// listed at `/api/extras/job-logs/`).
    pub fn into_result(self, logs: Vec<LogEntry>) -> Result<JobResult, ShapeError> {
        let status = status_of_choice(&self.status)
            .ok_or_else(|| ShapeError::Invalid { field: "status", reason: format!("unknown {:?}", self.status) })?;
        let inputs: JobInputs = decoded("task_kwargs", self.task_kwargs)?;
        let attempts = self.meta.get("attempts").and_then(Value::as_u64).unwrap_or(0);
        let mut result =
            JobResult::pending(RunId(self.id), self.task_name, username_of(self.user)?, inputs, self.date_created);
        result.status = status;
        result.attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
        result.started = self.date_started;
        result.completed = self.date_done;
        result.logs = logs;
        Ok(result)
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The id of the `index`th entry of the log of `run`: `{run}-{index}`.
pub fn log_id(run: RunId, index: usize) -> String {
    format!("{}-{index}", run.0)
}

/// The run and the index a [`log_id`] names.
pub fn parse_log_id(id: &str) -> Option<(RunId, usize)> {
    let (run, index) = id.split_once('-')?;
    Some((RunId(run.parse().ok()?), index.parse().ok()?))
}

/// A job log entry (`extras.joblogentry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobLogView {
    /// `{run}-{index}`: the run's number and the entry's place in its log.
    pub id: String,
    /// `extras.joblogentry`.
    pub object_type: String,
    /// The message.
    pub display: String,
    /// Its address.
    pub url: String,
    /// The run it is of.
    #[schema(value_type = Object)]
    pub job_result: Related<JobResultView>,
    /// When it was logged.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// `debug`, `info`, `success`, `warning`, `failure`, `error` or `critical`.
    #[schema(value_type = String)]
    pub log_level: LogLevel,
    /// The part of the job that logged it.
    pub grouping: String,
    /// What was logged.
    pub message: String,
    /// The object it is about, as it was shown.
    pub log_object: Option<String>,
    /// jobhooks: the object it is about, in the API.
    pub absolute_url: Option<String>,
}

impl JobLogView {
    /// Its `object_type`.
    pub const OBJECT_TYPE: &'static str = "extras.joblogentry";

    /// The `index`th entry of the log of `result` as Nautobot shows it.
    pub fn of(result: &JobResult, index: usize, entry: &LogEntry, shaper: &Shaper) -> Self {
        let id = log_id(result.id, index);
        let job_result = if shaper.depth == 0 {
            Related::Brief(shaper.brief(json!(result.id.0), JobResultView::OBJECT_TYPE, JobResultView::path(result.id)))
        } else {
            Related::Whole(Box::new(JobResultView::of(result, &shaper.nested())))
        };
        let object_url = |object: &LoggedObject| {
            shaper.url(&format!("/api/objects/{}/{}/", object.reference.content_type(), object.reference.id()))
        };
        Self {
            url: shaper.url(&format!("/api/extras/job-logs/{id}/")),
            id,
            object_type: Self::OBJECT_TYPE.to_owned(),
            display: entry.message.clone(),
            job_result,
            created: entry.time,
            log_level: entry.level,
            grouping: entry.grouping.clone(),
            message: entry.message.clone(),
            log_object: entry.object.as_ref().map(|object| object.repr.clone()),
            absolute_url: entry.object.as_ref().map(object_url),
        }
    }

    /// The model's entry this view shows (its object is kept only by name and address).
    pub fn into_entry(self) -> LogEntry {
        let object = self
            .absolute_url
            .as_deref()
            .and_then(object_of_url)
            .zip(self.log_object)
            .map(|(reference, repr)| LoggedObject { repr, reference });
        LogEntry { time: self.created, level: self.log_level, grouping: self.grouping, message: self.message, object }
    }
}

/// The object of an address `…/api/objects/{content_type}/{id}/`.
fn object_of_url(url: &str) -> Option<jobhooks_model::ObjectRef> {
    let rest = url.split("/api/objects/").nth(1)?;
    let mut parts = rest.trim_end_matches('/').splitn(2, '/');
    let content_type = jobhooks_model::ContentType::new(parts.next()?).ok()?;
    jobhooks_model::ObjectRef::new(content_type, parts.next()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_status_reads_back_and_final_ones_are_final_to_celery() {
        let statuses = [
            JobStatus::Pending,
            JobStatus::Started,
            JobStatus::Success,
            JobStatus::Failure,
            JobStatus::Retrying,
            JobStatus::DeadLettered,
        ];
        for status in statuses {
            let choice = status_choice(status);
            assert_eq!(status_of_choice(&choice), Some(status));
            let celery_final = ["SUCCESS", "FAILURE", "REVOKED"].contains(&choice.value.as_str());
            assert_eq!(celery_final, status.is_final(), "{status}");
        }
    }

    proptest! {
        #[test]
        fn log_ids_read_back(run in any::<u64>(), index in any::<usize>()) {
            prop_assert_eq!(parse_log_id(&log_id(RunId(run), index)), Some((RunId(run), index)));
        }

        #[test]
        fn any_text_names_at_most_the_entry_it_spells(text in ".{0,30}") {
            if let Some((run, index)) = parse_log_id(&text) {
                prop_assert_eq!(parse_log_id(&log_id(run, index)), Some((run, index)));
            }
        }
    }
}
