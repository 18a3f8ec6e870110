//! Where a source's scan results go in its enrichment datastore: the resolved target (session parameters,
//! schema, prefix) and the rows one container scan writes there.

use crate::Context;
use assay_store::Viewer;
use assay_store::anomalies::{NewAnomaly, NewMetric};
use assay_store::catalog::ContainerRecord;
use assay_store::datastores::DatastoreRecord;
use assay_store::operations::OperationRecord;
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a source's enrichment rows go.
pub struct Target {
    pub params: assay_postgres::ConnectParams,
    pub schema: String,
    pub prefix: String,
}

/// Resolves the linked enrichment datastore once per operation.
pub async fn enrichment_target(
    ctx: &Context,
    ds: &DatastoreRecord,
    enrich_id: i64,
) -> Result<Target, String> {
    let viewer = Viewer::admin(0);
    let eds = ctx
        .store
        .datastore(enrich_id, &viewer)
        .await
        .map_err(|e| e.to_string())?;
    let params = crate::source::resolve(ctx, &eds)
        .await
        .map_err(|e| format!("the enrichment datastore: {e}"))?;
    let prefix = match &ds.spec.enrichment_prefix {
        Some(p) => p.clone(),
        None => assay_core::datastore::normalize_prefix(&ds.spec.name).map_err(|e| e.message)?,
    };
    Ok(Target {
        params,
        schema: eds.spec.schema.clone(),
        prefix,
    })
}

/// The enrichment rows of one container scan.
#[allow(clippy::too_many_arguments)]
pub(crate) fn enrichment_rows(
    op: &OperationRecord,
    ds: &DatastoreRecord,
    c: &ContainerRecord,
    source_records: usize,
    limit: Option<u64>,
    incremental: bool,
    records: i64,
    metrics: &[NewMetric],
    invalid: &[(i64, String)],
    anomalies: &[NewAnomaly],
    ids: &[(i64, String)],
    meta: &BTreeMap<i64, &assay_store::checks::ScanCheckRecord>,
    columns: &[assay_postgres::scan::ScanColumn],
    started_at: chrono::DateTime<chrono::Utc>,
) -> assay_enrichment::write::ContainerWrite {
    use assay_enrichment::write::{
        ContainerWrite, FailedRow, MetricRow, RecordRow, Remediation, ScanRow,
    };
    let now = chrono::Utc::now().to_rfc3339();
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for (a, (_, uuid)) in anomalies.iter().zip(ids) {
        for (check, msg) in &a.checks {
            let m = meta.get(check);
            failed.push(FailedRow {
                check_id: *check,
                anomaly_uuid: uuid.clone(),
                message: msg.clone(),
                rule_type: m.map(|m| m.rule_type.clone()).unwrap_or_default(),
                tags: m.map(|m| tags_of(&m.tags)).unwrap_or_default(),
                properties: m.map(|m| m.properties.clone()).unwrap_or(Value::Null),
                description: m.map(|m| m.description.clone()).unwrap_or_default(),
                fields: m.map(|m| m.fields.clone()).unwrap_or_default(),
                metadata: m
                    .map(|m| m.additional_metadata.clone())
                    .unwrap_or(Value::Null),
                anomalous_records_count: a.anomalous_records_count,
                fingerprint: a.fingerprint.clone(),
                detected_time: now.clone(),
            });
        }
        for r in a.source_records.iter().take(source_records) {
            rows.push(RecordRow {
                anomaly_uuid: uuid.clone(),
                record: r.clone(),
            });
        }
    }
    let mut metric_rows: Vec<MetricRow> = metrics
        .iter()
        .map(|m| MetricRow {
            check_id: m.check_id,
            result: if m.passed == Some(false) {
                "failed"
            } else {
                "passed"
            },
            details: m.message.clone(),
            asserted: m.asserted_records,
            anomalous: m.anomalous_records,
        })
        .collect();
    metric_rows.extend(invalid.iter().map(|(id, e)| MetricRow {
        check_id: *id,
        result: "unasserted",
        details: Some(e.clone()),
        asserted: 0,
        anomalous: 0,
    }));
    let strategy = ds.spec.enrichment_remediation_strategy.as_str().to_string();
    ContainerWrite {
        scan: ScanRow {
            operation_id: op.id,
            datastore_id: ds.id,
            container_id: c.id,
            datastore_name: ds.spec.name.clone(),
            container_name: c.name.clone(),
            incremental,
            records_processed: records,
            source_record_limit: source_records as i64,
            max_records_analyzed: limit.map(|n| n as i64).unwrap_or(-1),
            anomaly_count: anomalies.len() as i64,
            start_time: started_at.to_rfc3339(),
            end_time: now.clone(),
            result: "success".into(),
            message: None,
        },
        metrics: metric_rows,
        failed,
        remediation: (strategy != "none").then(|| Remediation {
            strategy,
            columns: columns
                .iter()
                .map(|c| (c.name.clone(), c.typname.clone()))
                .collect(),
            rows: rows.clone(),
        }),
        records: rows,
    }
}

/// The tags of a check's metadata (a JSON list of strings).
pub(crate) fn tags_of(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
