//! The one interface every query goes through, over a pooled connection, a pooled transaction or
//! an application's own transaction. Pooled ones prepare each statement once per connection and
//! reuse it, so that a statement costs one round trip instead of two.

use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

/// Runs statements.
#[async_trait::async_trait]
pub(crate) trait Db: Send + Sync {
    /// The rows of `sql`.
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error>;
    /// The one row of `sql`.
    async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error>;
    /// The row of `sql`, if any.
    async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, Error>;
    /// Runs `sql`; how many rows it touched.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error>;
}

/// Implements [`Db`] with statements prepared once per connection (`prepare_cached`).
macro_rules! cached_db {
    ($type:ty, $client:ty) => {
        #[async_trait::async_trait]
        impl Db for $type {
            async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
                let statement = self.prepare_cached(sql).await?;
                <$client>::query(self, &statement, params).await
            }
            async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
                let statement = self.prepare_cached(sql).await?;
                <$client>::query_one(self, &statement, params).await
            }
            async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, Error> {
                let statement = self.prepare_cached(sql).await?;
                <$client>::query_opt(self, &statement, params).await
            }
            async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
                let statement = self.prepare_cached(sql).await?;
                <$client>::execute(self, &statement, params).await
            }
        }
    };
}

cached_db!(deadpool_postgres::Transaction<'_>, tokio_postgres::Transaction<'_>);
cached_db!(deadpool_postgres::Object, tokio_postgres::Client);

/// An application's own transaction: its connection is not ours to cache statements on.
#[async_trait::async_trait]
impl Db for tokio_postgres::Transaction<'_> {
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        tokio_postgres::Transaction::query(self, sql, params).await
    }
    async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        tokio_postgres::Transaction::query_one(self, sql, params).await
    }
    async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, Error> {
        tokio_postgres::Transaction::query_opt(self, sql, params).await
    }
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        tokio_postgres::Transaction::execute(self, sql, params).await
    }
}

/// The statements of a [`Pipelined`] transaction are planned once per connection: PostgreSQL
/// would otherwise plan a statement over arrays (`unnest($1)`) afresh at every call, because it
/// estimates a plan for the arrays it is given as cheaper than the plan for any array, and the
/// planning can cost more than the statement.
const BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

/// A transaction on a pooled connection whose `BEGIN` travels with its first statements and whose
/// `COMMIT` travels with its last: join [`Pipelined::begin`] with the first statements' futures and
/// [`Pipelined::commit`] with the last ones' (after [`Pipelined::prepare`]); the client sends the
/// statements of one join together, in the join's order, and PostgreSQL runs them in that order.
///
/// A statement that fails aborts the transaction: the statements after it fail, and the `COMMIT`
/// sent with them rolls the transaction back; the caller sees the statement's error and calls
/// [`Pipelined::rollback`] to end the transaction if it is still open.
///
/// Invariant: the connection goes back to the pool outside any transaction. A `Pipelined` dropped
/// with its transaction open (its future cancelled, or its `COMMIT` or `ROLLBACK` failed) takes
/// the connection out of the pool and closes it, and PostgreSQL rolls the transaction back.
pub(crate) struct Pipelined {
    client: Option<deadpool_postgres::Object>,
    open: std::sync::atomic::AtomicBool,
}

impl Pipelined {
    /// A transaction to begin on `client`.
    pub(crate) fn new(client: deadpool_postgres::Object) -> Self {
        Self { client: Some(client), open: false.into() }
    }

    /// Begins the transaction.
    pub(crate) async fn begin(&self) -> Result<(), Error> {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
        self.batch_execute(BEGIN).await
    }

    /// Prepares `statements` (each once per connection), so that a join of them with
    /// [`Pipelined::commit`] sends them before the `COMMIT`: a statement not yet prepared would
    /// first wait for its preparation, and the `COMMIT` would overtake it.
    pub(crate) async fn prepare(&self, statements: &[&str]) -> Result<(), Error> {
        for statement in statements {
            self.prepare_cached(statement).await?;
        }
        Ok(())
    }

    /// Commits the transaction; when a statement before it failed, PostgreSQL rolls it back
    /// instead, and that statement's error says so.
    pub(crate) async fn commit(&self) -> Result<(), Error> {
        self.batch_execute("COMMIT").await?;
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Rolls the transaction back, if it is open, and waits until it is, so that the rows it
    /// locked are free when this returns.
    pub(crate) async fn rollback(&self) {
        if !self.open.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        match self.batch_execute("ROLLBACK").await {
            Ok(()) => self.open.store(false, std::sync::atomic::Ordering::SeqCst),
            Err(error) => tracing::debug!(%error, "cannot roll a failed transaction back; its connection is closed"),
        }
    }
}

impl Drop for Pipelined {
    fn drop(&mut self) {
        if *self.open.get_mut()
            && let Some(client) = self.client.take()
        {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl std::ops::Deref for Pipelined {
    type Target = deadpool_postgres::Object;

    fn deref(&self) -> &Self::Target {
        self.client.as_ref().expect("the connection stays until the transaction is dropped")
    }
}

cached_db!(Pipelined, tokio_postgres::Client);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PgStore;
    use crate::testing::TestServer;

    /// A store on a fresh database with a table to write to.
    async fn store() -> PgStore {
        let store = PgStore::connect(&TestServer::shared().fresh_database().await).await.unwrap();
        store.client().await.unwrap().batch_execute("CREATE TABLE notes (n integer PRIMARY KEY)").await.unwrap();
        store
    }

    async fn notes(store: &PgStore) -> Vec<i32> {
        let rows = store.client().await.unwrap().query("SELECT n FROM notes ORDER BY n", &[]).await.unwrap();
        rows.iter().map(|row| row.get(0)).collect()
    }

    /// Whether `client` is inside a transaction block: only there may a savepoint be set (outside
    /// one, PostgreSQL refuses it and nothing changes).
    async fn in_transaction(client: &deadpool_postgres::Object) -> bool {
        client.batch_execute("SAVEPOINT probe").await.is_ok()
    }

    /// A transaction on `store` begun with `first` (one `notes` value, `$1`) in its first round
    /// trip, and the outcome of `first`.
    async fn begun_with(store: &PgStore, first: &str, value: i32) -> (Pipelined, Result<u64, Error>) {
        let transaction = Pipelined::new(store.client().await.unwrap());
        let (begun, outcome) = tokio::join!(transaction.begin(), async { transaction.execute(first, &[&value]).await });
        begun.unwrap();
        (transaction, outcome)
    }

    #[tokio::test]
    async fn statements_sent_with_begin_and_commit_commit_together() {
        let store = store().await;
        let insert = "INSERT INTO notes VALUES ($1)";
        let (transaction, first) = begun_with(&store, insert, 1).await;
        first.unwrap();
        transaction.prepare(&[insert]).await.unwrap();
        let (second, committed) =
            tokio::join!(async { transaction.execute(insert, &[&2]).await }, transaction.commit());
        second.unwrap();
        committed.unwrap();
        drop(transaction);
        assert_eq!(notes(&store).await, [1, 2]);
    }

    /// The last round trip's statement fails on a connection that never ran it: prepared first, it
    /// is sent before the COMMIT, so the COMMIT finds the transaction failed and rolls the first
    /// round trip's write back. (Prepared with the COMMIT in flight, it would run after a COMMIT
    /// that had written the first row.)
    #[tokio::test]
    async fn a_statement_that_fails_with_the_commit_rolls_the_transaction_back() {
        let store = store().await;
        let (transaction, first) = begun_with(&store, "INSERT INTO notes VALUES ($1)", 1).await;
        first.unwrap();
        let failing = "INSERT INTO notes VALUES ($1 / 0)";
        transaction.prepare(&[failing]).await.unwrap();
        let (second, committed) =
            tokio::join!(async { transaction.execute(failing, &[&2]).await }, transaction.commit());
        assert!(second.is_err(), "division by zero");
        committed.unwrap();
        transaction.rollback().await;
        assert!(!in_transaction(&transaction).await, "the connection is outside any transaction");
        drop(transaction);
        assert_eq!(notes(&store).await, Vec::<i32>::new());
    }

    #[tokio::test]
    async fn a_failed_first_round_trip_is_rolled_back_and_its_connection_reused() {
        let store = store().await;
        let (transaction, first) = begun_with(&store, "INSERT INTO notes VALUES ($1 / 0)", 1).await;
        assert!(first.is_err());
        transaction.rollback().await;
        assert!(!in_transaction(&transaction).await);
        drop(transaction);
        assert_eq!(store.inner.pool.status().size, 1, "the connection went back to the pool");
    }

    #[tokio::test]
    async fn a_transaction_dropped_open_takes_its_connection_out_of_the_pool() {
        let store = store().await;
        let (transaction, first) = begun_with(&store, "INSERT INTO notes VALUES ($1)", 1).await;
        first.unwrap();
        drop(transaction);
        assert_eq!(store.inner.pool.status().size, 0, "the connection was closed, not pooled");
        let client = store.client().await.unwrap();
        assert!(!in_transaction(&client).await, "a new connection, outside any transaction");
        drop(client);
        assert_eq!(notes(&store).await, Vec::<i32>::new(), "PostgreSQL rolled the write back");
    }
}
