//! Datastores, their teams (visibility) and the link from a source to its enrichment datastore.

use crate::cached::Cached;
use crate::db::{Store, Viewer};
use crate::error::{StoreError, unique_as_conflict};
use crate::operations::OperationRecord;
use crate::users::TeamRef;
use assay_core::datastore::{DatastoreSpec, RemediationStrategy};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// The linked enrichment datastore as the source shows it (the seed's modal: team, host, database, schema).
#[derive(Debug, Clone, Serialize)]
pub struct EnrichmentLink {
    pub id: i64,
    pub name: String,
    pub teams: Vec<String>,
    pub host: String,
    pub database: String,
    pub schema: String,
}

#[derive(Debug, Clone)]
pub struct DatastoreRecord {
    pub id: i64,
    pub spec: DatastoreSpec,
    pub connection_id: i64,
    pub connector: String,
    pub host: String,
    pub teams: Vec<TeamRef>,
    pub enrichment: Option<EnrichmentLink>,
    /// For an enrichment datastore: the sources writing to it.
    pub linked_datastores: Vec<TeamRef>,
    pub created: DateTime<Utc>,
    /// Tag names.
    pub tags: Vec<String>,
}

/// The visibility predicate on `d` for parameters `$1` (is admin) and `$2` (user id).
const VISIBLE: &str = crate::visible!("d.id");

const COLS: &str = "d.id, d.name, d.database, d.schema, d.description, d.enrichment_only, d.enrichment_prefix, \
    d.enrichment_source_record_limit, d.high_count_rollup_threshold, d.enrichment_remediation_strategy, \
    d.connection_id, c.type, c.host, d.created, \
    COALESCE((SELECT json_agg(json_build_object('id', t.id, 'name', t.name) ORDER BY t.name) \
              FROM datastore_teams dt JOIN teams t ON t.id = dt.team_id WHERE dt.datastore_id = d.id), '[]'::json), \
    (SELECT json_build_object('id', e.id, 'name', e.name, 'host', ec.host, 'database', e.database, \
              'schema', e.schema, 'teams', COALESCE((SELECT json_agg(t.name ORDER BY t.name) \
              FROM datastore_teams dt JOIN teams t ON t.id = dt.team_id WHERE dt.datastore_id = e.id), '[]'::json)) \
     FROM datastores e JOIN connections ec ON ec.id = e.connection_id WHERE e.id = d.enrich_datastore_id), \
    COALESCE((SELECT json_agg(json_build_object('id', s.id, 'name', s.name) ORDER BY s.id) \
              FROM datastores s WHERE s.enrich_datastore_id = d.id), '[]'::json), d.tags";

fn refs(v: &Value) -> Vec<TeamRef> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some(TeamRef {
                        id: t.get("id")?.as_i64()?,
                        name: t.get("name")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn record(r: &tokio_postgres::Row) -> DatastoreRecord {
    let strategy: String = r.get(9);
    let enrichment: Option<Value> = r.get(15);
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    DatastoreRecord {
        id: r.get(0),
        spec: DatastoreSpec {
            name: r.get(1),
            database: r.get(2),
            schema: r.get(3),
            description: r.get(4),
            enrichment_only: r.get(5),
            enrichment_prefix: r.get(6),
            enrichment_source_record_limit: r.get(7),
            high_count_rollup_threshold: r.get(8),
            enrichment_remediation_strategy: RemediationStrategy::parse(&strategy)
                .unwrap_or_default(),
        },
        connection_id: r.get(10),
        connector: r.get(11),
        host: r.get(12),
        created: r.get(13),
        teams: refs(&r.get(14)),
        enrichment: enrichment.map(|e| EnrichmentLink {
            id: e.get("id").and_then(Value::as_i64).unwrap_or_default(),
            name: s(&e, "name"),
            teams: e
                .get("teams")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            host: s(&e, "host"),
            database: s(&e, "database"),
            schema: s(&e, "schema"),
        }),
        linked_datastores: refs(&r.get(16)),
        tags: serde_json::from_value(r.get(17)).unwrap_or_default(),
    }
}

/// Filters of the datastore list.
#[derive(Debug, Clone, Default)]
pub struct DatastoreFilter {
    pub name: Option<String>,
    pub enrichment_only: Option<bool>,
    /// Connector types (e.g. `postgresql`) or store types (`jdbc`), matched case-insensitively.
    pub types: Vec<String>,
    /// Datastores carrying any of these tags.
    pub tags: Vec<String>,
}

/// What a list shows of a datastore besides its record: its connection's name, the counts of its tables (not
/// missing ones), checks (not archived ones) and open anomalies, its quality score (the percentage of its active
/// checks that passed their last scan; `None` before any ran) and its newest operation.
#[derive(Debug, Clone, Default)]
pub struct DatastoreSummary {
    pub connection_name: String,
    pub tables: i64,
    pub checks: i64,
    pub open_anomalies: i64,
    pub quality_score: Option<f64>,
    pub latest_operation: Option<OperationRecord>,
}

impl Store {
    /// The summaries of datastores the caller already knows the viewer may see, in two queries whatever their
    /// number (a list page of 200 cards must not cost 200 round trips per figure).
    pub async fn datastore_summaries(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, DatastoreSummary>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                "SELECT d.id, c.name, coalesce(t.n, 0), coalesce(q.n, 0), coalesce(a.n, 0), q.passing, q.asserted \
                 FROM datastores d JOIN connections c ON c.id = d.connection_id \
                 LEFT JOIN (SELECT datastore_id, count(*) AS n FROM containers \
                            WHERE datastore_id = ANY($1) AND deleted_at IS NULL GROUP BY datastore_id) t \
                   ON t.datastore_id = d.id \
                 LEFT JOIN (SELECT k.datastore_id, count(*) AS n, \
                              count(*) FILTER (WHERE q.status = 'Active' AND q.is_passing) AS passing, \
                              count(*) FILTER (WHERE q.status = 'Active' AND q.is_passing IS NOT NULL) AS asserted \
                            FROM quality_checks q JOIN containers k ON k.id = q.container_id \
                            WHERE k.datastore_id = ANY($1) AND q.deleted_at IS NULL GROUP BY k.datastore_id) q \
                   ON q.datastore_id = d.id \
                 LEFT JOIN (SELECT datastore_id, count(*) AS n FROM anomalies \
                            WHERE datastore_id = ANY($1) AND archived_at IS NULL GROUP BY datastore_id) a \
                   ON a.datastore_id = d.id \
                 WHERE d.id = ANY($1)",
                &[&ids],
            )
            .await?;
        let mut out: HashMap<i64, DatastoreSummary> = rows
            .iter()
            .map(|r| {
                let (passing, asserted): (Option<i64>, Option<i64>) = (r.get(5), r.get(6));
                let score = match (passing, asserted) {
                    (Some(p), Some(a)) if a > 0 => Some(100.0 * p as f64 / a as f64),
                    _ => None,
                };
                (
                    r.get(0),
                    DatastoreSummary {
                        connection_name: r.get(1),
                        tables: r.get(2),
                        checks: r.get(3),
                        open_anomalies: r.get(4),
                        quality_score: score,
                        latest_operation: None,
                    },
                )
            })
            .collect();
        drop(c);
        for (id, op) in self.latest_operations(ids).await? {
            if let Some(s) = out.get_mut(&id) {
                s.latest_operation = Some(op);
            }
        }
        Ok(out)
    }

    /// The newest operation of each of `ids` (by creation, as the operation list orders them), in one query.
    pub async fn latest_operations(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, OperationRecord>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                &format!(
                    "SELECT {} FROM datastores d CROSS JOIN LATERAL (SELECT * FROM operations o \
                     WHERE o.datastore_id = d.id ORDER BY o.created DESC, o.id DESC LIMIT 1) o \
                     WHERE d.id = ANY($1)",
                    crate::operations::COLS
                ),
                &[&ids],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(2), crate::operations::op_of(r)))
            .collect())
    }

    pub async fn create_datastore(
        &self,
        spec: &DatastoreSpec,
        connection_id: i64,
        team_ids: &[i64],
    ) -> Result<DatastoreRecord, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let row = tx
            .q_one(
                "INSERT INTO datastores (name, connection_id, database, schema, description, enrichment_only, \
                   enrichment_prefix, enrichment_source_record_limit, high_count_rollup_threshold, \
                   enrichment_remediation_strategy) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[
                    &spec.name,
                    &connection_id,
                    &spec.database,
                    &spec.schema,
                    &spec.description,
                    &spec.enrichment_only,
                    &spec.enrichment_prefix,
                    &spec.enrichment_source_record_limit,
                    &spec.high_count_rollup_threshold,
                    &spec.enrichment_remediation_strategy.as_str(),
                ],
            )
            .await
            .map_err(|e| unique_as_conflict(e, || format!("a datastore named '{}' already exists", spec.name)))?;
        let id: i64 = row.get(0);
        for t in team_ids {
            tx.exec(
                "INSERT INTO datastore_teams (datastore_id, team_id) VALUES ($1, $2)",
                &[&id, t],
            )
            .await?;
        }
        tx.commit().await?;
        drop(c);
        self.datastore(id, &Viewer::admin(0)).await
    }

    /// A datastore the viewer may see; others answer not found.
    pub async fn datastore(&self, id: i64, viewer: &Viewer) -> Result<DatastoreRecord, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!(
                    "SELECT {COLS} FROM datastores d JOIN connections c ON c.id = d.connection_id \
                     WHERE d.id = $3 AND {VISIBLE}"
                ),
                &[&viewer.is_admin, &viewer.user_id, &id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("datastore {id} not found")))?;
        Ok(record(&row))
    }

    pub async fn list_datastores(
        &self,
        viewer: &Viewer,
        filter: &DatastoreFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<DatastoreRecord>, i64), StoreError> {
        let c = self.client().await?;
        let types: Vec<String> = filter.types.iter().map(|t| t.to_lowercase()).collect();
        let cond = format!(
            "{VISIBLE} AND ($3::text IS NULL OR d.name ILIKE '%' || $3 || '%') \
             AND ($4::bool IS NULL OR d.enrichment_only = $4) \
             AND (cardinality($5::text[]) = 0 OR lower(c.type) = ANY($5) OR 'jdbc' = ANY($5)) \
             AND (cardinality($6::text[]) = 0 OR d.tags ?| $6)"
        );
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &viewer.is_admin,
            &viewer.user_id,
            &filter.name,
            &filter.enrichment_only,
            &types,
            &filter.tags,
        ];
        let from = "datastores d JOIN connections c ON c.id = d.connection_id";
        let (rows, total) =
            crate::db::paged(&c, COLS, from, &cond, "d.id", &args, page, size).await?;
        Ok((rows.iter().map(record).collect(), total))
    }

    /// Replaces a datastore's tags.
    pub async fn set_datastore_tags(&self, id: i64, tags: &[String]) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE datastores SET tags = $2 WHERE id = $1",
            &[&id, &serde_json::json!(tags)],
        )
        .await?;
        Ok(())
    }

    pub async fn update_datastore(
        &self,
        id: i64,
        spec: &DatastoreSpec,
        connection_id: i64,
        team_ids: &[i64],
    ) -> Result<DatastoreRecord, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .exec(
                "UPDATE datastores SET name = $2, connection_id = $3, database = $4, schema = $5, description = $6, \
                   enrichment_prefix = $7, enrichment_source_record_limit = $8, high_count_rollup_threshold = $9, \
                   enrichment_remediation_strategy = $10 WHERE id = $1",
                &[
                    &id,
                    &spec.name,
                    &connection_id,
                    &spec.database,
                    &spec.schema,
                    &spec.description,
                    &spec.enrichment_prefix,
                    &spec.enrichment_source_record_limit,
                    &spec.high_count_rollup_threshold,
                    &spec.enrichment_remediation_strategy.as_str(),
                ],
            )
            .await
            .map_err(|e| unique_as_conflict(e, || format!("a datastore named '{}' already exists", spec.name)))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("datastore {id} not found")));
        }
        tx.exec(
            "DELETE FROM datastore_teams WHERE datastore_id = $1",
            &[&id],
        )
        .await?;
        for t in team_ids {
            tx.exec(
                "INSERT INTO datastore_teams (datastore_id, team_id) VALUES ($1, $2)",
                &[&id, t],
            )
            .await?;
        }
        tx.commit().await?;
        drop(c);
        self.datastore(id, &Viewer::admin(0)).await
    }

    pub async fn delete_datastore(&self, id: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        let n = c
            .exec("DELETE FROM datastores WHERE id = $1", &[&id])
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("datastore {id} not found")));
        }
        Ok(())
    }

    /// Links `enrichment_id` as the enrichment store of `id` with a normalised `prefix`.
    pub async fn link_enrichment(
        &self,
        id: i64,
        enrichment_id: i64,
        prefix: &str,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE datastores SET enrich_datastore_id = $2, enrichment_prefix = $3 WHERE id = $1",
            &[&id, &enrichment_id, &prefix],
        )
        .await?;
        Ok(())
    }

    /// Unlinks the enrichment store (its tables are kept); the remediation strategy returns to `none`.
    pub async fn unlink_enrichment(&self, id: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE datastores SET enrich_datastore_id = NULL, enrichment_remediation_strategy = 'none' WHERE id = $1",
            &[&id],
        )
        .await?;
        Ok(())
    }
}
