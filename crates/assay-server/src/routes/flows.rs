//! `/api/flows`: notifications. A flow's trigger, filters and actions; its executions with each delivery and
//! attempt; a Test that sends a sample message to every action now. Flows see every datastore, so they are an
//! administrator's (403 for others). Action URLs and signing secrets are never returned: an action shows its type
//! and whether it signs, and an update that leaves an action's `url` (or `secret`) out keeps the stored one.

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_core::FieldError;
use assay_core::flow::{Action, FlowSpec};
use assay_store::flows::FlowRecord;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Map, Value, json};

fn render(f: &FlowRecord) -> Value {
    json!({
        "id": f.id,
        "name": f.spec.name,
        "description": f.spec.description,
        "trigger": f.spec.trigger,
        "filters": f.spec.filters,
        "actions": f.actions_shown,
        "secrets_manager": f.secrets_manager_shown,
        "active": f.spec.active,
        "created_by": f.created_by,
        "created": f.created,
        "updated": f.updated,
    })
}

/// A flow from a body (over the stored one when updating: actions without a URL or secret keep theirs).
fn read(map: Map<String, Value>, base: Option<&FlowRecord>) -> Result<FlowSpec, ApiError> {
    let mut v = match base {
        Some(b) => {
            let mut stored = serde_json::to_value(&b.spec).unwrap_or_default();
            for (k, val) in map {
                stored[k] = val;
            }
            stored
        }
        None => Value::Object(map),
    };
    if v.get("active").is_some_and(Value::is_null) {
        v["active"] = json!(true);
    }
    let mut spec: FlowSpec = serde_json::from_value(v).map_err(|e| {
        ApiError::fields(vec![FieldError::new(
            "flow",
            format!("{e}; a flow has name, trigger {{type: operation|anomaly|anomaly_status}}, filters and actions [{{type: webhook|slack|teams, url}} or {{type: email, to, smtp}}]"),
        )])
    })?;
    if let Some(b) = base {
        for (i, a) in spec.actions.iter_mut().enumerate() {
            let Some(old) = b.spec.actions.get(i).filter(|o| o.kind() == a.kind()) else {
                continue;
            };
            match (a, old) {
                (Action::Webhook { url, secret }, Action::Webhook { url: u, secret: s }) => {
                    if url.is_empty() {
                        *url = u.clone();
                    }
                    if secret.is_none() {
                        *secret = s.clone();
                    }
                }
                (Action::Slack { url } | Action::Teams { url }, old) if url.is_empty() => {
                    *url = old.url().unwrap_or_default().to_string();
                }
                (Action::Email { smtp, .. }, Action::Email { smtp: o, .. })
                    if smtp.password.is_none() =>
                {
                    smtp.password = o.password.clone();
                }
                _ => {}
            }
        }
    }
    // a secrets manager without its credentials payload keeps the stored one (the payload is never shown)
    if let (Some(sm), Some(old)) = (
        spec.secrets_manager.as_mut(),
        base.and_then(|b| b.spec.secrets_manager.as_ref()),
    ) && sm.credentials_payload.is_none()
    {
        sm.credentials_payload = old.credentials_payload.clone();
    }
    let errors = spec.validate();
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    Ok(spec)
}

pub async fn create(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    u.require_admin()?;
    let spec = read(body.object()?, None)?;
    let id = s.store.create_flow(&spec, &u.label()).await?;
    tracing::info!(flow_id = id, "FlowCreated");
    Ok(Json(render(&s.store.flow(id).await?)))
}

pub async fn list(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    u.require_admin()?;
    let (page, size) = q.page()?;
    let (items, total) = s.store.list_flows(page, size).await?;
    Ok(Json(views::page(
        items.iter().map(render).collect(),
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
    u.require_admin()?;
    Ok(Json(render(&s.store.flow(id(&raw, "flow")?).await?)))
}

pub async fn update(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    u.require_admin()?;
    let stored = s.store.flow(id(&raw, "flow")?).await?;
    let spec = read(body.object()?, Some(&stored))?;
    s.store.update_flow(stored.id, &spec).await?;
    Ok(Json(render(&s.store.flow(stored.id).await?)))
}

pub async fn delete_one(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    u.require_admin()?;
    s.store.delete_flow(id(&raw, "flow")?).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn set_active(
    s: &AppState,
    u: &AuthUser,
    raw: &str,
    active: bool,
) -> Result<Json<Value>, ApiError> {
    u.require_admin()?;
    let mut stored = s.store.flow(id(raw, "flow")?).await?;
    stored.spec.active = active;
    s.store.update_flow(stored.id, &stored.spec).await?;
    Ok(Json(render(&s.store.flow(stored.id).await?)))
}

pub async fn activate(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_active(&s, &u, &raw, true).await
}

pub async fn deactivate(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_active(&s, &u, &raw, false).await
}

/// Sends a sample message to every action of the flow now and answers what each receiver said.
pub async fn test(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    u.require_admin()?;
    let f = s.store.flow(id(&raw, "flow")?).await?;
    let sample = assay_ops::flows::message::sample(&s.ops, &f);
    let mut results = Vec::new();
    for (i, a) in f.spec.actions.iter().enumerate() {
        let delivery = uuid::Uuid::new_v4().to_string();
        let body = assay_ops::flows::message::render(a.kind(), &sample, &delivery);
        let sent =
            match assay_ops::flows::resolved(&s.ops, f.spec.secrets_manager.as_ref(), a).await {
                Ok(a) => {
                    assay_ops::flows::send(&a, &body, &delivery, s.ops.settings.loopback_only).await
                }
                Err(why) => Err((None, why)),
            };
        let r = match sent {
            Ok(code) => json!({"action_index": i, "type": a.kind(), "ok": true, "code": code,
                               "message": format!("delivered (HTTP {code})")}),
            Err((code, why)) => {
                json!({"action_index": i, "type": a.kind(), "ok": false, "code": code,
                                      "message": why})
            }
        };
        results.push(r);
    }
    Ok(Json(json!({"flow_id": f.id, "results": results})))
}

/// A flow's executions, newest first, with each delivery and its attempts.
pub async fn executions(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    u.require_admin()?;
    let f = s.store.flow(id(&raw, "flow")?).await?;
    let (page, size) = q.page()?;
    let (items, total) = s.store.flow_executions(f.id, page, size).await?;
    Ok(Json(views::page(items, total, page, size)))
}
