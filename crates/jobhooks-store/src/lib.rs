//! The embedded jobhooks store, on sled.
//!
//! [`Store`] implements every storage port of `jobhooks-model` (`ObjectReader`, `ChangeStore`,
//! `Catalog`, `JobQueue`, together `Storage`) on one sled tree:
//!
//! - the catalog: job records, job hooks, job buttons and users, validated on every write by the
//!   model's pure validation;
//! - an object repository: objects by content type and id;
//! - the change log, indexed by object (a change's prechange is the data of the object's previous
//!   change, found when the change is read, as Nautobot does) and by change context;
//! - the durable job queue: one line per object whose head is ready, claimed until a deadline,
//!   waiting for a retry or dead-lettered; and the job results.
//!
//! The on-disk layout (format 4) is in `docs/ARCHITECTURE.md`.
//!
//! A change context commits as one atomic batch that holds the objects, the change records and one
//! queued run with a pending result per matching hook (the transactional outbox), so a crash never
//! loses a hook run nor queues one for a change that did not commit.
//!
//! ```
//! use jobhooks_model::ports::{ChangeStore, ObjectReader};
//! use jobhooks_model::{ChangeContext, ChangeContextKind, ContentType, Object, ObjectRef, json};
//! use jobhooks_store::Store;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//! let hq = ObjectRef::new(ContentType::new("dcim.location").unwrap(), "1").unwrap();
//!
//! let mut session = store.session(ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), ""));
//! session.save(Object::new(hq.clone(), "HQ", json!({"name": "HQ"})).unwrap()).await.unwrap();
//! let receipt = session.commit().await.unwrap();
//!
//! assert_eq!(store.get_object(&hq).await.unwrap().unwrap().repr(), "HQ");
//! let change = store.get_change(receipt.changes[0]).await.unwrap().unwrap();
//! assert_eq!(change.to_string(), "dcim.location HQ created by alice");
//! # });
//! ```
//!
//! # Durability
//!
//! A commit returns once its batch is flushed with sled's `flush_async`. With
//! [`Durability::GroupCommit`] (the default) concurrent commits share one flush. sled's flush
//! survives a process crash (SIGKILL): everything whose commit returned is there after reopening.
//! It does not promise more: sled flushes with `sync_file_range` (sled issue #1452), so a flushed
//! write is not guaranteed to survive a power loss or a kernel crash.
//!
//! Only one process can open a store at a time; a second waits up to [`StoreConfig::lock_wait`]
//! for it, then gets [`OpenError::Locked`]. A path that holds something other than a store (a
//! file, a directory of other files) is refused with [`OpenError::NotAStore`]: a store is created
//! only in a new or empty directory. Claims found at open (in their attempt journals) belong to a
//! process that is gone (it held the lock), so opening ends them, each counted as an attempt: the
//! runs are ready again at once.
//!
//! Invariant: this is the only crate that knows sled. No sled type appears in its public API;
//! errors are the model's port errors ([`jobhooks_model::StorageFailure`], `CatalogError`, …).

mod backup;
mod catalog;
mod changes;
mod claims;
mod disk;
mod durability;
mod io;
mod keys;
mod lines;
mod logins;
mod open;
mod queue;
mod recent;
mod records;
mod recovery;
mod restore;
mod retention;
mod staging;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use jobhooks_model::{
    BackendError, ChangeContext, ChangeSession, Clock, MaintenanceError, StorageFailure, system_clock,
};
use time::OffsetDateTime;
use tokio::sync::Notify;

pub use durability::{Durability, FlushCoordinator};
pub use io::StoreIo;
pub use open::OpenError;

use catalog::CatalogCache;
use staging::{Overlay, QueueCounts, Staging, backend_error};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: &str = "jobhooks-store/4";

/// The format before this one, which opening migrates in place.
const PREVIOUS_FORMAT: &str = "jobhooks-store/3";

/// How to open a store. Start from [`Default`] and change what you need, with the setters or by
/// assigning fields; new settings may be added in minor releases.
///
/// ```
/// use jobhooks_store::{Durability, StoreConfig};
///
/// let config = StoreConfig::default().durability(Durability::Background { every_ms: 100 });
/// assert_eq!(config.cache_capacity, 8 * 1024 * 1024);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreConfig {
    /// When a commit counts as done.
    pub durability: Durability,
    /// sled's page cache size in bytes (default 8 MiB). The queue and the change log live on
    /// disk; the cache holds recently used records. A larger cache speeds up reads of old changes
    /// and results and costs memory, about three times its size in peak RSS: with 1,000,000
    /// queued runs in `cargo xtask bench`, 16 MiB instead of 8 MiB added about 30 MB and 64 MiB
    /// about 220 MB, with no gain in throughput.
    pub cache_capacity: u64,
    /// How long opening waits for the store's lock while someone else holds it (default 2 s)
    /// before failing with [`OpenError::Locked`]. The lock is released a moment after its holder
    /// lets go: when a process that had the store open exits, or, within one process, once
    /// sled's IO threads have finished with the handles just dropped. Zero fails at once.
    pub lock_wait: Duration,
    /// What the store asks for the time: change times, when runs were queued and finished, and
    /// when the next retry falls due. Lease deadlines are decided by the callers' `now`.
    pub clock: Arc<dyn Clock>,
    /// How much memory (estimated, in bytes; default 16 MiB) the store keeps of recently committed
    /// changes, decoded: a hook run reads its change, prechange and object from there rather than
    /// decoding what was just written, and a change session its objects. Zero keeps none: every
    /// read decodes the stored records.
    pub change_cache_capacity: u64,
}

impl StoreConfig {
    /// Sets [`StoreConfig::durability`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`StoreConfig::cache_capacity`].
    #[must_use]
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }

    /// Sets [`StoreConfig::lock_wait`].
    #[must_use]
    pub fn lock_wait(mut self, lock_wait: Duration) -> Self {
        self.lock_wait = lock_wait;
        self
    }

    /// Sets [`StoreConfig::change_cache_capacity`].
    #[must_use]
    pub fn change_cache_capacity(mut self, bytes: u64) -> Self {
        self.change_cache_capacity = bytes;
        self
    }

    /// Sets [`StoreConfig::clock`].
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            durability: Durability::GroupCommit,
            cache_capacity: 8 * 1024 * 1024,
            lock_wait: Duration::from_secs(2),
            clock: system_clock(),
            change_cache_capacity: 16 * 1024 * 1024,
        }
    }
}

/// The embedded store. Cheap to clone: clones share one open database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    /// Serializes read-modify-write operations of this process. Claims between processes are
    /// decided by the lease records themselves; sled admits only one process per store.
    writer: Mutex<Writer>,
    /// The catalog cache, as of the last write that changed the catalog and was applied to the
    /// tree. Readers clone the `Arc` and never wait for the writer mutex; an operation that changes
    /// the catalog edits a copy, and the engine publishes it under the writer mutex once the
    /// operation's batch is in the tree, so readers never see a catalog write that failed.
    catalog: RwLock<Arc<CatalogCache>>,
    /// The claims this process's workers hold, published as the catalog is: see `claims.rs`.
    claims: RwLock<Arc<claims::Claims>>,
    /// Runs below this id are claimed durably: a claim of one waits until its attempt journal is
    /// flushed. When the process before crashed, these are the runs queued before this open,
    /// among them any run whose receiver takes the process down; 0 (none) after a clean close.
    claim_durably_below: u64,
    /// The format opening found and migrated the store from, if it was the previous one.
    migrated_from: Option<&'static str>,
    /// Whether this handle marked the store open (`meta/opened`), so that closing it unmarks it.
    marked_open: std::sync::atomic::AtomicBool,
    durability: Durability,
    flusher: FlushCoordinator,
    /// Set when applying deferred writes failed: the writes of commits that were waiting for
    /// them are lost, so no later write may report success. Reopening the store clears it.
    broken: OnceLock<StorageFailure>,
    work: Notify,
    /// The change log's size as last counted; see [`changes::ChangeCount`].
    change_count: Mutex<changes::ChangeCount>,
    /// Grows whenever changes are removed (pruning): a count made before must be made again.
    change_removals: AtomicU64,
    /// Grows whenever runs may have become ready; see `JobQueue::work_generation`.
    generation: AtomicU64,
    clock: Arc<dyn Clock>,
    /// What the store asked of sled.
    io: io::IoCounters,
    /// Recently committed changes, decoded.
    recent: recent::RecentChanges,
    /// The store's lock: held while this handle is open, let go last (fields drop in order).
    lock: std::fs::File,
}

/// State only writers touch: id counters and queue counts, derived from disk at open, and the
/// deferred writes.
struct Writer {
    clock: Arc<dyn Clock>,
    next_change: u64,
    next_run: u64,
    last_time: OffsetDateTime,
    /// Runs by state, so that the queue's depth needs no scan.
    counts: QueueCounts,
    /// Writes of operations waiting for a group commit, not yet applied to the tree: applied
    /// together, as one batch, by the next flush or the next write that does not wait for one.
    deferred: Overlay,
}

impl Writer {
    /// The current time, never earlier than a time already handed out, so that change ids and
    /// change times sort alike.
    fn now(&mut self) -> OffsetDateTime {
        self.last_time = self.clock.now().max(self.last_time);
        self.last_time
    }

    /// A new run id.
    fn new_run(&mut self) -> jobhooks_model::RunId {
        self.next_run += 1;
        jobhooks_model::RunId(self.next_run - 1)
    }
}

impl Store {
    /// Opens (or creates) the store at `path` with the default configuration.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, StoreConfig::default())
    }

    /// Opens the store at `path`, or creates one there when `path` is a new or empty directory.
    ///
    /// Fails with [`OpenError::Locked`] when another process has it open, with
    /// [`OpenError::NotAStore`] when `path` holds something else, and with
    /// [`OpenError::IncompatibleFormat`] when it was written by an incompatible version. Leases
    /// found at open are released (each still counts as an attempt of its run): only one process
    /// opens a store at a time, so the process that held them is gone.
    pub fn open_with(path: impl AsRef<Path>, config: StoreConfig) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        open::check_directory(&path)?;
        let (lock, created_lock) = open::lock_directory(&path, config.lock_wait)?;
        Self::open_locked(path.clone(), lock, config).inspect_err(|_| {
            // A directory that turned out not to be a store is left as it was found.
            if created_lock {
                let _ = std::fs::remove_file(path.join(open::LOCK_FILE));
            }
        })
    }

    /// Opens the store at `path`, whose lock `lock` holds.
    fn open_locked(path: PathBuf, lock: std::fs::File, config: StoreConfig) -> Result<Self, OpenError> {
        let unfinished = open::remove_unfinished_snapshots(&path)?;
        if unfinished > 0 {
            tracing::info!(unfinished, path = %path.display(), "removed the snapshot files sled left half-written");
        }
        let db = open_db(&path, &config)?;
        let io = |e: sled::Error| OpenError::Io { path: path.clone(), source: Box::new(e) };
        let tree = db.open_tree("jobhooks").map_err(io)?;
        let format = check_format(&db, &tree, &path)?;
        let crashed = tree.contains_key(keys::OPENED).map_err(io)?;
        let read = |source: StorageFailure| OpenError::Read { path: path.clone(), source: source.into() };
        let io = io::IoCounters::new();
        let view = Staging::new(&tree, &io);
        let next_run = queue::last_run_id(&view).map_err(read)? + 1;
        let writer = Writer {
            clock: config.clock.clone(),
            next_change: last_id(&view, keys::CHANGE).map_err(read)? + 1,
            next_run,
            last_time: changes::last_change_time(&view).map_err(read)?,
            counts: queue::count_runs(&view).map_err(read)?,
            deferred: Overlay::new(),
        };
        let catalog = CatalogCache::load(&view).map_err(read)?;
        drop(view);
        let inner = Inner {
            path: path.clone(),
            db,
            tree,
            writer: Mutex::new(writer),
            catalog: RwLock::new(Arc::new(catalog)),
            claims: RwLock::new(Arc::new(claims::Claims::new())),
            claim_durably_below: if crashed { next_run } else { 0 },
            migrated_from: (format == Format::Previous).then_some(PREVIOUS_FORMAT),
            marked_open: std::sync::atomic::AtomicBool::new(false),
            durability: config.durability,
            flusher: FlushCoordinator::new(config.durability),
            broken: OnceLock::new(),
            work: Notify::new(),
            change_count: Mutex::new(changes::ChangeCount::default()),
            change_removals: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            clock: config.clock,
            io,
            recent: recent::RecentChanges::new(usize::try_from(config.change_cache_capacity).unwrap_or(usize::MAX)),
            lock,
        };
        let store = Self { inner: Arc::new(inner) };
        let read = |source: MaintenanceError| OpenError::Read { path: path.clone(), source: source.into() };
        let released = match format {
            Format::Current => store.recover_claims().map_err(read)?,
            Format::Previous => {
                let released = store.migrate_from_format_3().map_err(read)?;
                tracing::info!(path = %path.display(), from = PREVIOUS_FORMAT, to = FORMAT_VERSION, "migrated the store");
                released
            }
        };
        if released > 0 {
            tracing::info!(released, path = %path.display(), "ended the claims of a process that stopped");
        }
        // Durably, so that the next open knows whether this process closed the store.
        let mark_open = || {
            store.inner.tree.insert(keys::OPENED, &[][..])?;
            store.inner.db.flush()
        };
        mark_open().map_err(|e| OpenError::Io { path: path.clone(), source: Box::new(e) })?;
        store.inner.marked_open.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(store)
    }

    /// What the store has asked of sled since it was opened: keys read and written, batches and
    /// flushes.
    pub fn io(&self) -> StoreIo {
        self.inner.io.snapshot()
    }

    /// The format version this open found the store in and migrated it from (to
    /// [`FORMAT_VERSION`]), or `None` when the store was already of this version or new.
    pub fn migrated_from(&self) -> Option<&'static str> {
        self.inner.migrated_from
    }

    /// Where the store is.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A change session in `context` over this store's objects; commit it with
    /// [`ChangeSession::commit`].
    pub fn session(&self, context: ChangeContext) -> ChangeSession {
        ChangeSession::new(context, Arc::new(self.clone()))
    }

    /// Says who holds the store (`jobhooks serve at http://…`), for the error another process
    /// meets when it tries to open the store ([`OpenError::Locked`]). Written into the store's
    /// lock file, which says nothing once no process holds the lock.
    pub fn announce_holder(&self, holder: &str) -> std::io::Result<()> {
        use std::io::{Seek, Write};
        let mut file = &self.inner.lock;
        file.set_len(0)?;
        file.seek(std::io::SeekFrom::Start(0))?;
        file.write_all(holder.as_bytes())?;
        file.flush()
    }

    /// Flushes everything written so far to disk.
    pub async fn flush(&self) -> Result<(), StorageFailure> {
        self.apply_deferred(&mut self.writer())?;
        self.inner.io.flushed();
        self.inner.db.flush_async().await.map(drop).map_err(backend_error)
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock cannot leave a half-applied batch (batches are atomic),
        // and the counters it protects only ever grow, so a poisoned lock is safe to reuse.
        self.inner.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The catalog cache as last published.
    fn catalog(&self) -> Arc<CatalogCache> {
        // A panic cannot leave a half-published cache: publishing is one assignment.
        self.inner.catalog.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// A read-only view of the store: the one way a reader reaches the tree.
    pub(crate) fn view(&self) -> Staging<'_> {
        Staging::new(&self.inner.tree, &self.inner.io)
    }

    fn check_not_broken(&self) -> Result<(), StorageFailure> {
        match self.inner.broken.get() {
            Some(cause) => Err(StorageFailure::Backend(BackendError::new(
                "an earlier write to the store failed; reopen the store to go on",
                cause.clone(),
            ))),
            None => Ok(()),
        }
    }

    /// Applies the deferred writes as one atomic batch. sled writes its log out around every
    /// batch, so one batch for a whole commit group instead of one per commit is what makes group
    /// commit pay off.
    fn apply_deferred(&self, writer: &mut Writer) -> Result<(), StorageFailure> {
        self.check_not_broken()?;
        if !writer.deferred.is_empty() {
            let deferred = std::mem::take(&mut writer.deferred);
            self.broken_unless(Staging::after(&self.inner.tree, &self.inner.io, deferred).apply())?;
        }
        // No operation is staging (the caller holds the writer): every change so far is applied.
        self.inner.recent.applied(writer.next_change - 1);
        self.forget_ended_claims();
        Ok(())
    }

    /// The claims as last published.
    pub(crate) fn claims(&self) -> Arc<claims::Claims> {
        // A panic cannot leave half-published claims: publishing is one assignment.
        self.inner.claims.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Forgets the claims of completions that are now in the tree. Called with the writer held,
    /// once every staged write is applied.
    fn forget_ended_claims(&self) {
        if !self.claims().has_ending() {
            return;
        }
        let mut published = self.inner.claims.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if published.has_ending() {
            let mut claims = (**published).clone();
            claims.forget_ended();
            *published = Arc::new(claims);
        }
    }

    /// Passes on `applied`, the outcome of a write that took the deferred writes out of the
    /// writer. If it failed, they are lost: the handle is marked broken, so that none of the
    /// operations waiting for them reports success.
    fn broken_unless<T>(&self, applied: Result<T, StorageFailure>) -> Result<T, StorageFailure> {
        applied.inspect_err(|e| {
            let _ = self.inner.broken.set(e.clone());
        })
    }

    /// The write engine, and the only way an operation writes: runs `op` under the writer lock
    /// with a [`Txn`] that reads through every write not yet applied (the commit group's deferred
    /// writes, then its own) and stages its writes, then does with them what `commit` says.
    /// Returns `op`'s value and the flush ticket of its writes. When `op` fails, nothing of it is
    /// written, the deferred writes are left as they were, and a catalog it edited is dropped.
    pub(crate) fn transact<R, E: From<StorageFailure>>(
        &self,
        commit: Commit,
        op: impl FnOnce(&mut Txn<'_>) -> Result<R, E>,
    ) -> Result<(R, u64), E> {
        let mut guard = self.writer();
        let writer = &mut *guard;
        self.check_not_broken()?;
        let deferred = std::mem::take(&mut writer.deferred);
        let had_deferred = !deferred.is_empty();
        let first_change = jobhooks_model::ChangeId(writer.next_change);
        let staging = Staging::after(&self.inner.tree, &self.inner.io, deferred);
        let mut txn = Txn {
            writer,
            staging,
            catalog: CatalogDraft { published: self.catalog(), edited: None },
            claims: ClaimsDraft { source: &self.inner.claims, published: std::cell::OnceCell::new(), edited: None },
        };
        let value = match op(&mut txn) {
            Ok(value) => value,
            Err(e) => {
                txn.writer.deferred = txn.staging.roll_back();
                self.inner.recent.forget_from(first_change);
                return Err(e);
            }
        };
        let Txn { writer, staging, catalog, claims } = txn;
        // A catalog edit is published only once it is in the tree, so it is applied at once.
        let commit = match commit {
            Commit::Durable if catalog.edited.is_some() => Commit::Now,
            Commit::Durable if !matches!(self.inner.durability, Durability::GroupCommit) => Commit::Now,
            other => other,
        };
        let counts = match commit {
            Commit::Durable => {
                let (deferred, counts) = staging.into_parts();
                writer.deferred = deferred;
                counts
            }
            Commit::Now => {
                let applied = staging.apply();
                let applied = if had_deferred { self.broken_unless(applied) } else { applied };
                let counts = applied.inspect_err(|_| self.inner.recent.forget_from(first_change))?;
                self.inner.recent.applied(writer.next_change - 1);
                counts
            }
            Commit::OwnWrites => {
                let (deferred, counts) = self.broken_unless(staging.apply_own_writes())?;
                writer.deferred = deferred;
                counts
            }
        };
        if let Some(edited) = catalog.edited {
            *self.inner.catalog.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(edited);
        }
        if let Some(edited) = claims.edited {
            *self.inner.claims.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(edited);
        }
        if commit == Commit::Now {
            // Every staged write is in the tree: so are the completions of ended claims.
            self.forget_ended_claims();
        }
        writer.counts += counts;
        Ok((value, self.inner.flusher.record_write()))
    }

    /// Runs `op` with [`Commit::Durable`] and waits until its writes are durable (per
    /// [`Durability`]). With group commit the writes are deferred, so that the flush applies
    /// those of every waiting operation in one batch.
    async fn write_durably<R, E: From<StorageFailure>>(
        &self,
        op: impl FnOnce(&mut Txn<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let (value, ticket) = self.transact(Commit::Durable, op)?;
        self.inner.flusher.wait_durable(ticket, || self.flush()).await?;
        // A waiter whose writes were in a batch that failed for another waiter learns it here.
        self.check_not_broken()?;
        Ok(value)
    }
}

/// What becomes of an operation's writes: see [`Store::transact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Its caller waits until they are durable. Under group commit they join the deferred writes,
    /// and the flush applies the group in one batch; otherwise, and when the operation edited the
    /// catalog, they are applied at once.
    Durable,
    /// Applied at once, with the deferred writes, as one batch: the operation costs one sled
    /// batch, not two.
    Now,
    /// Applied at once key by key, leaving the deferred writes deferred. Each write must stand
    /// alone and build on no deferred write (see [`Staging::apply_own_writes`]).
    OwnWrites,
}

/// An operation's handle on the store, lent by [`Store::transact`]: its reads and staged writes,
/// the writer's counters, and the catalog.
pub(crate) struct Txn<'a> {
    writer: &'a mut Writer,
    staging: Staging<'a>,
    catalog: CatalogDraft,
    claims: ClaimsDraft<'a>,
}

/// The claims as an operation sees them: as published (read only by the operations that look at
/// claims, not by commits), or its own edited copy.
struct ClaimsDraft<'a> {
    source: &'a RwLock<Arc<claims::Claims>>,
    published: std::cell::OnceCell<Arc<claims::Claims>>,
    edited: Option<claims::Claims>,
}

impl ClaimsDraft<'_> {
    fn published(&self) -> &claims::Claims {
        self.published.get_or_init(|| self.source.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
    }
}

/// The catalog as an operation sees it: as published, or its own edited copy.
struct CatalogDraft {
    published: Arc<CatalogCache>,
    edited: Option<CatalogCache>,
}

impl<'a> Txn<'a> {
    /// The writer's counters and the staged writes.
    pub(crate) fn parts(&mut self) -> (&mut Writer, &mut Staging<'a>) {
        (self.writer, &mut self.staging)
    }

    /// The store as this operation sees it, its own writes included.
    pub(crate) fn view(&self) -> &Staging<'a> {
        &self.staging
    }

    /// The staged writes.
    pub(crate) fn staging(&mut self) -> &mut Staging<'a> {
        &mut self.staging
    }

    /// The catalog with this operation's edits.
    pub(crate) fn catalog(&self) -> &CatalogCache {
        self.catalog.edited.as_ref().unwrap_or(&self.catalog.published)
    }

    /// The claims with this operation's edits.
    pub(crate) fn claims(&self) -> &claims::Claims {
        self.claims.edited.as_ref().unwrap_or_else(|| self.claims.published())
    }

    /// The writer, the staged writes and the claims to edit (a copy of the published ones, made
    /// once).
    pub(crate) fn edit_claims(&mut self) -> (&mut Writer, &mut Staging<'a>, &mut claims::Claims) {
        let draft = &mut self.claims;
        let edited = match draft.edited.take() {
            Some(edited) => edited,
            None => draft.published().clone(),
        };
        (self.writer, &mut self.staging, draft.edited.insert(edited))
    }

    /// The staged writes and the catalog to edit (a copy of the published one, made once).
    pub(crate) fn edit_catalog(&mut self) -> (&mut Staging<'a>, &mut CatalogCache) {
        let draft = &mut self.catalog;
        let edited = draft.edited.get_or_insert_with(|| (*draft.published).clone());
        (&mut self.staging, edited)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Deferred writes outlive their operation only when its caller stopped waiting for the
        // flush; they are applied as they would have been by the next write.
        let writer = self.writer.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !writer.deferred.is_empty() && self.broken.get().is_none() {
            let deferred = std::mem::take(&mut writer.deferred);
            if let Err(e) = Staging::after(&self.tree, &self.io, deferred).apply() {
                tracing::error!(error = %e, "could not apply the writes of abandoned commits when closing the store");
            }
        }
        // The store is closed, not crashed: its next open need not claim durably.
        if !*self.marked_open.get_mut() {
            return;
        }
        let closed = self.tree.remove(keys::OPENED).and_then(|_| self.db.flush());
        if let Err(e) = closed {
            tracing::warn!(error = %e, "could not mark the store closed; its next open takes it for a crash");
        }
    }
}

#[cfg(test)]
impl Store {
    /// Writes `value` under `key` in the tree, as a disk that corrupted it would leave it: what
    /// the store had decoded of it is forgotten, as a reopened store would not have it.
    fn overwrite_for_tests(&self, key: Vec<u8>, value: &[u8]) {
        self.inner.tree.insert(key, value).unwrap();
        self.inner.recent.clear();
    }
}

/// Opens sled at `path`, whose store lock this process holds. sled takes a file lock of its own,
/// which a handle of this process that was just dropped may hold a moment longer (sled's IO
/// threads let it go): an error of the kinds its lock failure has (`WouldBlock`, or `Other`, into
/// which sled 0.34 turns it) is retried for up to `config.lock_wait`; other errors fail at once.
fn open_db(path: &Path, config: &StoreConfig) -> Result<sled::Db, OpenError> {
    let waited_since = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity)
            .flush_every_ms(config.durability.background_flush_ms())
            .open();
        match opened {
            Err(sled::Error::Io(io))
                if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Other)
                    && waited_since.elapsed() < config.lock_wait =>
            {
                std::thread::sleep(pause.min(config.lock_wait.saturating_sub(waited_since.elapsed())));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other.map_err(|e| OpenError::Io { path: path.to_owned(), source: Box::new(e) }),
        }
    }
}

/// The format a store was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// [`FORMAT_VERSION`], or a new store.
    Current,
    /// [`PREVIOUS_FORMAT`]: opening migrates it.
    Previous,
}

/// Checks the format version, or writes it into a new store. A sled database that holds
/// another program's data is refused rather than taken over.
fn check_format(db: &sled::Db, tree: &sled::Tree, path: &Path) -> Result<Format, OpenError> {
    let io = |e: sled::Error| OpenError::Io { path: path.to_owned(), source: Box::new(e) };
    let incompatible = |found: String| OpenError::IncompatibleFormat {
        path: path.to_owned(),
        found,
        expected: FORMAT_VERSION.to_owned(),
    };
    match tree.get(keys::FORMAT).map_err(io)? {
        Some(found) if found.as_ref() == FORMAT_VERSION.as_bytes() => Ok(Format::Current),
        Some(found) if found.as_ref() == PREVIOUS_FORMAT.as_bytes() => Ok(Format::Previous),
        Some(found) => Err(incompatible(String::from_utf8_lossy(&found).into_owned())),
        None if tree.is_empty() => {
            let foreign = !db.is_empty()
                || db
                    .tree_names()
                    .iter()
                    .any(|name| name.as_ref() != b"__sled__default" && name.as_ref() != b"jobhooks");
            if foreign {
                return Err(OpenError::NotAStore {
                    path: path.to_owned(),
                    found: "it is a sled database of another program".to_owned(),
                });
            }
            tree.insert(keys::FORMAT, FORMAT_VERSION.as_bytes()).map_err(io)?;
            Ok(Format::Current)
        }
        None => Err(incompatible("none (records without a format key)".to_owned())),
    }
}

/// The greatest id under `prefix` (0 when there is none).
fn last_id(view: &Staging<'_>, prefix: &[u8]) -> Result<u64, StorageFailure> {
    let last = view.last_with_prefix(prefix)?.map(|(key, _)| key);
    Ok(last.and_then(|key| keys::trailing_id(&key)).unwrap_or(0))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
