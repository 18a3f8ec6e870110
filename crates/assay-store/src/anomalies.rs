//! Scan results: one container scan's anomalies, check metrics, check states and incremental checkpoint are
//! written in one transaction, so a failed or aborted scan leaves nothing half-written. A finding keeps one
//! anomaly across scans by its fingerprint: a repeat updates the open anomaly's count, last sighting and number
//! of sightings (and, archived as a duplicate, keeps the scan's own record); a clean full scan resolves the open
//! anomalies it no longer finds; a resolved finding that comes back reopens its anomaly as recurring (unless the
//! scan asks for new anomalies instead). Also the anomaly API's reads and status changes.

use crate::cached::Cached;
use crate::db::{Store, Viewer};
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// An anomaly found by a scan.
#[derive(Debug, Clone)]
pub struct NewAnomaly {
    /// `record` or `shape`.
    pub kind: &'static str,
    pub anomalous_records_count: i64,
    /// Stable identity of the finding: the same failure found again has the same fingerprint.
    pub fingerprint: String,
    pub message: String,
    pub source_records: Vec<Value>,
    /// The failed checks and what each said.
    pub checks: Vec<(i64, String)>,
    pub tags: Vec<String>,
    pub weight: i32,
}

/// One check's measurement in a scan.
#[derive(Debug, Clone)]
pub struct NewMetric {
    pub check_id: i64,
    pub passed: Option<bool>,
    pub asserted_records: i64,
    pub anomalous_records: i64,
    pub value: Option<f64>,
    pub message: Option<String>,
}

/// Everything one container scan writes.
#[derive(Debug, Clone)]
pub struct ContainerScanWrite {
    pub operation_id: i64,
    pub datastore_id: i64,
    pub container_id: i64,
    pub incremental: bool,
    pub records_processed: i64,
    pub duration_ms: i64,
    pub metrics: Vec<NewMetric>,
    pub anomalies: Vec<NewAnomaly>,
    /// Checks whose SQL failed: they become Invalid with this message.
    pub invalid: Vec<(i64, String)>,
    /// The new incremental checkpoint (only for a successful scan).
    pub checkpoint: Option<String>,
    /// A new anomaly matching an open one becomes a Duplicate (archived) that points at it.
    pub archive_duplicates: bool,
    /// Resolve open anomalies of checks that ran and whose findings did not come back.
    pub auto_resolve: bool,
    /// A finding whose anomaly was resolved reopens it (counted as a recurrence) instead of a new anomaly.
    pub reactivate_recurring: bool,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanWritten {
    pub anomalies: i64,
    pub duplicates: i64,
    pub resolved: i64,
    /// Resolved anomalies whose finding came back and which were reopened (counted in `anomalies` too).
    pub recurring: i64,
    /// (id, uuid) of each anomaly written, in the order given.
    pub ids: Vec<(i64, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedCheck {
    pub check_id: i64,
    pub rule_type: String,
    pub fields: Value,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnomalyRecord {
    pub id: i64,
    pub uuid: String,
    pub operation_id: Option<i64>,
    pub datastore_id: i64,
    pub datastore_name: String,
    pub container_id: i64,
    pub container_name: String,
    pub kind: String,
    pub status: String,
    pub anomalous_records_count: i64,
    pub fingerprint: String,
    pub fingerprint_source: Option<i64>,
    pub message: Option<String>,
    pub description: Option<String>,
    pub tags: Value,
    pub assignee_ids: Value,
    pub source_records: Value,
    pub source_enriched: bool,
    pub weight: i32,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub failed_checks: Vec<FailedCheck>,
    pub is_new: bool,
    pub last_seen: DateTime<Utc>,
    pub times_seen: i32,
    pub recurrences: i32,
}

/// The fields of an anomaly a user may change (`None`: unchanged).
#[derive(Debug, Clone, Copy, Default)]
pub struct AnomalyChange<'a> {
    pub status: Option<&'a str>,
    pub description: Option<&'a str>,
    pub tags: Option<&'a [String]>,
    pub assignees: Option<&'a [i64]>,
}

#[derive(Debug, Clone, Default)]
pub struct AnomalyFilter {
    pub datastore: Option<i64>,
    pub container: Option<i64>,
    pub check: Option<i64>,
    pub operation: Option<i64>,
    pub statuses: Vec<String>,
    /// `None`: open only; `Some(true)`: archived only; `Some(false)`: both.
    pub archived: Option<bool>,
    pub kind: Option<String>,
    pub rule_types: Vec<String>,
    /// Anomalies carrying any of these tags.
    pub tags: Vec<String>,
    /// Created on or after this day (UTC).
    pub start_date: Option<chrono::NaiveDate>,
    /// Created on or before this day (UTC).
    pub end_date: Option<chrono::NaiveDate>,
    /// Whether the source records reached the enrichment datastore.
    pub source_enriched: Option<bool>,
    pub newest_first: bool,
}

const VISIBLE: &str = crate::visible!("a.datastore_id");

const COLS: &str = "a.id, a.uuid::text, a.operation_id, a.datastore_id, d.name, a.container_id, k.name, a.type, a.status, \
    a.anomalous_records_count, a.fingerprint, a.fingerprint_source, a.message, a.description, a.tags, a.assignee_ids, \
    a.source_records, a.source_enriched, a.weight, a.created, a.updated, a.archived_at, \
    coalesce((SELECT jsonb_agg(jsonb_build_object('check_id', q.id, 'rule_type', q.rule_type, 'fields', q.fields, \
      'message', ac.message) ORDER BY q.id) FROM anomaly_checks ac JOIN quality_checks q ON q.id = ac.check_id \
      WHERE ac.anomaly_id = a.id), '[]'), \
    a.operation_id = (SELECT max(o.id) FROM operations o WHERE o.datastore_id = a.datastore_id AND o.type = 'scan'), \
    a.last_seen, a.times_seen, a.recurrences";

const FROM: &str = "anomalies a JOIN containers k ON k.id = a.container_id JOIN datastores d ON d.id = a.datastore_id";

fn anomaly_of(r: &tokio_postgres::Row) -> AnomalyRecord {
    let failed: Value = r.get(22);
    AnomalyRecord {
        id: r.get(0),
        uuid: r.get(1),
        operation_id: r.get(2),
        datastore_id: r.get(3),
        datastore_name: r.get(4),
        container_id: r.get(5),
        container_name: r.get(6),
        kind: r.get(7),
        status: r.get(8),
        anomalous_records_count: r.get(9),
        fingerprint: r.get(10),
        fingerprint_source: r.get(11),
        message: r.get(12),
        description: r.get(13),
        tags: r.get(14),
        assignee_ids: r.get(15),
        source_records: r.get(16),
        source_enriched: r.get(17),
        weight: r.get(18),
        created: r.get(19),
        updated: r.get(20),
        archived_at: r.get(21),
        failed_checks: failed
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| FailedCheck {
                        check_id: f["check_id"].as_i64().unwrap_or(0),
                        rule_type: f["rule_type"].as_str().unwrap_or("").to_string(),
                        fields: f["fields"].clone(),
                        message: f["message"].as_str().unwrap_or("").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        is_new: r.get::<_, Option<bool>>(23).unwrap_or(false),
        last_seen: r.get(24),
        times_seen: r.get(25),
        recurrences: r.get(26),
    }
}

pub const OPEN: [&str; 2] = ["Active", "Acknowledged"];
pub const ARCHIVED: [&str; 4] = ["Resolved", "Invalid", "Duplicate", "Discarded"];

impl Store {
    /// Writes one container scan in one transaction (see the module header).
    pub async fn record_container_scan(
        &self,
        w: &ContainerScanWrite,
    ) -> Result<ScanWritten, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut out = ScanWritten::default();
        let mut fingerprints = Vec::new();
        for a in &w.anomalies {
            fingerprints.push(a.fingerprint.clone());
            // the open anomaly of the same finding (from an earlier scan): one anomaly, seen once more
            let open: Option<i64> = tx
                .q_opt(
                    "UPDATE anomalies SET last_seen = now(), times_seen = times_seen + 1, \
                       anomalous_records_count = $4, updated = now() \
                     WHERE id = (SELECT id FROM anomalies WHERE container_id = $1 AND fingerprint = $2 \
                       AND status IN ('Active', 'Acknowledged') AND operation_id IS DISTINCT FROM $3 \
                       ORDER BY id LIMIT 1) RETURNING id",
                    &[
                        &w.container_id,
                        &a.fingerprint,
                        &w.operation_id,
                        &a.anomalous_records_count,
                    ],
                )
                .await?
                .map(|r| r.get(0));
            if open.is_none() && w.reactivate_recurring {
                // a resolved finding that came back: its anomaly reopens, as found by this scan
                let back = tx
                    .q_opt(
                        "UPDATE anomalies SET status = 'Active', archived_at = NULL, operation_id = $3, \
                           last_seen = now(), times_seen = times_seen + 1, recurrences = recurrences + 1, \
                           anomalous_records_count = $4, message = $5, source_records = $6, \
                           source_enriched = false, updated = now() \
                         WHERE id = (SELECT id FROM anomalies WHERE container_id = $1 AND fingerprint = $2 \
                           AND status = 'Resolved' ORDER BY id DESC LIMIT 1) RETURNING id, uuid::text",
                        &[
                            &w.container_id,
                            &a.fingerprint,
                            &w.operation_id,
                            &a.anomalous_records_count,
                            &a.message,
                            &Value::Array(a.source_records.clone()),
                        ],
                    )
                    .await?;
                if let Some(row) = back {
                    let id: i64 = row.get(0);
                    out.ids.push((id, row.get(1)));
                    out.anomalies += 1;
                    out.recurring += 1;
                    for (check, msg) in &a.checks {
                        tx.exec(
                            "INSERT INTO anomaly_checks (anomaly_id, check_id, message) VALUES ($1, $2, $3) \
                             ON CONFLICT (anomaly_id, check_id) DO UPDATE SET message = EXCLUDED.message",
                            &[&id, check, msg],
                        )
                        .await?;
                    }
                    continue;
                }
            }
            let open = open.filter(|_| w.archive_duplicates);
            let (status, archived) = if open.is_some() {
                out.duplicates += 1;
                ("Duplicate", true)
            } else {
                out.anomalies += 1;
                ("Active", false)
            };
            let row = tx
                .q_one(
                    "INSERT INTO anomalies (uuid, operation_id, datastore_id, container_id, type, status, \
                       anomalous_records_count, fingerprint, fingerprint_source, message, tags, source_records, weight, \
                       archived_at) \
                     VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                       CASE WHEN $13 THEN now() END) RETURNING id, uuid::text",
                    &[
                        &w.operation_id,
                        &w.datastore_id,
                        &w.container_id,
                        &a.kind,
                        &status,
                        &a.anomalous_records_count,
                        &a.fingerprint,
                        &open,
                        &a.message,
                        &json!(a.tags),
                        &Value::Array(a.source_records.clone()),
                        &a.weight,
                        &archived,
                    ],
                )
                .await?;
            let id: i64 = row.get(0);
            out.ids.push((id, row.get(1)));
            for (check, msg) in &a.checks {
                tx.exec(
                    "INSERT INTO anomaly_checks (anomaly_id, check_id, message) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[&id, check, msg],
                )
                .await?;
            }
        }
        let ran: Vec<i64> = w.metrics.iter().map(|m| m.check_id).collect();
        for m in &w.metrics {
            tx.exec(
                "INSERT INTO check_metrics (operation_id, check_id, container_id, passed, asserted_records, \
                   anomalous_records, value, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &w.operation_id,
                    &m.check_id,
                    &w.container_id,
                    &m.passed,
                    &m.asserted_records,
                    &m.anomalous_records,
                    &m.value,
                    &m.message,
                ],
            )
            .await?;
            tx.exec(
                "UPDATE quality_checks SET last_asserted = now(), is_passing = $2 WHERE id = $1",
                &[&m.check_id, &m.passed],
            )
            .await?;
        }
        for (check, msg) in &w.invalid {
            tx.exec(
                "UPDATE quality_checks SET status = 'Invalid', status_message = $2, is_passing = NULL, \
                   deleted_at = coalesce(deleted_at, now()), updated = now() WHERE id = $1",
                &[check, msg],
            )
            .await?;
        }
        if w.auto_resolve {
            // open anomalies whose every failed check ran in this scan and whose finding did not come back
            out.resolved = tx
                .exec(
                    "UPDATE anomalies a SET status = 'Resolved', archived_at = now(), updated = now() \
                     WHERE a.container_id = $1 AND a.status IN ('Active', 'Acknowledged') \
                       AND a.operation_id IS DISTINCT FROM $2 AND NOT (a.fingerprint = ANY($3)) \
                       AND EXISTS (SELECT 1 FROM anomaly_checks ac WHERE ac.anomaly_id = a.id) \
                       AND NOT EXISTS (SELECT 1 FROM anomaly_checks ac WHERE ac.anomaly_id = a.id \
                                       AND NOT (ac.check_id = ANY($4)))",
                    &[&w.container_id, &w.operation_id, &fingerprints, &ran],
                )
                .await? as i64;
        }
        if let Some(cp) = &w.checkpoint {
            tx.exec(
                "UPDATE containers SET incremental_checkpoint = $2 WHERE id = $1",
                &[&w.container_id, cp],
            )
            .await?;
        }
        tx.exec(
            "INSERT INTO container_scans (operation_id, container_id, result, message, incremental, records_processed, \
               anomaly_count, checks_run, checks_failed, checkpoint, duration_ms) \
             VALUES ($1, $2, 'success', $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (operation_id, container_id) DO UPDATE SET result = 'success', message = EXCLUDED.message, \
               records_processed = EXCLUDED.records_processed, anomaly_count = EXCLUDED.anomaly_count, \
               checks_run = EXCLUDED.checks_run, checks_failed = EXCLUDED.checks_failed, \
               checkpoint = EXCLUDED.checkpoint, duration_ms = EXCLUDED.duration_ms",
            &[
                &w.operation_id,
                &w.container_id,
                &w.message,
                &w.incremental,
                &w.records_processed,
                &(out.anomalies + out.duplicates),
                &(w.metrics.len() as i32),
                &(w.metrics.iter().filter(|m| m.passed == Some(false)).count() as i32),
                &w.checkpoint,
                &w.duration_ms,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Marks anomalies whose rows were written to the enrichment store.
    pub async fn mark_enriched(&self, ids: &[i64]) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE anomalies SET source_enriched = true WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
        Ok(())
    }

    /// Records a container scan that did not complete (nothing else of it is written).
    pub async fn record_container_scan_failure(
        &self,
        operation_id: i64,
        container_id: i64,
        result: &str,
        message: &str,
        incremental: bool,
        invalid: &[(i64, String)],
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for (check, msg) in invalid {
            tx.exec(
                "UPDATE quality_checks SET status = 'Invalid', status_message = $2, is_passing = NULL, \
                   deleted_at = coalesce(deleted_at, now()), updated = now() WHERE id = $1",
                &[check, msg],
            )
            .await?;
        }
        tx.exec(
            "INSERT INTO container_scans (operation_id, container_id, result, message, incremental) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (operation_id, container_id) DO UPDATE SET \
               result = EXCLUDED.result, message = EXCLUDED.message",
            &[&operation_id, &container_id, &result, &message, &incremental],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The scans of a container, newest first.
    pub async fn container_scans(
        &self,
        container_id: i64,
        page: i64,
        size: i64,
    ) -> Result<(Vec<Value>, i64), StoreError> {
        let c = self.client().await?;
        let cols = "jsonb_build_object('id', s.id, 'operation_id', s.operation_id, 'container_id', s.container_id, \
            'created', s.created, 'result', s.result, 'message', s.message, 'incremental', s.incremental, \
            'records_processed', s.records_processed, 'anomaly_count', s.anomaly_count, 'checks_run', s.checks_run, \
            'checks_failed', s.checks_failed, 'checkpoint', s.checkpoint, 'duration_ms', s.duration_ms)";
        let (rows, total) = crate::db::paged(
            &c,
            cols,
            "container_scans s",
            "s.container_id = $1",
            "s.id DESC",
            &[&container_id],
            page,
            size,
        )
        .await?;
        Ok((rows.iter().map(|r| r.get(0)).collect(), total))
    }

    pub async fn check_metrics(
        &self,
        check_id: i64,
        page: i64,
        size: i64,
    ) -> Result<(Vec<Value>, i64), StoreError> {
        let c = self.client().await?;
        let cols = "jsonb_build_object('id', m.id, 'operation_id', m.operation_id, 'check_id', m.check_id, \
            'created', m.created, 'passed', m.passed, 'asserted_records', m.asserted_records, \
            'anomalous_records', m.anomalous_records, 'value', m.value, 'message', m.message)";
        let (rows, total) = crate::db::paged(
            &c,
            cols,
            "check_metrics m",
            "m.check_id = $1",
            "m.id DESC",
            &[&check_id],
            page,
            size,
        )
        .await?;
        Ok((rows.iter().map(|r| r.get(0)).collect(), total))
    }

    pub async fn list_anomalies(
        &self,
        viewer: &Viewer,
        f: &AnomalyFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<AnomalyRecord>, i64), StoreError> {
        let c = self.client().await?;
        let archived = match f.archived {
            None => "a.archived_at IS NULL",
            Some(true) => "a.archived_at IS NOT NULL",
            Some(false) => "true",
        };
        let cond = format!(
            "{VISIBLE} AND {archived} AND ($3::bigint IS NULL OR a.datastore_id = $3) \
             AND ($4::bigint IS NULL OR a.container_id = $4) \
             AND ($5::bigint IS NULL OR EXISTS (SELECT 1 FROM anomaly_checks ac WHERE ac.anomaly_id = a.id AND ac.check_id = $5)) \
             AND ($6::bigint IS NULL OR a.operation_id = $6) \
             AND (cardinality($7::text[]) = 0 OR a.status = ANY($7)) AND ($8::text IS NULL OR a.type = $8) \
             AND (cardinality($9::text[]) = 0 OR EXISTS (SELECT 1 FROM anomaly_checks ac JOIN quality_checks q \
                  ON q.id = ac.check_id WHERE ac.anomaly_id = a.id AND q.rule_type = ANY($9))) \
             AND (cardinality($10::text[]) = 0 OR a.tags ?| $10) \
             AND ($11::date IS NULL OR a.created >= $11::date::timestamp AT TIME ZONE 'UTC') \
             AND ($12::date IS NULL OR a.created < ($12::date + 1)::timestamp AT TIME ZONE 'UTC') \
             AND ($13::bool IS NULL OR a.source_enriched = $13)"
        );
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
            &viewer.is_admin,
            &viewer.user_id,
            &f.datastore,
            &f.container,
            &f.check,
            &f.operation,
            &f.statuses,
            &f.kind,
            &f.rule_types,
            &f.tags,
            &f.start_date,
            &f.end_date,
            &f.source_enriched,
        ];
        let order = if f.newest_first { "a.id DESC" } else { "a.id" };
        let (rows, total) =
            crate::db::paged(&c, COLS, FROM, &cond, order, &args, page, size).await?;
        Ok((rows.iter().map(anomaly_of).collect(), total))
    }

    pub async fn anomaly(&self, id: i64, viewer: &Viewer) -> Result<AnomalyRecord, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!("SELECT {COLS} FROM {FROM} WHERE a.id = $3 AND {VISIBLE}"),
                &[&viewer.is_admin, &viewer.user_id, &id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("anomaly {id} not found")))?;
        Ok(anomaly_of(&row))
    }

    /// Sets an open status (`Active`/`Acknowledged`) and optionally description, tags and assignees.
    pub async fn update_anomaly(
        &self,
        id: i64,
        status: Option<&str>,
        description: Option<&str>,
        tags: Option<&[String]>,
        assignees: Option<&[i64]>,
    ) -> Result<(), StoreError> {
        self.update_anomalies(&[(
            id,
            AnomalyChange {
                status,
                description,
                tags,
                assignees,
            },
        )])
        .await
    }

    /// Changes several anomalies in one transaction (all or none; one notification for their status changes).
    pub async fn update_anomalies(
        &self,
        changes: &[(i64, AnomalyChange<'_>)],
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for (id, ch) in changes {
            let n = tx
                .exec(
                    "UPDATE anomalies SET status = coalesce($2, status), \
                       archived_at = CASE WHEN $2::text IS NULL THEN archived_at ELSE NULL END, \
                       description = coalesce($3, description), tags = coalesce($4, tags), \
                       assignee_ids = coalesce($5, assignee_ids), updated = now() WHERE id = $1",
                    &[
                        id,
                        &ch.status,
                        &ch.description,
                        &ch.tags.map(|t| json!(t)),
                        &ch.assignees.map(|a| json!(a)),
                    ],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("anomaly {id} not found")));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Archives with an archived status, or deletes.
    pub async fn delete_anomaly(
        &self,
        id: i64,
        archive: bool,
        status: &str,
    ) -> Result<(), StoreError> {
        self.delete_anomalies(&[(id, archive, status)]).await
    }

    /// Archives (with an archived status) or deletes several anomalies in one transaction: all or none, and one
    /// notification for their status changes.
    pub async fn delete_anomalies(&self, items: &[(i64, bool, &str)]) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for (id, archive, status) in items {
            let n = if *archive {
                tx.exec(
                    "UPDATE anomalies SET status = $2, archived_at = coalesce(archived_at, now()), updated = now() \
                     WHERE id = $1",
                    &[id, status],
                )
                .await?
            } else {
                tx.exec("DELETE FROM anomalies WHERE id = $1", &[id])
                    .await?
            };
            if n == 0 {
                return Err(StoreError::NotFound(format!("anomaly {id} not found")));
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
