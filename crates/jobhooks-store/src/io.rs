//! What the store asks of sled, counted: the figures behind a change's cost on disk (each key
//! written is a log record and a node rewrite, each batch a log write-out, each flush a sync), for
//! benches and for operators comparing workloads.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a store has asked of sled since it was opened, from [`crate::Store::io`]. Reads and
/// writes count keys, whether alone or in a scan or a batch; a flush is one the store asked for
/// (sled's own background flushes, with [`crate::Durability::Background`], are not counted).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use jobhooks_model::ports::ObjectReader;
/// use jobhooks_model::{ContentType, ObjectRef};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = jobhooks_store::Store::open(dir.path()).unwrap();
/// let before = store.io();
/// let missing = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap();
/// assert!(store.get_object(&missing).await.unwrap().is_none());
/// assert_eq!(store.io().since(before).key_writes, 0);
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreIo {
    /// Keys read: point reads, and each stored entry a scan went through.
    pub key_reads: u64,
    /// Keys written or removed.
    pub key_writes: u64,
    /// Atomic batches applied.
    pub batches: u64,
    /// Flushes to disk.
    pub flushes: u64,
}

impl StoreIo {
    /// What was asked between `earlier` and this.
    #[must_use]
    pub fn since(self, earlier: StoreIo) -> StoreIo {
        StoreIo {
            key_reads: self.key_reads.saturating_sub(earlier.key_reads),
            key_writes: self.key_writes.saturating_sub(earlier.key_writes),
            batches: self.batches.saturating_sub(earlier.batches),
            flushes: self.flushes.saturating_sub(earlier.flushes),
        }
    }
}

/// The counters behind [`StoreIo`], shared by every reader and writer of one store.
#[derive(Debug, Default)]
pub(crate) struct IoCounters {
    key_reads: AtomicU64,
    key_writes: AtomicU64,
    batches: AtomicU64,
    flushes: AtomicU64,
}

/// Counters nobody reads, for code that works on a tree outside a store (tests, tools).
#[cfg(test)]
pub(crate) static UNCOUNTED: IoCounters = IoCounters::new();

impl IoCounters {
    pub(crate) const fn new() -> Self {
        Self {
            key_reads: AtomicU64::new(0),
            key_writes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    pub(crate) fn read(&self, keys: u64) {
        self.key_reads.fetch_add(keys, Ordering::Relaxed);
    }

    pub(crate) fn wrote(&self, keys: u64) {
        self.key_writes.fetch_add(keys, Ordering::Relaxed);
    }

    pub(crate) fn batch(&self, keys: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.wrote(keys);
    }

    pub(crate) fn flushed(&self) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StoreIo {
        StoreIo {
            key_reads: self.key_reads.load(Ordering::Relaxed),
            key_writes: self.key_writes.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
        }
    }
}
