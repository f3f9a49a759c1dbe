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
/// When a flush ends, every waiter wakes at once: those it covered return, and one of the others
/// leads the next flush (rather than the turn passing from waiter to waiter, one wake-up after
/// another).
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
    /// Signalled, to every waiter, whenever a flush ends.
    flush_ended: tokio::sync::Notify,
}

impl FlushCoordinator {
    /// A coordinator with nothing written yet.
    pub fn new(durability: Durability) -> Self {
        Self {
            durability,
            written: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            leader: tokio::sync::Mutex::new(()),
            flush_ended: tokio::sync::Notify::new(),
        }
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
            Durability::GroupCommit => loop {
                // Created before looking, so that a flush ending in between still wakes us.
                let flush_ended = self.flush_ended.notified();
                if self.flushed.load(Ordering::SeqCst) >= ticket {
                    return Ok(());
                }
                let Ok(leader) = self.leader.try_lock() else {
                    // Someone is flushing: the flush may cover our write, or we lead the next.
                    flush_ended.await;
                    continue;
                };
                // Wakes the waiters when this flush ends, however it ends: also when our caller
                // stops waiting in the middle of it.
                let _leading = Leading { leader: Some(leader), flush_ended: &self.flush_ended };
                if self.flushed.load(Ordering::SeqCst) >= ticket {
                    return Ok(());
                }
                let target = self.written.load(Ordering::SeqCst);
                flush().await?;
                self.flushed.fetch_max(target, Ordering::SeqCst);
            },
        }
    }
}

/// The turn to flush, held while flushing: let go, it wakes every waiter.
struct Leading<'a> {
    leader: Option<tokio::sync::MutexGuard<'a, ()>>,
    flush_ended: &'a tokio::sync::Notify,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        // The turn is let go first, so that a waiter woken now can take it.
        drop(self.leader.take());
        self.flush_ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_flushes_and_all_return() {
        let flusher = Arc::new(FlushCoordinator::new(Durability::GroupCommit));
        let flushes = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..64)
            .map(|_| {
                let (flusher, flushes) = (flusher.clone(), flushes.clone());
                tokio::spawn(async move {
                    let ticket = flusher.record_write();
                    let flush = || async {
                        flushes.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok::<(), std::io::Error>(())
                    };
                    flusher.wait_durable(ticket, flush).await.unwrap();
                    // Returned only once a flush that started after the write ended.
                    assert!(flusher.flushed.load(Ordering::SeqCst) >= ticket);
                })
            })
            .collect();
        for waiter in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await.unwrap().unwrap();
        }
        let flushes = flushes.load(Ordering::SeqCst);
        assert!((1..=64).contains(&flushes), "{flushes} flushes");
    }

    #[tokio::test]
    async fn a_leader_whose_caller_stops_waiting_hands_the_flush_on() {
        let flusher = Arc::new(FlushCoordinator::new(Durability::GroupCommit));
        let (flushing, started) = tokio::sync::oneshot::channel();
        let flushing = std::sync::Mutex::new(Some(flushing));
        let leader = {
            let flusher = flusher.clone();
            tokio::spawn(async move {
                let ticket = flusher.record_write();
                let flush = || {
                    let _ = flushing.lock().unwrap().take().map(|started| started.send(()));
                    std::future::pending::<Result<(), std::io::Error>>()
                };
                flusher.wait_durable(ticket, flush).await
            })
        };
        started.await.unwrap();
        let ticket = flusher.record_write();
        let waiter = {
            let flusher = flusher.clone();
            tokio::spawn(async move { flusher.wait_durable(ticket, || async { Ok::<(), std::io::Error>(()) }).await })
        };
        tokio::task::yield_now().await;
        leader.abort();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await.unwrap().unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_failed_flush_fails_its_leader_and_the_next_waiter_flushes_again() {
        let flusher = FlushCoordinator::new(Durability::GroupCommit);
        let ticket = flusher.record_write();
        let failed = flusher.wait_durable(ticket, || async { Err::<(), _>(std::io::Error::other("disk full")) }).await;
        assert_eq!(failed.unwrap_err().to_string(), "disk full");
        assert_eq!(flusher.flushed.load(Ordering::SeqCst), 0, "a failed flush covers nothing");
        flusher.wait_durable(ticket, || async { Ok::<(), std::io::Error>(()) }).await.unwrap();
        assert_eq!(flusher.flushed.load(Ordering::SeqCst), ticket);
    }
}
