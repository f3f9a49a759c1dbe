//! The jobhooks dispatcher: runs job hook and job button receivers from the durable queue.
//!
//! A [`Dispatcher`] takes a backend through the model's storage ports ([`Storage`]), the
//! [`Registry`] of linked receivers and a [`DispatcherConfig`]. At start it syncs the registry into
//! the job records and returns lapsed leases to pending; then its workers lease runs, call the
//! receivers and complete the runs, waking on the store's work signal rather than polling, so a
//! committed change reaches its receiver within milliseconds.
//!
//! For each run: if its job is disabled now, the run fails with `Job {job} is not enabled to be
//! run!`; otherwise the receiver is built and called with a [`JobContext`](jobhooks_model::JobContext) (the run's user, a
//! logger, object access). A hook receiver gets `(change, action, changed_object)`, with the object
//! as it is now (`None` after a delete); a button receiver gets the object it was pressed on. The
//! run's writes, its result and its queue entry's completion commit together. An `Err`, a panic (the
//! worker survives it), a timeout or a `failure`-level entry gives `FAILURE`; errors, panics and
//! timeouts are retried per the job's [`RetryPolicy`] and dead-lettered when it is exhausted.
//!
//! ```
//! use std::sync::Arc;
//! use jobhooks_dispatch::prelude::*;
//! use jobhooks_store::Store;
//!
//! #[derive(Default)]
//! struct Audit;
//!
//! #[async_trait]
//! impl JobHookReceiver for Audit {
//!     async fn receive_job_hook(
//!         &self, ctx: &mut JobContext, change: &ObjectChange, _: Action, _: Option<Object>,
//!     ) -> Result<(), JobError> {
//!         ctx.log_info(format!("changed: {change}"));
//!         Ok(())
//!     }
//! }
//!
//! register_job_hook_receiver!(Audit);
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let store = Arc::new(Store::open(dir.path())?);
//! let dispatcher = Dispatcher::start(store.clone(), Registry::from_linked()?, DispatcherConfig::default()).await?;
//! store.set_job_enabled(Audit::CLASS_PATH, true).await?;
//! let devices = vec![ContentType::new("dcim.device")?];
//! store.create_hook(JobHook::new("audit", devices, Audit::CLASS_PATH).on([Action::Create])).await?;
//!
//! let mut session = store.session(ChangeContext::web("alice"));
//! let device = ObjectRef::new(ContentType::new("dcim.device")?, "1")?;
//! session.save(Object::new(device, "sw1", json!({"name": "sw1"}))?).await?;
//! let receipt = session.commit().await?;
//! dispatcher.drain().await?; // the hook's run has finished
//! let result = store.get_result(receipt.runs[0]).await?.expect("the run's result");
//! assert_eq!(result.status, JobStatus::Success);
//! let report = dispatcher.shutdown(std::time::Duration::from_secs(5)).await;
//! assert_eq!(report.abandoned, 0);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! Invariant: depends on the model's ports and the registry, never on a storage backend; the sled
//! store appears only in tests and examples.

mod buttons;
mod metrics;
mod retry;
mod run;
mod webhook_config;
#[cfg(feature = "webhooks")]
mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobhooks_model::ports::{Lease, LeasedBatch, QueueDepth, Retention, Storage, SyncMode, SyncReport};
use jobhooks_model::{
    Clock, JobStatus, Object, ObjectRef, RunId, SharedData, StoreError, User, error_chain, system_clock,
};
use jobhooks_register::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::{AbortHandle, JoinSet};

pub use buttons::{PressError, RenderedButton, TEMPLATE_FUEL, buttons_for, press, render_button_text, run_job_on};
pub use metrics::{BUCKETS, Histogram, JobMetrics};
pub use retry::{AfterFailure, RetryPolicy};
pub use webhook_config::WebhookConfig;
#[cfg(feature = "webhooks")]
pub use webhooks::WebhookSender;

/// How a dispatcher runs. Start from [`Default`] and change what you need, with the setters or by
/// assigning fields; new settings may be added in minor releases.
///
/// ```
/// use std::time::Duration;
/// use jobhooks_dispatch::DispatcherConfig;
///
/// let config = DispatcherConfig::default().workers(8).lease(Duration::from_secs(60));
/// assert_eq!((config.workers, config.lease_batch), (8, 32));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DispatcherConfig {
    /// How many runs at once, in all.
    pub workers: usize,
    /// How many runs a worker claims at once; it runs them one after another and records their
    /// outcomes together, sharing one store write and one flush. A run is started only while its
    /// claim still covers `run_timeout` (except the first of a batch): the rest of the batch is
    /// given back, so that no run can be taken over by another worker while it runs.
    pub lease_batch: usize,
    /// How many runs of one job at once (`None`: no limit beyond `workers`).
    pub per_job_limit: Option<usize>,
    /// How long a worker's claim on a run lasts before another worker (or process) may take it over.
    pub lease: Duration,
    /// How long a receiver may run before the attempt fails with a timeout.
    pub run_timeout: Duration,
    /// The retry policy of every job without its own.
    pub retry: RetryPolicy,
    /// Retry policies by job class path.
    pub job_retry: HashMap<String, RetryPolicy>,
    /// The longest an idle worker sleeps without a work signal (a safety net for runs scheduled by
    /// other processes; commits in this process wake workers at once).
    pub idle_wakeup: Duration,
    /// How long finished results and old changes are kept (default: forever).
    pub retention: Retention,
    /// How often to prune per `retention`.
    pub prune_every: Duration,
    /// What the dispatcher asks for the time: claims, their deadlines, retries and pruning.
    pub clock: Arc<dyn Clock>,
    /// How `start` syncs the registry into the job records. [`SyncMode::Full`] (the default) is
    /// for an application's own dispatcher, which links every receiver: jobs it does not link are
    /// marked not installed and their hooks and buttons disabled. A program that links only some
    /// receivers (the stock `jobhooks` binary) uses [`SyncMode::Additive`].
    pub job_sync: SyncMode,
    /// Typed values every run can reach with `JobContext::data` (a database pool, an HTTP
    /// client, configuration).
    pub data: SharedData,
    /// How outbound webhooks are sent: their allow-list and timeout.
    pub webhooks: WebhookConfig,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            // Chosen by measurement (docs/benchmarks.md). With the default lease and timeout, at
            // most five runs of a batch can time out back to back before the rest is given back.
            lease_batch: 32,
            per_job_limit: None,
            lease: Duration::from_secs(300),
            run_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            job_retry: HashMap::new(),
            idle_wakeup: Duration::from_secs(1),
            retention: Retention::default(),
            prune_every: Duration::from_secs(60),
            clock: system_clock(),
            job_sync: SyncMode::Full,
            data: SharedData::default(),
            webhooks: WebhookConfig::default(),
        }
    }
}

/// Chainable setters, one per field, each documented by its field.
macro_rules! setters {
    ($owner:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        $(
            #[doc = concat!("Sets [`", stringify!($owner), "::", stringify!($field), "`].")]
            #[must_use]
            pub fn $field(mut self, $field: $ty) -> Self {
                self.$field = $field;
                self
            }
        )*
    };
}

impl DispatcherConfig {
    setters!(DispatcherConfig {
        workers: usize,
        lease_batch: usize,
        per_job_limit: Option<usize>,
        lease: Duration,
        run_timeout: Duration,
        retry: RetryPolicy,
        job_retry: HashMap<String, RetryPolicy>,
        idle_wakeup: Duration,
        retention: Retention,
        prune_every: Duration,
        clock: Arc<dyn Clock>,
        job_sync: SyncMode,
        data: SharedData,
        webhooks: WebhookConfig,
    });

    /// The retry policy of `job`.
    pub fn retry_policy(&self, job: &str) -> RetryPolicy {
        self.job_retry.get(job).copied().unwrap_or(self.retry)
    }
}

/// What a caller of the dispatcher and a store handles: one error to `?`.
///
/// Every port error of the model ([`StoreError`] and the per-port errors that convert into it),
/// the registry's and a button press's convert into it, keeping their sources.
///
/// ```
/// use std::sync::Arc;
/// use jobhooks_dispatch::prelude::*;
///
/// async fn enable_and_wait<S: Storage + 'static>(dispatcher: &Dispatcher<S>, job: &str) -> Result<(), Error> {
///     dispatcher.store().set_job_enabled(job, true).await?; // CatalogError
///     dispatcher.drain().await?; // StoreError
///     Ok(())
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A dispatcher that syncs with [`SyncMode::Full`] was given an empty registry: it would mark
    /// every job not installed and disable every hook and button.
    #[error(
        "refusing to start: the registry links no receiver, and a full job sync would mark every job not installed and disable every hook and button. If your receivers live in their own crate, call its `link()` before `Registry::from_linked()` (docs/registration.md, \"The linking pitfall\"); if this program links no receiver on purpose, start it with `DispatcherConfig::job_sync(SyncMode::Additive)`"
    )]
    EmptyRegistry,
    /// A storage port failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry could not be built.
    #[error(transparent)]
    Registry(#[from] jobhooks_register::RegistryError),
    /// A button press was refused.
    #[error(transparent)]
    Press(#[from] PressError),
}

macro_rules! into_store_error {
    ($($port:ty),*) => {$(
        impl From<$port> for Error {
            fn from(error: $port) -> Self {
                Error::Store(error.into())
            }
        }
    )*};
}

into_store_error!(
    jobhooks_model::CatalogError,
    jobhooks_model::ChangeError,
    jobhooks_model::QueueError,
    jobhooks_model::MaintenanceError,
    jobhooks_model::StorageFailure,
    jobhooks_model::ValidationErrors,
    jobhooks_model::ModelError
);

/// What a program that runs a dispatcher needs, in one `use`: the model's prelude, the
/// dispatcher and its configuration, the registry and its macros, and [`Error`].
pub mod prelude {
    pub use jobhooks_model::prelude::*;
    pub use jobhooks_register::{
        JobClass, JobMeta, Registry, job_class, register_job_button_receiver, register_job_hook_receiver,
    };

    pub use jobhooks_model::ports::SyncMode;

    pub use crate::{Dispatcher, DispatcherConfig, Error, RetryPolicy};
}

/// Logs a warning for a sync that uninstalled jobs: which, and what it disabled with them.
fn warn_of_what_the_sync_disabled(report: &SyncReport) {
    if report.uninstalled.is_empty() && report.disabled_hooks.is_empty() && report.disabled_buttons.is_empty() {
        return;
    }
    tracing::warn!(
        jobs = ?report.uninstalled,
        hooks = ?report.disabled_hooks,
        buttons = ?report.disabled_buttons,
        "jobs not linked into this program were marked not installed: {} ({} hooks and {} buttons disabled: {}). \
         If they should be linked, call the `link()` of the crate that registers them and restart; then \
         `jobhooks jobs restore` (or POST /api/extras/jobs/restore/) enables again what was disabled",
        report.uninstalled.join(", "),
        report.disabled_hooks.len(),
        report.disabled_buttons.len(),
        report.disabled_hooks.iter().chain(&report.disabled_buttons).cloned().collect::<Vec<_>>().join(", "),
    );
}

/// Counts of a dispatcher's runs by outcome, and the queue's depth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The queue, as the store reports it.
    pub queue: QueueDepth,
    /// Runs started by this dispatcher and still running.
    pub in_flight: u64,
    /// Runs that ended in `SUCCESS`.
    pub succeeded: u64,
    /// Runs that ended in `FAILURE`.
    pub failed: u64,
    /// Failed attempts scheduled for retry.
    pub retried: u64,
    /// Runs dead-lettered.
    pub dead_lettered: u64,
    /// Outcomes discarded because the lease had been taken over.
    pub lease_lost: u64,
    /// Leased runs given back unstarted, because their claim would not have covered a run (see
    /// [`DispatcherConfig::lease_batch`]).
    #[serde(default)]
    pub given_back: u64,
}

#[derive(Default)]
struct Counters {
    in_flight: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    lease_lost: AtomicU64,
    given_back: AtomicU64,
}

/// What the workers share.
pub(crate) struct Shared<S> {
    store: Arc<S>,
    registry: Registry,
    config: DispatcherConfig,
    counters: Counters,
    /// Outcomes, durations and start latencies by job.
    metrics: metrics::RunMetrics,
    job_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Runs in flight, so that a shutdown past its deadline can give their leases back.
    in_flight: Mutex<HashMap<RunId, (Lease, Option<AbortHandle>)>>,
    /// Signalled when a run's bookkeeping is done.
    progress: Notify,
    /// Held by the one idle worker that looks for work; the others wait their turn, so that a
    /// wake-up costs one claim, not one per idle worker.
    lookout: Semaphore,
    /// The work generation before the latest claim that took less than a full batch (`u64::MAX`
    /// before any): while the generation has not moved past it, the queue has nothing more for a
    /// claim to find, and the next lookout waits instead of claiming.
    exhausted_at: AtomicU64,
}

/// Reads a running dispatcher's counts and state ([`Dispatcher::monitor`]).
pub struct Monitor<S> {
    shared: Arc<Shared<S>>,
    stopped: watch::Receiver<bool>,
}

impl<S> Clone for Monitor<S> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), stopped: self.stopped.clone() }
    }
}

impl<S: Storage + 'static> Monitor<S> {
    /// The runs' counts so far and the queue's depth.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let c = &self.shared.counters;
        Ok(Stats {
            queue: self.shared.store.depth().await?,
            in_flight: c.in_flight.load(Ordering::SeqCst),
            succeeded: c.succeeded.load(Ordering::SeqCst),
            failed: c.failed.load(Ordering::SeqCst),
            retried: c.retried.load(Ordering::SeqCst),
            dead_lettered: c.dead_lettered.load(Ordering::SeqCst),
            lease_lost: c.lease_lost.load(Ordering::SeqCst),
            given_back: c.given_back.load(Ordering::SeqCst),
        })
    }

    /// Each job's runs so far, by job class path: outcomes, durations, and the latency from
    /// commit (or press) to first start.
    pub fn jobs(&self) -> BTreeMap<String, JobMetrics> {
        self.shared.metrics.snapshot()
    }

    /// Whether the dispatcher is running: started, and not told to stop.
    pub fn is_running(&self) -> bool {
        !*self.stopped.borrow()
    }
}

/// What a shutdown left behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Runs still running at the deadline: stopped, and given back to the queue to run again.
    pub abandoned: usize,
}

/// Runs receivers from the queue until shut down.
pub struct Dispatcher<S> {
    shared: Arc<Shared<S>>,
    stop: watch::Sender<bool>,
    workers: JoinSet<()>,
    sync_report: SyncReport,
}

impl<S: Storage + 'static> Dispatcher<S> {
    /// Syncs the registry into the job records (per [`DispatcherConfig::job_sync`]), returns
    /// lapsed leases to pending, and starts the workers.
    ///
    /// Refuses an empty registry with [`SyncMode::Full`] ([`Error::EmptyRegistry`]): that is
    /// almost always a receivers crate the linker dropped. A full sync that marks jobs not
    /// installed logs a warning naming them and the hooks and buttons it disabled;
    /// [`Catalog::restore_jobs`](jobhooks_model::ports::Catalog::restore_jobs) (`jobhooks jobs
    /// restore`) enables them again once they are linked again.
    pub async fn start(store: Arc<S>, registry: Registry, mut config: DispatcherConfig) -> Result<Self, Error> {
        if registry.is_empty() && config.job_sync == SyncMode::Full {
            return Err(Error::EmptyRegistry);
        }
        // With the `webhooks` feature every dispatcher sends webhooks: the built-in job is
        // registered, and reaches the hooks and its configuration through the runs' shared data.
        #[cfg(feature = "webhooks")]
        let registry = {
            let registry = if registry.get(jobhooks_model::WEBHOOK_JOB).is_some() {
                registry
            } else {
                registry.with_hook_receiver(webhooks::WebhookSender, webhooks::WEBHOOK_META)?
            };
            let hooks: Arc<dyn webhooks::HookLookup> = store.clone();
            config.data = config.data.clone().with(webhooks::WebhookSupport::new(hooks, config.webhooks.clone()));
            registry
        };
        #[cfg(not(feature = "webhooks"))]
        let _ = &mut config;
        let sync_report = registry.sync_into(&*store, config.job_sync).await?;
        warn_of_what_the_sync_disabled(&sync_report);
        let released = store.release_expired(config.clock.now()).await?;
        if released > 0 {
            tracing::info!(released, "returned lapsed leases to the queue");
        }
        let shared = Arc::new(Shared {
            store,
            registry,
            counters: Counters::default(),
            metrics: metrics::RunMetrics::default(),
            job_slots: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            progress: Notify::new(),
            lookout: Semaphore::new(1),
            exhausted_at: AtomicU64::new(u64::MAX),
            config,
        });
        let (stop, stopped) = watch::channel(false);
        let mut workers = JoinSet::new();
        for _ in 0..shared.config.workers.max(1) {
            workers.spawn(worker(shared.clone(), stopped.clone()));
        }
        if shared.config.retention != Retention::default() {
            workers.spawn(pruner(shared.clone(), stopped.clone()));
        }
        Ok(Self { shared, stop, workers, sync_report })
    }

    /// What syncing the registry changed at start.
    pub fn sync_report(&self) -> &SyncReport {
        &self.sync_report
    }

    /// The store the dispatcher runs from.
    pub fn store(&self) -> &Arc<S> {
        &self.shared.store
    }

    /// Counts of runs by outcome, and the queue's depth.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        self.monitor().stats().await
    }

    /// A handle that reads this dispatcher's counts and state from elsewhere (a metrics or
    /// readiness endpoint) while it runs, and after it stopped.
    pub fn monitor(&self) -> Monitor<S> {
        Monitor { shared: self.shared.clone(), stopped: self.stop.subscribe() }
    }

    /// Waits until no run is pending, leased or in flight: everything queued so far (and
    /// everything it queued in turn) has finished, been dead-lettered, or failed, and the stats
    /// count it.
    pub async fn drain(&self) -> Result<(), StoreError> {
        loop {
            let progress = self.shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            let seen = self.shared.store.work_generation();
            // Runs in flight here mean not drained yet; the queue is read only when none are.
            if self.shared.counters.in_flight.load(Ordering::SeqCst) == 0 {
                let depth = self.shared.store.depth().await?;
                let in_flight = self.shared.counters.in_flight.load(Ordering::SeqCst);
                if depth.pending == 0 && depth.leased == 0 && in_flight == 0 {
                    return Ok(());
                }
            }
            tokio::select! {
                () = progress => {}
                () = self.shared.store.wait_for_work(seen, self.shared.config.idle_wakeup) => {}
            }
        }
    }

    /// The buttons `object` shows `user` (see [`buttons_for`]).
    pub async fn buttons_for(&self, object: &Object, user: &User) -> Result<Vec<RenderedButton>, StoreError> {
        buttons_for(&*self.shared.store, object, user).await
    }

    /// Presses the button `button` on `object` as `user` (see [`press`]).
    pub async fn press(&self, user: &User, button: &str, object: &ObjectRef) -> Result<RunId, PressError> {
        press(&*self.shared.store, user, button, object).await
    }

    /// Stops taking work, lets runs in flight finish until `deadline`, then stops the rest and
    /// gives their leases back so they run again after a restart.
    pub async fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        let _ = self.stop.send(true);
        let finished =
            tokio::time::timeout(deadline, async { while self.workers.join_next().await.is_some() {} }).await;
        if finished.is_ok() {
            return ShutdownReport::default();
        }
        self.workers.abort_all();
        while self.workers.join_next().await.is_some() {}
        let abandoned: Vec<(Lease, Option<AbortHandle>)> = {
            let mut in_flight = self.shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            in_flight.drain().map(|(_, v)| v).collect()
        };
        for (lease, task) in &abandoned {
            if let Some(task) = task {
                task.abort();
            }
            if let Err(error) = self.shared.store.release(lease).await {
                tracing::warn!(run = %lease.run, error = %error_chain(&error), "could not give an abandoned run back; it runs again when its lease lapses");
            }
        }
        ShutdownReport { abandoned: abandoned.len() }
    }
}

/// One worker. Idle workers take turns as the lookout: only the lookout claims and waits for work,
/// and it hands the turn on as soon as it has claimed some, so that at a trickle of work one
/// worker wakes per signal and under load every worker claims one batch after another.
async fn worker<S: Storage + 'static>(shared: Arc<Shared<S>>, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        let lookout = tokio::select! {
            lookout = shared.lookout.acquire() => lookout.expect("the lookout semaphore is never closed"),
            _ = stopped.changed() => continue,
        };
        let seen = shared.store.work_generation();
        if shared.exhausted_at.load(Ordering::SeqCst) == seen {
            // The last claim emptied the queue and nothing was signalled since.
            tokio::select! {
                () = shared.store.wait_for_work(seen, shared.config.idle_wakeup) => {}
                _ = stopped.changed() => {}
            }
            shared.exhausted_at.store(u64::MAX, Ordering::SeqCst);
            continue;
        }
        let max = shared.config.lease_batch.max(1);
        match shared.store.lease_batch_with_reads(shared.config.clock.now(), shared.config.lease, max).await {
            Ok(batch) if !batch.runs.is_empty() => {
                let exhausted = if batch.runs.len() < max { seen } else { u64::MAX };
                shared.exhausted_at.store(exhausted, Ordering::SeqCst);
                drop(lookout);
                shared.run_batch(batch).await;
            }
            Ok(_) => {
                tokio::select! {
                    () = shared.store.wait_for_work(seen, shared.config.idle_wakeup) => {}
                    _ = stopped.changed() => {}
                }
            }
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "could not lease a run");
                tokio::select! {
                    () = shared.store.wait_for_work(u64::MAX, shared.config.idle_wakeup) => {}
                    _ = stopped.changed() => {}
                }
            }
        }
    }
}

/// Prunes per the retention policy on a fixed schedule (every `prune_every`, the first one
/// `prune_every` after start), until stopped. A pass that overruns delays the next tick rather
/// than bunching passes together.
async fn pruner<S: Storage + 'static>(shared: Arc<Shared<S>>, mut stopped: watch::Receiver<bool>) {
    let period = shared.config.prune_every.max(Duration::from_millis(1));
    let mut schedule = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    schedule.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = schedule.tick() => {}
            _ = stopped.changed() => return,
        }
        match shared.store.prune(&shared.config.retention, shared.config.clock.now()).await {
            Ok(report) => tracing::debug!(results = report.results, changes = report.changes, "pruned"),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "pruning failed; it is tried again at the next interval")
            }
        }
    }
}

impl<S: Storage + 'static> Shared<S> {
    fn job_slot(&self, job: &str) -> Option<Arc<Semaphore>> {
        let limit = self.config.per_job_limit?;
        let mut slots = self.job_slots.lock().unwrap_or_else(|p| p.into_inner());
        Some(slots.entry(job.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(limit.max(1)))).clone())
    }

    /// Runs the leased runs of one batch one after another, then records their completions
    /// together: one store write and one flush for the batch.
    async fn run_batch(&self, leased: LeasedBatch) {
        let LeasedBatch { runs: batch, reads: claim_reads, .. } = leased;
        let size = batch.len() as u64;
        self.counters.in_flight.fetch_add(size, Ordering::SeqCst);
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            for (lease, _) in &batch {
                in_flight.insert(lease.run, (lease.clone(), None));
            }
        }
        let leases: Vec<Lease> = batch.iter().map(|(lease, _)| lease.clone()).collect();
        let mut completions = Vec::with_capacity(batch.len());
        let changes = batch.iter().filter_map(|(_, result)| result.change_id());
        let mut reads =
            run::BatchReads::for_changes(changes, self.store.reads_changes_together()).with_claim_reads(claim_reads);
        let mut runs = batch.into_iter().enumerate();
        while let Some((position, (lease, result))) = runs.next() {
            // The job's permit first, then the claim: waiting for a permit takes time, and a run
            // must not start on a claim that lapsed meanwhile (another worker may have taken it).
            let slot = self.job_slot(&result.job);
            let _permit = match &slot {
                Some(slot) => slot.acquire().await.ok(),
                None => None,
            };
            if !self.may_start(position, &lease) {
                let unstarted: Vec<Lease> = std::iter::once(lease).chain(runs.map(|(_, (lease, _))| lease)).collect();
                self.counters.given_back.fetch_add(unstarted.len() as u64, Ordering::SeqCst);
                for lease in &unstarted {
                    self.give_back(lease, "its claim would lapse before a run could finish").await;
                }
                break;
            }
            let job = result.job.clone();
            if result.attempts <= 1 {
                let waited = self.config.clock.now() - result.created;
                self.metrics.started(&job, waited.try_into().unwrap_or(Duration::ZERO));
            }
            let began = std::time::Instant::now();
            match self.execute(&lease, result, &mut reads).await {
                Ok(completion) => completions.push((job, began.elapsed(), completion)),
                Err(error) => {
                    tracing::error!(run = %lease.run, error = %error_chain(&error), "could not prepare the run");
                    self.give_back(&lease, "the store failed while preparing it").await;
                }
            }
        }
        self.record(completions).await;
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            for lease in &leases {
                in_flight.remove(&lease.run);
            }
        }
        self.counters.in_flight.fetch_sub(size, Ordering::SeqCst);
        self.progress.notify_waiters();
    }

    /// Whether the run of `lease`, at `position` in its batch, may start now. The first of a
    /// batch starts while its claim holds (it was just taken, even when the lease is shorter than
    /// `run_timeout`); a later one only while its claim still covers a run that takes as long as
    /// it may.
    fn may_start(&self, position: usize, lease: &Lease) -> bool {
        let now = self.config.clock.now();
        if position == 0 { now < lease.deadline } else { now + self.config.run_timeout <= lease.deadline }
    }

    /// Gives a leased run back to the queue unstarted, to run again; `why` is logged.
    async fn give_back(&self, lease: &Lease, why: &str) {
        tracing::debug!(run = %lease.run, why, "giving the run back");
        if let Err(error) = self.store.give_back(lease).await {
            tracing::error!(run = %lease.run, error = %error_chain(&error), "could not give the run back; it runs again when its claim lapses");
        }
    }

    /// Records completions and counts their outcomes.
    async fn record(&self, completions: Vec<(String, Duration, jobhooks_model::ports::Completion)>) {
        if completions.is_empty() {
            return;
        }
        let (runs, completions): (Vec<_>, Vec<_>) = completions
            .into_iter()
            .map(|(job, took, completion)| ((completion.lease.run, completion.outcome.status(), job, took), completion))
            .unzip();
        let outcomes = match self.store.complete_batch(completions).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), runs = runs.len(), "could not record the outcomes; the runs run again when their leases lapse");
                return;
            }
        };
        for ((run, status, job, took), outcome) in runs.into_iter().zip(outcomes) {
            match outcome {
                Ok(_) => {
                    self.metrics.ended(&job, took, status);
                    let counter = match status {
                        JobStatus::Success => &self.counters.succeeded,
                        JobStatus::Retrying => &self.counters.retried,
                        JobStatus::DeadLettered => &self.counters.dead_lettered,
                        _ => &self.counters.failed,
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                Err(jobhooks_model::QueueError::LeaseLost { .. }) => {
                    self.counters.lease_lost.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(%run, "the lease lapsed and the run was taken over; this outcome is discarded");
                }
                Err(error) => {
                    tracing::error!(%run, error = %error_chain(&error), "could not record the run's outcome; it runs again when its lease lapses");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
