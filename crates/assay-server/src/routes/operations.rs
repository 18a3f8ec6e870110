//! `/api/operations`: run (queued for the background runner), list, get and abort.

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::{Fields, JsonBody, Opt};
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_core::FieldError;
use assay_core::operation::{OperationResult, OperationType};
use assay_store::operations::OperationFilter;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

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
    let parsed = match op_type.as_deref() {
        None => {
            errors.push(FieldError::new(
                "type",
                "is required: sync, profile, scan, export or materialize",
            ));
            None
        }
        Some(t) => match OperationType::parse(t) {
            Some(t) => Some(t),
            None => {
                errors.push(FieldError::new(
                    "type",
                    format!("'{t}' is not one of sync, profile, scan, export, materialize"),
                ));
                None
            }
        },
    };
    if map.contains_key("remediation") {
        errors.push(FieldError::new(
            "remediation",
            "is not a scan parameter; set enrichment_remediation_strategy on the datastore instead",
        ));
    }
    let params = match parsed {
        Some(OperationType::Sync) => {
            let mut f = Fields::new(&map);
            let include = match f.strings("include") {
                Opt::Set(v) if !v.is_empty() => v,
                _ => vec!["table".to_string(), "view".to_string()],
            };
            for k in &include {
                if k != "table" && k != "view" {
                    f.invalid("include", format!("'{k}' is not table or view"));
                }
            }
            let prune = f.boolean("prune").value().unwrap_or(false);
            let recreate = f.boolean("recreate").value().unwrap_or(false);
            errors.extend(f.errors);
            json!({"include": include, "prune": prune, "recreate": recreate})
        }
        Some(OperationType::Profile) => {
            let mut f = Fields::new(&map);
            let names = f.strings("container_names").value().unwrap_or_default();
            let tags = f.strings("container_tags").value().unwrap_or_default();
            let effort = match (
                f.string("ai_effort").value(),
                f.int("inference_threshold").value(),
            ) {
                (Some(e), _) => match assay_engine::infer::level(&e) {
                    Some(_) => e.to_ascii_lowercase(),
                    None => {
                        f.invalid(
                            "ai_effort",
                            format!("'{e}' is not one of off, low, medium, high, xhigh, max"),
                        );
                        String::new()
                    }
                },
                (None, Some(t)) => match assay_engine::infer::effort_of_threshold(t) {
                    Some(e) => e.to_string(),
                    None => {
                        f.invalid("inference_threshold", "must be between 0 and 5");
                        String::new()
                    }
                },
                (None, None) => "medium".to_string(),
            };
            let draft = f.boolean("infer_as_draft").value().unwrap_or(false);
            let limit = f.int("max_records_analyzed_per_partition").value();
            if limit.is_some_and(|n| n == 0 || n < -1) {
                f.invalid(
                    "max_records_analyzed_per_partition",
                    "must be -1 (all rows) or at least 1",
                );
            }
            let incremental = f.boolean("incremental").value().unwrap_or(true);
            errors.extend(f.errors);
            json!({"container_names": names, "container_tags": tags, "ai_effort": effort, "infer_as_draft": draft,
                   "max_records_analyzed_per_partition": limit, "incremental": incremental})
        }
        Some(OperationType::Scan) => {
            let mut f = Fields::new(&map);
            let names = f.strings("container_names").value().unwrap_or_default();
            let tags = f.strings("container_tags").value().unwrap_or_default();
            let incremental = f.boolean("incremental").value().unwrap_or(false);
            let limit = f.int("max_records_analyzed_per_partition").value();
            if limit.is_some_and(|n| n == 0 || n < -1) {
                f.invalid(
                    "max_records_analyzed_per_partition",
                    "must be -1 (all rows) or at least 1",
                );
            }
            let records = f.int("enrichment_source_record_limit").value();
            if records.is_some_and(|n| !(1..=1_000_000_000).contains(&n)) {
                f.invalid(
                    "enrichment_source_record_limit",
                    "must be between 1 and 1000000000",
                );
            }
            let rollup = f.int("high_count_rollup_threshold").value();
            if rollup.is_some_and(|n| !(1..=1000).contains(&n)) {
                f.invalid("high_count_rollup_threshold", "must be between 1 and 1000");
            }
            let auto_resolve = f.boolean("auto_resolve_passed_anomalies").value();
            let archive_dups = f
                .boolean("archive_duplicate_anomalies")
                .value()
                .unwrap_or(true);
            let gtt = f.string("greater_than_time").value();
            if let Some(t) = &gtt
                && assay_core::rules::parse_datetime(t).is_none()
            {
                f.invalid(
                    "greater_than_time",
                    "must be an ISO-8601 date-time such as 2024-01-01T00:00:00Z",
                );
            }
            let gtb = map.get("greater_than_batch").and_then(Value::as_f64);
            errors.extend(f.errors);
            json!({"container_names": names, "container_tags": tags, "incremental": incremental,
                   "max_records_analyzed_per_partition": limit, "enrichment_source_record_limit": records,
                   "high_count_rollup_threshold": rollup,
                   "auto_resolve_passed_anomalies": auto_resolve.unwrap_or(!incremental) && !incremental,
                   "archive_duplicate_anomalies": archive_dups, "greater_than_time": gtt, "greater_than_batch": gtb})
        }
        Some(OperationType::Export) => {
            let mut f = Fields::new(&map);
            let asset = f.string("asset_type").value();
            let containers: Vec<i64> = map
                .get("container_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let include_deleted = f.boolean("include_deleted").value().unwrap_or(false);
            match asset.as_deref() {
                Some("anomalies" | "checks" | "profiles" | "field_profiles") => {}
                Some(other) => f.invalid(
                    "asset_type",
                    format!("'{other}' is not anomalies, checks or profiles"),
                ),
                None => f.invalid("asset_type", "is required: anomalies, checks or profiles"),
            }
            errors.extend(f.errors);
            json!({"asset_type": asset, "container_ids": containers, "include_deleted": include_deleted})
        }
        Some(OperationType::Materialize) => {
            let mut f = Fields::new(&map);
            let names = f.strings("container_names").value().unwrap_or_default();
            let tags = f.strings("container_tags").value().unwrap_or_default();
            let limit = f.int("max_records_per_partition").value();
            if limit.is_some_and(|n| n == 0 || !(-1..=1_000_000_000).contains(&n)) {
                f.invalid(
                    "max_records_per_partition",
                    "must be -1 (all rows) or between 1 and 1000000000",
                );
            }
            errors.extend(f.errors);
            json!({"container_names": names, "container_tags": tags, "max_records_per_partition": limit})
        }
        None => Value::Null,
    };
    let (Some(datastore_id), Some(op_type), true) = (datastore_id, parsed, errors.is_empty())
    else {
        return Err(ApiError::fields(errors));
    };
    let ds = s.store.datastore(datastore_id, &u.viewer()).await?;
    let op = s
        .store
        .enqueue_operation(op_type.as_str(), ds.id, &params, &u.label(), Some(u.0.id))
        .await?;
    s.wake_runner.notify_one();
    Ok(Json(views::operation(&op)))
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
        let (mut client, params) = crate::computed::connect_datastore(&s, &eds).await?;
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
    let params = json!({"asset_type": asset_type, "container_ids": q.ints("containers")?, "include_deleted": false});
    let op = s
        .store
        .enqueue_operation("export", ds.id, &params, &u.label(), Some(u.0.id))
        .await?;
    s.wake_runner.notify_one();
    Ok(Json(views::operation(&op)).into_response())
}
