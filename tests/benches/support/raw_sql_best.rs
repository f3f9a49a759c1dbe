//! `raw_sql_best`: what a PostgreSQL expert writes for the store's guarantees (change, run and
//! object upsert atomic; claims with `SKIP LOCKED`; completions), shared by `pg/raw_sql_best` and
//! the latency under load of `pg_scale`.
//!
//! Committers hand their changes to writer tasks (application-side group commit); each writer
//! writes every waiting change in one statement (data-modifying CTEs over `unnest` arrays: one
//! round trip, one transaction), and [`WRITERS`] writers on their own connections keep groups in
//! flight together (pipelined). Change ids are the committers' own, so that a committer knows its
//! change before it commits. Workers claim up to 32 runs with `FOR UPDATE SKIP LOCKED` and
//! complete them in a second statement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

/// Writers keeping groups in flight together, each on its own connection.
pub const WRITERS: usize = 4;

/// A change waiting for a writer.
struct Waiting {
    change: i64,
    object: String,
    data: serde_json::Value,
    committed: oneshot::Sender<()>,
}

/// The commit side: committers queue their changes for the writers.
pub struct RawSqlBest {
    pub pool: deadpool_postgres::Pool,
    next_change: AtomicU64,
    waiting: Mutex<Vec<Waiting>>,
    wake: Notify,
}

impl RawSqlBest {
    /// Over `pool`, whose database it gives `super::RAW_SCHEMA` with the runs table vacuumed as a
    /// queue's should be, as the store's migration 6 does for its own: after a fixed number of
    /// dead rows, not a fifth of the table.
    pub async fn create(pool: deadpool_postgres::Pool) -> Self {
        let client = pool.get().await.unwrap();
        client.batch_execute(super::RAW_SCHEMA).await.unwrap();
        client
            .batch_execute(
                "ALTER TABLE raw_runs SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)",
            )
            .await
            .unwrap();
        drop(client);
        Self { pool, next_change: AtomicU64::new(1), waiting: Mutex::default(), wake: Notify::new() }
    }

    /// Commits the update of device `id` at `round`; returns its change id once committed.
    pub async fn commit(&self, id: u64, round: u64) -> i64 {
        let data = serde_json::Value::Object(super::device(id, round, 30).data().clone());
        let change = self.next_change.fetch_add(1, Ordering::Relaxed) as i64;
        let (committed, made) = oneshot::channel();
        self.waiting.lock().unwrap().push(Waiting { change, object: id.to_string(), data, committed });
        self.wake.notify_one();
        made.await.unwrap();
        change
    }

    /// Writes waiting changes, a group per statement, until `stop`; signals `work` after each.
    pub async fn write(self: Arc<Self>, work: Arc<Notify>, stop: Arc<Notify>) {
        let client = self.pool.get().await.unwrap();
        // An object changed twice in one group is upserted once, with its last data.
        let statement = client
            .prepare_cached(
                "WITH c AS (INSERT INTO raw_changes (id, object_id, data)
                            SELECT * FROM unnest($1::bigint[], $2::text[], $3::jsonb[]) RETURNING id),
                      r AS (INSERT INTO raw_runs (change_id, status) SELECT id, 'pending' FROM c),
                      o AS (INSERT INTO raw_objects (id, data)
                            SELECT DISTINCT ON (object) object, data
                              FROM unnest($1::bigint[], $2::text[], $3::jsonb[]) AS u(change, object, data)
                             ORDER BY object, change DESC
                            ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data)
                 SELECT count(*) FROM c",
            )
            .await
            .unwrap();
        loop {
            let group = std::mem::take(&mut *self.waiting.lock().unwrap());
            if group.is_empty() {
                tokio::select! {
                    () = self.wake.notified() => continue,
                    () = stop.notified() => return,
                }
            }
            let changes: Vec<i64> = group.iter().map(|waiting| waiting.change).collect();
            let objects: Vec<&str> = group.iter().map(|waiting| waiting.object.as_str()).collect();
            let data: Vec<&serde_json::Value> = group.iter().map(|waiting| &waiting.data).collect();
            client.query_one(&statement, &[&changes, &objects, &data]).await.unwrap();
            work.notify_waiters();
            for waiting in group {
                let _ = waiting.committed.send(());
            }
        }
    }
}

/// When each change's run was claimed, in unix nanos, by change id.
pub type Claims = Arc<Mutex<HashMap<i64, u64>>>;

/// A worker: claims up to 32 pending runs with `SKIP LOCKED` and completes them in a second
/// statement, until `total` runs are done; records when it claimed each change's run in `claims`.
pub async fn worker(
    pool: deadpool_postgres::Pool,
    work: Arc<Notify>,
    done: Arc<AtomicU64>,
    total: u64,
    claims: Option<Claims>,
) {
    while done.load(Ordering::SeqCst) < total {
        let notified = work.notified();
        let client = pool.get().await.unwrap();
        let claim = client
            .prepare_cached(
                "UPDATE raw_runs SET status = 'leased' WHERE id IN (SELECT id FROM raw_runs
                     WHERE status = 'pending' ORDER BY id LIMIT 32 FOR UPDATE SKIP LOCKED)
                 RETURNING id, change_id",
            )
            .await
            .unwrap();
        let rows = client.query(&claim, &[]).await.unwrap();
        if rows.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(5), notified).await;
            continue;
        }
        if let Some(claims) = &claims {
            let now = super::unix_nanos();
            claims.lock().unwrap().extend(rows.iter().map(|row| (row.get::<_, i64>(1), now)));
        }
        let claimed: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
        let complete = client
            .prepare_cached("UPDATE raw_runs SET status = 'done', result = 'ok' WHERE id = ANY($1)")
            .await
            .unwrap();
        client.execute(&complete, &[&claimed]).await.unwrap();
        done.fetch_add(claimed.len() as u64, Ordering::SeqCst);
    }
}
