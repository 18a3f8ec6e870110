//! Materialize: a snapshot of a source container (table, view or computed relation) copied into the enrichment
//! datastore as `<prefix>_mat_<name>` (or `<prefix>_materialize_<id>` when the name is long or not plain),
//! replaced as a whole in one transaction. Rows travel as PostgreSQL's binary COPY stream from the source
//! straight into the target; columns of types the target may not have (enums, domains, composites, extension
//! types) are sent as text.

use crate::error::EnrichmentError;
use crate::layout;
use assay_postgres::ident::{qualified, quote_ident};
use futures_util::{SinkExt, StreamExt, pin_mut};
use tokio_postgres::types::{Kind, Type};

/// The enrichment table a container is materialized into.
pub fn table_name(prefix: &str, container: &str, container_id: i64) -> String {
    let plain = !container.is_empty()
        && container.len() <= 60
        && container
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !container.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        layout::table_name(prefix, &format!("mat_{container}"))
    } else {
        layout::table_name(prefix, &format!("materialize_{container_id}"))
    }
}

/// A built-in type every PostgreSQL has (so the binary form can be copied as is), else `None`.
fn portable_type(t: &Type) -> Option<String> {
    let builtin = |t: &Type| t.schema() == "pg_catalog" && !matches!(t.kind(), Kind::Pseudo);
    match t.kind() {
        Kind::Simple if builtin(t) => Some(quote_ident(t.name())),
        Kind::Array(inner) if builtin(t) && matches!(inner.kind(), Kind::Simple) => {
            Some(format!("{}[]", quote_ident(inner.name())))
        }
        _ => None,
    }
}

/// What a materialize wrote.
#[derive(Debug, Clone)]
pub struct Materialized {
    pub table: String,
    pub rows: u64,
    /// Columns sent as text because the target may not have their type.
    pub as_text: Vec<String>,
}

/// Copies `relation` (an already-quoted relation expression on the source) into the enrichment table for the
/// container, at most `limit` rows.
#[allow(clippy::too_many_arguments)]
pub async fn copy(
    source: &tokio_postgres::Client,
    relation: &str,
    limit: Option<u64>,
    target: &mut tokio_postgres::Client,
    schema: &str,
    prefix: &str,
    role: &str,
    container: &str,
    container_id: i64,
) -> Result<Materialized, EnrichmentError> {
    let src = |e: tokio_postgres::Error| EnrichmentError::Source(e.to_string());
    let probe = source
        .prepare(&format!("SELECT * FROM {relation} AS t LIMIT 0"))
        .await
        .map_err(src)?;
    let mut select = Vec::new();
    let mut cols = Vec::new();
    let mut as_text = Vec::new();
    for c in probe.columns() {
        let name = quote_ident(c.name());
        match portable_type(c.type_()) {
            Some(ty) => {
                select.push(format!("t.{name}"));
                cols.push(format!("{name} {ty}"));
            }
            None => {
                select.push(format!("t.{name}::text"));
                cols.push(format!("{name} text"));
                as_text.push(c.name().to_string());
            }
        }
    }
    if cols.is_empty() {
        return Err(EnrichmentError::Source(format!(
            "{container} has no columns to materialize"
        )));
    }
    // COPY takes no bind parameters: the limit travels as a session setting
    let limit = match limit {
        Some(n) => {
            source
                .execute(
                    "SELECT set_config('assay.limit', $1, false)",
                    &[&n.to_string()],
                )
                .await
                .map_err(src)?;
            " LIMIT current_setting('assay.limit')::bigint"
        }
        None => "",
    };
    let out = format!(
        "COPY (SELECT {} FROM {relation} AS t{limit}) TO STDOUT (FORMAT binary)",
        select.join(", ")
    );
    let table = table_name(prefix, container, container_id);
    let e = |x: tokio_postgres::Error| EnrichmentError::from_db(&x, schema, role);
    let tx = target.transaction().await.map_err(e)?;
    layout::take_over(&tx, schema, prefix, role, &table).await?;
    tx.batch_execute(&format!(
        "CREATE TABLE {} ({})",
        qualified(schema, &table),
        cols.join(", ")
    ))
    .await
    .map_err(e)?;
    layout::register(&tx, schema, prefix, &table, "materialized", layout::VERSION)
        .await
        .map_err(e)?;
    let sink = tx
        .copy_in::<_, bytes::Bytes>(&format!(
            "COPY {} FROM STDIN (FORMAT binary)",
            qualified(schema, &table)
        ))
        .await
        .map_err(e)?;
    pin_mut!(sink);
    let stream = source.copy_out(&out).await.map_err(src)?;
    pin_mut!(stream);
    while let Some(chunk) = stream.next().await {
        sink.send(chunk.map_err(src)?).await.map_err(e)?;
    }
    let rows = sink.finish().await.map_err(e)?;
    tx.commit().await.map_err(e)?;
    Ok(Materialized {
        table,
        rows,
        as_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_keep_their_name_and_others_use_the_id() {
        assert_eq!(table_name("_shop", "orders", 7), "_shop_mat_orders");
        assert_eq!(table_name("_shop", "Orders", 7), "_shop_materialize_7");
        assert_eq!(table_name("_shop", "a b", 7), "_shop_materialize_7");
        assert_eq!(
            table_name("_shop", &"x".repeat(61), 7),
            "_shop_materialize_7"
        );
    }
}
