//! Computed joins: two containers of datastores on the same PostgreSQL database joined on a key, their fields
//! renamed `<prefix>_<field>` (prefixes default to `left` and `right`), then the user's select, where and
//! group-by clauses over the joined row. The definition is kept with the container and compiled into one
//! query, so profiles, scans and materialize read a join exactly like a computed table.

use crate::Context;
use crate::OpsError;
use assay_core::FieldError;
use assay_postgres::ident::{qualified, quote_ident};
use assay_postgres::scan::check_sql_fragment;
use assay_store::Viewer;
use assay_store::datastores::DatastoreRecord;
use serde_json::{Map, Value, json};

/// The keys of a join definition, as the API names them.
const KEYS: &[&str] = &[
    "left_container_id",
    "right_container_id",
    "left_join_field_name",
    "right_join_field_name",
    "join_type",
    "left_prefix",
    "right_prefix",
    "select_clause",
    "where_clause",
    "group_by_clause",
];

/// The definition from a request body, over `base` (the stored one when updating).
pub fn definition(map: &Map<String, Value>, base: Option<&Value>) -> Value {
    let mut d = base.and_then(Value::as_object).cloned().unwrap_or_default();
    for k in KEYS {
        if let Some(v) = map.get(*k).filter(|v| !v.is_null()) {
            d.insert(k.to_string(), v.clone());
        }
    }
    d.insert("container_type".into(), json!("computed_join"));
    Value::Object(d)
}

fn join_sql(kind: &str) -> Option<&'static str> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "inner" => "JOIN",
        "left" => "LEFT JOIN",
        "right" => "RIGHT JOIN",
        "full" | "outer" | "full_outer" => "FULL JOIN",
        _ => return None,
    })
}

/// Checks a definition against the catalog and the source and compiles it. Returns the left container's
/// datastore (where the join lives) and the query.
pub async fn compile(
    ctx: &Context,
    viewer: &Viewer,
    d: &Value,
) -> Result<(DatastoreRecord, String), OpsError> {
    let mut errors = Vec::new();
    let int = |k: &str, errors: &mut Vec<FieldError>| {
        let v = d[k].as_i64();
        if v.is_none() {
            errors.push(FieldError::new(k, "is required (a container id)"));
        }
        v
    };
    let text = |k: &str, required: bool, errors: &mut Vec<FieldError>| {
        let v = d[k]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if v.is_none() && required {
            errors.push(FieldError::new(k, "is required"));
        }
        if let Some(sql) = &v
            && let Err(e) = check_sql_fragment(sql)
        {
            errors.push(FieldError::new(k, e));
        }
        v
    };
    let left_id = int("left_container_id", &mut errors);
    let right_id = int("right_container_id", &mut errors);
    let left_key = d["left_join_field_name"].as_str().map(str::to_string);
    let right_key = d["right_join_field_name"].as_str().map(str::to_string);
    for (k, v) in [
        ("left_join_field_name", &left_key),
        ("right_join_field_name", &right_key),
    ] {
        if v.is_none() {
            errors.push(FieldError::new(k, "is required (a field name)"));
        }
    }
    let select = text("select_clause", true, &mut errors);
    let filter = text("where_clause", false, &mut errors);
    let group = text("group_by_clause", false, &mut errors);
    let kind = d["join_type"].as_str().unwrap_or("inner");
    let join = join_sql(kind);
    if join.is_none() {
        errors.push(FieldError::new(
            "join_type",
            format!("'{kind}' is not one of inner, left, right, full"),
        ));
    }
    let prefix = |k: &str, default: &str| d[k].as_str().unwrap_or(default).to_string();
    let (lp, rp) = (
        prefix("left_prefix", "left"),
        prefix("right_prefix", "right"),
    );
    if lp == rp {
        errors.push(FieldError::new(
            "right_prefix",
            "must differ from left_prefix, or the joined fields collide",
        ));
    }
    let (
        Some(left_id),
        Some(right_id),
        Some(left_key),
        Some(right_key),
        Some(select),
        Some(join),
        true,
    ) = (
        left_id,
        right_id,
        left_key,
        right_key,
        select,
        join,
        errors.is_empty(),
    )
    else {
        return Err(OpsError::Fields(errors));
    };
    let (lc, lds) = crate::computed::load(ctx, viewer, left_id).await?;
    let (rc, rds) = crate::computed::load(ctx, viewer, right_id).await?;
    if lds.connection_id != rds.connection_id || lds.spec.database != rds.spec.database {
        return Err(OpsError::Fields(vec![FieldError::new(
            "right_container_id",
            format!(
                "'{}' is in database '{}' of another connection than '{}': a computed join reads both sides in one \
                 query, so both containers must be in datastores on the same connection and database",
                rc.name, rds.spec.database, lc.name
            ),
        )]));
    }
    let relation = |c: &assay_store::catalog::ContainerRecord, ds: &DatastoreRecord| {
        let c = c.clone();
        let ds = ds.clone();
        async move {
            Ok::<String, OpsError>(
                crate::computed::relation_of(ctx, &ds, &c)
                    .await
                    .map_err(OpsError::Invalid)?
                    .unwrap_or_else(|| qualified(&ds.spec.schema, &c.name)),
            )
        }
    };
    let (lrel, rrel) = (relation(&lc, &lds).await?, relation(&rc, &rds).await?);
    let client = crate::computed::source_session(ctx, &lds).await?;
    let columns = |rel: String, field: &'static str| {
        let client = &client;
        async move {
            assay_postgres::scan::relation_columns(client, &rel)
                .await
                .map(|cols| cols.into_iter().map(|c| c.0).collect::<Vec<String>>())
                .map_err(|e| {
                    OpsError::Fields(vec![FieldError::new(
                        field,
                        format!("the source cannot read the container: {e}"),
                    )])
                })
        }
    };
    let lcols = columns(lrel.clone(), "left_container_id").await?;
    let rcols = columns(rrel.clone(), "right_container_id").await?;
    let mut errors = Vec::new();
    for (k, key, cols, c) in [
        ("left_join_field_name", &left_key, &lcols, &lc),
        ("right_join_field_name", &right_key, &rcols, &rc),
    ] {
        if !cols.contains(key) {
            errors.push(FieldError::new(
                k,
                format!("'{}' has no field '{key}'", c.name),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(OpsError::Fields(errors));
    }
    let renamed: Vec<String> = lcols
        .iter()
        .map(|n| {
            format!(
                "l.{} AS {}",
                quote_ident(n),
                quote_ident(&format!("{lp}_{n}"))
            )
        })
        .chain(rcols.iter().map(|n| {
            format!(
                "r.{} AS {}",
                quote_ident(n),
                quote_ident(&format!("{rp}_{n}"))
            )
        }))
        .collect();
    let mut query = format!(
        "SELECT {select} FROM (SELECT {} FROM {lrel} AS l {join} {rrel} AS r ON l.{} = r.{}) AS j",
        renamed.join(", "),
        quote_ident(&left_key),
        quote_ident(&right_key)
    );
    if let Some(w) = filter {
        query.push_str(&format!(" WHERE {w}"));
    }
    if let Some(g) = group {
        query.push_str(&format!(" GROUP BY {g}"));
    }
    Ok((lds, query))
}
