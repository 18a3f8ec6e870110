//! The enrichment tables, their columns and schema versions. Each prefix has a registry table,
//! `<prefix>_assay_schema`, listing every table Assay created for it with the layout version it has. `ensure`
//! creates missing tables, migrates older ones with `ALTER TABLE ... ADD COLUMN`, and refuses tables that Assay did
//! not create, tables from a newer Assay, and columns whose type was changed by hand. Column names are the
//! Qualytics names in lower case (PostgreSQL folds unquoted upper-case names to them).

use crate::error::EnrichmentError;
use assay_postgres::ident::{qualified, quote_ident};
use tokio_postgres::GenericClient;

/// The current layout version.
pub const VERSION: i32 = 2;

/// A column: name, SQL type, and the layout version that added it.
pub struct Col(pub &'static str, pub &'static str, pub i32);

pub struct Table {
    pub suffix: &'static str,
    pub cols: &'static [Col],
    /// Indexed lookup keys.
    pub indexes: &'static [&'static str],
}

pub const SCAN_OPERATIONS: Table = Table {
    suffix: "scan_operations",
    cols: &[
        Col("operation_id", "bigint", 1),
        Col("datastore_id", "bigint", 1),
        Col("container_id", "bigint", 1),
        Col("partition_name", "text", 1),
        Col("incremental", "boolean", 1),
        Col("records_processed", "bigint", 1),
        Col("enrichment_source_record_limit", "bigint", 1),
        Col("max_records_analyzed", "bigint", 1),
        Col("anomaly_count", "bigint", 1),
        Col("start_time", "timestamp with time zone", 1),
        Col("end_time", "timestamp with time zone", 1),
        Col("result", "text", 1),
        Col("message", "text", 1),
    ],
    indexes: &["operation_id", "container_id"],
};

pub const CHECK_METRICS: Table = Table {
    suffix: "check_metrics",
    cols: &[
        Col("operation_id", "bigint", 1),
        Col("container_id", "bigint", 1),
        Col("quality_check_id", "bigint", 1),
        Col("source_datastore", "text", 1),
        Col("source_container", "text", 1),
        Col("source_partition", "text", 1),
        Col("assertion_result", "text", 1),
        Col("assertion_details", "text", 1),
        Col("asserted_records_count", "bigint", 1),
        Col("anomalous_records_count", "bigint", 1),
        Col("_qualytics_source_partition", "text", 2),
    ],
    indexes: &["operation_id", "container_id", "quality_check_id"],
};

pub const FAILED_CHECKS: Table = Table {
    suffix: "failed_checks",
    cols: &[
        Col("quality_check_id", "bigint", 1),
        Col("anomaly_uuid", "text", 1),
        Col("quality_check_message", "text", 1),
        Col("suggested_remediation_field", "text", 1),
        Col("suggested_remediation_value", "text", 1),
        Col("suggested_remediation_score", "double precision", 1),
        Col("quality_check_rule_type", "text", 1),
        Col("quality_check_tags", "text", 1),
        Col("quality_check_parameters", "text", 1),
        Col("quality_check_description", "text", 1),
        Col("quality_check_fields", "text", 2),
        Col("quality_check_metadata", "text", 2),
        Col("anomalous_records_count", "bigint", 1),
        Col("operation_id", "bigint", 1),
        Col("container_id", "bigint", 1),
        Col("detected_time", "timestamp with time zone", 1),
        Col("source_datastore", "text", 1),
        Col("source_container", "text", 1),
        Col("source_partition", "text", 1),
        Col("fingerprint", "text", 1),
    ],
    indexes: &["anomaly_uuid", "operation_id", "container_id"],
};

pub const SOURCE_RECORDS: Table = Table {
    suffix: "source_records",
    cols: &[
        Col("source_container", "text", 1),
        Col("source_partition", "text", 1),
        Col("anomaly_uuid", "text", 1),
        Col("context", "text", 1),
        Col("record", "text", 1),
        Col("operation_id", "bigint", 1),
        Col("container_id", "bigint", 1),
    ],
    indexes: &["anomaly_uuid", "operation_id"],
};

/// The tables every scan writes.
pub const SCAN_TABLES: [&Table; 4] = [
    &SCAN_OPERATIONS,
    &CHECK_METRICS,
    &FAILED_CHECKS,
    &SOURCE_RECORDS,
];

/// `<prefix>_<suffix>`.
pub fn table_name(prefix: &str, suffix: &str) -> String {
    format!("{prefix}_{suffix}")
}

pub fn registry_name(prefix: &str) -> String {
    table_name(prefix, "assay_schema")
}

fn db<'a>(
    schema: &'a str,
    role: &'a str,
) -> impl Fn(tokio_postgres::Error) -> EnrichmentError + 'a {
    move |e| EnrichmentError::from_db(&e, schema, role)
}

pub(crate) async fn exists<C: GenericClient>(
    c: &C,
    schema: &str,
    name: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(c.query_opt(
        "SELECT 1 FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE n.nspname = $1 AND k.relname = $2",
        &[&schema, &name],
    )
    .await?
    .is_some())
}

/// Creates a table of `cols` (only those up to `version`) with its indexes.
pub async fn create<C: GenericClient>(
    c: &C,
    schema: &str,
    name: &str,
    cols: &[Col],
    indexes: &[&str],
    version: i32,
) -> Result<(), tokio_postgres::Error> {
    let list: Vec<String> = cols
        .iter()
        .filter(|col| col.2 <= version)
        .map(|col| format!("{} {}", quote_ident(col.0), col.1))
        .collect();
    c.batch_execute(&format!(
        "CREATE TABLE {} ({})",
        qualified(schema, name),
        list.join(", ")
    ))
    .await?;
    for ix in indexes {
        c.batch_execute(&format!(
            "CREATE INDEX ON {} ({})",
            qualified(schema, name),
            quote_ident(ix)
        ))
        .await?;
    }
    Ok(())
}

/// Registers a table Assay created (or migrated) at `version`.
pub async fn register<C: GenericClient>(
    c: &C,
    schema: &str,
    prefix: &str,
    name: &str,
    kind: &str,
    version: i32,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        &format!(
            "INSERT INTO {} (table_name, kind, schema_version) VALUES ($1, $2, $3) \
             ON CONFLICT (table_name) DO UPDATE SET schema_version = EXCLUDED.schema_version, updated = now()",
            qualified(schema, &registry_name(prefix))
        ),
        &[&name, &kind, &version],
    )
    .await?;
    Ok(())
}

/// Makes sure the registry exists (refusing scan tables that exist without one). Takes a transaction-level
/// advisory lock on the prefix so concurrent scans do not race.
pub async fn ensure_registry<C: GenericClient>(
    c: &C,
    schema: &str,
    prefix: &str,
    role: &str,
) -> Result<(), EnrichmentError> {
    let e = db(schema, role);
    let registry = registry_name(prefix);
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("assay-enrichment:{schema}.{prefix}")],
    )
    .await
    .map_err(&e)?;
    if exists(c, schema, &registry).await.map_err(&e)? {
        return Ok(());
    }
    for t in SCAN_TABLES {
        let name = table_name(prefix, t.suffix);
        if exists(c, schema, &name).await.map_err(&e)? {
            return Err(EnrichmentError::Unmanaged {
                table: name,
                registry,
            });
        }
    }
    c.batch_execute(&format!(
        "CREATE TABLE {} (table_name text PRIMARY KEY, kind text NOT NULL, schema_version integer NOT NULL, \
         created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now())",
        qualified(schema, &registry)
    ))
    .await
    .map_err(&e)?;
    Ok(())
}

/// The tables registered for a prefix: (name, kind, version).
pub async fn registered<C: GenericClient>(
    c: &C,
    schema: &str,
    prefix: &str,
) -> Result<Vec<(String, String, i32)>, tokio_postgres::Error> {
    if !exists(c, schema, &registry_name(prefix)).await? {
        return Ok(Vec::new());
    }
    Ok(c.query(
        &format!(
            "SELECT table_name, kind, schema_version FROM {} ORDER BY table_name",
            qualified(schema, &registry_name(prefix))
        ),
        &[],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect())
}

/// Creates or migrates the scan tables of a prefix and checks their columns. Call inside a transaction.
pub async fn ensure<C: GenericClient>(
    c: &C,
    schema: &str,
    prefix: &str,
    role: &str,
) -> Result<(), EnrichmentError> {
    let e = db(schema, role);
    ensure_registry(c, schema, prefix, role).await?;
    let known = registered(c, schema, prefix).await.map_err(&e)?;
    for t in SCAN_TABLES {
        let name = table_name(prefix, t.suffix);
        let version = known.iter().find(|k| k.0 == name).map(|k| k.2);
        let present = exists(c, schema, &name).await.map_err(&e)?;
        match (version, present) {
            (None, true) => {
                return Err(EnrichmentError::Unmanaged {
                    table: name,
                    registry: registry_name(prefix),
                });
            }
            (_, false) => {
                // new, or registered but dropped by someone: create it at the current version
                create(c, schema, &name, t.cols, t.indexes, VERSION)
                    .await
                    .map_err(&e)?;
                register(c, schema, prefix, &name, "scan", VERSION)
                    .await
                    .map_err(&e)?;
            }
            (Some(v), true) if v > VERSION => {
                return Err(EnrichmentError::Newer {
                    table: name,
                    found: v,
                    supported: VERSION,
                });
            }
            (Some(v), true) => {
                if v < VERSION {
                    for col in t.cols.iter().filter(|col| col.2 > v) {
                        c.batch_execute(&format!(
                            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}",
                            qualified(schema, &name),
                            quote_ident(col.0),
                            col.1
                        ))
                        .await
                        .map_err(&e)?;
                    }
                    register(c, schema, prefix, &name, "scan", VERSION)
                        .await
                        .map_err(&e)?;
                }
                verify(c, schema, &name, t.cols)
                    .await
                    .map_err(|x| match x {
                        Ok(altered) => altered,
                        Err(d) => e(d),
                    })?;
            }
        }
    }
    Ok(())
}

/// Checks that every column exists with its type.
async fn verify<C: GenericClient>(
    c: &C,
    schema: &str,
    name: &str,
    cols: &[Col],
) -> Result<(), Result<EnrichmentError, tokio_postgres::Error>> {
    let rows = c
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class k ON k.oid = a.attrelid JOIN pg_namespace n ON n.oid = k.relnamespace \
             WHERE n.nspname = $1 AND k.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&schema, &name],
        )
        .await
        .map_err(Err)?;
    for col in cols {
        let found = rows
            .iter()
            .find(|r| r.get::<_, String>(0) == col.0)
            .map(|r| r.get::<_, String>(1));
        if found.as_deref() != Some(col.1) {
            return Err(Ok(EnrichmentError::Altered {
                table: name.to_string(),
                column: col.0.to_string(),
                expected: col.1.to_string(),
                found: found.unwrap_or_else(|| "missing".into()),
            }));
        }
    }
    Ok(())
}

/// Inside a transaction: makes sure the registry exists and clears the way for Assay to (re)create table `name`:
/// drops it when Assay made it, refuses when someone else's table has that name.
pub async fn take_over<C: GenericClient>(
    c: &C,
    schema: &str,
    prefix: &str,
    role: &str,
    name: &str,
) -> Result<(), EnrichmentError> {
    let e = db(schema, role);
    ensure_registry(c, schema, prefix, role).await?;
    let known = registered(c, schema, prefix).await.map_err(&e)?;
    let ours = known.iter().any(|k| k.0 == name);
    let present = exists(c, schema, name).await.map_err(&e)?;
    if present && !ours {
        return Err(EnrichmentError::Unmanaged {
            table: name.to_string(),
            registry: registry_name(prefix),
        });
    }
    if present {
        c.batch_execute(&format!("DROP TABLE {}", qualified(schema, name)))
            .await
            .map_err(&e)?;
    }
    Ok(())
}

/// Drops exactly the tables registered for the prefix, then the registry. Returns their names.
pub async fn drop_all<C: GenericClient>(
    c: &C,
    schema: &str,
    prefix: &str,
    role: &str,
) -> Result<Vec<String>, EnrichmentError> {
    let e = db(schema, role);
    let known = registered(c, schema, prefix).await.map_err(&e)?;
    let mut dropped = Vec::new();
    for (name, _, _) in &known {
        c.batch_execute(&format!("DROP TABLE IF EXISTS {}", qualified(schema, name)))
            .await
            .map_err(&e)?;
        dropped.push(name.clone());
    }
    if !known.is_empty()
        || exists(c, schema, &registry_name(prefix))
            .await
            .map_err(&e)?
    {
        c.batch_execute(&format!(
            "DROP TABLE IF EXISTS {}",
            qualified(schema, &registry_name(prefix))
        ))
        .await
        .map_err(&e)?;
        dropped.push(registry_name(prefix));
    }
    Ok(dropped)
}
