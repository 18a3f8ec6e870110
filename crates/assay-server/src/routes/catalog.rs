//! `/api/containers`: the synced tables and views, and their fields.

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_store::catalog::{Archived, ContainerFilter};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

fn archived(q: &Params) -> Result<Archived, ApiError> {
    match q.get("archived") {
        None => Ok(Archived::Exclude),
        Some("only") => Ok(Archived::Only),
        Some("include") => Ok(Archived::Include),
        Some(other) => Err(ApiError::invalid(format!(
            "query parameter archived: '{other}' is not only or include"
        ))),
    }
}

pub async fn list(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let filter = ContainerFilter {
        datastores: q.ints("datastore")?,
        container_types: q.all("container_type"),
        name: q.get("name").or(q.get("search")).map(str::to_string),
        archived: archived(&q)?,
        tags: q.all("tag"),
    };
    let (items, total) = s
        .store
        .list_containers(&u.viewer(), &filter, page, size)
        .await?;
    Ok(Json(views::page(
        items.iter().map(views::container).collect(),
        total,
        page,
        size,
    )))
}

/// Every container of a datastore as a bare array of `{id, name, container_type}`.
pub async fn listing(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let datastores = q.ints("datastore")?;
    if datastores.is_empty() {
        return Err(ApiError::invalid("query parameter datastore is required"));
    }
    for d in &datastores {
        s.store.datastore(*d, &u.viewer()).await?;
    }
    let filter = ContainerFilter {
        datastores,
        archived: archived(&q)?,
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let (items, total) = s
            .store
            .list_containers(&u.viewer(), &filter, page, 1000)
            .await?;
        out.extend(items.iter().map(|c| {
            let v = views::container(c);
            json!({"id": c.id, "name": c.name, "container_type": v["container_type"], "table_type": c.table_type})
        }));
        if page * 1000 >= total {
            break;
        }
        page += 1;
    }
    Ok(Json(Value::Array(out)))
}

pub async fn get_one(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = s
        .store
        .container(id(&raw, "container")?, &u.viewer())
        .await?;
    let mut v = super::containers::container_view(&s, &u, c.id).await?;
    let fields = s.store.fields(c.id, false).await?;
    v["fields"] = json!(
        fields
            .iter()
            .map(|f| views::field(f, &c.primary_key))
            .collect::<Vec<_>>()
    );
    Ok(Json(v))
}

/// The fields of a container as a bare array (active and missing ones).
pub async fn fields(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = s
        .store
        .container(id(&raw, "container")?, &u.viewer())
        .await?;
    let fields = s.store.fields(c.id, true).await?;
    Ok(Json(json!(
        fields
            .iter()
            .map(|f| views::field(f, &c.primary_key))
            .collect::<Vec<_>>()
    )))
}

/// The scans of a container, newest first (per-container scan results).
pub async fn scans(
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
    let (items, total) = s.store.container_scans(c.id, page, size).await?;
    Ok(Json(views::page(items, total, page, size)))
}
