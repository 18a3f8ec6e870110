//! The export tables (`<prefix>_export_anomalies|checks|field_profiles|check_templates`), replaced as a whole
//! in one transaction by each export: drop (only if Assay made it), create with the documented columns, insert.

use crate::error::EnrichmentError;
use crate::layout::{self, Col, Table};
use serde_json::Value;

pub const ANOMALIES: Table = Table {
    suffix: "export_anomalies",
    cols: &[
        Col("id", "bigint", 1),
        Col("created", "timestamp with time zone", 1),
        Col("uuid", "text", 1),
        Col("type", "text", 1),
        Col("status", "text", 1),
        Col("global_tags", "text", 1),
        Col("container_id", "bigint", 1),
        Col("source_container", "text", 1),
        Col("datastore_id", "bigint", 1),
        Col("source_datastore", "text", 1),
        Col("generated_at", "timestamp with time zone", 1),
    ],
    indexes: &[],
};

pub const CHECKS: Table = Table {
    suffix: "export_checks",
    cols: &[
        Col("additional_metadata", "text", 1),
        Col("coverage", "double precision", 1),
        Col("created", "timestamp with time zone", 1),
        Col("deleted_at", "timestamp with time zone", 1),
        Col("description", "text", 1),
        Col("fields", "text", 1),
        Col("filter", "text", 1),
        Col("generated_at", "timestamp with time zone", 1),
        Col("global_tags", "text", 1),
        Col("has_passed", "boolean", 1),
        Col("id", "bigint", 1),
        Col("inferred", "boolean", 1),
        Col("is_new", "boolean", 1),
        Col("last_asserted", "timestamp with time zone", 1),
        Col("last_editor", "text", 1),
        Col("last_updated", "timestamp with time zone", 1),
        Col("num_container_scans", "bigint", 1),
        Col("properties", "text", 1),
        Col("rule_type", "text", 1),
        Col("weight", "bigint", 1),
        Col("datastore_id", "bigint", 1),
        Col("container_id", "bigint", 1),
        Col("template_id", "bigint", 1),
        Col("is_template", "boolean", 1),
        Col("source_container", "text", 1),
        Col("source_datastore", "text", 1),
    ],
    indexes: &[],
};

pub const CHECK_TEMPLATES: Table = Table {
    suffix: "export_check_templates",
    cols: &[
        Col("id", "bigint", 1),
        Col("created", "timestamp with time zone", 1),
        Col("description", "text", 1),
        Col("rule_type", "text", 1),
        Col("properties", "text", 1),
        Col("template_checks_count", "bigint", 1),
        Col("template_locked", "boolean", 1),
        Col("generated_at", "timestamp with time zone", 1),
    ],
    indexes: &[],
};

pub const FIELD_PROFILES: Table = Table {
    suffix: "export_field_profiles",
    cols: &[
        Col("approximate_distinct_values", "double precision", 1),
        Col("completeness", "double precision", 1),
        Col("container_id", "bigint", 1),
        Col("source_container", "text", 1),
        Col("container_store_type", "text", 1),
        Col("created", "timestamp with time zone", 1),
        Col("datastore_id", "bigint", 1),
        Col("source_datastore", "text", 1),
        Col("datastore_type", "text", 1),
        Col("entropy", "double precision", 1),
        Col("field_global_tags", "text", 1),
        Col("field_id", "bigint", 1),
        Col("field_name", "text", 1),
        Col("field_profile_id", "bigint", 1),
        Col("field_quality_score", "text", 1),
        Col("field_type", "text", 1),
        Col("field_weight", "bigint", 1),
        Col("generated_at", "timestamp with time zone", 1),
        Col("histogram_buckets", "text", 1),
        Col("is_not_normal", "boolean", 1),
        Col("kll", "text", 1),
        Col("kurtosis", "double precision", 1),
        Col("max", "text", 1),
        Col("max_length", "double precision", 1),
        Col("mean", "double precision", 1),
        Col("median", "text", 1),
        Col("min", "text", 1),
        Col("min_length", "double precision", 1),
        Col("name", "text", 1),
        Col("q1", "text", 1),
        Col("q3", "text", 1),
        Col("skewness", "double precision", 1),
        Col("std_dev", "double precision", 1),
        Col("sum", "double precision", 1),
        Col("type_declared", "text", 1),
        Col("unique_distinct_ratio", "double precision", 1),
    ],
    indexes: &[],
};

/// The table of an asset (`anomalies`, `checks`, `field_profiles`/`profiles`, `check_templates`).
pub fn table_of(asset: &str) -> Option<&'static Table> {
    Some(match asset {
        "anomalies" => &ANOMALIES,
        "checks" => &CHECKS,
        "profiles" | "field_profiles" | "field-profiles" => &FIELD_PROFILES,
        "check_templates" | "check-templates" => &CHECK_TEMPLATES,
        _ => return None,
    })
}

/// Replaces `<prefix>_export_<asset>` with `rows` (JSON objects keyed by column name; missing keys are null).
pub async fn replace(
    client: &mut tokio_postgres::Client,
    schema: &str,
    prefix: &str,
    role: &str,
    table: &Table,
    rows: &[Value],
) -> Result<String, EnrichmentError> {
    let e = |x: tokio_postgres::Error| EnrichmentError::from_db(&x, schema, role);
    let tx = client.transaction().await.map_err(e)?;
    let name = layout::table_name(prefix, table.suffix);
    layout::take_over(&tx, schema, prefix, role, &name).await?;
    layout::create(
        &tx,
        schema,
        &name,
        table.cols,
        table.indexes,
        layout::VERSION,
    )
    .await
    .map_err(e)?;
    layout::register(&tx, schema, prefix, &name, "export", layout::VERSION)
        .await
        .map_err(e)?;
    crate::write::insert(&tx, schema, &name, table, rows)
        .await
        .map_err(e)?;
    tx.commit().await.map_err(e)?;
    Ok(name)
}
