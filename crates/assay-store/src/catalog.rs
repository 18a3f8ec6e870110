//! The synced catalog: containers (tables and views) and their fields. A sync upserts by name so ids stay
//! stable, marks what disappeared (or prunes it), and restores what reappears.

use crate::cached::Cached;
use crate::db::{Store, Viewer};
use crate::error::StoreError;
use assay_core::catalog::DiscoveredTable;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncOutcome {
    pub containers: i64,
    pub added: i64,
    pub updated: i64,
    pub restored: i64,
    pub missing: i64,
    pub pruned: i64,
    pub fields: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerRecord {
    pub id: i64,
    pub datastore_id: i64,
    pub datastore_name: String,
    pub name: String,
    pub table_type: String,
    pub row_estimate: Option<i64>,
    pub primary_key: Vec<String>,
    pub incremental_candidates: Value,
    pub incremental_identifier_type: Option<String>,
    pub incremental_field_name: Option<String>,
    pub incremental_checkpoint: Option<String>,
    pub remarks: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub last_synced: Option<DateTime<Utc>>,
    pub field_count: i64,
    /// The query of a computed table.
    pub query: Option<String>,
    pub description: Option<String>,
    pub tags: Value,
    pub additional_metadata: Value,
    /// A computed join's definition (`container_type: computed_join`, containers, keys, clauses).
    pub definition: Option<Value>,
    /// Volume and freshness tracking in force (the container's own settings, else its datastore's defaults).
    pub observability: crate::observability::Flags,
    /// The newest measurement (`row_count, size_bytes, last_modification_time, measurement_time`).
    pub latest_measurement: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldRecord {
    pub id: i64,
    pub container_id: i64,
    pub name: String,
    pub ordinal: i32,
    pub native_type: String,
    pub field_type: String,
    pub nullable: bool,
    pub sequence_backed: bool,
    pub remarks: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub typname: String,
    pub typcategory: String,
}

/// Which containers a list shows with respect to missing (archived) ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Archived {
    #[default]
    Exclude,
    Include,
    Only,
}

/// Filters of the container list.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    pub datastores: Vec<i64>,
    /// `table` or `view`.
    pub container_types: Vec<String>,
    pub name: Option<String>,
    pub archived: Archived,
    /// Containers carrying any of these tags.
    pub tags: Vec<String>,
}

const COLS: &str = "k.id, k.datastore_id, d.name, k.name, k.table_type, k.row_estimate, k.primary_key, \
    k.incremental_candidates, k.incremental_identifier_type, k.incremental_field_name, k.incremental_checkpoint, \
    k.remarks, k.deleted_at, k.created, k.last_synced, \
    (SELECT count(*) FROM fields f WHERE f.container_id = k.id AND f.deleted_at IS NULL), k.query, k.description, \
    k.tags, k.additional_metadata, k.definition, \
    coalesce(k.volumetric_tracking_enabled, d.default_volumetric_tracking_enabled), \
    coalesce(k.freshness_tracking_enabled, d.default_freshness_tracking_enabled), \
    coalesce(k.automate_volumetric_checks, d.default_automate_volumetric_checks), \
    coalesce(k.automate_freshness_checks, d.default_automate_freshness_checks), \
    (SELECT jsonb_build_object('row_count', m.row_count, 'size_bytes', m.size_bytes, \
       'last_modification_time', m.last_modification_time, 'measurement_time', m.measurement_time) \
     FROM observability_measurements m WHERE m.container_id = k.id \
     ORDER BY m.measurement_time DESC, m.id DESC LIMIT 1)";

/// `k.table_type` as the API's coarse container type.
const CONTAINER_TYPE: &str = "CASE WHEN k.table_type IN ('view', 'materialized_view') THEN 'view' \
     WHEN k.definition->>'container_type' = 'computed_join' THEN 'computed_join' \
     WHEN k.table_type = 'computed_table' THEN 'computed_table' ELSE 'table' END";

const VISIBLE: &str = crate::visible!("d.id");

fn container_of(r: &tokio_postgres::Row) -> ContainerRecord {
    let pk: Value = r.get(6);
    ContainerRecord {
        id: r.get(0),
        datastore_id: r.get(1),
        datastore_name: r.get(2),
        name: r.get(3),
        table_type: r.get(4),
        row_estimate: r.get(5),
        primary_key: pk
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        incremental_candidates: r.get(7),
        incremental_identifier_type: r.get(8),
        incremental_field_name: r.get(9),
        incremental_checkpoint: r.get(10),
        remarks: r.get(11),
        deleted_at: r.get(12),
        created: r.get(13),
        last_synced: r.get(14),
        field_count: r.get(15),
        query: r.get(16),
        description: r.get(17),
        tags: r.get(18),
        definition: r.get(20),
        additional_metadata: r.get(19),
        observability: crate::observability::Flags {
            volumetric_tracking_enabled: r.get(21),
            freshness_tracking_enabled: r.get(22),
            automate_volumetric_checks: r.get(23),
            automate_freshness_checks: r.get(24),
        },
        latest_measurement: r.get(25),
    }
}

impl Store {
    /// Applies a catalog snapshot to a datastore in one transaction. `kinds` limits the container types
    /// (`table`, `view`) the sync covers; `prune` deletes containers that disappeared instead of marking them;
    /// `recreate` drops every container first (new ids).
    pub async fn apply_sync(
        &self,
        datastore_id: i64,
        tables: &[DiscoveredTable],
        commit_timestamps: bool,
        kinds: &[String],
        prune: bool,
        recreate: bool,
    ) -> Result<SyncOutcome, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut out = SyncOutcome::default();
        if recreate {
            out.pruned = tx
                .exec(
                    "DELETE FROM containers WHERE datastore_id = $1 AND table_type <> 'computed_table'",
                    &[&datastore_id],
                )
                .await? as i64;
        }
        let mut seen: Vec<String> = Vec::new();
        for t in tables
            .iter()
            .filter(|t| kinds.iter().any(|k| k == t.kind.container_type()))
        {
            seen.push(t.name.clone());
            let candidates: Vec<Value> = t
                .incremental_candidates(commit_timestamps)
                .iter()
                .map(|s| {
                    let (kind, field) = s.api_pair();
                    serde_json::json!({"incremental_identifier_type": kind, "incremental_field_name": field})
                })
                .collect();
            let best = t
                .incremental_candidates(commit_timestamps)
                .into_iter()
                .next();
            let (best_type, best_field) = match &best {
                Some(s) => {
                    let (k, f) = s.api_pair();
                    (Some(k.to_string()), f.map(str::to_string))
                }
                None => (None, None),
            };
            let column_names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
            // Keep a user's (or an earlier sync's) incremental choice while its field still exists.
            let row = tx
                .q_one(
                    "INSERT INTO containers AS k (datastore_id, name, table_type, row_estimate, primary_key, \
                       incremental_candidates, incremental_identifier_type, incremental_field_name, remarks, \
                       last_synced) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now()) \
                     ON CONFLICT (datastore_id, name) DO UPDATE SET \
                       table_type = EXCLUDED.table_type, row_estimate = EXCLUDED.row_estimate, \
                       primary_key = EXCLUDED.primary_key, incremental_candidates = EXCLUDED.incremental_candidates, \
                       remarks = EXCLUDED.remarks, last_synced = now(), deleted_at = NULL, \
                       incremental_identifier_type = CASE \
                         WHEN k.incremental_identifier_type IS NULL \
                           OR (k.incremental_field_name IS NOT NULL AND NOT k.incremental_field_name = ANY($10)) \
                           OR (k.incremental_identifier_type = 'postgresql' AND NOT $11::bool) \
                         THEN EXCLUDED.incremental_identifier_type ELSE k.incremental_identifier_type END, \
                       incremental_field_name = CASE \
                         WHEN k.incremental_identifier_type IS NULL \
                           OR (k.incremental_field_name IS NOT NULL AND NOT k.incremental_field_name = ANY($10)) \
                           OR (k.incremental_identifier_type = 'postgresql' AND NOT $11::bool) \
                         THEN EXCLUDED.incremental_field_name ELSE k.incremental_field_name END \
                     RETURNING id, (xmax = 0) AS inserted, \
                       (SELECT deleted_at IS NOT NULL FROM containers WHERE id = k.id) AS was_missing",
                    &[
                        &datastore_id,
                        &t.name,
                        &t.kind.as_str(),
                        &t.row_estimate,
                        &serde_json::json!(t.primary_key),
                        &Value::Array(candidates),
                        &best_type,
                        &best_field,
                        &t.remarks,
                        &column_names,
                        &commit_timestamps,
                    ],
                )
                .await?;
            let container_id: i64 = row.get(0);
            let inserted: bool = row.get(1);
            let was_missing: Option<bool> = row.get(2);
            out.containers += 1;
            if inserted {
                out.added += 1;
            } else if was_missing == Some(true) {
                out.restored += 1;
            } else {
                out.updated += 1;
            }
            for col in &t.columns {
                tx.exec(
                    "INSERT INTO fields (container_id, name, ordinal, native_type, type, nullable, sequence_backed, \
                       remarks, typname, typcategory) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (container_id, name) DO UPDATE SET ordinal = EXCLUDED.ordinal, \
                       native_type = EXCLUDED.native_type, type = EXCLUDED.type, nullable = EXCLUDED.nullable, \
                       sequence_backed = EXCLUDED.sequence_backed, remarks = EXCLUDED.remarks, deleted_at = NULL, \
                       typname = EXCLUDED.typname, typcategory = EXCLUDED.typcategory",
                    &[
                        &container_id,
                        &col.name,
                        &col.ordinal,
                        &col.native_type,
                        &col.field_type.as_str(),
                        &col.nullable,
                        &col.sequence_backed,
                        &col.remarks,
                        &col.typname,
                        &col.typcategory,
                    ],
                )
                .await?;
                out.fields += 1;
            }
            tx.exec(
                "UPDATE fields SET deleted_at = now() \
                 WHERE container_id = $1 AND deleted_at IS NULL AND NOT name = ANY($2) \
                   AND NOT EXISTS (SELECT 1 FROM computed_fields cf \
                                   WHERE cf.container_id = fields.container_id AND cf.name = fields.name)",
                &[&container_id, &column_names],
            )
            .await?;
        }
        let gone = format!(
            "datastore_id = $1 AND NOT name = ANY($2) AND {} = ANY($3)",
            CONTAINER_TYPE.replace("k.", "")
        );
        if prune {
            out.pruned = tx
                .exec(
                    &format!("DELETE FROM containers WHERE {gone}"),
                    &[&datastore_id, &seen, &kinds],
                )
                .await? as i64;
        } else {
            out.missing = tx
                .exec(
                    &format!("UPDATE containers SET deleted_at = now() WHERE deleted_at IS NULL AND {gone}"),
                    &[&datastore_id, &seen, &kinds],
                )
                .await? as i64;
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn list_containers(
        &self,
        viewer: &Viewer,
        filter: &ContainerFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<ContainerRecord>, i64), StoreError> {
        let c = self.client().await?;
        let archived = match filter.archived {
            Archived::Exclude => "k.deleted_at IS NULL",
            Archived::Include => "true",
            Archived::Only => "k.deleted_at IS NOT NULL",
        };
        let cond = format!(
            "{VISIBLE} AND {archived} AND (cardinality($3::bigint[]) = 0 OR k.datastore_id = ANY($3)) \
             AND (cardinality($4::text[]) = 0 OR {CONTAINER_TYPE} = ANY($4) OR k.table_type = ANY($4)) \
             AND ($5::text IS NULL OR k.name ILIKE '%' || $5 || '%') \
             AND (cardinality($6::text[]) = 0 OR k.tags ?| $6)"
        );
        let from = "containers k JOIN datastores d ON d.id = k.datastore_id";
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &viewer.is_admin,
            &viewer.user_id,
            &filter.datastores,
            &filter.container_types,
            &filter.name,
            &filter.tags,
        ];
        let (rows, total) =
            crate::db::paged(&c, COLS, from, &cond, "k.id", &args, page, size).await?;
        Ok((rows.iter().map(container_of).collect(), total))
    }

    pub async fn container(&self, id: i64, viewer: &Viewer) -> Result<ContainerRecord, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!(
                    "SELECT {COLS} FROM containers k JOIN datastores d ON d.id = k.datastore_id \
                     WHERE k.id = $3 AND {VISIBLE}"
                ),
                &[&viewer.is_admin, &viewer.user_id, &id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("container {id} not found")))?;
        Ok(container_of(&row))
    }

    /// The fields of a container in column order; missing ones only with `include_missing`.
    pub async fn fields(
        &self,
        container_id: i64,
        include_missing: bool,
    ) -> Result<Vec<FieldRecord>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                "SELECT id, container_id, name, ordinal, native_type, type, nullable, sequence_backed, remarks, \
                   deleted_at, created, typname, typcategory FROM fields WHERE container_id = $1 AND ($2 OR deleted_at IS NULL) \
                 ORDER BY deleted_at IS NOT NULL, ordinal, name",
                &[&container_id, &include_missing],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| FieldRecord {
                id: r.get(0),
                container_id: r.get(1),
                name: r.get(2),
                ordinal: r.get(3),
                native_type: r.get(4),
                field_type: r.get(5),
                nullable: r.get(6),
                sequence_backed: r.get(7),
                remarks: r.get(8),
                deleted_at: r.get(9),
                created: r.get(10),
                typname: r.get(11),
                typcategory: r.get(12),
            })
            .collect())
    }
}
