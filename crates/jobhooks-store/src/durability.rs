//! When a write counts as done, and group commit.

use std::sync::atomic::{AtomicU64, Ordering};

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// A commit returns once flushed; concurrent commits share one flush and one sled batch, so
    /// throughput is bound neither by one fsync nor by one batch per commit. The default.
    #[default]
    GroupCommit,
    /// Every commit runs its own flush (the baseline group commit is measured against).
    FlushEach,
    /// A commit returns at once; sled's background flusher writes it within `every_ms`. A crash
    /// may lose the last `every_ms` of commits: only for tests and benchmarks.
    Background {
        /// How often sled flushes, in milliseconds.
        every_ms: u64,
    },
}

impl Durability {
    /// The background flush interval to configure sled with.
    pub(crate) fn background_flush_ms(self) -> Option<u64> {
        match self {
            Durability::Background { every_ms } => Some(every_ms),
            // sled's default: also bounds how much work a crash loses between explicit flushes of
            // operations that do not wait (leases).
            Durability::GroupCommit | Durability::FlushEach => Some(500),
        }
    }
}

/// Group commit: counts writes and flushes so that one flush serves every write applied before it
/// started. Flushes never run concurrently (sled's `flush_async` can stall when many run at once).
///
/// Generic over the flush itself, so a benchmark can give raw sled the same flush policy as the
/// store.
///
/// ```
/// use jobhooks_store::{Durability, FlushCoordinator};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let flusher = FlushCoordinator::new(Durability::GroupCommit);
/// let ticket = flusher.record_write(); // after the write is applied
/// flusher.wait_durable(ticket, || async { Ok::<(), std::io::Error>(()) }).await.unwrap();
/// # });
/// ```
pub struct FlushCoordinator {
    durability: Durability,
    written: AtomicU64,
    flushed: AtomicU64,
    leader: tokio::sync::Mutex<()>,
}

impl FlushCoordinator {
    /// A coordinator with nothing written yet.
    pub fn new(durability: Durability) -> Self {
        Self { durability, written: AtomicU64::new(0), flushed: AtomicU64::new(0), leader: tokio::sync::Mutex::new(()) }
    }

    /// Notes that a write was applied; the ticket names it for [`FlushCoordinator::wait_durable`].
    pub fn record_write(&self) -> u64 {
        self.written.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Waits until the write `ticket` is on disk, per the durability setting, running `flush` as
    /// needed.
    pub async fn wait_durable<F, Fut, E>(&self, ticket: u64, flush: F) -> Result<(), E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        match self.durability {
            Durability::Background { .. } => Ok(()),
            Durability::FlushEach => {
                let _turn = self.leader.lock().await;
                flush().await
            }
            Durability::GroupCommit => {
                while self.flushed.load(Ordering::SeqCst) < ticket {
                    // Whoever holds the lock is flushing; when it is our turn, the flush that just
                    // ended may already have covered our write.
                    let _leader = self.leader.lock().await;
                    if self.flushed.load(Ordering::SeqCst) >= ticket {
                        break;
                    }
                    let target = self.written.load(Ordering::SeqCst);
                    flush().await?;
                    self.flushed.fetch_max(target, Ordering::SeqCst);
                }
                Ok(())
            }
        }
    }
}
