//! The export operation: anomalies, checks or field profiles of a source datastore written to
//! `<prefix>_export_<asset>` in its linked enrichment datastore, replaced as a whole in one transaction.

use crate::Context;
use crate::Ending;
use assay_core::operation::ExportParams;
use assay_store::Viewer;
use assay_store::anomalies::AnomalyFilter;
use assay_store::checks::CheckFilter;
use assay_store::operations::OperationRecord;
use serde_json::{Value, json};

const PAGE: i64 = 10_000;

fn tags_text(v: &Value) -> Value {
    json!(
        v.as_array()
            .map(|a| a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default()
    )
}

/// The rows of an asset, keyed by the export table's columns.
pub async fn rows(
    ctx: &Context,
    asset: &str,
    datastore_id: i64,
    datastore_name: &str,
    containers: &[i64],
    include_deleted: bool,
) -> Result<Vec<Value>, String> {
    let viewer = Viewer::admin(0);
    let now = chrono::Utc::now().to_rfc3339();
    let keep = |id: i64| containers.is_empty() || containers.contains(&id);
    let mut out = Vec::new();
    match asset {
        "anomalies" => {
            let f = AnomalyFilter {
                datastore: Some(datastore_id),
                archived: include_deleted.then_some(false),
                ..Default::default()
            };
            let mut page = 1;
            loop {
                let (items, total) = ctx
                    .store
                    .list_anomalies(&viewer, &f, page, PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                for a in items.iter().filter(|a| keep(a.container_id)) {
                    out.push(json!({"id": a.id, "created": a.created, "uuid": a.uuid, "type": a.kind,
                        "status": a.status, "global_tags": tags_text(&a.tags), "container_id": a.container_id,
                        "source_container": a.container_name, "datastore_id": a.datastore_id,
                        "source_datastore": a.datastore_name, "generated_at": now}));
                }
                if page * PAGE >= total {
                    break;
                }
                page += 1;
            }
        }
        "checks" => {
            let f = CheckFilter {
                datastore: Some(datastore_id),
                containers: containers.to_vec(),
                include_archived: include_deleted,
                ..Default::default()
            };
            let mut page = 1;
            loop {
                let (items, total) = ctx
                    .store
                    .list_checks(&viewer, &f, page, PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                for k in &items {
                    out.push(json!({"additional_metadata": k.additional_metadata.to_string(),
                        "coverage": k.coverage, "created": k.created, "deleted_at": k.deleted_at,
                        "description": k.description, "fields": k.fields.join(","), "filter": k.filter,
                        "generated_at": now, "global_tags": tags_text(&k.tags), "has_passed": k.is_passing,
                        "id": k.id, "inferred": k.inferred, "is_new": false, "last_asserted": k.last_asserted,
                        "last_editor": k.last_editor, "last_updated": k.updated, "num_container_scans": null,
                        "properties": k.properties.to_string(), "rule_type": k.rule_type, "weight": k.weight,
                        "datastore_id": k.datastore_id, "container_id": k.container_id, "template_id": null,
                        "is_template": false, "source_container": k.container_name,
                        "source_datastore": datastore_name}));
                }
                if page * PAGE >= total {
                    break;
                }
                page += 1;
            }
        }
        "profiles" | "field_profiles" => {
            let mut page = 1;
            loop {
                let (items, total) = ctx
                    .store
                    .field_profiles(&viewer, containers, &[datastore_id], None, page, PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                for f in &items {
                    let p = &f.profile;
                    let text = |k: &str| match &p[k] {
                        Value::Null => Value::Null,
                        Value::String(s) => json!(s),
                        v => json!(v.to_string()),
                    };
                    out.push(json!({"approximate_distinct_values": p["approximate_distinct_values"],
                        "completeness": p["completeness"], "container_id": f.container_id,
                        "source_container": p["container_name"], "container_store_type": "table",
                        "created": f.created, "datastore_id": datastore_id, "source_datastore": datastore_name,
                        "datastore_type": "postgresql", "entropy": p["entropy"], "field_id": f.field_id,
                        "field_name": f.name, "field_profile_id": f.id, "field_type": p["field_type"],
                        "generated_at": now, "histogram_buckets": text("histogram_buckets"),
                        "kurtosis": p["kurtosis"], "max": text("max"), "max_length": p["max_length"],
                        "mean": p["mean"], "median": text("median"), "min": text("min"),
                        "min_length": p["min_length"], "name": f.name, "q1": text("q1"), "q3": text("q3"),
                        "skewness": p["skewness"], "std_dev": p["std_dev"], "sum": p["sum"],
                        "type_declared": p["declared_type"], "unique_distinct_ratio": p["unique_distinct_ratio"]}));
                }
                if page * PAGE >= total {
                    break;
                }
                page += 1;
            }
        }
        other => return Err(format!("'{other}' is not an export asset")),
    }
    Ok(out)
}

pub async fn run(ctx: &Context, op: &OperationRecord) -> Ending {
    let fail = |message: String| Ending::failure(message, json!({}));
    let viewer = Viewer::admin(0);
    let ds = match ctx.store.datastore(op.datastore_id, &viewer).await {
        Ok(d) => d,
        Err(e) => return fail(e.to_string()),
    };
    let Some(link) = &ds.enrichment else {
        return fail(format!(
            "datastore '{}' has no enrichment datastore; link one before exporting",
            ds.spec.name
        ));
    };
    let p = match crate::params_of::<ExportParams>(op) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let asset = p.asset_type.as_str();
    let rows = match rows(
        ctx,
        asset,
        ds.id,
        &ds.spec.name,
        &p.container_ids,
        p.include_deleted,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let target = match crate::enrichment::enrichment_target(ctx, &ds, link.id).await {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let Some(table) = assay_enrichment::export::table_of(asset) else {
        return fail(format!("'{asset}' is not an export asset"));
    };
    let mut client = match target.params.connect().await {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    match assay_enrichment::export::replace(
        &mut client,
        &target.schema,
        &target.prefix,
        &target.params.user,
        table,
        &rows,
    )
    .await
    {
        Ok(name) => Ending {
            result: "success",
            message: None,
            status: json!({"table": name, "rows_exported": rows.len()}),
        },
        Err(e) => fail(e.to_string()),
    }
}
