//! Store queries through each pooled connection's statement cache. A statement is parsed and described once
//! per connection and then only bound and executed: one round trip instead of two, no parse or analysis per
//! call, and PostgreSQL may settle on a generic plan for it. Every SQL text the store sends is fixed or built
//! from a bounded set of fragments (never from values), so a connection's cache stays small.

use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

/// `query`, `query_one`, `query_opt` and `execute` through the statement cache.
pub(crate) trait Cached {
    async fn q(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error>;
    async fn q_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error>;
    async fn q_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, Error>;
    async fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error>;
}

macro_rules! cached_on {
    ($t:ty) => {
        impl Cached for $t {
            async fn q(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<Row>, Error> {
                let s = self.prepare_cached(sql).await?;
                self.query(&s, params).await
            }
            async fn q_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
                let s = self.prepare_cached(sql).await?;
                self.query_one(&s, params).await
            }
            async fn q_opt(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Option<Row>, Error> {
                let s = self.prepare_cached(sql).await?;
                self.query_opt(&s, params).await
            }
            async fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
                let s = self.prepare_cached(sql).await?;
                self.execute(&s, params).await
            }
        }
    };
}

cached_on!(deadpool_postgres::ClientWrapper);
cached_on!(deadpool_postgres::Transaction<'_>);
