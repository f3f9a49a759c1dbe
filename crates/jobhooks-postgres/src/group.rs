//! Group commit: the commits a store is asked for at the same time share one transaction.
//!
//! [`ChangeStore::commit`](jobhooks_model::ports::ChangeStore::commit) queues its commit and
//! returns when the transaction that holds it has committed (or failed). Up to
//! [`PgConfig::group_writers`](crate::PgConfig::group_writers) transactions are written at once,
//! each by a task of its own, so that a caller that stops waiting never abandons the others'
//! commits. A commit queued while every writer is busy joins the next group. Under light load each
//! commit is written alone and at once; under load one transaction, one flush to disk and the same
//! few statements (`changes::stage_commits`) carry many commits.
//!
//! A group whose transaction fails is written again commit by commit, each in a transaction of its
//! own: a commit the database refuses fails alone, and every other commit of its group is written
//! as if it had been alone.
//!
//! Invariant: every queued commit is taken by exactly one writer and answered exactly once; while
//! the queue is not empty, some writer will take from it (a writer that leaves looks at the queue
//! again after giving its place up).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use jobhooks_model::ports::CommitReceipt;
use jobhooks_model::{BackendError, ChangeError, StorageFailure};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::PgStore;
use crate::changes::{Commit, commit_alone};
use crate::db::Pipelined;

/// The most changes one group takes, unless a single commit holds more.
const GROUP_CHANGES: usize = 512;

/// The answer to one queued commit.
type Reply = oneshot::Sender<Result<CommitReceipt, ChangeError>>;

/// The queue of commits waiting for a writer, and the writers' places.
pub(crate) struct Groups {
    queue: Mutex<VecDeque<(Commit, Reply)>>,
    writers: Arc<Semaphore>,
}

impl Groups {
    pub(crate) fn new(writers: usize) -> Self {
        Self { queue: Mutex::new(VecDeque::new()), writers: Arc::new(Semaphore::new(writers.max(1))) }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<(Commit, Reply)>> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next group: the oldest commits, up to [`GROUP_CHANGES`] changes (at least one commit).
    fn take(&self) -> Vec<(Commit, Reply)> {
        let mut queue = self.queue();
        let mut group = Vec::new();
        let mut changes = 0;
        while let Some((commit, _)) = queue.front() {
            let size = commit.changes.changes().len();
            if !group.is_empty() && changes + size > GROUP_CHANGES {
                break;
            }
            changes += size;
            group.extend(queue.pop_front());
        }
        group
    }
}

impl PgStore {
    /// Queues `commit` for the next group and waits for its transaction.
    pub(crate) async fn commit_in_group(&self, commit: Commit) -> Result<CommitReceipt, ChangeError> {
        let (reply, answer) = oneshot::channel();
        let groups = &self.inner.groups;
        groups.queue().push_back((commit, reply));
        if let Ok(place) = groups.writers.clone().try_acquire_owned() {
            tokio::spawn(self.clone().write_groups(place));
        }
        answer.await.unwrap_or_else(|_| {
            Err(StorageFailure::Backend(BackendError::message(
                "the task writing this commit stopped before it answered; the commit may or may not have been written",
            ))
            .into())
        })
    }

    /// Writes groups while commits are queued, holding one of the writers' places.
    async fn write_groups(self, mut place: OwnedSemaphorePermit) {
        let groups = &self.inner.groups;
        loop {
            loop {
                let group = groups.take();
                if group.is_empty() {
                    break;
                }
                self.write_group(group).await;
            }
            drop(place);
            // A commit queued after the last look, while every place was taken, is this writer's
            // unless another writer holds a place: that one looks again before it leaves.
            if groups.queue().is_empty() {
                return;
            }
            match groups.writers.clone().try_acquire_owned() {
                Ok(again) => place = again,
                Err(_) => return,
            }
        }
    }

    /// Writes `group` in one transaction and answers each commit; when the transaction fails,
    /// writes its commits one by one.
    async fn write_group(&self, group: Vec<(Commit, Reply)>) {
        let (commits, replies): (Vec<Commit>, Vec<Reply>) = group.into_iter().unzip();
        match self.write(&commits).await {
            Ok(receipts) => {
                for (reply, receipt) in replies.into_iter().zip(receipts) {
                    let _ = reply.send(Ok(receipt));
                }
            }
            Err(error) if commits.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(error));
                }
            }
            Err(error) => {
                tracing::debug!(error = %error, commits = commits.len(), "a group commit failed; writing its commits one by one");
                for (commit, reply) in commits.iter().zip(replies) {
                    let _ = reply.send(
                        self.write(std::slice::from_ref(commit))
                            .await
                            .map(|mut receipts| receipts.pop().unwrap_or_default()),
                    );
                }
            }
        }
    }

    /// Writes `commits` in one transaction, begun and committed with its statements.
    async fn write(&self, commits: &[Commit]) -> Result<Vec<CommitReceipt>, ChangeError> {
        let transaction = Pipelined::new(self.client().await?);
        let (receipts, announced) = match commit_alone(&transaction, self.now(), commits).await {
            Ok(written) => written,
            Err(error) => {
                // Rolled back before the failure returns, so that writing the group's commits one
                // by one does not wait for this transaction's locks.
                transaction.rollback().await;
                return Err(error);
            }
        };
        if announced {
            self.work_ready_here();
        } else if receipts.iter().any(|receipt| !receipt.runs.is_empty()) {
            self.work_ready();
        }
        Ok(receipts)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jobhooks_model::ports::{ChangeStore, JobQueue, ObjectWrites};
    use jobhooks_model::{
        Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, Object, ObjectRef, PendingChange, json,
    };
    use tokio_postgres::NoTls;

    use crate::testing::TestServer;
    use crate::{PgConfig, PgStore};

    const JOB: &str = "app::jobs::Audit";

    fn commit(
        store: &PgStore,
        action: Action,
        id: &str,
        data: serde_json::Value,
    ) -> tokio::task::JoinHandle<Result<jobhooks_model::ports::CommitReceipt, jobhooks_model::ChangeError>> {
        let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap();
        let mut changes = ChangeSet::default();
        changes.record(PendingChange::new(action, &Object::new(reference, id, data).unwrap()));
        let store = store.clone();
        let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
        tokio::spawn(async move { store.commit(&context, changes, ObjectWrites::Apply).await })
    }

    /// Waits, with a bound, until `ready` holds; the writers run on the runtime's other thread.
    async fn until<F: Future<Output = bool>>(what: &str, ready: impl Fn() -> F) {
        tokio::time::timeout(Duration::from_secs(30), async {
            while !ready().await {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 30 s"));
    }

    /// One writer, held on a row lock while five commits queue behind it, so that they are written
    /// as one group: the commit PostgreSQL refuses fails alone, the others are written as if alone,
    /// and the two runs of one object in the group keep their order in its line.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_commit_fails_alone_and_its_group_is_written() {
        let url = TestServer::shared().fresh_database().await;
        let store = PgStore::connect_with(&url, PgConfig::default().group_writers(1)).await.unwrap();
        crate::testing::install_device_hook(&store, "audit", JOB, [Action::Create, Action::Update]).await;
        let blocker = commit(&store, Action::Create, "blocker", json!({"n": 0})).await.unwrap().unwrap();

        // The writer takes the blocker's update and waits for the row another transaction holds.
        let (mut app, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(connection);
        let holder = app.transaction().await.unwrap();
        holder.execute("SELECT 1 FROM jobhooks_objects WHERE object_id = 'blocker' FOR UPDATE", &[]).await.unwrap();
        let blocked = commit(&store, Action::Update, "blocker", json!({"n": 1}));
        let (observer, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(connection);
        let observer = &observer;
        until("the writer waiting for the row", || async move {
            let waiting = observer.query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'", &[]).await.unwrap();
            waiting.get::<_, i64>(0) > 0
        })
        .await;

        let commits = [
            (Action::Create, "twin", json!({"n": 1})),
            (Action::Create, "first", json!({"n": 1})),
            // jsonb cannot hold the NUL character: PostgreSQL refuses this change.
            (Action::Create, "refused", json!({"name": "a\u{0}b"})),
            (Action::Update, "twin", json!({"n": 2})),
            (Action::Create, "last", json!({"n": 1})),
        ];
        // Each commit is queued before the next is made: their tasks would otherwise race to the
        // queue, and the twin's update could be written before its creation.
        let mut queued = Vec::new();
        for (action, id, data) in commits {
            queued.push(commit(&store, action, id, data));
            let expected = queued.len();
            until("the commit queued", || async { store.inner.groups.queue().len() == expected }).await;
        }
        holder.rollback().await.unwrap();

        blocked.await.unwrap().expect("the blocker's update is written once its row is free");
        let mut receipts = Vec::new();
        for (position, commit) in queued.into_iter().enumerate() {
            let outcome = commit.await.unwrap();
            if position == 2 {
                assert!(outcome.is_err(), "PostgreSQL refuses the NUL character");
            } else {
                receipts.push(outcome.expect("the others are written"));
            }
        }
        assert_eq!(store.count_changes().await.unwrap(), 6, "blocker twice, twin twice, first and last");
        let twin = store.get_change(receipts[2].changes[0]).await.unwrap().unwrap();
        assert_eq!(twin.prechange, Some(json!({"n": 1})), "the twin's update follows its creation");

        // Heads only: the blocker's creation, the twin's creation, first and last. The blocker's
        // update and the twin's update wait behind them in their lines.
        let claimed = store.lease_batch(jobhooks_model::OffsetDateTime::now_utc(), Duration::from_secs(60), 10).await;
        let mut claimed: Vec<_> = claimed.unwrap().into_iter().map(|(lease, _)| lease.run).collect();
        claimed.sort();
        let mut heads = vec![blocker.runs[0], receipts[0].runs[0], receipts[1].runs[0], receipts[3].runs[0]];
        heads.sort();
        assert_eq!(claimed, heads);
    }
}
