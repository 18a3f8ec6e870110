//! Quality checks. Profiles upsert the checks they infer (keyed by rule and fields); a check a user edited
//! is no longer inferred and is never overwritten.

use crate::cached::Cached;
use crate::db::{Store, Viewer};
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct InferredCheck {
    pub key: String,
    pub rule_type: String,
    pub description: String,
    pub fields: Vec<String>,
    pub coverage: Option<f64>,
    pub properties: Value,
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CheckSync {
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckRecord {
    pub id: i64,
    pub container_id: i64,
    pub container_name: String,
    pub container_type: String,
    pub datastore_id: i64,
    pub rule_type: String,
    pub description: String,
    pub fields: Vec<String>,
    pub coverage: Option<f64>,
    pub filter: Option<String>,
    pub properties: Value,
    pub status: String,
    pub inferred: bool,
    pub tags: Value,
    pub additional_metadata: Value,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub anomaly_message_field: Option<String>,
    pub owner_id: Option<i64>,
    pub weight: i32,
    pub last_asserted: Option<DateTime<Utc>>,
    pub is_passing: Option<bool>,
    pub status_message: Option<String>,
    pub last_editor: Option<String>,
    pub anomaly_count: i64,
}

const VISIBLE: &str = crate::visible!("k.datastore_id");

const COLS: &str = "q.id, q.container_id, k.name, k.table_type, k.datastore_id, q.rule_type, q.description, q.fields, \
    q.coverage, q.filter, q.properties, q.status, q.inferred, q.tags, q.additional_metadata, q.created, q.updated, \
    q.deleted_at, q.anomaly_message_field, q.owner_id, q.weight, q.last_asserted, q.is_passing, q.status_message, \
    q.last_editor, (SELECT count(*) FROM anomaly_checks ac JOIN anomalies a ON a.id = ac.anomaly_id \
    WHERE ac.check_id = q.id AND a.archived_at IS NULL)";

fn check_of(r: &tokio_postgres::Row) -> CheckRecord {
    let fields: Value = r.get(7);
    CheckRecord {
        id: r.get(0),
        container_id: r.get(1),
        container_name: r.get(2),
        container_type: r.get(3),
        datastore_id: r.get(4),
        rule_type: r.get(5),
        description: r.get(6),
        fields: fields
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        coverage: r.get(8),
        filter: r.get(9),
        properties: r.get(10),
        status: r.get(11),
        inferred: r.get(12),
        tags: r.get(13),
        additional_metadata: r.get(14),
        created: r.get(15),
        updated: r.get(16),
        deleted_at: r.get(17),
        anomaly_message_field: r.get(18),
        owner_id: r.get(19),
        weight: r.get(20),
        last_asserted: r.get(21),
        is_passing: r.get(22),
        status_message: r.get(23),
        last_editor: r.get(24),
        anomaly_count: r.get(25),
    }
}

/// An authored check (create), or the full new definition of one (update: `container_id` and `rule_type` are
/// then ignored).
#[derive(Debug, Clone)]
pub struct CheckInput {
    pub container_id: i64,
    pub rule_type: String,
    pub description: String,
    pub fields: Vec<String>,
    pub coverage: Option<f64>,
    pub filter: Option<String>,
    pub properties: Value,
    pub status: String,
    pub tags: Vec<String>,
    pub additional_metadata: Value,
    pub anomaly_message_field: Option<String>,
    pub owner_id: Option<i64>,
}

/// A check as a scan runs it.
#[derive(Debug, Clone)]
pub struct ScanCheckRecord {
    pub id: i64,
    pub rule_type: String,
    pub fields: Vec<String>,
    pub coverage: Option<f64>,
    pub filter: Option<String>,
    pub properties: Value,
    pub tags: Value,
    pub weight: i32,
    pub description: String,
    pub additional_metadata: Value,
}

#[derive(Debug, Clone, Default)]
pub struct CheckFilter {
    pub datastore: Option<i64>,
    pub containers: Vec<i64>,
    pub rule_types: Vec<String>,
    pub status: Option<String>,
    pub archived_only: bool,
    pub include_archived: bool,
    /// Checks carrying any of these tags.
    pub tags: Vec<String>,
    /// Only checks whose last assertion passed (`true`) or failed (`false`).
    pub passing: Option<bool>,
}

impl Store {
    /// Upserts a container's inferred checks in one transaction.
    pub async fn upsert_inferred_checks(
        &self,
        container_id: i64,
        checks: &[InferredCheck],
    ) -> Result<CheckSync, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let container_name: String = tx
            .q_one(
                "SELECT name FROM containers WHERE id = $1",
                &[&container_id],
            )
            .await?
            .get(0);
        let mut out = CheckSync::default();
        for k in checks {
            let row = tx
                .q_opt(
                    "INSERT INTO quality_checks AS q (container_id, rule_type, description, fields, coverage, \
                       properties, status, inferred, inference_key, additional_metadata) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, \
                       jsonb_build_object('_qualytics_check_uid', $9::text)) \
                     ON CONFLICT (container_id, inference_key) DO UPDATE SET \
                       description = EXCLUDED.description, coverage = EXCLUDED.coverage, \
                       properties = EXCLUDED.properties, updated = now(), \
                       status = CASE WHEN q.archived_by_profile THEN EXCLUDED.status ELSE q.status END, \
                       status_message = CASE WHEN q.archived_by_profile THEN NULL ELSE q.status_message END, \
                       deleted_at = CASE WHEN q.archived_by_profile THEN NULL ELSE q.deleted_at END, \
                       archived_by_profile = false \
                     WHERE q.inferred AND (q.deleted_at IS NULL OR q.archived_by_profile) \
                       AND (q.properties IS DISTINCT FROM EXCLUDED.properties \
                            OR q.coverage IS DISTINCT FROM EXCLUDED.coverage OR q.archived_by_profile) \
                     RETURNING (xmax = 0)",
                    &[
                        &container_id,
                        &k.rule_type,
                        &k.description,
                        &serde_json::json!(k.fields),
                        &k.coverage,
                        &k.properties,
                        &k.status,
                        &k.key,
                        &assay_core::rules::check_uid(&container_name, &k.rule_type, &k.fields),
                    ],
                )
                .await?;
            match row.map(|r| r.get::<_, bool>(0)) {
                Some(true) => out.added += 1,
                Some(false) => out.updated += 1,
                None => out.unchanged += 1,
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Archives the container's inferred checks that a full profile no longer infers (`keep` holds the keys it
    /// did infer): those named in `reasons` with their reason, the others as no longer supported. Checks a user
    /// edited are authored, not inferred, and stay. Returns how many were archived.
    pub async fn archive_unsupported_inferred(
        &self,
        container_id: i64,
        keep: &[String],
        reasons: &[(String, String)],
    ) -> Result<i64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut archived = 0;
        for (key, why) in reasons {
            archived += tx
                .exec(
                    "UPDATE quality_checks SET deleted_at = now(), status = 'Discarded', status_message = $3, \
                       archived_by_profile = true, updated = now() \
                     WHERE container_id = $1 AND inference_key = $2 AND inferred AND deleted_at IS NULL",
                    &[&container_id, key, why],
                )
                .await? as i64;
        }
        archived += tx
            .exec(
                "UPDATE quality_checks SET deleted_at = now(), status = 'Discarded', \
                   status_message = 'archived: the latest full profile no longer infers it', \
                   archived_by_profile = true, updated = now() \
                 WHERE container_id = $1 AND inferred AND deleted_at IS NULL AND inference_key IS NOT NULL \
                   AND NOT (inference_key = ANY($2))",
                &[&container_id, &keep],
            )
            .await? as i64;
        tx.commit().await?;
        Ok(archived)
    }

    pub async fn list_checks(
        &self,
        viewer: &Viewer,
        f: &CheckFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<CheckRecord>, i64), StoreError> {
        let c = self.client().await?;
        let archived = if f.archived_only {
            "q.deleted_at IS NOT NULL"
        } else if f.include_archived {
            "true"
        } else {
            "q.deleted_at IS NULL"
        };
        let cond = format!(
            "{VISIBLE} AND {archived} AND ($3::bigint IS NULL OR k.datastore_id = $3) \
             AND (cardinality($4::bigint[]) = 0 OR q.container_id = ANY($4)) \
             AND (cardinality($5::text[]) = 0 OR q.rule_type = ANY($5)) AND ($6::text IS NULL OR q.status = $6) \
             AND (cardinality($7::text[]) = 0 OR q.tags ?| $7) AND ($8::boolean IS NULL OR q.is_passing = $8)"
        );
        let from = "quality_checks q JOIN containers k ON k.id = q.container_id";
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &viewer.is_admin,
            &viewer.user_id,
            &f.datastore,
            &f.containers,
            &f.rule_types,
            &f.status,
            &f.tags,
            &f.passing,
        ];
        let (rows, total) =
            crate::db::paged(&c, COLS, from, &cond, "q.id", &args, page, size).await?;
        Ok((rows.iter().map(check_of).collect(), total))
    }

    pub async fn check(&self, id: i64, viewer: &Viewer) -> Result<CheckRecord, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!("SELECT {COLS} FROM quality_checks q JOIN containers k ON k.id = q.container_id WHERE q.id = $3 AND {VISIBLE}"),
                &[&viewer.is_admin, &viewer.user_id, &id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("quality check {id} not found")))?;
        Ok(check_of(&row))
    }

    pub async fn create_check(&self, k: &CheckInput, editor: &str) -> Result<i64, StoreError> {
        let c = self.client().await?;
        let mut metadata = k.additional_metadata.clone();
        if metadata.get("_qualytics_check_uid").is_none() {
            // a portable id, unique within the container, so export → import round trips update this check
            let name: String = c
                .q_one(
                    "SELECT name FROM containers WHERE id = $1",
                    &[&k.container_id],
                )
                .await?
                .get(0);
            let base = assay_core::rules::check_uid(&name, &k.rule_type, &k.fields);
            let taken: Vec<String> = c
                .q(
                    "SELECT additional_metadata ->> '_qualytics_check_uid' FROM quality_checks \
                     WHERE container_id = $1 AND additional_metadata ? '_qualytics_check_uid'",
                    &[&k.container_id],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut uid = base.clone();
            let mut n = 2;
            while taken.contains(&uid) {
                uid = format!("{base}_{n}");
                n += 1;
            }
            if let Some(m) = metadata.as_object_mut() {
                m.insert("_qualytics_check_uid".into(), Value::String(uid));
            }
        }
        let row = c
            .q_one(
                "INSERT INTO quality_checks (container_id, rule_type, description, fields, coverage, filter, properties, \
                   status, inferred, tags, additional_metadata, anomaly_message_field, owner_id, last_editor) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false, $9, $10, $11, $12, $13) RETURNING id",
                &[
                    &k.container_id,
                    &k.rule_type,
                    &k.description,
                    &serde_json::json!(k.fields),
                    &k.coverage,
                    &k.filter,
                    &k.properties,
                    &k.status,
                    &serde_json::json!(k.tags),
                    &metadata,
                    &k.anomaly_message_field,
                    &k.owner_id,
                    &editor,
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Replaces a check's definition if it was not changed since `read_at` (its `updated` when it was read);
    /// `false` when it was, so the caller can read it again and redo its edit. Changing fields, coverage,
    /// filter or properties makes an inferred check authored (profiles leave it alone from then on);
    /// description, tags, metadata and status do not.
    pub async fn update_check(
        &self,
        id: i64,
        k: &CheckInput,
        editor: &str,
        read_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE quality_checks SET \
                   inferred = inferred AND fields = $3 AND coverage IS NOT DISTINCT FROM $4 \
                              AND filter IS NOT DISTINCT FROM $5 AND properties = $6, \
                   description = $2, fields = $3, coverage = $4, filter = $5, properties = $6, status = $7, \
                   tags = $8, additional_metadata = $9, anomaly_message_field = $10, \
                   owner_id = coalesce($11, owner_id), last_editor = $12, \
                   updated = greatest(clock_timestamp(), updated + interval '1 microsecond'), \
                   deleted_at = CASE WHEN $7 IN ('Active', 'Draft') THEN NULL ELSE deleted_at END, \
                   status_message = CASE WHEN $7 IN ('Active', 'Draft') THEN NULL ELSE status_message END, \
                   archived_by_profile = false \
                 WHERE id = $1 AND updated = $13",
                &[
                    &id,
                    &k.description,
                    &serde_json::json!(k.fields),
                    &k.coverage,
                    &k.filter,
                    &k.properties,
                    &k.status,
                    &serde_json::json!(k.tags),
                    &k.additional_metadata,
                    &k.anomaly_message_field,
                    &k.owner_id,
                    &editor,
                    &read_at,
                ],
            )
            .await?;
        if n == 1 {
            return Ok(true);
        }
        let exists = c
            .q_opt("SELECT 1 FROM quality_checks WHERE id = $1", &[&id])
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound(format!(
                "quality check {id} not found"
            )));
        }
        Ok(false)
    }

    /// Archives (`status` Discarded or Invalid, `deleted_at` set) or deletes a check; with `delete_anomalies`
    /// its anomalies go too.
    pub async fn delete_check(
        &self,
        id: i64,
        archive: bool,
        status: &str,
        delete_anomalies: bool,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if delete_anomalies {
            tx.exec(
                "DELETE FROM anomalies WHERE id IN (SELECT anomaly_id FROM anomaly_checks WHERE check_id = $1)",
                &[&id],
            )
            .await?;
        }
        let n = if archive {
            tx.exec(
                "UPDATE quality_checks SET status = $2, deleted_at = coalesce(deleted_at, now()), updated = now(), \
                   archived_by_profile = false \
                 WHERE id = $1",
                &[&id, &status],
            )
            .await?
        } else {
            tx.exec("DELETE FROM quality_checks WHERE id = $1", &[&id])
                .await?
        };
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "quality check {id} not found"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The Active checks of a container, in id order; the automated volume and freshness checks are judged on
    /// the measurement series, not by scans, and are left out.
    pub async fn checks_for_scan(
        &self,
        container_id: i64,
    ) -> Result<Vec<ScanCheckRecord>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                "SELECT id, rule_type, fields, coverage, filter, properties, tags, weight, description, additional_metadata \
                 FROM quality_checks \
                 WHERE container_id = $1 AND status = 'Active' AND deleted_at IS NULL \
                   AND NOT (additional_metadata ? '_assay_automated') ORDER BY id",
                &[&container_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let fields: Value = r.get(2);
                ScanCheckRecord {
                    id: r.get(0),
                    rule_type: r.get(1),
                    fields: fields
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    coverage: r.get(3),
                    filter: r.get(4),
                    properties: r.get(5),
                    tags: r.get(6),
                    weight: r.get(7),
                    description: r.get(8),
                    additional_metadata: r.get(9),
                }
            })
            .collect())
    }

    /// What a change comparison compares with: the last value the check measured, or with `window_days` the
    /// mean of its measurements over that many days.
    pub async fn metric_baseline(
        &self,
        check_id: i64,
        window_days: Option<i64>,
    ) -> Result<Option<f64>, StoreError> {
        let c = self.client().await?;
        let row = match window_days {
            None => c
                .q_opt(
                    "SELECT value FROM check_metrics WHERE check_id = $1 AND value IS NOT NULL ORDER BY id DESC LIMIT 1",
                    &[&check_id],
                )
                .await?,
            Some(days) => c
                .q_opt(
                    "SELECT avg(value) FROM check_metrics WHERE check_id = $1 AND value IS NOT NULL \
                     AND created > now() - make_interval(days => $2::int)",
                    &[&check_id, &(days as i32)],
                )
                .await?,
        };
        Ok(row.and_then(|r| r.get(0)))
    }

    /// Marks a check as edited by a user (it leaves the profile's management) with new properties.
    pub async fn edit_check_properties(
        &self,
        id: i64,
        properties: &Value,
        editor: &str,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE quality_checks SET properties = $2, inferred = false, updated = now(), last_editor = $3 \
                 WHERE id = $1",
                &[&id, properties, &editor],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "quality check {id} not found"
            )));
        }
        Ok(())
    }
}
