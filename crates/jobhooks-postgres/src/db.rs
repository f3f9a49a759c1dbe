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
