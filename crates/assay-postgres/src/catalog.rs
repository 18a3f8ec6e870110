//! Catalog discovery from `pg_catalog`: the schema's tables, views, materialized views, partitioned and foreign
//! tables (never child partitions), their columns, primary keys and row estimates; plus the list of user schemas.

use crate::connect::{ConnectParams, query_error};
use crate::error::PgError;
use crate::preflight::is_system_schema;
use assay_core::catalog::{DiscoveredColumn, DiscoveredTable, FieldType, TableKind};
use std::collections::BTreeMap;
use tokio_postgres::types::Oid;

/// What a sync reads from one schema.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub tables: Vec<DiscoveredTable>,
    /// `track_commit_timestamp = on`: commit timestamps can serve as the incremental strategy.
    pub commit_timestamps: bool,
}

/// The schemas of the database a role can see, without system and temporary schemas.
pub async fn list_schemas(
    client: &tokio_postgres::Client,
    params: &ConnectParams,
) -> Result<Vec<String>, PgError> {
    let rows = client
        .query(
            "SELECT nspname::text FROM pg_catalog.pg_namespace ORDER BY nspname",
            &[],
        )
        .await
        .map_err(|e| query_error(&e, params))?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|s| !is_system_schema(s))
        .collect())
}

/// Reads the catalog of `schema`.
pub async fn discover(
    client: &tokio_postgres::Client,
    params: &ConnectParams,
    schema: &str,
) -> Result<Snapshot, PgError> {
    if is_system_schema(schema) {
        return Err(PgError::SystemSchema(schema.to_string()));
    }
    let qe = |e: tokio_postgres::Error| query_error(&e, params);
    let ns = client
        .query_opt(
            "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .map_err(qe)?;
    let Some(ns) = ns else {
        return Err(PgError::SchemaMissing {
            database: params.database.clone(),
            schema: schema.to_string(),
        });
    };
    let ns: Oid = ns.get(0);
    let commit_timestamps: bool = client
        .query_one(
            "SELECT current_setting('track_commit_timestamp') = 'on'",
            &[],
        )
        .await
        .map_err(qe)?
        .get(0);

    let rel_rows = client
        .query(
            "SELECT c.oid, c.relname::text, c.relkind::text, c.reltuples::float8, \
                    obj_description(c.oid, 'pg_class') \
             FROM pg_catalog.pg_class c \
             WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition \
             ORDER BY c.relname",
            &[&ns],
        )
        .await
        .map_err(qe)?;
    let mut tables: BTreeMap<Oid, DiscoveredTable> = BTreeMap::new();
    for r in &rel_rows {
        let Some(kind) = TableKind::from_relkind(&r.get::<_, String>(2)) else {
            continue;
        };
        let reltuples: f64 = r.get(3);
        let row_estimate = match kind {
            TableKind::View => None,
            _ if reltuples < 0.0 => None,
            _ => Some(reltuples.round() as i64),
        };
        tables.insert(
            r.get(0),
            DiscoveredTable {
                name: r.get(1),
                kind,
                row_estimate,
                primary_key: Vec::new(),
                columns: Vec::new(),
                remarks: r.get(4),
            },
        );
    }

    let col_rows = client
        .query(
            "SELECT a.attrelid, a.attname::text, a.attnum::int4, format_type(a.atttypid, a.atttypmod), \
                    COALESCE(bt.typname, t.typname)::text, COALESCE(bt.typtype, t.typtype)::text, \
                    COALESCE(bt.typcategory, t.typcategory)::text, NOT a.attnotnull, \
                    (a.attidentity <> '' OR EXISTS ( \
                        SELECT 1 FROM pg_catalog.pg_depend d \
                        JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
                        WHERE d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype IN ('a', 'i'))), \
                    col_description(a.attrelid, a.attnum) \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype \
             WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition \
               AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attrelid, a.attnum",
            &[&ns],
        )
        .await
        .map_err(qe)?;
    for r in &col_rows {
        let Some(t) = tables.get_mut(&r.get::<_, Oid>(0)) else {
            continue;
        };
        let typname: String = r.get(4);
        let typtype: String = r.get(5);
        let typcategory: String = r.get(6);
        t.columns.push(DiscoveredColumn {
            name: r.get(1),
            ordinal: r.get(2),
            native_type: r.get(3),
            field_type: FieldType::from_postgres(&typname, &typtype, &typcategory),
            typname,
            typcategory,
            nullable: r.get(7),
            sequence_backed: r.get(8),
            remarks: r.get(9),
        });
    }

    let pk_rows = client
        .query(
            "SELECT con.conrelid, a.attname::text \
             FROM pg_catalog.pg_constraint con \
             CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
             WHERE con.contype = 'p' AND con.connamespace = $1 \
             ORDER BY con.conrelid, k.ord",
            &[&ns],
        )
        .await
        .map_err(qe)?;
    for r in &pk_rows {
        if let Some(t) = tables.get_mut(&r.get::<_, Oid>(0)) {
            t.primary_key.push(r.get(1));
        }
    }
    let mut tables: Vec<DiscoveredTable> = tables.into_values().collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Snapshot {
        tables,
        commit_timestamps,
    })
}
