//! Container writes (`POST/PATCH /api/containers`, `POST /api/containers/validate`, `PUT/DELETE
//! /api/containers/{id}`), computed fields, global tags and check templates.

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::{Fields, JsonBody};
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_core::FieldError;
use assay_ops::computed;
use assay_store::computed::GlobalTag;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// The container object with its computed fields.
pub async fn container_view(
    s: &AppState,
    u: &AuthUser,
    container_id: i64,
) -> Result<Value, ApiError> {
    let c = s.store.container(container_id, &u.viewer()).await?;
    let mut v = views::container(&c);
    let fields = s.store.computed_fields(c.id).await?;
    v["computed_fields"] = json!(fields.iter().map(computed_field).collect::<Vec<_>>());
    Ok(v)
}

fn computed_field(f: &assay_store::computed::ComputedField) -> Value {
    json!({"id": f.id, "name": f.name, "container_id": f.container_id, "transformation_type": f.transformation,
           "transformation": f.transformation, "source_fields": f.source_fields, "properties": f.properties,
           "additional_metadata": f.additional_metadata, "created": f.created, "last_updated": f.updated})
}

/// The strings of a JSON array; `None` when the value is not an array (the key was not given).
fn strings(v: &Value) -> Option<Vec<String>> {
    v.is_array().then(|| crate::params::strings(v))
}

/// The computed container a body defines: a query (computed_table) or a join (computed_join), compiled into
/// the datastore it lives in, its query, and the join definition.
async fn definition_of(
    s: &AppState,
    u: &AuthUser,
    map: &Map<String, Value>,
    base: Option<&Value>,
) -> Result<
    (
        assay_store::datastores::DatastoreRecord,
        String,
        Option<Value>,
    ),
    ApiError,
> {
    match map.get("container_type").and_then(Value::as_str) {
        Some("computed_join") => {
            let d = assay_ops::join::definition(map, base);
            let (ds, query) = assay_ops::join::compile(&s.ops, &u.viewer(), &d).await?;
            Ok((ds, query, Some(d)))
        }
        Some("computed_table") | None => {
            let mut f = Fields::new(map);
            let ds_id = f.int("datastore_id").value();
            let query = f.string("query").value();
            let mut errors = f.errors;
            for (k, missing) in [
                ("datastore_id", ds_id.is_none()),
                ("query", query.is_none()),
            ] {
                if missing {
                    errors.push(FieldError::new(k, "is required"));
                }
            }
            let (Some(ds_id), Some(query), true) = (ds_id, query, errors.is_empty()) else {
                return Err(ApiError::fields(errors));
            };
            Ok((s.store.datastore(ds_id, &u.viewer()).await?, query, None))
        }
        Some("computed_file") => Err(ApiError::fields(vec![FieldError::new(
            "container_type",
            "computed_file selects from a file container (CSV, Parquet, ...) and PostgreSQL datastores have none; \
             use a computed_table with the same SELECT over a table",
        )])),
        Some(other) => Err(ApiError::fields(vec![FieldError::new(
            "container_type",
            format!(
                "'{other}' cannot be created; only computed_table and computed_join can (tables and views come from a sync)"
            ),
        )])),
    }
}

/// `POST /api/containers`: a computed table `{container_type, name, datastore_id, query}` or a computed join
/// `{container_type: computed_join, name, left_container_id, right_container_id, left_join_field_name,
/// right_join_field_name, select_clause, join_type?, left_prefix?, right_prefix?, where_clause?, group_by_clause?}`.
pub async fn create(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let name = f.string("name").value();
    let description = f.string("description").value();
    let mut errors = f.errors;
    if name.is_none() {
        errors.push(FieldError::new("name", "is required"));
    }
    let (Some(name), true) = (name, errors.is_empty()) else {
        return Err(ApiError::fields(errors));
    };
    let (ds, query, definition) = definition_of(&s, &u, &map, None).await?;
    let client = computed::source_session(&s.ops, &ds).await?;
    let fields = computed::describe_query(&client, &query).await?;
    let metadata = map
        .get("additional_metadata")
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or(json!({}));
    let tags = map.get("tags").and_then(strings).unwrap_or_default();
    let new_id = s
        .store
        .create_computed_container(
            ds.id,
            &name,
            &query,
            description.as_deref(),
            &tags,
            &metadata,
            definition.as_ref(),
            &fields,
        )
        .await?;
    Ok(Json(container_view(&s, &u, new_id).await?))
}

/// `POST /api/containers/validate`: `{"container": <create body>}` → 204 when the source accepts it.
pub async fn validate(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let map = body.object()?;
    let inner = map
        .get("container")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or(map);
    let (ds, query, _) = definition_of(&s, &u, &inner, None).await?;
    let client = computed::source_session(&s.ops, &ds).await?;
    computed::describe_query(&client, &query).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/containers/{id}`: a computed table's name and query, and any container's description and tags.
/// Fields that checks use may only disappear with `force_drop_fields: true`.
pub async fn update(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (c, ds) = computed::load(&s.ops, &u.viewer(), id(&raw, "container")?).await?;
    let map = body.object()?;
    if c.table_type == "computed_table" {
        let name = map
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&c.name)
            .to_string();
        let (query, definition) = match &c.definition {
            Some(d) => {
                let mut m = map.clone();
                m.insert("container_type".into(), json!("computed_join"));
                let (_, q, d) = definition_of(&s, &u, &m, Some(d)).await?;
                (q, d)
            }
            None => (
                map.get("query")
                    .and_then(Value::as_str)
                    .or(c.query.as_deref())
                    .unwrap_or_default()
                    .to_string(),
                None,
            ),
        };
        let client = computed::source_session(&s.ops, &ds).await?;
        let fields = computed::describe_query(&client, &query).await?;
        let force = map
            .get("force_drop_fields")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let used = s.store.fields_in_use(c.id).await?;
        let lost: Vec<&String> = used
            .iter()
            .filter(|u| !fields.iter().any(|f| &f.name == *u))
            .collect();
        if !lost.is_empty() && !force {
            return Err(ApiError::conflict(format!(
                "the new query drops fields that checks use: {}; send force_drop_fields: true to drop them anyway",
                lost.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        s.store
            .update_computed_container(c.id, &name, &query, definition.as_ref(), &fields)
            .await?;
    }
    let mut f = Fields::new(&map);
    let flags = super::observability::flags_of(&mut f, "");
    if !f.errors.is_empty() {
        return Err(ApiError::fields(f.errors));
    }
    s.store.set_container_observability(c.id, flags).await?;
    let description = map.get("description").and_then(Value::as_str);
    let tags = map.get("tags").and_then(strings);
    s.store
        .update_container_info(c.id, description, tags.as_deref())
        .await?;
    Ok(Json(container_view(&s, &u, c.id).await?))
}

/// `DELETE /api/containers/{id}`: computed tables only; tables and views leave with a sync after they are
/// dropped in the source.
pub async fn delete(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let c = s
        .store
        .container(id(&raw, "container")?, &u.viewer())
        .await?;
    if c.table_type != "computed_table" {
        return Err(ApiError::conflict(format!(
            "{} is a {} of the source; drop it there and run a sync with prune",
            c.name, c.table_type
        )));
    }
    s.store.delete_container(c.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /api/containers`: `[{"id", "tags"?, "description"?}]`.
pub async fn patch_many(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let Some(Value::Array(items)) = body.0 else {
        return Err(ApiError::invalid(
            "send a list such as [{\"id\": 6, \"tags\": [\"finance\"]}]",
        ));
    };
    let mut plan = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(cid) = item["id"].as_i64() else {
            return Err(ApiError::fields(vec![FieldError::new(
                format!("[{i}].id"),
                "is required",
            )]));
        };
        s.store.container(cid, &u.viewer()).await?;
        plan.push((
            cid,
            item["description"].as_str().map(str::to_string),
            strings(&item["tags"]),
        ));
    }
    for (cid, d, t) in plan {
        s.store
            .update_container_info(cid, d.as_deref(), t.as_deref())
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn save_field(
    s: &AppState,
    u: &AuthUser,
    field_id: Option<i64>,
    container_id: i64,
    map: &Map<String, Value>,
) -> Result<Json<Value>, ApiError> {
    let (c, ds) = computed::load(&s.ops, &u.viewer(), container_id).await?;
    let name = map
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::fields(vec![FieldError::new("name", "is required")]))?;
    let transformation = map
        .get("transformation")
        .or(map.get("transformation_type"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::fields(vec![FieldError::new("transformation", "is required")]))?;
    let source_fields: Vec<String> = map
        .get("source_fields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().or(x["name"].as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let properties = map
        .get("properties")
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or(json!({}));
    let expression = computed::expression_of(transformation, &source_fields, &properties)
        .map_err(ApiError::fields)?;
    let field = computed::describe_field(&s.ops, &ds, &c, name, &expression, field_id).await?;
    let metadata = map
        .get("additional_metadata")
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or(json!({}));
    let saved = s
        .store
        .save_computed_field(
            field_id,
            c.id,
            name,
            transformation,
            &json!(source_fields),
            &properties,
            &metadata,
            &expression,
            &field,
        )
        .await?;
    Ok(Json(computed_field(&s.store.computed_field(saved).await?)))
}

pub async fn create_field(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let map = body.object()?;
    let cid = map
        .get("container_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::fields(vec![FieldError::new("container_id", "is required")]))?;
    save_field(&s, &u, None, cid, &map).await
}

/// A computed field of a container `u` may see; another team's answers as a missing one does.
async fn visible_field(
    s: &AppState,
    u: &AuthUser,
    raw: &str,
) -> Result<assay_store::computed::ComputedField, ApiError> {
    let fid = id(raw, "computed field")?;
    let missing = || ApiError::not_found(format!("computed field {fid} not found"));
    let f = s.store.computed_field(fid).await?;
    match s.store.container(f.container_id, &u.viewer()).await {
        Ok(_) => Ok(f),
        Err(assay_store::StoreError::NotFound(_)) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

pub async fn update_field(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let f = visible_field(&s, &u, &raw).await?;
    let map = body.object()?;
    save_field(&s, &u, Some(f.id), f.container_id, &map).await
}

pub async fn delete_field(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let f = visible_field(&s, &u, &raw).await?;
    s.store.delete_computed_field(f.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn tag_view(t: &GlobalTag) -> Value {
    json!(t)
}

pub async fn list_tags(
    State(s): State<AppState>,
    _u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let (items, total) = s.store.tags(page, size).await?;
    Ok(Json(views::page(
        items.iter().map(tag_view).collect(),
        total,
        page,
        size,
    )))
}

pub async fn create_tag(
    State(s): State<AppState>,
    _u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let name = f.string("name").value();
    let weight = f.int("weight_modifier").value().unwrap_or(0);
    let t = GlobalTag {
        name: name.clone().unwrap_or_default(),
        kind: f.string("type").value().unwrap_or_else(|| "global".into()),
        color: f.string("color").value(),
        description: f.string("description").value(),
        category: f.string("category").value(),
        weight_modifier: weight as i32,
        created: chrono::Utc::now(),
    };
    let mut errors = f.errors;
    if name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        errors.push(FieldError::new("name", "is required"));
    }
    if !(-10..=10).contains(&weight) {
        errors.push(FieldError::new(
            "weight_modifier",
            "must be between -10 and 10",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    s.store.create_tag(&t).await?;
    Ok(Json(tag_view(&s.store.tag(&t.name).await?)))
}

pub async fn get_tag(
    State(s): State<AppState>,
    _u: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(tag_view(&s.store.tag(&name).await?)))
}

pub async fn delete_tag(
    State(s): State<AppState>,
    _u: AuthUser,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.store.delete_tag(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/quality-check-templates`: a template is validated against the rule catalogue (it has no container,
/// so fields are not checked) and kept for exports.
pub async fn create_template(
    State(s): State<AppState>,
    _u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let map = body.object()?;
    let rule = map
        .get("rule")
        .or(map.get("rule_type"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::fields(vec![FieldError::new("rule", "is required")]))?;
    let r = assay_core::rules::rule(rule).ok_or_else(|| {
        ApiError::fields(vec![FieldError::new(
            "rule",
            format!("'{rule}' is not a rule type"),
        )])
    })?;
    if let Some(why) = r.unsupported {
        return Err(ApiError::fields(vec![FieldError::new(
            "rule",
            format!("rule '{rule}' is not supported by Assay: {why}"),
        )]));
    }
    let properties = map
        .get("properties")
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or(json!({}));
    let metadata = map
        .get("additional_metadata")
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or(json!({}));
    let tags = map.get("tags").and_then(strings).unwrap_or_default();
    let coverage = match map.get("coverage") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(c) if (0.0..=1.0).contains(&c) => Some(c),
            _ => {
                return Err(ApiError::fields(vec![FieldError::new(
                    "coverage",
                    "must be a number between 0 and 1",
                )]));
            }
        },
    };
    let new_id = s
        .store
        .create_template(
            rule,
            map.get("description").and_then(Value::as_str).unwrap_or(""),
            coverage,
            map.get("filter").and_then(Value::as_str),
            &properties,
            &tags,
            map.get("template_locked")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            &metadata,
        )
        .await?;
    Ok(Json(
        json!({"id": new_id, "rule_type": rule, "is_template": true}),
    ))
}
