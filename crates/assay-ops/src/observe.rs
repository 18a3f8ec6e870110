//! Volume and freshness measurements: taken by the `measure` operation (cheap enough for schedules that run
//! often) and at the end of every sync, profile and scan, then judged with `assay-core::observability` for the
//! containers whose automation is on.
//!
//! One catalog statement reads every measured table's size (its pages and its TOAST pages), row estimate and
//! modification counters (`pg_class`, `pg_stat_all_tables`: readable by any role, and taking no lock on the
//! tables, so a measurement never waits behind a table someone locked). The row count is the exact one an
//! operation counted when it read the whole table (profile, scan); the `measure` operation counts tables up to
//! [`EXACT_COUNT_PAGES`] pages exactly, giving up after [`COUNT_TIMEOUT`] (or a lock wait of a second) for
//! the estimate; otherwise it is the planner's estimate. The method is recorded with the measurement.

use crate::{Context, Ending, OpsError};
use assay_core::observability::{self as judge, Verdict};
use assay_core::operation::MeasureParams;
use assay_postgres::ident::qualified;
use assay_store::catalog::ContainerRecord;
use assay_store::datastores::DatastoreRecord;
use assay_store::observability::{MeasurementRecord, NewMeasurement, series};
use assay_store::operations::OperationRecord;
use serde_json::{Value, json};

/// Tables up to this many pages (10 MB) are counted exactly by the `measure` operation.
pub const EXACT_COUNT_PAGES: i64 = 1280;
/// The longest an exact count may take before the estimate is used instead.
pub const COUNT_TIMEOUT: &str = "5s";

/// A row count an operation took by reading a whole table.
pub struct Counted {
    pub container_id: i64,
    pub rows: i64,
    /// `profile` or `scan`.
    pub method: &'static str,
}

/// What measuring did to one container.
pub struct Measured {
    pub container: String,
    pub measurement: MeasurementRecord,
    /// Findings of the automated checks (volume, freshness).
    pub anomalies: Vec<String>,
}

/// The planner's row estimate, when it has one (never for a view; -1 before the first vacuum or analyze).
fn estimate_of(reltuples: i64, relkind: &str) -> Option<i64> {
    (reltuples >= 0 && relkind != "v").then_some(reltuples)
}

/// Measures the tables and views among `containers` whose tracking is on, and judges those whose automation
/// is on.
pub async fn measure(
    ctx: &Context,
    ds: &DatastoreRecord,
    containers: &[ContainerRecord],
    counted: &[Counted],
    exact_counts: bool,
    operation_id: Option<i64>,
) -> Result<Vec<Measured>, OpsError> {
    let mut tracked = Vec::new();
    for c in containers
        .iter()
        .filter(|c| c.query.is_none() && c.definition.is_none())
    {
        let flags = ctx.store.observability_flags(c.id).await?;
        if flags.tracking() {
            tracked.push((c, flags));
        }
    }
    if tracked.is_empty() {
        return Ok(Vec::new());
    }
    let (client, _) = crate::source::open_read_only(ctx, ds).await?;
    let names: Vec<&str> = tracked.iter().map(|(c, _)| c.name.as_str()).collect();
    let rows = client
        .query(
            "SELECT c.relname::text, c.reltuples::int8, \
                    (c.relpages::int8 + coalesce(t.relpages, 0)::int8) * current_setting('block_size')::int8, \
                    (s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::int8, c.relpages::int8, c.relkind::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_class t ON t.oid = c.reltoastrelid \
             LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid \
             WHERE n.nspname = $1 AND c.relname = ANY($2)",
            &[&ds.spec.schema, &names],
        )
        .await
        .map_err(|e| OpsError::Source(format!("cannot read the catalog statistics: {e}")))?;
    if exact_counts {
        client
            .batch_execute(&format!(
                "SET lock_timeout = '1s'; SET statement_timeout = '{COUNT_TIMEOUT}'"
            ))
            .await
            .map_err(|e| OpsError::Source(format!("cannot prepare the counts: {e}")))?;
    }
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for (c, flags) in tracked {
        let Some(r) = rows.iter().find(|r| r.get::<_, String>(0) == c.name) else {
            continue;
        };
        let (estimate, bytes, mods, pages, kind): (i64, i64, Option<i64>, i64, String) =
            (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        let (row_count, method) = match counted.iter().find(|k| k.container_id == c.id) {
            Some(k) => (Some(k.rows), k.method),
            None if exact_counts && kind == "r" && pages <= EXACT_COUNT_PAGES => {
                let sql = format!(
                    "SELECT count(*) FROM {}",
                    qualified(&ds.spec.schema, &c.name)
                );
                match client.query_one(&sql, &[]).await {
                    Ok(row) => (Some(row.get::<_, i64>(0)), "exact count"),
                    Err(e) => {
                        tracing::warn!(container_id = c.id, error = %e, "cannot count the rows exactly; using the estimate");
                        (estimate_of(estimate, &kind), "catalog estimate")
                    }
                }
            }
            None => match estimate_of(estimate, &kind) {
                Some(n) => (Some(n), "catalog estimate"),
                None => (None, "unknown"),
            },
        };
        let m = ctx
            .store
            .record_measurement(&NewMeasurement {
                container_id: c.id,
                row_count,
                size_bytes: (kind != "v").then_some(bytes),
                modifications: mods,
                method,
                operation_id,
            })
            .await?;
        let mut anomalies = Vec::new();
        if flags.automate_volumetric_checks || flags.automate_freshness_checks {
            let history = series(
                &ctx.store
                    .measurement_series(c.id, judge::WINDOW_DAYS + 7)
                    .await?,
            );
            if flags.automate_volumetric_checks {
                let (verdict, band) = judge::judge_volume(&history, now.date_naive());
                let props = match &band {
                    Some(b) => {
                        json!({"comparison": "Absolute Change", "window_size": judge::WINDOW_DAYS,
                                      "min": b.low.floor(), "max": b.high.ceil(), "basis": b.basis})
                    }
                    None => {
                        json!({"comparison": "Absolute Change", "window_size": judge::WINDOW_DAYS})
                    }
                };
                let description = match &verdict {
                    Verdict::Learning { have, need } => format!(
                        "Daily load of {}: learning ({have} of {need} days of history)",
                        c.name
                    ),
                    _ => format!("Daily load of {} stays within its learned band", c.name),
                };
                let check = ctx
                    .store
                    .upsert_automated_check(
                        c.id,
                        "observability:volumetric",
                        "volumetric",
                        &props,
                        &description,
                    )
                    .await?;
                if let Some(why) = judged(
                    ctx,
                    check,
                    c,
                    operation_id,
                    &verdict,
                    "volumetric",
                    now.date_naive().to_string(),
                )
                .await?
                {
                    anomalies.push(why);
                }
            }
            if flags.automate_freshness_checks {
                let (verdict, max_age) = judge::judge_freshness(&history, now);
                let props = match max_age {
                    Some(a) => json!({"value": a.num_milliseconds()}),
                    None => json!({}),
                };
                let description = match &verdict {
                    Verdict::Learning { have, need } => format!(
                        "Freshness of {}: learning ({have} of {need} changes seen)",
                        c.name
                    ),
                    _ => format!("{} changes as often as it used to", c.name),
                };
                let check = ctx
                    .store
                    .upsert_automated_check(
                        c.id,
                        "observability:freshness",
                        "freshness",
                        &props,
                        &description,
                    )
                    .await?;
                let since = m
                    .last_modification_time
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                if let Some(why) =
                    judged(ctx, check, c, operation_id, &verdict, "freshness", since).await?
                {
                    anomalies.push(why);
                }
            }
        }
        out.push(Measured {
            container: c.name.clone(),
            measurement: m,
            anomalies,
        });
    }
    Ok(out)
}

/// Records a verdict on an automated check: an anomaly (one per `period`) when anomalous, the open ones
/// resolved when normal, nothing while learning. Returns the finding.
async fn judged(
    ctx: &Context,
    check: i64,
    c: &ContainerRecord,
    operation_id: Option<i64>,
    verdict: &Verdict,
    kind: &str,
    period: String,
) -> Result<Option<String>, OpsError> {
    match verdict {
        Verdict::Learning { .. } => Ok(None),
        Verdict::Normal => {
            ctx.store
                .record_observation(check, c.id, operation_id, None)
                .await?;
            Ok(None)
        }
        Verdict::Anomalous(why) => {
            let message = format!("{}: {why}", c.name);
            let fingerprint = format!("observability:{kind}:{}:{period}", c.id);
            ctx.store
                .record_observation(check, c.id, operation_id, Some((&fingerprint, &message)))
                .await?;
            Ok(Some(message))
        }
    }
}

/// Measures after another operation, which goes on whatever happens here (the failure is logged).
pub async fn after(
    ctx: &Context,
    ds: &DatastoreRecord,
    containers: &[ContainerRecord],
    counted: &[Counted],
    op_id: i64,
) {
    if let Err(e) = measure(ctx, ds, containers, counted, false, Some(op_id)).await {
        tracing::warn!(operation_id = op_id, error = %e, "cannot take the volume and freshness measurements");
    }
}

/// The `measure` operation.
pub async fn run(ctx: &Context, op: &OperationRecord) -> Ending {
    let mut status = json!({"total_containers": 0, "containers_measured": 0, "anomalies_identified": 0,
                            "containers": []});
    let ds = match ctx
        .store
        .datastore(op.datastore_id, &assay_store::Viewer::admin(0))
        .await
    {
        Ok(d) => d,
        Err(e) => return Ending::failure(format!("datastore {}: {e}", op.datastore_id), status),
    };
    let p: MeasureParams = match crate::params_of(op) {
        Ok(p) => p,
        Err(e) => return Ending::failure(e, status),
    };
    let (chosen, _) =
        match crate::choose::containers(ctx, ds.id, &p.container_names, &[], "measure").await {
            Ok(c) => c,
            Err(e) => return Ending::failure(e, status),
        };
    status["total_containers"] = json!(chosen.len());
    match measure(ctx, &ds, &chosen, &[], true, Some(op.id)).await {
        Ok(done) => {
            let found: usize = done.iter().map(|d| d.anomalies.len()).sum();
            status["containers_measured"] = json!(done.len());
            status["anomalies_identified"] = json!(found);
            status["containers"] = Value::Array(
                done.iter()
                    .map(|d| {
                        json!({"container": {"id": d.measurement.container_id, "name": d.container},
                               "row_count": d.measurement.row_count, "size_bytes": d.measurement.size_bytes,
                               "method": d.measurement.method,
                               "last_modification_time": d.measurement.last_modification_time,
                               "anomalies": d.anomalies})
                    })
                    .collect(),
            );
            Ending {
                result: "success",
                message: None,
                status,
            }
        }
        Err(e) => Ending::failure(e.to_string(), status),
    }
}
