//! The receiver traits and the context a running receiver is handed.

use std::sync::Arc;

use crate::ports::ObjectReader;
use crate::session::ChangeRecorder;
use crate::{
    Action, ChangeContext, ChangeContextKind, ChangeError, ChangeId, ChangeSet, Clock, JobKind, LogEntry, LogLevel,
    LoggedObject, Object, ObjectChange, ObjectRef, RunId, StorageFailure, User, system_clock,
};

/// What a receiver returns when it fails. Any error type converts into it with `?`, and so does a
/// string: `return Err("serial is invalid".into())`.
pub type JobError = Box<dyn std::error::Error + Send + Sync>;

/// A job that runs when a matching object change commits (Nautobot's `JobHookReceiver`).
///
/// ```
/// use jobhooks_model::{async_trait, Action, JobContext, JobError, JobHookReceiver, Object, ObjectChange};
///
/// struct LogChanges;
///
/// #[async_trait]
/// impl JobHookReceiver for LogChanges {
///     async fn receive_job_hook(
///         &self,
///         ctx: &mut JobContext,
///         change: &ObjectChange,
///         action: Action,
///         changed_object: Option<Object>,
///     ) -> Result<(), JobError> {
///         ctx.log_info(format!("change: {change}"));
///         ctx.log_info(format!("action: {action}"));
///         if let Some(object) = changed_object {
///             ctx.log_info(object.repr());
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait JobHookReceiver: Send + Sync + 'static {
    /// Handles one change: `change` as recorded, its `action`, and the object as it is now (`None`
    /// after a delete). Changes the receiver makes through `ctx` never trigger job hooks.
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        action: Action,
        changed_object: Option<Object>,
    ) -> Result<(), JobError>;
}

/// A job that runs when a person presses a job button (Nautobot's `JobButtonReceiver`).
///
/// ```
/// use jobhooks_model::{async_trait, JobButtonReceiver, JobContext, JobError, Object};
///
/// struct Simple;
///
/// #[async_trait]
/// impl JobButtonReceiver for Simple {
///     async fn receive_job_button(&self, ctx: &mut JobContext, obj: Object) -> Result<(), JobError> {
///         ctx.log_info_about(&obj, "Running Job Button Receiver.");
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait JobButtonReceiver: Send + Sync + 'static {
    /// Handles a press on `obj`, as the user who pressed (see [`JobContext::user`]).
    async fn receive_job_button(&self, ctx: &mut JobContext, obj: Object) -> Result<(), JobError>;
}

/// Which run a context belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// The run's id.
    pub run_id: RunId,
    /// The job's class path.
    pub job: String,
    /// Hook or button receiver.
    pub kind: JobKind,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The change that triggered a hook run.
    pub change_id: Option<ChangeId>,
    /// The hook that queued a webhook's run (see [`JobInputs::Hook`](crate::JobInputs::Hook)).
    pub hook: Option<uuid::Uuid>,
}

/// What a running receiver is handed: who it runs as, a logger whose entries land in the job
/// result (and are mirrored as `tracing` events), and object access whose writes are recorded as
/// changes and committed together with the result when the run ends.
///
/// Writes of a job hook receiver are recorded with change context `job-hook` (and never trigger
/// job hooks); writes of other jobs with `job`. The detail is the job's class path and the user
/// the run's user. Reads see the run's own writes.
pub struct JobContext {
    run: RunInfo,
    user: User,
    logs: Vec<LogEntry>,
    session: ChangeRecorder,
    data: SharedData,
    clock: Arc<dyn Clock>,
}

/// Typed values shared with every run (a database pool, an HTTP client, configuration), which a
/// receiver reaches with [`JobContext::data`]: the dispatcher's `DispatcherConfig::data`. One value
/// per type, as apalis's `Data<T>` and axum's `Extension<T>` hold them. Cheap to clone.
///
/// ```
/// use jobhooks_model::SharedData;
/// struct Cmdb { url: String }
/// let data = SharedData::new().with(Cmdb { url: "https://cmdb.example".into() });
/// assert_eq!(data.get::<Cmdb>().unwrap().url, "https://cmdb.example");
/// assert!(data.get::<String>().is_none());
/// ```
#[derive(Clone, Default)]
pub struct SharedData(Arc<std::collections::HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>>);

impl SharedData {
    /// Nothing shared.
    pub fn new() -> Self {
        Self::default()
    }

    /// Shares `value` (replacing a value of the same type).
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.0).insert(std::any::TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// The shared value of type `T`, if one was given.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.0.get(&std::any::TypeId::of::<T>()).cloned().and_then(|value| value.downcast::<T>().ok())
    }
}

impl std::fmt::Debug for SharedData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedData({} values)", self.0.len())
    }
}

impl JobContext {
    /// The grouping of entries a receiver writes.
    pub const MAIN_GROUPING: &'static str = "main";

    /// A context for `run`, running as `user`, reading objects from `objects`.
    pub fn new(run: RunInfo, user: User, objects: Arc<dyn ObjectReader>) -> Self {
        let kind = match run.kind {
            JobKind::JobHookReceiver => ChangeContextKind::JobHook,
            JobKind::JobButtonReceiver => ChangeContextKind::Job,
        };
        let change_context = ChangeContext::new(kind, Some(user.username.clone()), run.job.clone());
        let session = ChangeRecorder::new(change_context, objects);
        Self { run, user, logs: Vec::new(), session, data: SharedData::default(), clock: system_clock() }
    }

    /// The context with log entries timed by `clock` (the dispatcher's).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The context with `data` shared with the receiver (see [`JobContext::data`]).
    pub fn with_data(mut self, data: SharedData) -> Self {
        self.data = data;
        self
    }

    /// The shared value of type `T` the dispatcher was given, if any: how a receiver reaches its
    /// database pool, HTTP client or configuration.
    pub fn data<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.data.get::<T>()
    }

    /// The time now, as the dispatcher's clock tells it.
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// The user the run runs as (for a button, the user who pressed it).
    pub fn user(&self) -> &User {
        &self.user
    }

    /// Which run this is.
    pub fn run(&self) -> &RunInfo {
        &self.run
    }

    /// The change context the run's writes are recorded in.
    pub fn change_context(&self) -> &ChangeContext {
        self.session.context()
    }

    /// Writes a log entry.
    pub fn log(&mut self, level: LogLevel, grouping: &str, message: impl Into<String>, object: Option<&Object>) {
        let entry = LogEntry {
            time: self.clock.now(),
            level,
            grouping: grouping.to_owned(),
            message: message.into(),
            object: object.map(|o| LoggedObject { repr: o.repr().to_owned(), reference: o.reference().clone() }),
        };
        mirror_to_tracing(&entry);
        self.logs.push(entry);
    }

    /// Writes a `debug` entry.
    pub fn log_debug(&mut self, message: impl Into<String>) {
        self.log(LogLevel::Debug, Self::MAIN_GROUPING, message, None);
    }

    /// Writes an `info` entry.
    pub fn log_info(&mut self, message: impl Into<String>) {
        self.log(LogLevel::Info, Self::MAIN_GROUPING, message, None);
    }

    /// Writes an `info` entry about `object`.
    pub fn log_info_about(&mut self, object: &Object, message: impl Into<String>) {
        self.log(LogLevel::Info, Self::MAIN_GROUPING, message, Some(object));
    }

    /// Writes a `success` entry.
    pub fn log_success(&mut self, message: impl Into<String>) {
        self.log(LogLevel::Success, Self::MAIN_GROUPING, message, None);
    }

    /// Writes a `warning` entry.
    pub fn log_warning(&mut self, message: impl Into<String>) {
        self.log(LogLevel::Warning, Self::MAIN_GROUPING, message, None);
    }

    /// Writes a `failure` entry: the run ends in `FAILURE` even if the receiver returns `Ok`.
    pub fn log_failure(&mut self, message: impl Into<String>) {
        self.log(LogLevel::Failure, Self::MAIN_GROUPING, message, None);
    }

    /// Writes an `error` entry.
    pub fn log_error(&mut self, message: impl Into<String>) {
        self.log(LogLevel::Error, Self::MAIN_GROUPING, message, None);
    }

    /// Writes an `error` entry about `object`.
    pub fn log_error_about(&mut self, object: &Object, message: impl Into<String>) {
        self.log(LogLevel::Error, Self::MAIN_GROUPING, message, Some(object));
    }

    /// Writes a `critical` entry.
    pub fn log_critical(&mut self, message: impl Into<String>) {
        self.log(LogLevel::Critical, Self::MAIN_GROUPING, message, None);
    }

    /// The entries written so far.
    pub fn logs(&self) -> &[LogEntry] {
        &self.logs
    }

    /// Whether a `failure` entry was written.
    pub fn has_failure(&self) -> bool {
        self.logs.iter().any(|e| e.level == LogLevel::Failure)
    }

    /// The object `reference` as this run sees it: its own writes first, then the store.
    pub async fn load(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure> {
        self.session.load(reference).await
    }

    /// Saves `object` (a create if it does not exist yet, else an update). Committed when the run
    /// ends, together with its result.
    pub async fn save(&mut self, object: Object) -> Result<(), StorageFailure> {
        self.session.save(object).await
    }

    /// Deletes the object `reference` and returns it as it was. Committed when the run ends,
    /// together with its result.
    pub async fn delete(&mut self, reference: &ObjectRef) -> Result<Object, ChangeError> {
        self.session.delete(reference).await
    }

    /// Splits the finished context into its log, its change context and its writes.
    pub fn into_parts(self) -> (Vec<LogEntry>, ChangeContext, ChangeSet) {
        let (context, changes) = self.session.into_parts();
        (self.logs, context, changes)
    }
}

fn mirror_to_tracing(entry: &LogEntry) {
    let (grouping, message) = (entry.grouping.as_str(), entry.message.as_str());
    match entry.level {
        LogLevel::Debug => tracing::debug!(grouping, level = "debug", "{message}"),
        LogLevel::Info | LogLevel::Success => tracing::info!(grouping, level = entry.level.as_str(), "{message}"),
        LogLevel::Warning => tracing::warn!(grouping, level = "warning", "{message}"),
        LogLevel::Failure | LogLevel::Error | LogLevel::Critical => {
            tracing::error!(grouping, level = entry.level.as_str(), "{message}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContentType, json};
    use std::collections::HashMap;

    struct Fixed(HashMap<ObjectRef, Object>);

    #[async_trait::async_trait]
    impl ObjectReader for Fixed {
        async fn get_object(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure> {
            Ok(self.0.get(reference).cloned())
        }
    }

    fn device(id: &str, serial: &str) -> Object {
        Object::new(
            ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap(),
            format!("dev-{id}"),
            json!({"serial": serial}),
        )
        .unwrap()
    }

    fn context(kind: JobKind) -> JobContext {
        let stored = device("1", "A");
        let run = RunInfo { run_id: RunId(1), job: "app::Job".into(), kind, attempt: 1, change_id: None, hook: None };
        JobContext::new(
            run,
            User::new("alice").unwrap(),
            Arc::new(Fixed(HashMap::from([(stored.reference().clone(), stored)]))),
        )
    }

    #[tokio::test]
    async fn writes_are_recorded_and_read_back() {
        let mut ctx = context(JobKind::JobHookReceiver);
        assert_eq!(ctx.change_context().kind, ChangeContextKind::JobHook);
        assert_eq!(ctx.change_context().detail, "app::Job");
        assert_eq!(ctx.change_context().user.as_deref(), Some("alice"));
        ctx.save(device("1", "B")).await.unwrap();
        ctx.save(device("2", "C")).await.unwrap();
        assert_eq!(ctx.load(device("1", "").reference()).await.unwrap(), Some(device("1", "B")));
        ctx.delete(device("2", "").reference()).await.unwrap();
        assert_eq!(ctx.load(device("2", "").reference()).await.unwrap(), None);
        let err = ctx.delete(device("3", "").reference()).await.unwrap_err();
        assert_eq!(err.to_string(), "object `dcim.device 3` does not exist");
        let (_, _, changes) = ctx.into_parts();
        let actions: Vec<_> = changes.changes().iter().map(|c| (c.action, c.object.id())).collect();
        assert_eq!(actions, [(Action::Update, "1"), (Action::Create, "2"), (Action::Delete, "2")]);
        assert_eq!(changes.changes()[0].pre_data.clone().map(serde_json::Value::Object), Some(json!({"serial": "A"})));
    }

    #[tokio::test]
    async fn button_runs_record_job_changes_and_logs() {
        let mut ctx = context(JobKind::JobButtonReceiver);
        assert_eq!(ctx.change_context().kind, ChangeContextKind::Job);
        ctx.log_info_about(&device("1", "A"), "hello");
        assert!(!ctx.has_failure());
        ctx.log_failure("bad");
        assert!(ctx.has_failure());
        assert_eq!(ctx.logs()[0].object.as_ref().map(|o| o.repr.as_str()), Some("dev-1"));
        assert_eq!(ctx.logs()[0].grouping, "main");
    }
}
