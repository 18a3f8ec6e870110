//! The scan benchmark: ten checks equivalent to the reference Soda Core / Great Expectations suites (three
//! not-null, two ranges, one regex, one uniqueness, one value set, a minimum and a maximum) run by Assay's scan
//! engine, interleaved with PostgreSQL's COPY-binary limit on the same table; then an incremental scan after
//! appending 1 % of rows.

use anyhow::Result;
use assay_postgres::ConnectParams;
use assay_postgres::profile::Rows;
use assay_postgres::scan::{ScanCheck, ScanColumn, ScanPlan, ScanResult};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn check(id: i64, rule: &str, field: &str, properties: Value) -> ScanCheck {
    ScanCheck {
        id,
        rule: rule.into(),
        fields: vec![field.into()],
        coverage: None,
        filter: None,
        properties,
        reference: None,
        previous: None,
    }
}

/// The ten checks; `statuses` is the value set of the table's `status` column.
pub fn ten_checks(statuses: &[&str]) -> Vec<ScanCheck> {
    vec![
        check(1, "notNull", "id", json!({})),
        check(2, "notNull", "customer_id", json!({})),
        check(3, "notNull", "created_at", json!({})),
        check(4, "between", "amount", json!({"min": -1000, "max": 10000})),
        check(5, "between", "quantity", json!({"min": 0, "max": 100})),
        check(
            6,
            "matchesPattern",
            "email",
            json!({"pattern": "^[^@\\s]+@[^@\\s]+\\.[a-z]+$"}),
        ),
        check(7, "unique", "id", json!({})),
        check(8, "expectedValues", "status", json!({"list": statuses})),
        check(9, "minValue", "amount", json!({"value": -1000})),
        check(10, "maxValue", "amount", json!({"value": 10000})),
    ]
}

pub async fn columns(
    c: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> Result<Vec<ScanColumn>> {
    let rows = c
        .query(
            "SELECT a.attname::text, t.typname::text FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND a.attnum > 0 \
             AND NOT a.attisdropped ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let typname: String = r.get(1);
            let field_type = match typname.as_str() {
                "int2" | "int4" | "int8" => "Integral",
                "numeric" | "float4" | "float8" => "Fractional",
                "date" => "Date",
                "timestamp" | "timestamptz" => "Timestamp",
                "bool" => "Boolean",
                _ => "String",
            };
            ScanColumn {
                name: r.get(0),
                field_type: field_type.into(),
                typname,
            }
        })
        .collect())
}

pub fn plan(
    schema: &str,
    table: &str,
    columns: Vec<ScanColumn>,
    checks: Vec<ScanCheck>,
    rows: Rows,
) -> ScanPlan {
    ScanPlan {
        schema: schema.into(),
        table: table.into(),
        columns,
        checks,
        rows,
        limit: None,
        sample: 10,
        checkpoint_column: Some("created_at".into()),
        freshness_column: None,
        relation: None,
    }
}

/// One scan on a fresh session; returns the seconds and the result.
pub async fn scan_once(params: &ConnectParams, plan: &ScanPlan) -> Result<(f64, ScanResult)> {
    let t0 = Instant::now();
    let client = params.connect_read_only().await?;
    let r =
        assay_postgres::scan::scan(&client, params, plan, Arc::new(AtomicBool::new(false))).await?;
    Ok((t0.elapsed().as_secs_f64(), r))
}

/// A short summary of what a scan found, to show that the checks really ran.
pub fn summary(r: &ScanResult) -> Value {
    json!({
        "records": r.records,
        "failed_checks": r.outcomes.iter().filter(|o| !o.passed).map(|o| json!({"check": o.check_id, "anomalous": o.anomalous})).collect::<Vec<_>>(),
        "errors": r.outcomes.iter().filter_map(|o| o.error.clone()).collect::<Vec<_>>(),
    })
}

/// The enrichment rows a scan result produces with the default limits: one shape anomaly per failed check with
/// up to ten source records (the server writes the same shape).
pub fn enrichment_rows(
    r: &ScanResult,
    operation_id: i64,
) -> assay_enrichment::write::ContainerWrite {
    use assay_enrichment::write::*;
    let mut failed = Vec::new();
    let mut records = Vec::new();
    for (i, o) in r.outcomes.iter().filter(|o| !o.passed).enumerate() {
        let uuid = format!("bench-{operation_id}-{i}");
        failed.push(FailedRow {
            check_id: o.check_id,
            anomaly_uuid: uuid.clone(),
            message: o.message.clone().unwrap_or_default(),
            rule_type: "bench".into(),
            tags: vec![],
            properties: json!({}),
            description: String::new(),
            fields: vec![],
            metadata: json!({}),
            anomalous_records_count: o.anomalous,
            fingerprint: uuid.clone(),
            detected_time: "2026-11-25T00:00:00Z".into(),
        });
        for row in o.rows.iter().take(10) {
            records.push(RecordRow {
                anomaly_uuid: uuid.clone(),
                record: serde_json::from_str(row).unwrap_or(Value::Null),
            });
        }
    }
    ContainerWrite {
        scan: ScanRow {
            operation_id,
            datastore_id: 1,
            container_id: 1,
            datastore_name: "bench".into(),
            container_name: "orders".into(),
            incremental: false,
            records_processed: r.records,
            source_record_limit: 10,
            max_records_analyzed: -1,
            anomaly_count: failed.len() as i64,
            start_time: "2026-11-25T00:00:00Z".into(),
            end_time: "2026-11-25T00:00:01Z".into(),
            result: "success".into(),
            message: None,
        },
        metrics: r
            .outcomes
            .iter()
            .map(|o| MetricRow {
                check_id: o.check_id,
                result: if o.passed { "passed" } else { "failed" },
                details: o.message.clone(),
                asserted: o.asserted,
                anomalous: o.anomalous,
            })
            .collect(),
        failed,
        records,
        remediation: None,
    }
}
