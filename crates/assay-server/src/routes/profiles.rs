//! Field profiles and container profile history.

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_store::profiles::FieldProfileRecord;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

fn field_profile(f: &FieldProfileRecord) -> Value {
    let mut v = f.profile.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(f.id));
        o.insert("container_profile_id".into(), json!(f.container_profile_id));
        o.insert("container_id".into(), json!(f.container_id));
        o.insert("field_id".into(), json!(f.field_id));
        o.insert("created".into(), json!(f.created));
    }
    v
}

/// `{items, total}` of a container's latest profile (or `?profile_id=`).
pub async fn of_container(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let c = s
        .store
        .container(id(&raw, "container")?, &u.viewer())
        .await?;
    let (items, total) = s
        .store
        .field_profiles(&u.viewer(), &[c.id], &[], q.int("profile_id")?, 1, 10_000)
        .await?;
    Ok(Json(
        json!({"items": items.iter().map(field_profile).collect::<Vec<_>>(), "total": total}),
    ))
}

pub async fn list(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let (items, total) = s
        .store
        .field_profiles(
            &u.viewer(),
            &q.ints("container")?,
            &q.ints("datastore")?,
            q.int("profile_id")?,
            page,
            size,
        )
        .await?;
    Ok(Json(views::page(
        items.iter().map(field_profile).collect(),
        total,
        page,
        size,
    )))
}

/// The profiles of a container, newest first (for history charts).
pub async fn history(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let c = s
        .store
        .container(id(&raw, "container")?, &u.viewer())
        .await?;
    let (items, total) = s.store.container_profiles(c.id, page, size).await?;
    Ok(Json(views::page(
        items.iter().map(|p| json!(p)).collect(),
        total,
        page,
        size,
    )))
}
