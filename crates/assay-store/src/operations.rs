//! The operation queue: rows claimed with `FOR UPDATE SKIP LOCKED` so several servers can share one store;
//! progress, abort requests, heartbeats, and the clean-up of runs interrupted by a crash.

use crate::db::{Store, Viewer};
use crate::error::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct OperationRecord {
    pub id: i64,
    pub op_type: String,
    pub datastore_id: i64,
    pub datastore_name: String,
    pub params: Value,
    pub result: String,
    pub message: Option<String>,
    pub detail: Option<String>,
    pub status: Value,
    pub triggered_by: String,
    pub abort_requested: bool,
    pub aborted_by: Option<String>,
    pub created: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct OperationFilter {
    pub datastores: Vec<i64>,
    pub op_type: Option<String>,
    pub results: Vec<String>,
    pub finished: Option<bool>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub ascending: bool,
}

const COLS: &str = "o.id, o.type, o.datastore_id, d.name, o.params, o.result, o.message, o.detail, o.status, \
    o.triggered_by, o.abort_requested, o.aborted_by, o.created, o.start_time, o.end_time";

const VISIBLE: &str = crate::visible!("d.id");

fn op_of(r: &tokio_postgres::Row) -> OperationRecord {
    OperationRecord {
        id: r.get(0),
        op_type: r.get(1),
        datastore_id: r.get(2),
        datastore_name: r.get(3),
        params: r.get(4),
        result: r.get(5),
        message: r.get(6),
        detail: r.get(7),
        status: r.get(8),
        triggered_by: r.get(9),
        abort_requested: r.get(10),
        aborted_by: r.get(11),
        created: r.get(12),
        start_time: r.get(13),
        end_time: r.get(14),
    }
}

/// How long a running operation may go without a heartbeat before it counts as interrupted.
pub const STALE_AFTER_SECONDS: f64 = 30.0;

impl Store {
    pub async fn enqueue_operation(
        &self,
        op_type: &str,
        datastore_id: i64,
        params: &Value,
        triggered_by: &str,
        user_id: Option<i64>,
    ) -> Result<OperationRecord, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "INSERT INTO operations (type, datastore_id, params, triggered_by, triggered_by_user) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&op_type, &datastore_id, params, &triggered_by, &user_id],
            )
            .await?;
        drop(c);
        self.operation(row.get(0), &Viewer::admin(0)).await
    }

    pub async fn operation(&self, id: i64, viewer: &Viewer) -> Result<OperationRecord, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT {COLS} FROM operations o JOIN datastores d ON d.id = o.datastore_id \
                     WHERE o.id = $3 AND {VISIBLE}"
                ),
                &[&viewer.is_admin, &viewer.user_id, &id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("operation {id} not found")))?;
        Ok(op_of(&row))
    }

    pub async fn list_operations(
        &self,
        viewer: &Viewer,
        f: &OperationFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<OperationRecord>, i64), StoreError> {
        let c = self.client().await?;
        let cond = format!(
            "{VISIBLE} AND (cardinality($3::bigint[]) = 0 OR o.datastore_id = ANY($3)) \
             AND ($4::text IS NULL OR o.type = $4) AND (cardinality($5::text[]) = 0 OR o.result = ANY($5)) \
             AND ($6::bool IS NULL OR (o.end_time IS NOT NULL) = $6) \
             AND ($7::date IS NULL OR o.created >= $7::date) \
             AND ($8::date IS NULL OR o.created < $8::date + 1)"
        );
        let from = "operations o JOIN datastores d ON d.id = o.datastore_id";
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &viewer.is_admin,
            &viewer.user_id,
            &f.datastores,
            &f.op_type,
            &f.results,
            &f.finished,
            &f.start_date,
            &f.end_date,
        ];
        let order = if f.ascending {
            "o.created ASC, o.id ASC"
        } else {
            "o.created DESC, o.id DESC"
        };
        let (rows, total) =
            crate::db::paged(&c, COLS, from, &cond, order, &args, page, size).await?;
        Ok((rows.iter().map(op_of).collect(), total))
    }

    /// Claims the oldest queued operation for `worker`, marking it running.
    pub async fn claim_operation(
        &self,
        worker: &str,
    ) -> Result<Option<OperationRecord>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "UPDATE operations SET result = 'running', start_time = now(), worker = $1, heartbeat = now() \
                 WHERE id = (SELECT id FROM operations WHERE result = 'queued' ORDER BY id \
                             FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id",
                &[&worker],
            )
            .await?;
        drop(c);
        match row {
            Some(r) => Ok(Some(self.operation(r.get(0), &Viewer::admin(0)).await?)),
            None => Ok(None),
        }
    }

    /// Records progress and the heartbeat; returns whether an abort was requested.
    pub async fn operation_progress(&self, id: i64, status: &Value) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "UPDATE operations SET status = $2, heartbeat = now() WHERE id = $1 RETURNING abort_requested",
                &[&id, status],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Ends a running operation with its result; a no-op when it has ended already.
    pub async fn finish_operation(
        &self,
        id: i64,
        result: &str,
        message: Option<&str>,
        detail: Option<&str>,
        status: &Value,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "UPDATE operations SET result = $2, message = $3, detail = $4, status = $5, end_time = now(), \
               heartbeat = NULL WHERE id = $1 AND end_time IS NULL",
            &[&id, &result, &message, &detail, status],
        )
        .await?;
        Ok(())
    }

    /// Requests an abort: a queued operation ends at once as aborted; a running one is flagged for its runner;
    /// a finished one is left as it is.
    pub async fn request_abort(
        &self,
        id: i64,
        viewer: &Viewer,
        by: &str,
    ) -> Result<OperationRecord, StoreError> {
        let op = self.operation(id, viewer).await?;
        let c = self.client().await?;
        c.execute(
            "UPDATE operations SET result = 'aborted', end_time = now(), aborted_by = $2, \
               message = 'aborted before it started' WHERE id = $1 AND result = 'queued'",
            &[&op.id, &by],
        )
        .await?;
        c.execute(
            "UPDATE operations SET abort_requested = true, aborted_by = $2 WHERE id = $1 AND result = 'running'",
            &[&op.id, &by],
        )
        .await?;
        drop(c);
        self.operation(id, viewer).await
    }

    /// Ends as failures the running operations whose runner stopped beating (a crash or a kill), and returns
    /// their ids.
    pub async fn fail_interrupted(&self, stale_after_seconds: f64) -> Result<Vec<i64>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "UPDATE operations SET result = 'failure', end_time = now(), heartbeat = NULL, \
                   message = 'interrupted by restart: the server running it stopped before it finished', \
                   detail = 'interrupted by restart' \
                 WHERE result = 'running' AND (heartbeat IS NULL OR heartbeat < now() - make_interval(secs => $1)) \
                 RETURNING id",
                &[&stale_after_seconds],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Keeps the heartbeat of a running operation fresh.
    /// Whether someone asked to abort the operation.
    pub async fn abort_requested(&self, id: i64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT abort_requested FROM operations WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    pub async fn heartbeat(&self, id: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "UPDATE operations SET heartbeat = now() WHERE id = $1 AND result = 'running'",
            &[&id],
        )
        .await?;
        Ok(())
    }
}
