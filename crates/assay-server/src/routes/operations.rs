//! `/api/operations`: run (queued for the background runner), list, get and abort.

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::{Fields, JsonBody, Opt};
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_core::FieldError;
use assay_core::operation::{
    ExportParams, OperationParams, OperationResult, OperationType, effort_of_threshold,
};
use assay_store::operations::OperationFilter;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Map, Value};

pub async fn run(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let datastore_id = f.int("datastore_id").value();
    let op_type = f.string("type").value();
    let mut errors = std::mem::take(&mut f.errors);
    if datastore_id.is_none() {
        errors.push(FieldError::new("datastore_id", "is required"));
    }
    let parsed = read_type(op_type.as_deref(), &mut errors);
    if map.contains_key("remediation") {
        errors.push(FieldError::new(
            "remediation",
            "is not a scan parameter; set enrichment_remediation_strategy on the datastore instead",
        ));
    }
    let params = parsed.map(|t| {
        let p = read_params(t, &map, &mut errors);
        errors.extend(p.validate());
        p
    });
    let (Some(datastore_id), Some(params), true) = (datastore_id, params, errors.is_empty()) else {
        return Err(ApiError::fields(errors));
    };
    let ds = s.store.datastore(datastore_id, &u.viewer()).await?;
    let op = s
        .ops
        .enqueue(ds.id, &params, &u.label(), Some(u.0.id))
        .await?;
    Ok(Json(views::operation(&op)))
}

/// An operation type from a request's `type`, or the error that names it.
pub(crate) fn read_type(t: Option<&str>, errors: &mut Vec<FieldError>) -> Option<OperationType> {
    let Some(t) = t else {
        errors.push(FieldError::new(
            "type",
            "is required: sync, profile, scan, export or materialize",
        ));
        return None;
    };
    let parsed = OperationType::parse(t);
    if parsed.is_none() {
        errors.push(FieldError::new(
            "type",
            format!("'{t}' is not one of sync, profile, scan, export, materialize"),
        ));
    }
    parsed
}

/// Reads a request body into the parameters of an operation type: the keys given override the type's
/// defaults, and each mistyped key is collected into `errors` (the values are validated by the caller).
pub(crate) fn read_params(
    t: OperationType,
    map: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> OperationParams {
    let mut f = Fields::new(map);
    let mut p = OperationParams::default_for(t);
    match &mut p {
        OperationParams::Sync(p) => {
            set(&mut p.include, f.strings("include"));
            set(&mut p.prune, f.boolean("prune"));
            set(&mut p.recreate, f.boolean("recreate"));
        }
        OperationParams::Profile(p) => {
            set(&mut p.container_names, f.strings("container_names"));
            set(&mut p.container_tags, f.strings("container_tags"));
            match (
                f.string("ai_effort").value(),
                f.int("inference_threshold").value(),
            ) {
                (Some(e), _) => p.ai_effort = e.to_ascii_lowercase(),
                (None, Some(t)) => match effort_of_threshold(t) {
                    Some(e) => p.ai_effort = e.to_string(),
                    None => f.invalid("inference_threshold", "must be between 0 and 5"),
                },
                (None, None) => {}
            }
            set(&mut p.infer_as_draft, f.boolean("infer_as_draft"));
            p.max_records_analyzed_per_partition =
                f.int("max_records_analyzed_per_partition").value();
            set(&mut p.incremental, f.boolean("incremental"));
        }
        OperationParams::Scan(p) => {
            set(&mut p.container_names, f.strings("container_names"));
            set(&mut p.container_tags, f.strings("container_tags"));
            set(&mut p.incremental, f.boolean("incremental"));
            p.max_records_analyzed_per_partition =
                f.int("max_records_analyzed_per_partition").value();
            p.enrichment_source_record_limit = f.int("enrichment_source_record_limit").value();
            p.high_count_rollup_threshold = f.int("high_count_rollup_threshold").value();
            p.auto_resolve_passed_anomalies = f.boolean("auto_resolve_passed_anomalies").value();
            set(
                &mut p.archive_duplicate_anomalies,
                f.boolean("archive_duplicate_anomalies"),
            );
            set(
                &mut p.reactivate_recurring_anomalies,
                f.boolean("reactivate_recurring_anomalies"),
            );
            p.greater_than_time = f.string("greater_than_time").value();
            p.greater_than_batch = map.get("greater_than_batch").and_then(Value::as_f64);
        }
        OperationParams::Export(p) => {
            set(&mut p.asset_type, f.string("asset_type"));
            p.container_ids = map
                .get("container_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            set(&mut p.include_deleted, f.boolean("include_deleted"));
        }
        OperationParams::Materialize(p) => {
            set(&mut p.container_names, f.strings("container_names"));
            set(&mut p.container_tags, f.strings("container_tags"));
            p.max_records_per_partition = f.int("max_records_per_partition").value();
        }
        OperationParams::Measure(p) => {
            set(&mut p.container_names, f.strings("container_names"));
        }
    }
    errors.extend(f.errors);
    p
}

/// A given value replaces the default; absent or null keeps it.
fn set<T>(slot: &mut T, v: Opt<T>) {
    if let Opt::Set(v) = v {
        *slot = v;
    }
}

pub async fn list(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let op_type = match q.get("operation_type") {
        Some(t) => Some(
            OperationType::parse(t)
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "query parameter operation_type: '{t}' is not an operation type"
                    ))
                })?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let mut results = Vec::new();
    for r in q.all("result") {
        let parsed = OperationResult::parse(&r).ok_or_else(|| {
            ApiError::invalid(format!("query parameter result: '{r}' is not a result"))
        })?;
        results.push(parsed.as_str().to_string());
    }
    let filter = OperationFilter {
        datastores: q.ints("datastore")?,
        op_type,
        results,
        finished: q.bool("finished")?,
        start_date: q.date("start_date")?,
        end_date: q.date("end_date")?,
        ascending: matches!(q.get("sort_created"), Some("asc")),
    };
    let (items, total) = s
        .store
        .list_operations(&u.viewer(), &filter, page, size)
        .await?;
    Ok(Json(views::page(
        items.iter().map(views::operation).collect(),
        total,
        page,
        size,
    )))
}

pub async fn get_one(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let op = s
        .store
        .operation(id(&raw, "operation")?, &u.viewer())
        .await?;
    Ok(Json(views::operation(&op)))
}

/// Aborts: a queued operation ends at once; a running one stops at its next step; a finished one is returned
/// unchanged.
pub async fn abort(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let op = s
        .store
        .request_abort(id(&raw, "operation")?, &u.viewer(), &u.label())
        .await?;
    Ok(Json(views::operation(&op)))
}

/// `POST /api/export/{anomalies|checks|field-profiles}?datastore=N[&containers=..]`: queues an export operation.
/// `POST /api/export/check-templates?enrich_datastore_id=N` writes the check templates and answers 204.
pub async fn export(
    State(s): State<AppState>,
    u: AuthUser,
    Path(asset): Path<String>,
    q: Params,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if asset == "check-templates" {
        let id = q
            .int("enrich_datastore_id")?
            .ok_or_else(|| ApiError::invalid("query parameter enrich_datastore_id is required"))?;
        let eds = s.store.datastore(id, &u.viewer()).await?;
        // the prefix of the source that writes here (the first, if several do)
        let prefix = match eds.linked_datastores.first() {
            Some(l) => {
                let src = s.store.datastore(l.id, &u.viewer()).await?;
                src.spec
                    .enrichment_prefix
                    .clone()
                    .or_else(|| assay_core::datastore::normalize_prefix(&src.spec.name).ok())
                    .unwrap_or_else(|| "_assay".into())
            }
            None => "_assay".into(),
        };
        let (mut client, params) = assay_ops::source::open(&s.ops, &eds).await?;
        assay_enrichment::export::replace(
            &mut client,
            &eds.spec.schema,
            &prefix,
            &params.user,
            &assay_enrichment::export::CHECK_TEMPLATES,
            &s.store.templates().await?,
        )
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::CONFLICT, e.to_string()))?;
        return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
    }
    let asset_type = match asset.as_str() {
        "anomalies" => "anomalies",
        "checks" => "checks",
        "field-profiles" | "profiles" => "profiles",
        other => {
            return Err(ApiError::not_found(format!(
                "Not Found: no export of '{other}'; use anomalies, checks, field-profiles or check-templates"
            )));
        }
    };
    let id = q
        .int("datastore")?
        .ok_or_else(|| ApiError::invalid("query parameter datastore is required"))?;
    let ds = s.store.datastore(id, &u.viewer()).await?;
    let params = OperationParams::Export(ExportParams {
        asset_type: asset_type.into(),
        container_ids: q.ints("containers")?,
        include_deleted: false,
    });
    let op = s
        .ops
        .enqueue(ds.id, &params, &u.label(), Some(u.0.id))
        .await?;
    Ok(Json(views::operation(&op)).into_response())
}
