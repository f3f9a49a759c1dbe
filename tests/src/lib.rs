//! Cross-layer integration tests of jobhooks live in `tests/tests/`, the end-to-end benches in
//! `tests/benches/`; this crate holds the harness they share: a real sled store in a temporary directory with a real dispatcher over it, and the
//! seed scenarios of `../shared/seeds/` as the layers they need exist.

pub mod faults;

use std::sync::Arc;
use std::time::Duration;

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, CommitReceipt, QueueReader, ResultFilter};
use jobhooks_model::{
    ChangeContext, ChangeContextKind, ContentType, JobResult, Object, ObjectRef, Permission, User, Value,
};
use jobhooks_register::Registry;
use jobhooks_store::Store;

/// A store in a temporary directory and a dispatcher running over it with every receiver linked
/// into the test binary (the seed examples included).
pub struct Harness {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The store.
    pub store: Arc<Store>,
    /// The dispatcher.
    pub dispatcher: Dispatcher<Store>,
}

impl Harness {
    /// A fresh store with every linked job enabled, and a dispatcher with `config`.
    pub async fn start(config: DispatcherConfig) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(Store::open(dir.path()).expect("a fresh store opens"));
        Self::start_on(dir, store, config).await
    }

    /// A dispatcher with `config` over an existing store, enabling every linked job.
    pub async fn start_on(dir: tempfile::TempDir, store: Arc<Store>, config: DispatcherConfig) -> Self {
        jobhooks_examples::link();
        let registry = Registry::from_linked().expect("no duplicate registrations");
        registry.sync_into(&*store, jobhooks_model::SyncMode::Full).await.expect("the registry syncs");
        for job in registry.jobs() {
            store.set_job_enabled(&job.class_path(), true).await.expect("the job exists");
        }
        let dispatcher = Dispatcher::start(store.clone(), registry, config).await.expect("the dispatcher starts");
        Self { dir, store, dispatcher }
    }

    /// Commits `objects` as saves by `user` in one web change context.
    pub async fn save(&self, user: &str, objects: &[Object]) -> CommitReceipt {
        let mut session = self.store.session(ChangeContext::new(ChangeContextKind::Web, Some(user.into()), ""));
        for object in objects {
            session.save(object.clone()).await.expect("the save is recorded");
        }
        session.commit().await.expect("the commit succeeds")
    }

    /// Commits the delete of `object` by `user`.
    pub async fn delete(&self, user: &str, object: &ObjectRef) -> CommitReceipt {
        let mut session = self.store.session(ChangeContext::new(ChangeContextKind::Web, Some(user.into()), ""));
        session.delete(object).await.expect("the object exists");
        session.commit().await.expect("the commit succeeds")
    }

    /// Waits until every queued run has finished, then returns the results of `job`, oldest first.
    pub async fn results_of(&self, job: &str) -> Vec<JobResult> {
        self.dispatcher.drain().await.expect("the queue drains");
        let filter = ResultFilter::default().job(job.to_owned());
        let mut results = self.store.list_results(&filter).await.expect("results are readable");
        results.reverse();
        results
    }

    /// Stores `user`.
    pub async fn add_user(&self, user: &User) {
        self.store.put_user(user.clone()).await.expect("the user is stored");
    }

    /// Shuts the dispatcher down, letting runs finish within a second.
    pub async fn stop(self) -> (tempfile::TempDir, Arc<Store>) {
        self.dispatcher.shutdown(Duration::from_secs(1)).await;
        (self.dir, self.store)
    }
}

/// Everything `tracing` prints while it is installed, as text.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// A `fmt` subscriber (no colours) that writes into this capture.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        let writer = self.clone();
        tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish()
    }

    /// What was printed so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The class path of a receiver type defined in `module`.
pub fn class_path(module: &str, type_name: &str) -> String {
    format!("{module}::{type_name}")
}

/// An object of `content_type` with `id`, text `repr` and `data`.
pub fn object(content_type: &str, id: &str, repr: &str, data: Value) -> Object {
    let reference =
        ObjectRef::new(ContentType::new(content_type).expect("a valid content type"), id).expect("a valid id");
    Object::new(reference, repr, data).expect("the data is a JSON object")
}

/// A user allowed to run every job, with the extra permissions `perms`.
pub fn runner(name: &str, perms: &[&str]) -> User {
    let mut user = User::new(name).expect("a valid username").with_permission(Permission::new("extras.run_job"));
    for perm in perms {
        user = user.with_permission(Permission::new(*perm));
    }
    user
}

/// The log of `result` as `level message` lines.
pub fn log_lines(result: &JobResult) -> Vec<String> {
    result.logs.iter().map(ToString::to_string).collect()
}

/// The README's Rust example, compiled as a doc test so the front page cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The job hooks guide's examples, run as doc tests.
#[doc = include_str!("../../docs/job-hooks.md")]
#[cfg(doctest)]
pub struct JobHooksGuide;

/// The job buttons guide's examples, run as doc tests.
#[doc = include_str!("../../docs/job-buttons.md")]
#[cfg(doctest)]
pub struct JobButtonsGuide;

/// The registration guide's examples, run as doc tests.
#[doc = include_str!("../../docs/registration.md")]
#[cfg(doctest)]
pub struct RegistrationGuide;

/// The operations guide's examples, run as doc tests.
#[doc = include_str!("../../docs/operations.md")]
#[cfg(doctest)]
pub struct OperationsGuide;

/// A `/proc/self/status` field of this process in megabytes (`VmRSS:`, `VmHWM:`); 0 where the
/// field cannot be read.
///
/// ```
/// assert!(jobhooks_tests::memory_mb("VmRSS:") >= 0.0);
/// ```
pub fn memory_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}
