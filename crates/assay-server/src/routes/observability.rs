//! Volume and freshness tracking over the API: a container's measurements (`ObservabilityMeasurement`), and the
//! four tracking settings read from container and datastore bodies (`default_` + the key on a datastore).

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::Fields;
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_store::observability::{Flags, MeasurementRecord};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

/// The settings a body gives, each under `prefix` + its key (`None`: absent or null, kept as it is).
pub(crate) fn flags_of(f: &mut Fields, prefix: &str) -> [Option<bool>; 4] {
    Flags::KEYS.map(|k| f.boolean(&format!("{prefix}{k}")).value())
}

/// The settings as a datastore shows its defaults.
pub(crate) fn defaults_json(d: &Flags) -> Value {
    json!({
        "default_volumetric_tracking_enabled": d.volumetric_tracking_enabled,
        "default_freshness_tracking_enabled": d.freshness_tracking_enabled,
        "default_automate_volumetric_checks": d.automate_volumetric_checks,
        "default_automate_freshness_checks": d.automate_freshness_checks,
    })
}

fn measurement(m: &MeasurementRecord) -> Value {
    json!({
        "id": m.id,
        "created": m.created,
        "measurement_time": m.measurement_time,
        "row_count": m.row_count,
        "size_bytes": m.size_bytes,
        "last_modification_time": m.last_modification_time,
        "method": m.method,
        "operation_id": m.operation_id,
    })
}

/// `GET /api/containers/{id}/measurements`: newest first, paged.
pub async fn measurements(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let c = s
        .store
        .container(id(&raw, "container")?, &u.viewer())
        .await?;
    let (page, size) = q.page()?;
    let (items, total) = s.store.measurements(c.id, page, size).await?;
    Ok(Json(views::page(
        items.iter().map(measurement).collect(),
        total,
        page,
        size,
    )))
}
