//! What the operator's probes and metrics read from the store: whether every migration this build knows is
//! applied, the work waiting (queued operations, the notification outbox) and the connection pool's use.

use crate::cached::Cached;
use crate::db::{Store, embedded};
use crate::error::StoreError;

/// The work waiting in the store, on every server sharing it.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    pub operations_queued: i64,
    /// Seconds since the oldest queued operation was queued; 0 with none queued.
    pub oldest_queued_age_seconds: f64,
    /// Notification events not yet matched to flows plus deliveries still pending.
    pub outbox: i64,
}

impl Store {
    /// Whether the store's schema is at this build's newest migration (another server of an older build, or a
    /// restored backup, may leave it behind).
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let newest = embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0);
        let applied: Option<i32> = self
            .client()
            .await?
            .q_one("SELECT max(version) FROM assay_schema_history", &[])
            .await?
            .get(0);
        Ok(applied.map(i64::from).unwrap_or(0) >= newest)
    }

    /// The queued operations and the notification outbox, in one statement (each count reads a partial
    /// index or the small queued set).
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        let row = self
            .client()
            .await?
            .q_one(
                "SELECT (SELECT count(*) FROM operations WHERE result = 'queued'), \
                        (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created)), 0)::float8 \
                           FROM operations WHERE result = 'queued'), \
                        (SELECT count(*) FROM flow_events WHERE dispatched_at IS NULL) \
                      + (SELECT count(*) FROM action_executions WHERE status = 'pending')",
                &[],
            )
            .await?;
        Ok(Backlog {
            operations_queued: row.get(0),
            oldest_queued_age_seconds: row.get(1),
            outbox: row.get(2),
        })
    }

    /// This server's metadata connections: (in use, idle).
    pub fn pool_use(&self) -> (i64, i64) {
        let s = self.pool.status();
        let idle = s.available as i64;
        (s.size as i64 - idle, idle)
    }
}
