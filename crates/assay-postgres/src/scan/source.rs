//! What the source says about a relation: its live columns, the columns of a query, and whether the planner
//! accepts a filter or a check.

use super::*;

/// The live columns of a table, from `pg_catalog` (so a scan sees schema changes made since the last sync).
pub async fn live_columns(
    client: &Client,
    params: &ConnectParams,
    schema: &str,
    table: &str,
) -> Result<Option<Vec<ScanColumn>>, PgError> {
    let rows = client
        .query(
            "SELECT a.attname::text, ty.typname::text, ty.typtype::text, ty.typcategory::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             JOIN pg_type ty ON ty.oid = a.atttypid \
             WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await
        .map_err(|e| query_error(&e, params))?;
    if rows.is_empty() {
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema, &table],
            )
            .await
            .map_err(|e| query_error(&e, params))?;
        if exists.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(
        rows.iter()
            .map(|r| {
                let typname: String = r.get(1);
                let typtype: String = r.get(2);
                let cat: String = r.get(3);
                ScanColumn {
                    name: r.get(0),
                    field_type: assay_core::catalog::FieldType::from_postgres(
                        &typname, &typtype, &cat,
                    )
                    .as_str()
                    .to_string(),
                    typname,
                }
            })
            .collect(),
    ))
}

/// The columns of a relation expression (a computed container's query), as the source's planner describes them:
/// name, `typname`, `typtype`, `typcategory`.
pub async fn relation_columns(
    client: &Client,
    relation: &str,
) -> Result<Vec<(String, String, String, String)>, String> {
    let stmt = client
        .prepare(&format!("SELECT * FROM {relation} AS t LIMIT 0"))
        .await
        .map_err(|e| db_message(&e))?;
    let oids: Vec<u32> = stmt.columns().iter().map(|c| c.type_().oid()).collect();
    let rows = client
        .query(
            "SELECT oid, typname::text, typtype::text, typcategory::text FROM pg_type WHERE oid = ANY($1)",
            &[&oids],
        )
        .await
        .map_err(|e| db_message(&e))?;
    Ok(stmt
        .columns()
        .iter()
        .map(|c| {
            let t = rows.iter().find(|r| r.get::<_, u32>(0) == c.type_().oid());
            (
                c.name().to_string(),
                t.map(|r| r.get::<_, String>(1))
                    .unwrap_or_else(|| "text".into()),
                t.map(|r| r.get::<_, String>(2))
                    .unwrap_or_else(|| "b".into()),
                t.map(|r| r.get::<_, String>(3))
                    .unwrap_or_else(|| "S".into()),
            )
        })
        .collect())
}

/// Checks a filter or expression with the source's planner (`EXPLAIN`, never executed on data).
pub async fn plan_fragment(
    client: &Client,
    relation: &str,
    filter: Option<&str>,
    check: Option<&ScanCheck>,
    columns: &[ScanColumn],
) -> Result<(), String> {
    let rel = relation;
    if let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) {
        check_sql_fragment(f).map_err(|e| format!("filter: {e}"))?;
        client
            .prepare(&format!("EXPLAIN SELECT 1 FROM {rel} AS t WHERE ({f})"))
            .await
            .map_err(|e| format!("filter: {}", db_message(&e)))?;
    }
    let mut b = Binds::default();
    let mut conds = Vec::new();
    if let Some(k) = check {
        match compile(k, &Ctx { columns }, &mut b)? {
            Eval::Row(v) => conds.push(format!("({v})")),
            Eval::Aggregate(_) | Eval::Own | Eval::Catalog => {}
        }
        if k.rule == "matchesPattern" {
            // the source compiles the regular expression
            let mut bb = Binds::default();
            let v = bb.push(text_of(&k.properties["pattern"]));
            client
                .query_one(&format!("SELECT '' ~ {v}"), &bb.refs())
                .await
                .map_err(|e| format!("properties.pattern: {}", db_message(&e)))?;
        }
    }
    if conds.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "EXPLAIN SELECT 1 FROM {rel} AS t WHERE {}",
        conds.join(" AND ")
    );
    let types = vec![tokio_postgres::types::Type::TEXT; b.0.len()];
    let stmt = client
        .prepare_typed(&sql, &types)
        .await
        .map_err(|e| db_message(&e))?;
    client
        .query(&stmt, &b.refs())
        .await
        .map(|_| ())
        .map_err(|e| db_message(&e))
}
