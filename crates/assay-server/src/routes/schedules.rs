//! `/api/operations/schedule(s)`: schedules that run an operation of a datastore on a cron expression (UTC) or a
//! fixed interval, with the same parameters as `POST /operations/run`. The scheduler of `assay-ops` fires them.

use super::id;
use super::operations::{read_params, read_type};
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::{Fields, JsonBody};
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_core::FieldError;
use assay_core::operation::OperationParams;
use assay_core::schedule::Cadence;
use assay_store::StoreError;
use assay_store::schedules::{ScheduleInput, ScheduleRecord};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Map, Value};

/// The keys of a schedule that are not operation parameters.
const OWN_KEYS: [&str; 7] = [
    "name",
    "datastore_id",
    "type",
    "cron",
    "preset",
    "interval_seconds",
    "enabled",
];

/// A schedule's view with its next instant.
fn render(r: &ScheduleRecord) -> Value {
    let next = assay_ops::scheduler::next_run(r);
    views::schedule(r, next)
}

/// Reads a schedule from a body over `base` (the stored schedule when updating): every problem is collected,
/// each named by its field; the datastore must be one the user may see.
async fn read(
    s: &AppState,
    u: &AuthUser,
    map: &Map<String, Value>,
    base: Option<&ScheduleRecord>,
) -> Result<ScheduleInput, ApiError> {
    let mut f = Fields::new(map);
    let name = f.string("name").value().or(base.map(|b| b.name.clone()));
    let datastore_id = f
        .int("datastore_id")
        .value()
        .or(base.map(|b| b.datastore_id));
    let type_given = f.string("type").value();
    let cron = f.string("cron").value();
    let preset = f.string("preset").value();
    let interval = f.int("interval_seconds").value();
    let enabled = f
        .boolean("enabled")
        .value()
        .or(base.map(|b| b.enabled))
        .unwrap_or(true);
    let mut errors = std::mem::take(&mut f.errors);
    match name.as_deref().map(str::trim) {
        None | Some("") => errors.push(FieldError::new("name", "is required: name the schedule")),
        Some(n) if n.len() > 255 => {
            errors.push(FieldError::new("name", "is longer than 255 characters"))
        }
        _ => {}
    }
    let op_type = read_type(
        type_given.as_deref().or(base.map(|b| b.op_type.as_str())),
        &mut errors,
    );
    // the operation's parameters: the stored ones (same type) with the body's keys over them
    let params = op_type.map(|t| {
        let mut merged = match base {
            Some(b) if b.op_type == t.as_str() => b.params.as_object().cloned().unwrap_or_default(),
            _ => Map::new(),
        };
        for (k, v) in map {
            if !OWN_KEYS.contains(&k.as_str()) {
                merged.insert(k.clone(), v.clone());
            }
        }
        let p = read_params(t, &merged, &mut errors);
        errors.extend(p.validate());
        p
    });
    let cadence = if cron.is_none() && preset.is_none() && interval.is_none() {
        match base {
            Some(b) => assay_ops::scheduler::cadence_of(b),
            None => {
                errors.push(FieldError::new(
                    "cron",
                    "is required: give cron (5 fields, UTC), preset (hourly, daily, weekly, monthly) or interval_seconds",
                ));
                None
            }
        }
    } else {
        match Cadence::from_request(
            cron.as_deref(),
            preset.as_deref(),
            interval,
            s.ops.settings.min_schedule_interval,
        ) {
            Ok(c) => Some(c),
            Err(e) => {
                errors.extend(e);
                None
            }
        }
    };
    match datastore_id {
        None => errors.push(FieldError::new(
            "datastore_id",
            "is required: the datastore whose operation runs",
        )),
        Some(d) => match s.store.datastore(d, &u.viewer()).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => errors.push(FieldError::new(
                "datastore_id",
                format!("datastore {d} not found; list them with GET /api/datastores"),
            )),
            Err(e) => return Err(e.into()),
        },
    }
    let (Some(name), Some(datastore_id), Some(params), Some(cadence), true) =
        (name, datastore_id, params, cadence, errors.is_empty())
    else {
        return Err(ApiError::fields(errors));
    };
    Ok(input(name.trim(), datastore_id, &params, &cadence, enabled))
}

fn input(
    name: &str,
    datastore_id: i64,
    params: &OperationParams,
    cadence: &Cadence,
    enabled: bool,
) -> ScheduleInput {
    ScheduleInput {
        name: name.to_string(),
        datastore_id,
        op_type: params.op_type().as_str().to_string(),
        params: params.to_json(),
        cron: cadence.cron().map(str::to_string),
        interval_seconds: cadence.interval_seconds(),
        enabled,
    }
}

/// `POST /operations/schedule`.
pub async fn create(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let map = body.object()?;
    let input = read(&s, &u, &map, None).await?;
    let id = s.store.create_schedule(&input, &u.label()).await?;
    tracing::info!(
        schedule_id = id,
        datastore_id = input.datastore_id,
        "ScheduleCreated"
    );
    Ok(Json(render(&s.store.schedule(id, &u.viewer()).await?)))
}

pub async fn list(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let (items, total) = s
        .store
        .list_schedules(&u.viewer(), q.int("datastore")?, page, size)
        .await?;
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
    let r = s.store.schedule(id(&raw, "schedule")?, &u.viewer()).await?;
    Ok(Json(render(&r)))
}

/// `PUT`: the keys given replace the stored ones; a new cadence starts counting instants anew.
pub async fn update(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let stored = s.store.schedule(id(&raw, "schedule")?, &u.viewer()).await?;
    let map = body.object()?;
    let input = read(&s, &u, &map, Some(&stored)).await?;
    s.store.update_schedule(stored.id, &input).await?;
    Ok(Json(render(
        &s.store.schedule(stored.id, &u.viewer()).await?,
    )))
}

pub async fn delete_one(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    let stored = s.store.schedule(id(&raw, "schedule")?, &u.viewer()).await?;
    s.store.delete_schedule(stored.id).await?;
    tracing::info!(schedule_id = stored.id, "ScheduleDeleted");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn set_enabled(
    s: &AppState,
    u: &AuthUser,
    raw: &str,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let stored = s.store.schedule(id(raw, "schedule")?, &u.viewer()).await?;
    let mut map = Map::new();
    map.insert("enabled".into(), Value::Bool(enabled));
    let input = read(s, u, &map, Some(&stored)).await?;
    s.store.update_schedule(stored.id, &input).await?;
    Ok(Json(render(
        &s.store.schedule(stored.id, &u.viewer()).await?,
    )))
}

pub async fn enable(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(&s, &u, &raw, true).await
}

pub async fn disable(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(&s, &u, &raw, false).await
}

/// `GET .../instants`: what became of each due instant, newest first (queued with its operation, or skipped
/// with the reason).
pub async fn instants(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let stored = s.store.schedule(id(&raw, "schedule")?, &u.viewer()).await?;
    let (page, size) = q.page()?;
    let (items, total) = s.store.schedule_instants(stored.id, page, size).await?;
    Ok(Json(views::page(
        items.iter().map(views::instant).collect(),
        total,
        page,
        size,
    )))
}
