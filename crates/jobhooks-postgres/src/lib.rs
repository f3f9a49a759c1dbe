//! The jobhooks store on PostgreSQL (14 or newer): every storage port of `jobhooks-model`, shared
//! by many dispatcher processes on many machines.
//!
//! - **One transaction per operation.** A commit writes its changes, the objects and one queued run
//!   per matching hook in one transaction (the transactional outbox). An application that keeps
//!   its objects in the same database records its changes in its *own* transaction with
//!   [`PgStore::commit_in`], so its write and the hook runs commit or roll back together.
//! - **Group commit.** Concurrent commits on one store share a transaction, written with the same
//!   few statements whatever their number; see [`PgConfig::group_writers`].
//! - **Claims across processes.** Runs are claimed with `FOR UPDATE SKIP LOCKED` and a lease with a
//!   deadline; a lapsed lease is taken over by any process. A run of an object never starts while
//!   an earlier run of the same object is unfinished, whichever process holds it.
//! - **Wake-ups.** Work made ready wakes this process's workers at once and is announced to the
//!   others with `NOTIFY jobhooks_work`, sent after the commit, never inside its transaction (a
//!   `NOTIFY` inside a transaction takes a database-wide lock until the commit is on disk, which
//!   would put every commit in single file). A group commit sends it on its own connection right
//!   after its `COMMIT`, in the same round trip; other writes (and a group whose notification
//!   failed) ask one task per store, which folds the requests of concurrent writes into one
//!   notification. A store whose workers wait for work (a dispatcher's, a server's) keeps one
//!   connection that listens and wakes them within milliseconds, reconnecting when it drops; it is
//!   opened by the first wait, so a store that only commits is never woken by other processes'
//!   work. A notification missed while reconnecting, or not sent because the process died after
//!   its commit, is covered by the dispatcher's bounded waits.
//! - **Schema migrations** are embedded and applied at open under an advisory lock.
//!
//! The rules are the model's: runs move by `transition`, hooks match by `match_hooks`, job sync
//! follows `plan_job_sync`, pruning `Retention::may_prune_*`. The store passes the contract kit
//! (`tests/conformance.rs`).
//!
//! Invariant: this is the only crate that knows PostgreSQL; no `tokio_postgres` type appears in
//! its public API but the transaction [`PgStore::commit_in`] takes.

mod catalog;
mod changes;
pub(crate) mod cluster;
mod db;
mod group;
mod lines;
mod logins;
mod queue;
mod records;
mod restore;
mod schema;
pub mod testing;

use std::future::poll_fn;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use jobhooks_model::{BackendError, ChangeContext, ChangeSession, Clock, OffsetDateTime, StorageFailure, system_clock};
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

pub use schema::MIGRATIONS;

/// The channel commits notify when they queue runs.
const WORK_CHANNEL: &str = "jobhooks_work";

/// How to connect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgConfig {
    /// Connections in the pool (default 16).
    pub pool_size: usize,
    /// How many group commits are written at once (default 2). Commits made while all of them
    /// are busy wait for the next group and go in it together, in one transaction; a group the
    /// database refuses is written again commit by commit, so that a refused commit fails alone.
    pub group_writers: usize,
    /// What the store asks for the time: change times, when runs were queued and finished.
    pub clock: Arc<dyn Clock>,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self { pool_size: 16, group_writers: 2, clock: system_clock() }
    }
}

impl PgConfig {
    /// Sets [`PgConfig::pool_size`].
    #[must_use]
    pub fn pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// Sets [`PgConfig::group_writers`].
    #[must_use]
    pub fn group_writers(mut self, group_writers: usize) -> Self {
        self.group_writers = group_writers;
        self
    }

    /// Sets [`PgConfig::clock`].
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// Why a store could not be opened. Nothing was written, or the schema is as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL is not a PostgreSQL connection URL.
    #[error("invalid PostgreSQL URL: {reason}; expected postgres://user@host:port/dbname")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached, or refused the connection.
    #[error("cannot connect to PostgreSQL")]
    Connect {
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A migration failed; it was rolled back.
    #[error("migrating the schema to version {version} failed; the schema is as it was")]
    Migration {
        /// The version the migration would have reached (0 for the bookkeeping around them).
        version: usize,
        /// The server's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The schema was migrated by a newer jobhooks.
    #[error(
        "the database has schema version {found}, but this jobhooks knows versions up to {known}; upgrade jobhooks"
    )]
    SchemaTooNew {
        /// The version found.
        found: usize,
        /// The newest version this build knows.
        known: usize,
    },
}

impl OpenError {
    fn migration(source: tokio_postgres::Error) -> Self {
        OpenError::Migration { version: 0, source: Box::new(source) }
    }
}

/// The store. Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    clock: Arc<dyn Clock>,
    /// The latest change time handed out by this handle, so that its change times never go back.
    last_time: Mutex<OffsetDateTime>,
    work: Notify,
    /// Grows whenever runs may have become ready; see `JobQueue::work_generation`.
    generation: AtomicU64,
    /// Asks the announcer to tell the other processes that work is ready; requests made while it
    /// is busy fold into its next announcement.
    announce: Arc<Notify>,
    /// Commits waiting to be written together (`group.rs`).
    groups: group::Groups,
    /// Where the listening connection connects; see [`PgStore::listen_for_work`].
    listen_config: tokio_postgres::Config,
    /// Whether the listener was started.
    listening: AtomicBool,
    /// The listener and the announcer, stopped when the store is dropped.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).drain(..) {
            task.abort();
        }
    }
}

/// A PostgreSQL failure as the ports report it: what the store was doing, with the server's error
/// as the source.
pub(crate) fn db_error(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageFailure {
    move |error| StorageFailure::Backend(BackendError::new(context, error))
}

/// Commits `transaction` when `outcome` is `Ok`; otherwise rolls it back and waits for the
/// rollback, so that the rows it locked are free when the caller sees the error (a dropped
/// transaction is rolled back later, meanwhile its rows stay locked and claims skip them).
pub(crate) async fn finish<T, E: From<StorageFailure>>(
    transaction: deadpool_postgres::Transaction<'_>,
    outcome: Result<T, E>,
    context: &'static str,
) -> Result<T, E> {
    match outcome {
        Ok(value) => {
            transaction.commit().await.map_err(db_error(context))?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = transaction.rollback().await {
                tracing::debug!(%rollback, "cannot roll a failed transaction back; the connection drops it");
            }
            Err(error)
        }
    }
}

impl PgStore {
    /// Connects to `url` (libpq's URL syntax, `postgres://user@host:port/dbname`) with the default
    /// configuration and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::connect_with(url, PgConfig::default()).await
    }

    /// Connects to `url` with `config` and brings the schema up to date. Must be called within a
    /// tokio runtime. The store listens for other processes' work notifications from the first
    /// time a worker waits for work.
    pub async fn connect_with(url: &str, config: PgConfig) -> Result<Self, OpenError> {
        let pg_config =
            tokio_postgres::Config::from_str(url).map_err(|e| OpenError::InvalidUrl { reason: e.to_string() })?;
        let manager = Manager::from_config(
            with_index_probes(pg_config.clone()),
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .build()
            .map_err(|e| OpenError::InvalidUrl { reason: e.to_string() })?;
        let mut client = pool.get().await.map_err(|e| OpenError::Connect { source: Box::new(e) })?;
        schema::migrate(&mut client).await?;
        drop(client);
        let inner = Arc::new(Inner {
            pool,
            clock: config.clock,
            last_time: Mutex::new(OffsetDateTime::UNIX_EPOCH),
            work: Notify::new(),
            generation: AtomicU64::new(0),
            announce: Arc::new(Notify::new()),
            groups: group::Groups::new(config.group_writers),
            listen_config: pg_config,
            listening: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let announcer = tokio::spawn(announce(inner.pool.clone(), inner.announce.clone()));
        inner.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(announcer);
        Ok(Self { inner })
    }

    /// Starts listening for the other processes' work notifications, once per store: called by
    /// every wait for work. Until then no connection listens, so a store that only commits costs
    /// the database nothing when other processes make work ready. The listener wakes the workers
    /// when it has connected, so a wait that started it looks at the queue again.
    pub(crate) fn listen_for_work(&self) {
        // Every wait calls this: after the first, a read decides, with no write to the shared flag.
        if self.inner.listening.load(Ordering::Acquire) || self.inner.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let listener = tokio::spawn(listen(self.inner.listen_config.clone(), Arc::downgrade(&self.inner)));
        self.inner.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(listener);
    }

    /// A change session in `context` over this store's objects; commit it with
    /// [`ChangeSession::commit`].
    pub fn session(&self, context: ChangeContext) -> ChangeSession {
        ChangeSession::new(context, Arc::new(self.clone()))
    }

    /// The schema version this build brings databases to.
    pub fn schema_version() -> usize {
        MIGRATIONS.len()
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StorageFailure> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| StorageFailure::Backend(BackendError::new("cannot get a PostgreSQL connection", e)))
    }

    /// The current time, never earlier than a time this handle already handed out.
    pub(crate) fn now(&self) -> OffsetDateTime {
        let mut last = self.inner.last_time.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *last = self.inner.clock.now().max(*last);
        *last
    }

    /// Work became ready in a committed transaction: wakes this handle's waiting workers and has
    /// the other processes told.
    pub(crate) fn work_ready(&self) {
        signal(&self.inner);
        self.inner.announce.notify_one();
    }

    /// Work became ready in a committed transaction whose connection already told the other
    /// processes: wakes this handle's waiting workers.
    pub(crate) fn work_ready_here(&self) {
        signal(&self.inner);
    }
}

/// The planner settings of the store's pooled connections: every statement of the store is
/// written to be answered by index probes, and these keep the planner to them.
///
/// The queue's tables churn: each run's row is written three or four times, and each version
/// leaves entries in the indexes until a vacuum. A plan made from statistics taken while a table
/// was small (or never analyzed) hashes the whole table or scans it from end to end, and the
/// store's statements keep their plans for the life of their connection; a bitmap scan of the
/// claimable runs visits every entry a finished run left there, where an index scan marks those
/// entries dead for the scans after it. Sequential scans, bitmap scans and hash joins are
/// discouraged, not forbidden: a statement with no other way still runs.
const INDEX_PROBES: &str = "-c enable_seqscan=off -c enable_bitmapscan=off -c enable_hashjoin=off";

/// `config` with [`INDEX_PROBES`] after the options its URL gives.
fn with_index_probes(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {INDEX_PROBES}"),
        _ => INDEX_PROBES.to_owned(),
    };
    config.options(&options);
    config
}

/// Wakes the workers waiting on this handle.
fn signal(inner: &Inner) {
    inner.generation.fetch_add(1, Ordering::SeqCst);
    inner.work.notify_waiters();
}

/// The notification that work is ready, as a statement. A group commit sends it right after its
/// `COMMIT`, in the same round trip, as a transaction of its own; a `NOTIFY` inside the commit's
/// transaction would hold the database's notification lock until the commit is on disk, and put
/// every commit in single file.
const ANNOUNCE: &str = "SELECT pg_notify($1, '')";

/// Sends `NOTIFY jobhooks_work` each time it is asked, outside any other transaction. A request
/// made while a notification is on its way leaves one permit, so a burst of commits costs one or
/// two notifications, not one each.
async fn announce(pool: Pool, requests: Arc<Notify>) {
    loop {
        requests.notified().await;
        let client = match pool.get().await {
            Ok(client) => client,
            Err(error) => {
                tracing::debug!(%error, "cannot notify the other dispatchers; they find the work when they next look");
                continue;
            }
        };
        if let Err(error) = db::Db::execute(&client, ANNOUNCE, &[&WORK_CHANNEL]).await {
            tracing::debug!(%error, "cannot notify the other dispatchers; they find the work when they next look");
        }
    }
}

/// Listens for work notifications on a connection of its own, reconnecting with a growing pause
/// when it drops, until the store is dropped. A reconnect wakes the workers at once, since
/// notifications sent while the connection was down are lost.
async fn listen(config: tokio_postgres::Config, store: Weak<Inner>) {
    let mut pause = Duration::from_millis(100);
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
            let (notified, mut notifications) = tokio::sync::mpsc::unbounded_channel();
            let driver = tokio::spawn(async move {
                while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                    match message {
                        Ok(AsyncMessage::Notification(_)) => {
                            if notified.send(()).is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            if client.batch_execute(&format!("LISTEN {WORK_CHANNEL}")).await.is_ok() {
                pause = Duration::from_millis(100);
                let Some(inner) = store.upgrade() else { return };
                signal(&inner);
                drop(inner);
                while notifications.recv().await.is_some() {
                    let Some(inner) = store.upgrade() else { return };
                    signal(&inner);
                }
            }
            driver.abort();
        }
        if store.strong_count() == 0 {
            return;
        }
        tracing::warn!(retry_in = ?pause, "the work notification connection to PostgreSQL dropped; reconnecting");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestServer;

    #[test]
    fn the_index_probe_settings_follow_the_options_a_url_gives() {
        let given = tokio_postgres::Config::from_str("postgres://app@db/hooks?options=-c%20work_mem%3D8MB").unwrap();
        let options = with_index_probes(given).get_options().unwrap().to_owned();
        assert_eq!(options, format!("-c work_mem=8MB {INDEX_PROBES}"));
        let plain = tokio_postgres::Config::from_str("postgres://app@db/hooks").unwrap();
        assert_eq!(with_index_probes(plain).get_options(), Some(INDEX_PROBES));
    }

    /// The sessions of `store`'s database that listen for work.
    async fn listeners(store: &PgStore) -> i64 {
        let client = store.client().await.unwrap();
        let listen = format!("LISTEN {WORK_CHANNEL}");
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = $1";
        client.query_one(sql, &[&listen]).await.unwrap().get(0)
    }

    #[tokio::test]
    async fn a_store_listens_for_work_from_its_first_wait() {
        use jobhooks_model::ports::JobQueue;
        let store = PgStore::connect(&TestServer::shared().fresh_database().await).await.unwrap();
        assert_eq!(listeners(&store).await, 0, "a store that only commits does not listen");
        let seen = store.work_generation();
        tokio::time::timeout(Duration::from_secs(30), store.wait_for_work(seen, Duration::from_secs(3600)))
            .await
            .expect("the listener wakes the first wait once it listens");
        assert_eq!(listeners(&store).await, 1);
        let seen = store.work_generation();
        store.wait_for_work(seen, Duration::from_millis(1)).await;
        assert_eq!(listeners(&store).await, 1, "later waits use the same listener");
    }

    #[tokio::test]
    async fn pooled_connections_keep_the_planner_to_index_probes() {
        let store = PgStore::connect(&TestServer::shared().fresh_database().await).await.unwrap();
        let client = store.client().await.unwrap();
        for setting in ["enable_seqscan", "enable_bitmapscan", "enable_hashjoin"] {
            let value: String = client.query_one(&format!("SHOW {setting}"), &[]).await.unwrap().get(0);
            assert_eq!(value, "off", "{setting}");
        }
    }
}
