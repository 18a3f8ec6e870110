//! The scan operation: for each container, run its Active checks in one pushed-down pass (full, or only the rows
//! after the incremental checkpoint), turn failures into anomalies (one record anomaly per offending row with every
//! check it failed, or a rolled-up shape anomaly past the rollup threshold), and write the container's results in
//! one metadata transaction. A failing container does not stop the others; a check whose SQL fails becomes
//! Invalid and the rest of the container's checks still run.

use crate::Context;
use crate::Ending;
use crate::enrichment::{Target, enrichment_rows, enrichment_target, tags_of};
use assay_core::operation::ScanParams;
use assay_postgres::PgError;
use assay_postgres::profile::Rows;
use assay_postgres::scan::{Outcome, ScanCheck, ScanPlan};
use assay_store::Viewer;
use assay_store::anomalies::{ContainerScanWrite, NewAnomaly, NewMetric};
use assay_store::catalog::ContainerRecord;
use assay_store::datastores::DatastoreRecord;
use assay_store::operations::OperationRecord;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

struct Settings {
    names: Vec<String>,
    /// Only containers with any of these tags (`container_tags`).
    tags: Vec<String>,
    incremental: bool,
    limit: Option<u64>,
    source_records: usize,
    rollup: usize,
    auto_resolve: bool,
    archive_duplicates: bool,
    reactivate_recurring: bool,
    greater_than_time: Option<String>,
    greater_than_batch: Option<f64>,
}

fn settings(p: ScanParams, ds: &DatastoreRecord) -> Settings {
    Settings {
        limit: p.row_limit(),
        source_records: p.source_records(ds.spec.enrichment_source_record_limit),
        rollup: p.rollup(ds.spec.high_count_rollup_threshold),
        auto_resolve: p.auto_resolve(),
        incremental: p.incremental,
        archive_duplicates: p.archive_duplicate_anomalies,
        reactivate_recurring: p.reactivate_recurring_anomalies,
        names: p.container_names,
        tags: p.container_tags,
        greater_than_time: p.greater_than_time,
        greater_than_batch: p.greater_than_batch,
    }
}

pub async fn run(ctx: &Context, op: &OperationRecord) -> Ending {
    let mut status = json!({"total_containers": 0, "containers_analyzed": 0, "records_processed": 0,
                            "anomalies_identified": 0, "containers": []});
    let fail = Ending::failure;
    let viewer = Viewer::admin(0);
    let ds = match ctx.store.datastore(op.datastore_id, &viewer).await {
        Ok(d) => d,
        Err(e) => return fail(e.to_string(), status),
    };
    let s = match crate::params_of::<ScanParams>(op) {
        Ok(p) => settings(p, &ds),
        Err(e) => return fail(e, status),
    };

    let (chosen, unknown) =
        match crate::choose::containers(ctx, ds.id, &s.names, &s.tags, "scan").await {
            Ok(c) => c,
            Err(e) => return fail(e, status),
        };
    status["total_containers"] = json!(chosen.len());
    let params = match crate::source::resolve(ctx, &ds).await {
        Ok(p) => p,
        Err(e) => return fail(e.to_string(), status),
    };
    let enrichment = match &ds.enrichment {
        Some(link) => Some(enrichment_target(ctx, &ds, link.id).await),
        None => None,
    };
    let abort = Arc::new(AtomicBool::new(false));
    let watcher = {
        let store = ctx.store.clone();
        let abort = abort.clone();
        let id = op.id;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                if let Ok(true) = store.abort_requested(id).await {
                    abort.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let mut aborted = false;
    // row counts of whole tables read, for the volume measurements
    let mut counted = Vec::new();
    for c in &chosen {
        if abort.load(std::sync::atomic::Ordering::Relaxed) {
            aborted = true;
            break;
        }
        let t0 = Instant::now();
        let r = scan_container(
            ctx,
            op,
            &ds,
            c,
            &params,
            &s,
            abort.clone(),
            enrichment.as_ref(),
        )
        .await;
        let ms = t0.elapsed().as_millis() as i64;
        match r {
            Ok(done) => {
                if !done.incremental && s.limit.is_none() {
                    counted.push(crate::observe::Counted {
                        container_id: c.id,
                        rows: done.records,
                        method: "scan",
                    });
                }
                status["containers_analyzed"] =
                    json!(status["containers_analyzed"].as_i64().unwrap_or(0) + 1);
                status["records_processed"] =
                    json!(status["records_processed"].as_i64().unwrap_or(0) + done.records);
                status["anomalies_identified"] =
                    json!(status["anomalies_identified"].as_i64().unwrap_or(0) + done.anomalies);
                if let Some(n) = &done.note {
                    notes.push(format!("{}: {n}", c.name));
                }
                results.push(json!({"container": {"id": c.id, "name": c.name}, "result": "success",
                    "records_processed": done.records, "incremental": done.incremental,
                    "checks_run": done.checks_run, "checks_failed": done.checks_failed,
                    "anomaly_count": done.anomalies, "duplicates": done.duplicates, "resolved": done.resolved,
                    "recurring": done.recurring,
                    "invalid_checks": done.invalid, "duration_ms": ms, "message": done.note}));
            }
            Err(PgError::Aborted) => {
                aborted = true;
                let _ = ctx
                    .store
                    .record_container_scan_failure(
                        op.id,
                        c.id,
                        "aborted",
                        "aborted",
                        s.incremental,
                        &[],
                    )
                    .await;
                results
                    .push(json!({"container": {"id": c.id, "name": c.name}, "result": "aborted"}));
                break;
            }
            Err(e) => {
                let msg = e.to_string();
                let _ = ctx
                    .store
                    .record_container_scan_failure(op.id, c.id, "failure", &msg, s.incremental, &[])
                    .await;
                failures.push(format!("{}: {msg}", c.name));
                results.push(json!({"container": {"id": c.id, "name": c.name}, "result": "failure", "message": msg}));
            }
        }
        status["containers"] = json!(results);
        let _ = ctx.store.operation_progress(op.id, &status).await;
    }
    watcher.abort();
    status["containers"] = json!(results);
    if !aborted {
        crate::observe::after(ctx, &ds, &chosen, &counted, op.id).await;
    }
    if aborted {
        return Ending {
            result: "aborted",
            message: Some("aborted; containers scanned before the abort keep their results".into()),
            status,
        };
    }
    if !unknown.is_empty() {
        notes.insert(0, format!("no such containers: {}", unknown.join(", ")));
    }
    if !failures.is_empty() {
        notes.push(format!("failed containers: {}", failures.join("; ")));
    }
    Ending {
        result: if failures.len() == chosen.len() {
            "failure"
        } else {
            "success"
        },
        message: (!notes.is_empty()).then(|| notes.join(". ")),
        status,
    }
}

struct Done {
    records: i64,
    incremental: bool,
    checks_run: usize,
    checks_failed: usize,
    anomalies: i64,
    duplicates: i64,
    resolved: i64,
    recurring: i64,
    invalid: usize,
    note: Option<String>,
}

fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn scan_container(
    ctx: &Context,
    op: &OperationRecord,
    ds: &DatastoreRecord,
    c: &ContainerRecord,
    params: &assay_postgres::ConnectParams,
    s: &Settings,
    abort: Arc<AtomicBool>,
    enrichment: Option<&Result<Target, String>>,
) -> Result<Done, PgError> {
    let started_at = chrono::Utc::now();
    let store_err = |e: assay_store::StoreError| PgError::Property {
        field: "metadata".into(),
        message: e.to_string(),
    };
    let checks = ctx.store.checks_for_scan(c.id).await.map_err(store_err)?;
    let client = params.connect_read_only().await?;
    let relation = crate::computed::relation_of(ctx, ds, c)
        .await
        .map_err(|message| PgError::Property {
            field: "metadata".into(),
            message,
        })?;
    let columns = match &relation {
        // describing the query waits for the locks of its tables: an abort cancels that wait
        Some(r) => assay_postgres::scan::abortable(
            &client,
            params,
            &abort,
            assay_postgres::scan::relation_columns(&client, r),
        )
        .await?
        .map_err(|message| PgError::Property {
            field: "container".into(),
            message: format!("{}: the source rejects its definition: {message}", c.name),
        })?
        .into_iter()
        .map(
            |(name, typname, typtype, cat)| assay_postgres::scan::ScanColumn {
                field_type: assay_core::catalog::FieldType::from_postgres(&typname, &typtype, &cat)
                    .as_str()
                    .to_string(),
                name,
                typname,
            },
        )
        .collect(),
        None => assay_postgres::scan::live_columns(&client, params, &ds.spec.schema, &c.name)
            .await?
            .ok_or_else(|| PgError::Property {
                field: "container".into(),
                message: format!(
                    "{} no longer exists in schema {}; run a sync",
                    c.name, ds.spec.schema
                ),
            })?,
    };
    let mut scan_checks = Vec::new();
    let mut invalid: Vec<(i64, String)> = Vec::new();
    for k in &checks {
        let mut reference = None;
        if let Some(rid) = k.properties["ref_container_id"].as_i64() {
            match resolve_reference(ctx, ds, rid).await {
                Ok(r) => reference = Some(r),
                Err(e) => {
                    invalid.push((k.id, e));
                    continue;
                }
            }
        }
        let previous = if matches!(k.rule_type.as_str(), "volumetric" | "metric") {
            ctx.store
                .metric_baseline(
                    k.id,
                    k.properties["window_size"].as_i64().filter(|d| *d > 0),
                )
                .await
                .map_err(store_err)?
        } else {
            None
        };
        scan_checks.push(ScanCheck {
            id: k.id,
            rule: k.rule_type.clone(),
            fields: k.fields.clone(),
            coverage: k.coverage,
            filter: k.filter.clone(),
            properties: k.properties.clone(),
            reference,
            previous,
        });
    }
    // which rows
    let strategy = c.incremental_identifier_type.as_deref();
    let inc_field = c
        .incremental_field_name
        .as_ref()
        .and_then(|n| columns.iter().find(|col| &col.name == n))
        .cloned();
    let started: String = client
        .query_one("SELECT now()::text", &[])
        .await
        .map_err(|e| assay_postgres::connect::query_error(&e, params))?
        .get(0);
    let mut note = None;
    let since = s
        .greater_than_time
        .clone()
        .or_else(|| s.greater_than_batch.map(|b| b.to_string()))
        .or_else(|| {
            if s.incremental {
                c.incremental_checkpoint.clone()
            } else {
                None
            }
        });
    let incremental_capable = strategy == Some("postgresql") || inc_field.is_some();
    let rows = match (
        s.incremental || since.is_some(),
        strategy,
        &inc_field,
        &since,
    ) {
        (true, Some("postgresql"), _, Some(w)) => Rows::CommittedAfter {
            watermark: w.clone(),
        },
        (true, Some(_), Some(f), Some(w)) => Rows::After {
            column: f.name.clone(),
            sql_type: f.typname.clone(),
            watermark: w.clone(),
        },
        (true, _, _, None) if incremental_capable => {
            note = Some("first incremental scan: read every row".to_string());
            Rows::All
        }
        (true, _, _, _) => {
            note =
                Some("no incremental field and no commit timestamps: scanned in full".to_string());
            Rows::All
        }
        _ => Rows::All,
    };
    let incremental = !matches!(rows, Rows::All);
    let freshness_column = inc_field
        .as_ref()
        .filter(|f| matches!(f.field_type.as_str(), "Date" | "Timestamp"))
        .map(|f| f.name.clone());
    let plan = ScanPlan {
        schema: ds.spec.schema.clone(),
        table: c.name.clone(),
        columns,
        checks: scan_checks.clone(),
        rows,
        limit: s.limit,
        sample: s.rollup.max(s.source_records) as u64,
        checkpoint_column: if strategy == Some("postgresql") {
            None
        } else {
            inc_field.as_ref().map(|f| f.name.clone())
        },
        freshness_column,
        relation,
    };
    let t0 = Instant::now();
    let result = assay_postgres::scan::scan(&client, params, &plan, abort).await?;
    drop(client);

    // outcomes → metrics, invalid checks, anomalies
    let by_id: BTreeMap<i64, &ScanCheck> = scan_checks.iter().map(|k| (k.id, k)).collect();
    let meta: BTreeMap<i64, &assay_store::checks::ScanCheckRecord> =
        checks.iter().map(|k| (k.id, k)).collect();
    let mut metrics = Vec::new();
    let mut shape = Vec::new();
    // row JSON → failed checks (check id, message)
    let mut records: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut failed = 0;
    for o in &result.outcomes {
        if let Some(e) = &o.error {
            invalid.push((o.check_id, e.clone()));
            continue;
        }
        let Some(k) = by_id.get(&o.check_id) else {
            continue;
        };
        metrics.push(NewMetric {
            check_id: o.check_id,
            passed: Some(o.passed),
            asserted_records: o.asserted,
            anomalous_records: o.anomalous,
            value: o.value,
            message: o.message.clone(),
        });
        if o.passed {
            continue;
        }
        failed += 1;
        let msg = o
            .message
            .clone()
            .unwrap_or_else(|| format!("{} failed", k.rule));
        let full_coverage = k.coverage.is_none_or(|c| c >= 1.0);
        if o.row_level && full_coverage && (o.anomalous as usize) <= s.rollup && !o.rows.is_empty()
        {
            for row in &o.rows {
                records
                    .entry(row.clone())
                    .or_default()
                    .push((o.check_id, record_message(k, row)));
            }
        } else {
            shape.push(shape_anomaly(
                c,
                k,
                o,
                &msg,
                s.source_records,
                meta.get(&o.check_id),
            ));
        }
    }
    let mut anomalies = shape;
    for (row, fails) in records {
        let mut ids: Vec<String> = fails.iter().map(|(id, _)| id.to_string()).collect();
        ids.sort();
        let joined = ids.join(",");
        let tags: Vec<String> = fails
            .iter()
            .flat_map(|(id, _)| meta.get(id).map(|m| tags_of(&m.tags)).unwrap_or_default())
            .collect();
        let weight = fails
            .iter()
            .filter_map(|(id, _)| meta.get(id).map(|m| m.weight))
            .sum::<i32>()
            .max(1);
        let message = if fails.len() == 1 {
            fails[0].1.clone()
        } else {
            let each: Vec<&str> = fails
                .iter()
                .map(|(_, m)| m.strip_prefix("The value ").unwrap_or(m))
                .collect();
            format!(
                "The record fails {} checks: {}",
                fails.len(),
                each.join("; ")
            )
        };
        anomalies.push(NewAnomaly {
            kind: "record",
            anomalous_records_count: 1,
            fingerprint: fingerprint(&[&c.id.to_string(), "record", &joined, &row]),
            message,
            source_records: vec![serde_json::from_str(&row).unwrap_or(Value::String(row.clone()))],
            checks: fails,
            tags,
            weight,
        });
    }
    let checks_run = metrics.len();
    let kept_metrics = metrics.clone();
    let kept_anomalies = anomalies.clone();
    // a scan that could not evaluate a check must not resolve that check's anomalies
    let write = ContainerScanWrite {
        operation_id: op.id,
        datastore_id: ds.id,
        container_id: c.id,
        incremental,
        records_processed: result.records,
        duration_ms: t0.elapsed().as_millis() as i64,
        metrics,
        anomalies,
        invalid: invalid.clone(),
        checkpoint: if result.schema_failed {
            None
        } else if strategy == Some("postgresql") {
            Some(started)
        } else {
            result.checkpoint.clone()
        },
        archive_duplicates: s.archive_duplicates,
        reactivate_recurring: s.reactivate_recurring,
        auto_resolve: s.auto_resolve && !incremental && !result.schema_failed,
        message: if result.schema_failed {
            Some("the scan stopped because schema check anomalies were identified".into())
        } else {
            note.clone()
        },
    };
    if result.schema_failed {
        note = Some("the scan stopped because schema check anomalies were identified".into());
    }
    let written = ctx
        .store
        .record_container_scan(&write)
        .await
        .map_err(store_err)?;
    // the metadata is committed; now the enrichment store, in its own transaction
    if let Some(target) = enrichment {
        let outcome = match target {
            Err(e) => Err(e.clone()),
            Ok(t) => {
                let cw = enrichment_rows(
                    op,
                    ds,
                    c,
                    s.source_records,
                    s.limit,
                    incremental,
                    result.records,
                    &kept_metrics,
                    &invalid,
                    &kept_anomalies,
                    &written.ids,
                    &meta,
                    &plan.columns,
                    started_at,
                );
                match t.params.connect().await {
                    Err(e) => Err(e.to_string()),
                    Ok(mut client) => assay_enrichment::write::write(
                        &mut client,
                        &t.schema,
                        &t.prefix,
                        &t.params.user,
                        &cw,
                    )
                    .await
                    .map_err(|e| e.to_string()),
                }
            }
        };
        match outcome {
            Ok(_) => {
                let ids: Vec<i64> = written.ids.iter().map(|x| x.0).collect();
                ctx.store.mark_enriched(&ids).await.map_err(store_err)?;
            }
            Err(e) => {
                let n = format!("enrichment not written: {e}");
                note = Some(match note {
                    Some(x) => format!("{x}; {n}"),
                    None => n,
                });
            }
        }
    }
    if !invalid.is_empty() {
        let list: Vec<String> = invalid
            .iter()
            .map(|(id, e)| format!("check {id}: {e}"))
            .collect();
        let n = format!("invalid checks: {}", list.join("; "));
        note = Some(match note {
            Some(x) => format!("{x}; {n}"),
            None => n,
        });
    }
    Ok(Done {
        records: result.records,
        incremental,
        checks_run,
        checks_failed: failed,
        anomalies: written.anomalies,
        duplicates: written.duplicates,
        resolved: written.resolved,
        recurring: written.recurring,
        invalid: invalid.len(),
        note,
    })
}

fn record_message(k: &ScanCheck, row: &str) -> String {
    let v: Value = serde_json::from_str(row).unwrap_or(Value::Null);
    let shown: Vec<String> = k
        .fields
        .iter()
        .map(|f| {
            format!(
                "{f} = {}",
                v.get(f)
                    .map(Value::to_string)
                    .unwrap_or_else(|| "null".into())
            )
        })
        .collect();
    if shown.is_empty() {
        format!("The record fails {}", k.rule)
    } else {
        format!("The value {} fails {}", shown.join(", "), k.rule)
    }
}

fn shape_anomaly(
    c: &ContainerRecord,
    k: &ScanCheck,
    o: &Outcome,
    msg: &str,
    limit: usize,
    meta: Option<&&assay_store::checks::ScanCheckRecord>,
) -> NewAnomaly {
    let count = if o.row_level {
        o.anomalous
    } else {
        o.anomalous.max(1)
    };
    NewAnomaly {
        kind: "shape",
        anomalous_records_count: count,
        fingerprint: fingerprint(&[
            &c.id.to_string(),
            "shape",
            &k.id.to_string(),
            &count.to_string(),
            msg,
        ]),
        message: msg.to_string(),
        source_records: o
            .rows
            .iter()
            .take(limit)
            .map(|r| serde_json::from_str(r).unwrap_or(Value::String(r.clone())))
            .collect(),
        checks: vec![(k.id, msg.to_string())],
        tags: meta.map(|m| tags_of(&m.tags)).unwrap_or_default(),
        weight: meta.map(|m| m.weight).unwrap_or(1),
    }
}

/// The reference table of a cross-container check, which must be in the same database as the source.
async fn resolve_reference(
    ctx: &Context,
    ds: &DatastoreRecord,
    ref_container: i64,
) -> Result<(String, String), String> {
    let viewer = Viewer::admin(0);
    let rc = ctx
        .store
        .container(ref_container, &viewer)
        .await
        .map_err(|e| format!("reference container: {e}"))?;
    let rds = ctx
        .store
        .datastore(rc.datastore_id, &viewer)
        .await
        .map_err(|e| format!("reference datastore: {e}"))?;
    if rds.connection_id != ds.connection_id || rds.spec.database != ds.spec.database {
        return Err(format!(
            "the reference container {} is in datastore '{}', which is not in the same database as '{}'; \
             Assay compares containers of one database",
            rc.name, rds.spec.name, ds.spec.name
        ));
    }
    Ok((rds.spec.schema.clone(), rc.name.clone()))
}
