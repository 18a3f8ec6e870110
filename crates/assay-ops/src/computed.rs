//! Computed containers and fields. A computed table is a query over its datastore's schema; a computed field is
//! an expression over a container's row. Both are checked by the source (`prepare`, never executed on data) and
//! read through one relation expression, so profiles and scans treat them like any other container or field.

use crate::Context;
use crate::OpsError;
use assay_core::FieldError;
use assay_core::catalog::FieldType;
use assay_postgres::ident::{qualified, quote_ident};
use assay_postgres::scan::check_sql_fragment;
use assay_store::Viewer;
use assay_store::catalog::ContainerRecord;
use assay_store::computed::{ComputedField, NewField};
use assay_store::datastores::DatastoreRecord;
use serde_json::Value;

/// The relation a container is read through, when it is not simply `schema.table`: the computed table's query
/// and/or its computed fields.
pub async fn relation_of(
    ctx: &Context,
    ds: &DatastoreRecord,
    c: &ContainerRecord,
) -> Result<Option<String>, String> {
    let fields = ctx
        .store
        .computed_fields(c.id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(relation_with(ds, c, &fields))
}

pub fn relation_with(
    ds: &DatastoreRecord,
    c: &ContainerRecord,
    fields: &[ComputedField],
) -> Option<String> {
    let base = match &c.query {
        Some(q) if c.table_type == "computed_table" => format!("({q})"),
        _ => qualified(&ds.spec.schema, &c.name),
    };
    if fields.is_empty() {
        return (c.table_type == "computed_table").then_some(base);
    }
    let extra: Vec<String> = fields
        .iter()
        .map(|f| format!("({}) AS {}", f.expression, quote_ident(&f.name)))
        .collect();
    Some(format!(
        "(SELECT t.*, {} FROM {base} AS t)",
        extra.join(", ")
    ))
}

/// A read-only session on a datastore's source, for describing queries and expressions.
pub async fn source_session(
    ctx: &Context,
    ds: &DatastoreRecord,
) -> Result<tokio_postgres::Client, OpsError> {
    Ok(crate::source::open_read_only(ctx, ds).await?.0)
}

fn to_fields(cols: Vec<(String, String, String, String)>) -> Vec<NewField> {
    cols.into_iter()
        .map(|(name, typname, typtype, cat)| NewField {
            field_type: FieldType::from_postgres(&typname, &typtype, &cat)
                .as_str()
                .to_string(),
            native_type: typname.clone(),
            name,
            typname,
            typcategory: cat,
        })
        .collect()
}

/// Checks a computed table's query with the source and returns its columns.
pub async fn describe_query(
    client: &tokio_postgres::Client,
    query: &str,
) -> Result<Vec<NewField>, OpsError> {
    check_sql_fragment(query).map_err(|e| OpsError::field("query", e))?;
    let head = query.trim_start().to_ascii_lowercase();
    if !(head.starts_with("select") || head.starts_with("with") || head.starts_with("values")) {
        return Err(OpsError::Fields(vec![FieldError::new(
            "query",
            "a computed table is one SELECT (or WITH ... SELECT) query",
        )]));
    }
    let cols = assay_postgres::scan::relation_columns(client, &format!("({query})"))
        .await
        .map_err(|e| {
            OpsError::Fields(vec![FieldError::new(
                "query",
                format!("the source rejects the query: {e}"),
            )])
        })?;
    let mut seen = std::collections::HashSet::new();
    for (n, ..) in &cols {
        if !seen.insert(n.clone()) {
            return Err(OpsError::Fields(vec![FieldError::new(
                "query",
                format!("the query returns two columns named '{n}'; give them distinct aliases"),
            )]));
        }
    }
    Ok(to_fields(cols))
}

const CAST_TYPES: &[&str] = &[
    "integer",
    "bigint",
    "numeric",
    "double precision",
    "text",
    "date",
    "timestamp",
    "timestamptz",
    "boolean",
];

/// Compiles a computed field definition to a SQL expression over alias `t`.
pub fn expression_of(
    transformation: &str,
    source_fields: &[String],
    properties: &Value,
) -> Result<String, Vec<FieldError>> {
    let src = || -> Result<String, Vec<FieldError>> {
        source_fields
            .first()
            .map(|f| format!("t.{}", quote_ident(f)))
            .ok_or_else(|| {
                vec![FieldError::new(
                    "source_fields",
                    format!("transformation '{transformation}' needs one source field"),
                )]
            })
    };
    match transformation {
        "customExpression" => {
            let e = properties["column_expression"].as_str().unwrap_or("");
            check_sql_fragment(e)
                .map_err(|m| vec![FieldError::new("properties.column_expression", m)])?;
            Ok(e.to_string())
        }
        "cast" => {
            let target = properties["target_type"].as_str().unwrap_or("");
            let ty = CAST_TYPES
                .iter()
                .find(|t| t.eq_ignore_ascii_case(target))
                .ok_or_else(|| {
                    vec![FieldError::new(
                        "properties.target_type",
                        format!("'{target}' is not one of {}", CAST_TYPES.join(", ")),
                    )]
                })?;
            Ok(format!("CAST({} AS {ty})", src()?))
        }
        "cleanedEntityName" => Ok(format!(
            "btrim(regexp_replace(regexp_replace(lower({}::text), '[^a-z0-9 ]', ' ', 'g'), ' +', ' ', 'g'))",
            src()?
        )),
        "convertFormattedNumeric" => Ok(format!(
            "NULLIF(regexp_replace({}::text, '[^0-9.eE+-]', '', 'g'), '')::numeric",
            src()?
        )),
        other => Err(vec![FieldError::new(
            "transformation",
            format!(
                "'{other}' is not supported; use customExpression, cast, cleanedEntityName or convertFormattedNumeric"
            ),
        )]),
    }
}

/// Checks a computed field expression with the source (on top of the container and its other computed fields)
/// and returns the field it yields.
pub async fn describe_field(
    ctx: &Context,
    ds: &DatastoreRecord,
    c: &ContainerRecord,
    name: &str,
    expression: &str,
    except: Option<i64>,
) -> Result<NewField, OpsError> {
    let others: Vec<ComputedField> = ctx
        .store
        .computed_fields(c.id)
        .await?
        .into_iter()
        .filter(|f| Some(f.id) != except)
        .collect();
    let base = relation_with(ds, c, &others).unwrap_or_else(|| qualified(&ds.spec.schema, &c.name));
    let client = source_session(ctx, ds).await?;
    let cols = assay_postgres::scan::relation_columns(
        &client,
        &format!(
            "(SELECT ({expression}) AS {} FROM {base} AS t)",
            quote_ident(name)
        ),
    )
    .await
    .map_err(|e| {
        OpsError::Fields(vec![FieldError::new(
            "properties",
            format!("the source rejects the expression: {e}"),
        )])
    })?;
    to_fields(cols)
        .into_iter()
        .next()
        .ok_or_else(|| OpsError::Invalid("the expression yields no column".into()))
}

/// Loads a container and its datastore for the caller.
pub async fn load(
    ctx: &Context,
    viewer: &Viewer,
    container_id: i64,
) -> Result<(ContainerRecord, DatastoreRecord), OpsError> {
    let c = ctx.store.container(container_id, viewer).await?;
    let ds = ctx.store.datastore(c.datastore_id, viewer).await?;
    Ok((c, ds))
}
