//! The operation queue: rows claimed with `FOR UPDATE SKIP LOCKED` so several servers can share one store;
//! progress, abort requests, heartbeats, and the clean-up of runs interrupted by a crash.

use crate::cached::Cached;
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
    /// The schedule that queued it, when one did (id and name).
    pub schedule: Option<(i64, String)>,
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

pub(crate) const COLS: &str = "o.id, o.type, o.datastore_id, d.name, o.params, o.result, o.message, o.detail, o.status, \
    o.triggered_by, o.abort_requested, o.aborted_by, o.created, o.start_time, o.end_time, o.schedule_id, \
    (SELECT s.name FROM schedules s WHERE s.id = o.schedule_id)";

const VISIBLE: &str = crate::visible!("d.id");

pub(crate) fn op_of(r: &tokio_postgres::Row) -> OperationRecord {
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
        schedule: r
            .get::<_, Option<i64>>(15)
            .map(|id| (id, r.get::<_, Option<String>>(16).unwrap_or_default())),
    }
}

/// How long a running operation whose runner's lock is free may go without a heartbeat before it counts as
/// interrupted. A live runner beats every 5 s and, when its lock session dropped (a metadata store restart),
/// takes the lock again within a second of the store coming back, so twice the beat plus a margin is safe.
pub const STALE_AFTER_SECONDS: f64 = 12.0;

/// The class of the session-level advisory locks that runners hold on the operations they run (`'AsOp'`); the
/// object is the operation id. The two-key form never collides with the one-key locks of migrations.
const OPERATION_LOCK_CLASS: i32 = 0x4173_4f70;

fn lock_key(id: i64) -> i32 {
    // ids beyond 2^31 wrap; two runs 2^31 ids apart holding a lock at once is not a case that happens
    (id.rem_euclid(i64::from(i32::MAX))) as i32
}

/// A session-level advisory lock on one operation, held on a connection of its own (taken out of the pool) for
/// as long as the run lasts. The lock goes when this value is dropped or the session ends, so a sweep that can
/// take the lock knows the runner is gone, whichever server ran it.
pub struct OperationLock {
    client: deadpool_postgres::ClientWrapper,
}

impl OperationLock {
    /// Whether the session holding the lock is still open.
    pub fn is_held(&self) -> bool {
        !self.client.is_closed()
    }
}

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
            .q_one(
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
            .q_opt(
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
            .q_opt(
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

    /// Records progress and the heartbeat; returns whether the run must stop: an abort was requested, or the
    /// run was ended meanwhile (a sweep took it for interrupted).
    pub async fn operation_progress(&self, id: i64, status: &Value) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_one(
                "UPDATE operations SET status = $2, heartbeat = now() WHERE id = $1 \
                 RETURNING abort_requested OR result <> 'running'",
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
        c.exec(
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
        c.exec(
            "UPDATE operations SET result = 'aborted', end_time = now(), aborted_by = $2, \
               message = 'aborted before it started' WHERE id = $1 AND result = 'queued'",
            &[&op.id, &by],
        )
        .await?;
        c.exec(
            "UPDATE operations SET abort_requested = true, aborted_by = $2 WHERE id = $1 AND result = 'running'",
            &[&op.id, &by],
        )
        .await?;
        drop(c);
        self.operation(id, viewer).await
    }

    /// Asks a running operation to stop because its server is shutting down (no user asked for it).
    pub async fn request_stop_for_shutdown(&self, id: i64) -> Result<(), StoreError> {
        self.client()
            .await?
            .exec(
                "UPDATE operations SET abort_requested = true, aborted_by = 'server shutdown' \
                 WHERE id = $1 AND result = 'running'",
                &[&id],
            )
            .await?;
        Ok(())
    }

    /// Queues operation `id` again as a new operation (same type, datastore, parameters, trigger and schedule),
    /// for a run its server stopped at shutdown; returns the new operation's id.
    pub async fn hand_back(&self, id: i64) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .q_one(
                "INSERT INTO operations (type, datastore_id, params, triggered_by, triggered_by_user, schedule_id) \
                 SELECT type, datastore_id, params, triggered_by, triggered_by_user, schedule_id \
                 FROM operations WHERE id = $1 RETURNING id",
                &[&id],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Takes the advisory lock of operation `id` on a session of its own; `None` when another session holds it
    /// (a sweep holds it only while it ends a run it found abandoned).
    pub async fn lock_operation(&self, id: i64) -> Result<Option<OperationLock>, StoreError> {
        let client = deadpool_postgres::Object::take(self.client().await?);
        let got: bool = client
            .q_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&OPERATION_LOCK_CLASS, &lock_key(id)],
            )
            .await?
            .get(0);
        Ok(got.then_some(OperationLock { client }))
    }

    /// Ends as failures the running operations whose runner is gone, and returns their ids: their heartbeat is
    /// older than `stale_after_seconds` and their advisory lock is free (the runner's session ended: a crash, a
    /// kill, a lost connection it did not re-establish). A live runner on any server sharing the store holds its
    /// lock, so its run is left alone however slow its heartbeat. The sweep holds the lock while it writes, so a
    /// runner reconnecting at that moment cannot take the run back.
    pub async fn fail_interrupted(&self, stale_after_seconds: f64) -> Result<Vec<i64>, StoreError> {
        self.fail_interrupted_except(stale_after_seconds, &[]).await
    }

    /// `fail_interrupted`, leaving alone the runs in `running_here` (the sweeping server's own runs, alive even
    /// while their lock session is being re-established after a store outage).
    pub async fn fail_interrupted_except(
        &self,
        stale_after_seconds: f64,
        running_here: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        let c = self.client().await?;
        let candidates = c
            .q(
                "SELECT id FROM operations WHERE result = 'running' \
                   AND (heartbeat IS NULL OR heartbeat < now() - make_interval(secs => $1)) \
                   AND id <> ALL($2) ORDER BY id",
                &[&stale_after_seconds, &running_here],
            )
            .await?;
        let mut failed = Vec::new();
        for row in candidates {
            let id: i64 = row.get(0);
            let key = lock_key(id);
            let free: bool = c
                .q_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&OPERATION_LOCK_CLASS, &key],
                )
                .await?
                .get(0);
            if !free {
                continue;
            }
            let updated = c
                .exec(
                    "UPDATE operations SET result = 'failure', end_time = now(), heartbeat = NULL, \
                       message = 'interrupted by restart: the server running it stopped before it finished', \
                       detail = 'interrupted by restart' \
                     WHERE id = $1 AND result = 'running'",
                    &[&id],
                )
                .await;
            let unlocked = c
                .exec(
                    "SELECT pg_advisory_unlock($1, $2)",
                    &[&OPERATION_LOCK_CLASS, &key],
                )
                .await;
            if let Err(e) = unlocked {
                // never hand a session that may still hold the lock back to the pool
                drop(deadpool_postgres::Object::take(c));
                return Err(e.into());
            }
            if updated? == 1 {
                failed.push(id);
            }
        }
        Ok(failed)
    }

    /// Whether the run must stop: someone asked to abort it, or it was ended meanwhile (a sweep took it for
    /// interrupted while its runner was cut off from the store).
    pub async fn abort_requested(&self, id: i64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                "SELECT abort_requested OR result <> 'running' FROM operations WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    /// Keeps the heartbeat of a running operation fresh.
    pub async fn heartbeat(&self, id: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE operations SET heartbeat = now() WHERE id = $1 AND result = 'running'",
            &[&id],
        )
        .await?;
        Ok(())
    }
}
