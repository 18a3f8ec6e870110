//! Writing one container scan into the enrichment tables, in one transaction: the tables are ensured, the rows
//! of the same operation and container are deleted (a rescan of an operation replaces its own rows), and each
//! table gets one multi-row `INSERT ... SELECT FROM jsonb_to_recordset($1)` with all values in one bound JSON
//! parameter. A failure or a killed backend rolls everything back: no partial rows.

use crate::error::EnrichmentError;
use crate::layout::{self, Table};
use assay_postgres::ident::{qualified, quote_ident};
use serde_json::{Map, Value, json};
use tokio_postgres::GenericClient;

/// The scan of one container.
#[derive(Debug, Clone)]
pub struct ScanRow {
    pub operation_id: i64,
    pub datastore_id: i64,
    pub container_id: i64,
    pub datastore_name: String,
    pub container_name: String,
    pub incremental: bool,
    pub records_processed: i64,
    pub source_record_limit: i64,
    /// -1 when unlimited.
    pub max_records_analyzed: i64,
    pub anomaly_count: i64,
    /// RFC 3339.
    pub start_time: String,
    pub end_time: String,
    pub result: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MetricRow {
    pub check_id: i64,
    /// `passed`, `failed` or `unasserted`.
    pub result: &'static str,
    pub details: Option<String>,
    pub asserted: i64,
    pub anomalous: i64,
}

#[derive(Debug, Clone)]
pub struct FailedRow {
    pub check_id: i64,
    pub anomaly_uuid: String,
    pub message: String,
    pub rule_type: String,
    pub tags: Vec<String>,
    pub properties: Value,
    pub description: String,
    pub fields: Vec<String>,
    pub metadata: Value,
    pub anomalous_records_count: i64,
    pub fingerprint: String,
    pub detected_time: String,
}

#[derive(Debug, Clone)]
pub struct RecordRow {
    pub anomaly_uuid: String,
    /// The offending row as a JSON object.
    pub record: Value,
}

/// Remediation: the offending rows copied into `<prefix>_remediation_<container_id>`.
#[derive(Debug, Clone)]
pub struct Remediation {
    /// `append` or `overwrite`.
    pub strategy: String,
    /// The source's columns: name and `pg_type.typname`.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<RecordRow>,
}

#[derive(Debug, Clone)]
pub struct ContainerWrite {
    pub scan: ScanRow,
    pub metrics: Vec<MetricRow>,
    pub failed: Vec<FailedRow>,
    pub records: Vec<RecordRow>,
    pub remediation: Option<Remediation>,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub metrics: usize,
    pub failed_checks: usize,
    pub source_records: usize,
    pub remediation_rows: usize,
}

/// Inserts JSON objects into a table of the layout with one statement.
pub(crate) async fn insert<C: GenericClient>(
    c: &C,
    schema: &str,
    name: &str,
    table: &Table,
    rows: &[Value],
) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let cols: Vec<String> = table.cols.iter().map(|col| quote_ident(col.0)).collect();
    let defs: Vec<String> = table
        .cols
        .iter()
        .map(|col| format!("{} {}", quote_ident(col.0), col.1))
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) SELECT {} FROM jsonb_to_recordset($1::text::jsonb) AS x({})",
        qualified(schema, name),
        cols.join(", "),
        cols.join(", "),
        defs.join(", ")
    );
    let payload = Value::Array(rows.to_vec()).to_string();
    c.execute(&sql, &[&payload]).await?;
    Ok(())
}

/// The SQL type a remediation column gets for a source type (built-in types only; others become text).
fn remediation_type(typname: &str) -> &'static str {
    match typname {
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "numeric" => "numeric",
        "float4" => "real",
        "float8" => "double precision",
        "bool" => "boolean",
        "date" => "date",
        "timestamp" => "timestamp without time zone",
        "timestamptz" => "timestamp with time zone",
        "uuid" => "uuid",
        "json" => "json",
        "jsonb" => "jsonb",
        _ => "text",
    }
}

async fn remediate<C: GenericClient>(
    c: &C,
    schema: &str,
    prefix: &str,
    operation_id: i64,
    container_id: i64,
    r: &Remediation,
) -> Result<usize, tokio_postgres::Error> {
    let name = layout::table_name(prefix, &format!("remediation_{container_id}"));
    let rel = qualified(schema, &name);
    let mut cols: Vec<(String, &'static str)> = r
        .columns
        .iter()
        .map(|(n, t)| (n.clone(), remediation_type(t)))
        .collect();
    for (n, t) in [
        ("_qualytics_source_partition", "text"),
        ("anomaly_uuid", "text"),
        ("_assay_operation_id", "bigint"),
    ] {
        if !cols.iter().any(|(c, _)| c == n) {
            cols.push((n.to_string(), t));
        }
    }
    let present = c
        .query(
            "SELECT a.attname::text FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = k.relnamespace \
             WHERE n.nspname = $1 AND k.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&schema, &name],
        )
        .await?;
    if present.is_empty() {
        let defs: Vec<String> = cols
            .iter()
            .map(|(n, t)| format!("{} {t}", quote_ident(n)))
            .collect();
        c.batch_execute(&format!("CREATE TABLE {rel} ({})", defs.join(", ")))
            .await?;
        c.batch_execute(&format!(
            "CREATE INDEX ON {rel} ({})",
            quote_ident("anomaly_uuid")
        ))
        .await?;
        layout::register(c, schema, prefix, &name, "remediation", layout::VERSION).await?;
    } else {
        // the source gained columns since the table was made
        let have: Vec<String> = present.iter().map(|r| r.get(0)).collect();
        for (n, t) in &cols {
            if !have.contains(n) {
                c.batch_execute(&format!(
                    "ALTER TABLE {rel} ADD COLUMN {} {t}",
                    quote_ident(n)
                ))
                .await?;
            }
        }
    }
    if r.strategy == "overwrite" {
        c.batch_execute(&format!("DELETE FROM {rel}")).await?;
    } else {
        c.execute(
            &format!("DELETE FROM {rel} WHERE _assay_operation_id = $1"),
            &[&operation_id],
        )
        .await?;
    }
    if r.rows.is_empty() {
        return Ok(0);
    }
    let rows: Vec<Value> = r
        .rows
        .iter()
        .map(|row| {
            let mut m = row.record.as_object().cloned().unwrap_or_default();
            m.insert("_qualytics_source_partition".into(), json!(null));
            m.insert("anomaly_uuid".into(), json!(row.anomaly_uuid));
            m.insert("_assay_operation_id".into(), json!(operation_id));
            Value::Object(m)
        })
        .collect();
    c.execute(
        &format!(
            "INSERT INTO {rel} SELECT * FROM jsonb_populate_recordset(NULL::{rel}, $1::text::jsonb)"
        ),
        &[&Value::Array(rows.clone()).to_string()],
    )
    .await?;
    Ok(rows.len())
}

fn obj(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

/// Writes one container scan in one transaction of `client`.
pub async fn write(
    client: &mut tokio_postgres::Client,
    schema: &str,
    prefix: &str,
    role: &str,
    w: &ContainerWrite,
) -> Result<Written, EnrichmentError> {
    let e = |x: tokio_postgres::Error| EnrichmentError::from_db(&x, schema, role);
    let tx = client.transaction().await.map_err(e)?;
    layout::ensure(&tx, schema, prefix, role).await?;
    let s = &w.scan;
    for t in layout::SCAN_TABLES {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE operation_id = $1 AND container_id = $2",
                qualified(schema, &layout::table_name(prefix, t.suffix))
            ),
            &[&s.operation_id, &s.container_id],
        )
        .await
        .map_err(e)?;
    }
    let name = |t: &Table| layout::table_name(prefix, t.suffix);
    let scan = obj(vec![
        ("operation_id", json!(s.operation_id)),
        ("datastore_id", json!(s.datastore_id)),
        ("container_id", json!(s.container_id)),
        ("partition_name", json!(s.container_name)),
        ("incremental", json!(s.incremental)),
        ("records_processed", json!(s.records_processed)),
        (
            "enrichment_source_record_limit",
            json!(s.source_record_limit),
        ),
        ("max_records_analyzed", json!(s.max_records_analyzed)),
        ("anomaly_count", json!(s.anomaly_count)),
        ("start_time", json!(s.start_time)),
        ("end_time", json!(s.end_time)),
        ("result", json!(s.result)),
        ("message", json!(s.message)),
    ]);
    insert(
        &tx,
        schema,
        &name(&layout::SCAN_OPERATIONS),
        &layout::SCAN_OPERATIONS,
        &[scan],
    )
    .await
    .map_err(e)?;
    let metrics: Vec<Value> = w
        .metrics
        .iter()
        .map(|m| {
            obj(vec![
                ("operation_id", json!(s.operation_id)),
                ("container_id", json!(s.container_id)),
                ("quality_check_id", json!(m.check_id)),
                ("source_datastore", json!(s.datastore_name)),
                ("source_container", json!(s.container_name)),
                ("source_partition", json!(s.container_name)),
                ("assertion_result", json!(m.result)),
                ("assertion_details", json!(m.details)),
                ("asserted_records_count", json!(m.asserted)),
                ("anomalous_records_count", json!(m.anomalous)),
                ("_qualytics_source_partition", json!(s.container_name)),
            ])
        })
        .collect();
    insert(
        &tx,
        schema,
        &name(&layout::CHECK_METRICS),
        &layout::CHECK_METRICS,
        &metrics,
    )
    .await
    .map_err(e)?;
    let failed: Vec<Value> = w
        .failed
        .iter()
        .map(|f| {
            obj(vec![
                ("quality_check_id", json!(f.check_id)),
                ("anomaly_uuid", json!(f.anomaly_uuid)),
                ("quality_check_message", json!(f.message)),
                ("quality_check_rule_type", json!(f.rule_type)),
                ("quality_check_tags", json!(f.tags.join(","))),
                ("quality_check_parameters", json!(f.properties.to_string())),
                ("quality_check_description", json!(f.description)),
                ("quality_check_fields", json!(f.fields.join(","))),
                ("quality_check_metadata", json!(f.metadata.to_string())),
                ("anomalous_records_count", json!(f.anomalous_records_count)),
                ("operation_id", json!(s.operation_id)),
                ("container_id", json!(s.container_id)),
                ("detected_time", json!(f.detected_time)),
                ("source_datastore", json!(s.datastore_name)),
                ("source_container", json!(s.container_name)),
                ("source_partition", json!(s.container_name)),
                ("fingerprint", json!(f.fingerprint)),
            ])
        })
        .collect();
    insert(
        &tx,
        schema,
        &name(&layout::FAILED_CHECKS),
        &layout::FAILED_CHECKS,
        &failed,
    )
    .await
    .map_err(e)?;
    let records: Vec<Value> = w
        .records
        .iter()
        .map(|r| {
            obj(vec![
                ("source_container", json!(s.container_name)),
                ("source_partition", json!(s.container_name)),
                ("anomaly_uuid", json!(r.anomaly_uuid)),
                ("context", json!(null)),
                ("record", json!(r.record.to_string())),
                ("operation_id", json!(s.operation_id)),
                ("container_id", json!(s.container_id)),
            ])
        })
        .collect();
    insert(
        &tx,
        schema,
        &name(&layout::SOURCE_RECORDS),
        &layout::SOURCE_RECORDS,
        &records,
    )
    .await
    .map_err(e)?;
    let remediation_rows = match &w.remediation {
        Some(r) if r.strategy == "append" || r.strategy == "overwrite" => {
            remediate(&tx, schema, prefix, s.operation_id, s.container_id, r)
                .await
                .map_err(e)?
        }
        _ => 0,
    };
    tx.commit().await.map_err(e)?;
    Ok(Written {
        metrics: metrics.len(),
        failed_checks: failed.len(),
        source_records: records.len(),
        remediation_rows,
    })
}
