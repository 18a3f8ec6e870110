//! `/api/anomalies`: list with filters, get, update status/description/tags/assignees (one or many), archive
//! or delete (one or many), and an anomaly's source records.

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_core::FieldError;
use assay_store::anomalies::{ARCHIVED, AnomalyChange, AnomalyFilter, AnomalyRecord, OPEN};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

pub fn anomaly(a: &AnomalyRecord) -> Value {
    json!({
        "id": a.id,
        "uuid": a.uuid,
        "created": a.created,
        "last_updated": a.updated,
        "type": a.kind,
        "status": a.status,
        "archived": a.archived_at.is_some(),
        "archived_at": a.archived_at,
        "is_new": a.is_new,
        "last_seen": a.last_seen,
        "times_seen": a.times_seen,
        "recurrences": a.recurrences,
        "recurring": a.recurrences > 0,
        "source_enriched": a.source_enriched,
        "datastore": {"id": a.datastore_id, "name": a.datastore_name},
        "container": {"id": a.container_id, "name": a.container_name},
        "datastore_id": a.datastore_id,
        "container_id": a.container_id,
        "partition": {"name": a.container_name, "location": null},
        "operation_id": a.operation_id,
        "operation": a.operation_id.map(|o| json!({"id": o})),
        "anomalous_records_count": a.anomalous_records_count,
        "fingerprint": a.fingerprint,
        "fingerprint_source": a.fingerprint_source,
        "message": a.message,
        "description": a.description,
        "weight": a.weight,
        "global_tags": a.tags.as_array().map(|t| t.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()).unwrap_or_default(),
        "assignees": a.assignee_ids.as_array().map(|t| t.iter().map(|n| json!({"id": n})).collect::<Vec<_>>()).unwrap_or_default(),
        "failed_checks": a.failed_checks.iter().map(|f| json!({
            "quality_check": {"id": f.check_id, "rule_type": f.rule_type, "fields": f.fields},
            "message": f.message,
        })).collect::<Vec<_>>(),
        "source_records_count": a.source_records.as_array().map(Vec::len).unwrap_or(0),
    })
}

fn archived_filter(q: &Params, statuses: &[String]) -> Result<Option<bool>, ApiError> {
    Ok(match q.get("archived") {
        Some("only") => Some(true),
        Some("include") => Some(false),
        Some(other) => {
            if let Some(b) = crate::params::parse_bool(other) {
                if b { Some(true) } else { None }
            } else {
                return Err(ApiError::invalid(format!(
                    "query parameter archived: '{other}' is not only or include"
                )));
            }
        }
        None if statuses.iter().any(|s| ARCHIVED.contains(&s.as_str())) => Some(false),
        None => None,
    })
}

pub async fn list(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let statuses = q.all("status");
    for st in &statuses {
        if !OPEN.contains(&st.as_str()) && !ARCHIVED.contains(&st.as_str()) {
            return Err(ApiError::invalid(format!(
                "query parameter status: '{st}' is not one of Active, Acknowledged, Resolved, Invalid, Duplicate, Discarded"
            )));
        }
    }
    let kind = q.get("anomaly_type").map(str::to_string);
    if kind
        .as_deref()
        .is_some_and(|k| k != "record" && k != "shape")
    {
        return Err(ApiError::invalid(
            "query parameter anomaly_type: use record or shape",
        ));
    }
    let f = AnomalyFilter {
        datastore: q.int("datastore")?,
        container: q.int("container")?,
        check: q.int("quality_check")?,
        operation: q.int("operation")?,
        archived: archived_filter(&q, &statuses)?,
        statuses,
        kind,
        rule_types: q.all("rule_type"),
        tags: q.all("tag"),
        start_date: q.date("start_date")?,
        end_date: q.date("end_date")?,
        source_enriched: q.bool("source_enriched")?,
        newest_first: q.get("sort_created") != Some("asc"),
    };
    let (items, total) = s.store.list_anomalies(&u.viewer(), &f, page, size).await?;
    Ok(Json(views::page(
        items.iter().map(anomaly).collect(),
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
    Ok(Json(anomaly(
        &s.store.anomaly(id(&raw, "anomaly")?, &u.viewer()).await?,
    )))
}

/// The offending rows kept with the anomaly; with `?source=enrichment`, as stored in the enrichment datastore.
pub async fn source_records(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let a = s.store.anomaly(id(&raw, "anomaly")?, &u.viewer()).await?;
    if q.get("source") == Some("enrichment") {
        let ds = s.store.datastore(a.datastore_id, &u.viewer()).await?;
        let Some(link) = &ds.enrichment else {
            return Err(ApiError::conflict(format!(
                "datastore '{}' has no enrichment datastore",
                ds.spec.name
            )));
        };
        let bad_gateway = |e: String| ApiError::new(axum::http::StatusCode::BAD_GATEWAY, e);
        let t = assay_ops::enrichment::enrichment_target(&s.ops, &ds, link.id)
            .await
            .map_err(bad_gateway)?;
        let client = t
            .params
            .connect()
            .await
            .map_err(|e| bad_gateway(e.to_string()))?;
        let table = assay_postgres::ident::qualified(
            &t.schema,
            &assay_enrichment::layout::table_name(&t.prefix, "source_records"),
        );
        let rows = client
            .query(
                &format!("SELECT record FROM {table} WHERE anomaly_uuid = $1"),
                &[&a.uuid],
            )
            .await
            .map_err(|e| bad_gateway(format!("enrichment store: {e}")))?;
        let items: Vec<Value> = rows
            .iter()
            .map(|r| {
                let text: String = r.get(0);
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            })
            .collect();
        let total = items.len();
        return Ok(Json(
            json!({"items": items, "total": total, "source": "enrichment",
            "anomalous_records_count": a.anomalous_records_count}),
        ));
    }
    let rows = a.source_records.as_array().cloned().unwrap_or_default();
    let total = rows.len();
    Ok(Json(
        json!({"items": rows, "total": total, "anomalous_records_count": a.anomalous_records_count}),
    ))
}

struct Change {
    status: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    assignees: Option<Vec<i64>>,
}

fn change_of(v: &Value, at: &str) -> Result<Change, ApiError> {
    let mut errors = Vec::new();
    let status = match &v["status"] {
        Value::Null => None,
        Value::String(st) if OPEN.contains(&st.as_str()) => Some(st.clone()),
        other => {
            errors.push(FieldError::new(
                format!("{at}status"),
                format!("{other} is not Active or Acknowledged; archive an anomaly with DELETE"),
            ));
            None
        }
    };
    let description = v["description"].as_str().map(str::to_string);
    let tags = match &v["tags"] {
        Value::Null => None,
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
        ),
        _ => {
            errors.push(FieldError::new(
                format!("{at}tags"),
                "must be a list of strings",
            ));
            None
        }
    };
    let assignees = match &v["assignee_ids"] {
        Value::Null => None,
        Value::Array(a) => Some(a.iter().filter_map(Value::as_i64).collect()),
        _ => {
            errors.push(FieldError::new(
                format!("{at}assignee_ids"),
                "must be a list of user ids",
            ));
            None
        }
    };
    if errors.is_empty() {
        Ok(Change {
            status,
            description,
            tags,
            assignees,
        })
    } else {
        Err(ApiError::fields(errors))
    }
}

pub async fn update(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let aid = id(&raw, "anomaly")?;
    s.store.anomaly(aid, &u.viewer()).await?;
    let v = Value::Object(body.object()?);
    let c = change_of(&v, "")?;
    s.store
        .update_anomaly(
            aid,
            c.status.as_deref(),
            c.description.as_deref(),
            c.tags.as_deref(),
            c.assignees.as_deref(),
        )
        .await?;
    Ok(Json(anomaly(&s.store.anomaly(aid, &u.viewer()).await?)))
}

fn list_body(body: JsonBody) -> Result<Vec<Value>, ApiError> {
    match body.0 {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(ApiError::invalid(
            "send a list such as [{\"id\": 26, \"status\": \"Acknowledged\"}]",
        )),
    }
}

pub async fn update_many(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let items = list_body(body)?;
    let mut plan = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(aid) = item["id"].as_i64() else {
            return Err(ApiError::fields(vec![FieldError::new(
                format!("[{i}].id"),
                "is required",
            )]));
        };
        s.store.anomaly(aid, &u.viewer()).await?;
        plan.push((aid, change_of(item, &format!("[{i}]."))?));
    }
    let changes: Vec<(i64, AnomalyChange)> = plan
        .iter()
        .map(|(aid, c)| {
            (
                *aid,
                AnomalyChange {
                    status: c.status.as_deref(),
                    description: c.description.as_deref(),
                    tags: c.tags.as_deref(),
                    assignees: c.assignees.as_deref(),
                },
            )
        })
        .collect();
    // one transaction: all or none, and one notification for the status changes
    s.store.update_anomalies(&changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn archive_status(raw: Option<&str>) -> Result<String, ApiError> {
    match raw.unwrap_or("Resolved") {
        st if ARCHIVED.contains(&st) => Ok(st.to_string()),
        other => Err(ApiError::invalid(format!(
            "status '{other}' is not an archive status: use Resolved, Invalid, Duplicate or Discarded"
        ))),
    }
}

pub async fn delete_one(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<StatusCode, ApiError> {
    let aid = id(&raw, "anomaly")?;
    s.store.anomaly(aid, &u.viewer()).await?;
    let archive = q.bool("archive")?.unwrap_or(true);
    // the status is ignored for a hard delete
    let status = if archive {
        archive_status(q.get("status"))?
    } else {
        String::new()
    };
    s.store.delete_anomaly(aid, archive, &status).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_many(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let items = list_body(body)?;
    let mut plan = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(aid) = item["id"].as_i64() else {
            return Err(ApiError::fields(vec![FieldError::new(
                format!("[{i}].id"),
                "is required",
            )]));
        };
        s.store.anomaly(aid, &u.viewer()).await?;
        let archive = item["archive"].as_bool().unwrap_or(true);
        let status = if archive {
            archive_status(item["status"].as_str())?
        } else {
            String::new()
        };
        plan.push((aid, archive, status));
    }
    let items: Vec<(i64, bool, &str)> = plan
        .iter()
        .map(|(aid, archive, status)| (*aid, *archive, status.as_str()))
        .collect();
    // one transaction: all or none, and one notification for the status changes
    s.store.delete_anomalies(&items).await?;
    Ok(StatusCode::NO_CONTENT)
}
