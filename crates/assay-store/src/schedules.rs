//! Schedules and their instants. A due instant is claimed by inserting (schedule, instant): the primary key lets
//! one server win however many share the store. The claim, the operation it queues (or the reason it is skipped:
//! the schedule's previous run has not ended) and the instant's outcome commit together, so an instant is never
//! claimed without its outcome, and never queued twice.

use crate::cached::Cached;
use crate::db::{Store, Viewer};
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ScheduleRecord {
    pub id: i64,
    pub name: String,
    pub datastore_id: i64,
    pub datastore_name: String,
    pub op_type: String,
    pub params: Value,
    pub cron: Option<String>,
    pub interval_seconds: Option<i64>,
    pub enabled: bool,
    /// Instants count from here (the creation, or the last change of the cadence or of `enabled`).
    pub anchor: DateTime<Utc>,
    pub created_by: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// The newest claimed instant, if any.
    pub last: Option<InstantRecord>,
}

/// What became of one due instant.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantRecord {
    pub instant: DateTime<Utc>,
    /// `queued` or `skipped`.
    pub outcome: String,
    pub operation_id: Option<i64>,
    pub reason: Option<String>,
    pub fired_at: DateTime<Utc>,
}

/// A schedule as written by a user.
#[derive(Debug, Clone)]
pub struct ScheduleInput {
    pub name: String,
    pub datastore_id: i64,
    pub op_type: String,
    pub params: Value,
    pub cron: Option<String>,
    pub interval_seconds: Option<i64>,
    pub enabled: bool,
}

/// The outcome of firing a due instant.
#[derive(Debug, Clone, PartialEq)]
pub enum Fired {
    /// This server claimed the instant and queued the operation.
    Queued(i64),
    /// This server claimed the instant; the previous run had not ended, so nothing was queued.
    Skipped(String),
    /// Another server had claimed the instant (or the schedule was disabled or deleted meanwhile).
    Taken,
}

const VISIBLE: &str = crate::visible!("s.datastore_id");

const COLS: &str = "s.id, s.name, s.datastore_id, d.name, s.type, s.params, s.cron, s.interval_seconds, s.enabled, \
    s.anchor, s.created_by, s.created, s.updated, i.instant, i.outcome, i.operation_id, i.reason, i.fired_at";

const FROM: &str = "schedules s JOIN datastores d ON d.id = s.datastore_id \
    LEFT JOIN LATERAL (SELECT * FROM schedule_instants x WHERE x.schedule_id = s.id ORDER BY x.instant DESC LIMIT 1) i \
    ON true";

fn schedule_of(r: &tokio_postgres::Row) -> ScheduleRecord {
    let instant: Option<DateTime<Utc>> = r.get(13);
    ScheduleRecord {
        id: r.get(0),
        name: r.get(1),
        datastore_id: r.get(2),
        datastore_name: r.get(3),
        op_type: r.get(4),
        params: r.get(5),
        cron: r.get(6),
        interval_seconds: r.get(7),
        enabled: r.get(8),
        anchor: r.get(9),
        created_by: r.get(10),
        created: r.get(11),
        updated: r.get(12),
        last: instant.map(|instant| InstantRecord {
            instant,
            outcome: r.get(14),
            operation_id: r.get(15),
            reason: r.get(16),
            fired_at: r.get(17),
        }),
    }
}

fn conflict(e: tokio_postgres::Error, name: &str) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(format!(
            "the datastore already has a schedule named '{name}'; choose another name"
        ))
    } else {
        e.into()
    }
}

impl Store {
    pub async fn create_schedule(&self, s: &ScheduleInput, by: &str) -> Result<i64, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_one(
                "INSERT INTO schedules (name, datastore_id, type, params, cron, interval_seconds, enabled, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &s.name,
                    &s.datastore_id,
                    &s.op_type,
                    &s.params,
                    &s.cron,
                    &s.interval_seconds,
                    &s.enabled,
                    &by,
                ],
            )
            .await
            .map_err(|e| conflict(e, &s.name))?;
        Ok(row.get(0))
    }

    /// Replaces a schedule's definition. A new cadence, or turning it on, starts counting instants anew, so
    /// instants that passed while it was off are not run.
    pub async fn update_schedule(&self, id: i64, s: &ScheduleInput) -> Result<(), StoreError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE schedules SET name = $2, type = $3, params = $4, \
                   anchor = CASE WHEN cron IS DISTINCT FROM $5 OR interval_seconds IS DISTINCT FROM $6 \
                                  OR (NOT enabled AND $7) THEN now() ELSE anchor END, \
                   cron = $5, interval_seconds = $6, enabled = $7, updated = now() \
                 WHERE id = $1",
                &[
                    &id,
                    &s.name,
                    &s.op_type,
                    &s.params,
                    &s.cron,
                    &s.interval_seconds,
                    &s.enabled,
                ],
            )
            .await
            .map_err(|e| conflict(e, &s.name))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("schedule {id} not found")));
        }
        Ok(())
    }

    pub async fn delete_schedule(&self, id: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        let n = c
            .exec("DELETE FROM schedules WHERE id = $1", &[&id])
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("schedule {id} not found")));
        }
        Ok(())
    }

    /// A schedule the viewer may see (through its datastore's teams).
    pub async fn schedule(&self, id: i64, viewer: &Viewer) -> Result<ScheduleRecord, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!("SELECT {COLS} FROM {FROM} WHERE s.id = $3 AND {VISIBLE}"),
                &[&viewer.is_admin, &viewer.user_id, &id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("schedule {id} not found")))?;
        Ok(schedule_of(&row))
    }

    /// The schedules the viewer may see, of one datastore or all, oldest first.
    pub async fn list_schedules(
        &self,
        viewer: &Viewer,
        datastore: Option<i64>,
        page: i64,
        size: i64,
    ) -> Result<(Vec<ScheduleRecord>, i64), StoreError> {
        let c = self.client().await?;
        let cond = format!("{VISIBLE} AND ($3::bigint IS NULL OR s.datastore_id = $3)");
        let (rows, total) = crate::db::paged(
            &c,
            COLS,
            FROM,
            &cond,
            "s.id",
            &[&viewer.is_admin, &viewer.user_id, &datastore],
            page,
            size,
        )
        .await?;
        Ok((rows.iter().map(schedule_of).collect(), total))
    }

    /// Every enabled schedule, for the scheduler.
    pub async fn enabled_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                &format!("SELECT {COLS} FROM {FROM} WHERE s.enabled ORDER BY s.id"),
                &[],
            )
            .await?;
        Ok(rows.iter().map(schedule_of).collect())
    }

    /// Which datastores of `ids` have an enabled schedule.
    pub async fn scheduled_datastores(&self, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                "SELECT DISTINCT datastore_id FROM schedules WHERE enabled AND datastore_id = ANY($1)",
                &[&ids],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// A schedule's instants, newest first.
    pub async fn schedule_instants(
        &self,
        id: i64,
        page: i64,
        size: i64,
    ) -> Result<(Vec<InstantRecord>, i64), StoreError> {
        let c = self.client().await?;
        let (rows, total) = crate::db::paged(
            &c,
            "instant, outcome, operation_id, reason, fired_at",
            "schedule_instants",
            "schedule_id = $1",
            "instant DESC",
            &[&id],
            page,
            size,
        )
        .await?;
        Ok((
            rows.iter()
                .map(|r| InstantRecord {
                    instant: r.get(0),
                    outcome: r.get(1),
                    operation_id: r.get(2),
                    reason: r.get(3),
                    fired_at: r.get(4),
                })
                .collect(),
            total,
        ))
    }

    /// Claims `instant` of an enabled schedule and queues its operation, or records the instant as skipped when
    /// the schedule's previous run is still queued or running; all in one transaction.
    pub async fn fire_schedule(
        &self,
        id: i64,
        instant: DateTime<Utc>,
    ) -> Result<Fired, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // the schedule as it is now, locked against a concurrent edit or delete until this commits
        let Some(s) = tx
            .q_opt(
                "SELECT type, datastore_id, params, name FROM schedules WHERE id = $1 AND enabled FOR SHARE",
                &[&id],
            )
            .await?
        else {
            return Ok(Fired::Taken);
        };
        let (op_type, datastore_id, params, name): (String, i64, Value, String) =
            (s.get(0), s.get(1), s.get(2), s.get(3));
        let claimed = tx
            .q_opt(
                "INSERT INTO schedule_instants (schedule_id, instant, outcome) VALUES ($1, $2, 'queued') \
                 ON CONFLICT DO NOTHING RETURNING 1",
                &[&id, &instant],
            )
            .await?;
        if claimed.is_none() {
            return Ok(Fired::Taken);
        }
        let running = tx
            .q_opt(
                "SELECT id, result FROM operations WHERE schedule_id = $1 AND result IN ('queued', 'running') \
                 ORDER BY id LIMIT 1",
                &[&id],
            )
            .await?;
        let fired = match running {
            Some(r) => {
                let (op, result): (i64, String) = (r.get(0), r.get(1));
                let reason = format!("the previous run (operation {op}) was still {result}");
                tx.exec(
                    "UPDATE schedule_instants SET outcome = 'skipped', reason = $3 \
                     WHERE schedule_id = $1 AND instant = $2",
                    &[&id, &instant, &reason],
                )
                .await?;
                Fired::Skipped(reason)
            }
            None => {
                let by = format!("schedule {name}");
                let op: i64 = tx
                    .q_one(
                        "INSERT INTO operations (type, datastore_id, params, triggered_by, schedule_id) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                        &[&op_type, &datastore_id, &params, &by, &id],
                    )
                    .await?
                    .get(0);
                tx.exec(
                    "UPDATE schedule_instants SET operation_id = $3 WHERE schedule_id = $1 AND instant = $2",
                    &[&id, &instant, &op],
                )
                .await?;
                Fired::Queued(op)
            }
        };
        tx.commit().await?;
        Ok(fired)
    }
}
