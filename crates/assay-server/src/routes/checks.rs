//! `/api/quality-checks`: list, get, create, update, archive/delete (one or many), the rule catalogue, and a
//! check's metric history. A definition is validated against the rule catalogue and the container's fields, and
//! its filter and row predicate are planned by the source (never run on data) before it is saved.

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::{Fields, JsonBody};
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_core::FieldError;
use assay_core::rules::{self, Definition, FieldInfo};
use assay_postgres::scan::{ScanCheck, check_sql_fragment};
use assay_store::Viewer;
use assay_store::checks::{CheckFilter, CheckInput, CheckRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

pub fn check(c: &CheckRecord) -> Value {
    let container_type = if matches!(c.container_type.as_str(), "view" | "materialized_view") {
        "view"
    } else {
        "table"
    };
    json!({
        "id": c.id,
        "rule_type": c.rule_type,
        "description": c.description,
        "container": {"id": c.container_id, "name": c.container_name, "container_type": container_type},
        "datastore_id": c.datastore_id,
        "fields": c.fields.iter().map(|f| json!({"name": f})).collect::<Vec<_>>(),
        "coverage": c.coverage,
        "filter": c.filter,
        "properties": c.properties,
        "status": c.status,
        "status_message": c.status_message,
        "inferred": c.inferred,
        "tags": c.tags,
        "global_tags": c.tags.as_array().map(|a| a.iter().map(|t| json!({"name": t})).collect::<Vec<_>>()).unwrap_or_default(),
        "additional_metadata": c.additional_metadata,
        "anomaly_message_field": c.anomaly_message_field,
        "owner_id": c.owner_id,
        "weight": c.weight,
        "is_passing": c.is_passing,
        "last_asserted": c.last_asserted,
        "last_editor": c.last_editor,
        "anomaly_count": c.anomaly_count,
        "is_template": false,
        "template_id": null,
        "created": c.created,
        "last_updated": c.updated,
        "deleted_at": c.deleted_at,
    })
}

pub async fn list(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let archived = q.get("archived");
    let mut status = q.get("status").map(str::to_string);
    let mut archived_only = archived == Some("only");
    if status.as_deref() == Some("Archived") {
        status = None;
        archived_only = true;
    }
    if let Some(st) = &status
        && !matches!(st.as_str(), "Active" | "Draft" | "Invalid" | "Discarded")
    {
        return Err(ApiError::invalid(format!(
            "query parameter status: '{st}' is not Active, Draft, Invalid, Discarded or Archived"
        )));
    }
    let f = CheckFilter {
        datastore: q.int("datastore")?,
        containers: q.ints("container")?,
        rule_types: q.all("rule_type"),
        tags: q.all("tag"),
        archived_only,
        include_archived: archived == Some("include")
            || matches!(status.as_deref(), Some("Invalid" | "Discarded")),
        status,
        passing: None,
    };
    if q.bool("template_only")? == Some(true) {
        // Assay keeps no check templates: the list of templates is empty
        return Ok(Json(views::page(Vec::new(), 0, page, size)));
    }
    let (items, total) = s.store.list_checks(&u.viewer(), &f, page, size).await?;
    Ok(Json(views::page(
        items.iter().map(check).collect(),
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
    Ok(Json(check(
        &s.store
            .check(id(&raw, "quality check")?, &u.viewer())
            .await?,
    )))
}

pub async fn spec() -> Json<Value> {
    Json(rules::spec())
}

/// The common part of create and update bodies.
struct Parsed {
    description: Option<String>,
    fields: Option<Vec<String>>,
    coverage: Option<Option<f64>>,
    filter: Option<Option<String>>,
    properties: Option<Value>,
    status: Option<String>,
    tags: Option<Vec<String>>,
    metadata: Option<Value>,
    message_field: Option<Option<String>>,
    owner: Option<i64>,
}

/// An owner must be a user of this server (a 422 naming the field, not a failed write).
async fn known_owner(s: &AppState, owner: Option<i64>) -> Result<(), ApiError> {
    let Some(id) = owner else { return Ok(()) };
    match s.store.user(id).await {
        Ok(_) => Ok(()),
        Err(assay_store::StoreError::NotFound(_)) => Err(ApiError::fields(vec![FieldError::new(
            "owner_id",
            format!("there is no user {id}; give the id of an existing user"),
        )])),
        Err(e) => Err(e.into()),
    }
}

fn parse(map: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Parsed {
    let mut f = Fields::new(map);
    let description = f.string("description").value();
    let fields = f.strings("fields").value();
    let status = f.string("status").value();
    let tags = f.strings("tags").value();
    let owner = f.int("owner_id").value();
    errors.append(&mut f.errors);
    if let Some(st) = &status
        && !matches!(st.as_str(), "Active" | "Draft")
    {
        errors.push(FieldError::new(
            "status",
            format!("'{st}' is not Active or Draft; archive a check with DELETE"),
        ));
    }
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 8000)
    {
        errors.push(FieldError::new(
            "description",
            "is longer than 8000 characters",
        ));
    }
    let coverage = match map.get("coverage") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match v.as_f64() {
            Some(c) if (0.0..=1.0).contains(&c) => Some(Some(c)),
            _ => {
                errors.push(FieldError::new(
                    "coverage",
                    "must be a number between 0 and 1",
                ));
                None
            }
        },
    };
    let text_or_null = |k: &str, errors: &mut Vec<FieldError>| match map.get(k) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.trim().is_empty() => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => {
            errors.push(FieldError::new(k, "must be a string or null"));
            None
        }
    };
    let filter = text_or_null("filter", errors);
    let message_field = text_or_null("anomaly_message_field", errors);
    let object = |k: &str, errors: &mut Vec<FieldError>| match map.get(k) {
        None => None,
        Some(Value::Null) => Some(json!({})),
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => {
            errors.push(FieldError::new(k, "must be an object"));
            None
        }
    };
    let properties = object("properties", errors);
    let metadata = object("additional_metadata", errors);
    Parsed {
        description,
        fields,
        coverage,
        filter,
        properties,
        status,
        tags,
        metadata,
        message_field,
        owner,
    }
}

/// Validates a definition for a container: the rule catalogue, the fields, cross-container references, and
/// the source's planner. Returns the properties with defaults.
async fn validate(
    s: &AppState,
    viewer: &Viewer,
    container_id: i64,
    input: &CheckInput,
) -> Result<Value, ApiError> {
    let container = s.store.container(container_id, viewer).await?;
    let fields = s.store.fields(container.id, false).await?;
    let infos: Vec<FieldInfo> = fields
        .iter()
        .map(|f| FieldInfo {
            name: &f.name,
            field_type: &f.field_type,
        })
        .collect();
    let props = rules::validate(
        &Definition {
            rule: &input.rule_type,
            fields: &input.fields,
            coverage: input.coverage,
            filter: input.filter.as_deref(),
            properties: &input.properties,
        },
        &infos,
    )
    .map_err(ApiError::fields)?;
    let mut errors = Vec::new();
    if let Some(f) = &input.filter
        && let Err(e) = check_sql_fragment(f)
    {
        errors.push(FieldError::new("filter", e));
    }
    for key in ["expression", "ref_expression", "ref_filter"] {
        if let Some(e) = props[key].as_str()
            && let Err(m) = check_sql_fragment(e)
        {
            errors.push(FieldError::new(format!("properties.{key}"), m));
        }
    }
    let ds = s.store.datastore(container.datastore_id, viewer).await?;
    let mut reference = None;
    if let Some(rid) = props["ref_container_id"].as_i64() {
        match s.store.container(rid, viewer).await {
            Err(_) => errors.push(FieldError::new(
                "properties.ref_container_id",
                format!("no container {rid} that you can see"),
            )),
            Ok(rc) => {
                let rds = s.store.datastore(rc.datastore_id, viewer).await?;
                if let Some(want) = props["ref_datastore_id"].as_i64()
                    && want != rds.id
                {
                    errors.push(FieldError::new(
                        "properties.ref_datastore_id",
                        format!(
                            "container {rid} belongs to datastore {}, not {want}",
                            rds.id
                        ),
                    ));
                }
                if rds.connection_id != ds.connection_id || rds.spec.database != ds.spec.database {
                    errors.push(FieldError::new(
                        "properties.ref_container_id",
                        format!(
                            "container {} is in datastore '{}', which is not in the same database as '{}'; \
                             Assay compares containers of one database",
                            rc.name, rds.spec.name, ds.spec.name
                        ),
                    ));
                } else {
                    if let Some(fname) = props["field_name"].as_str() {
                        let rf = s.store.fields(rc.id, false).await?;
                        if !rf.iter().any(|f| f.name == fname) {
                            errors.push(FieldError::new(
                                "properties.field_name",
                                format!("container {} has no field '{fname}'", rc.name),
                            ));
                        }
                    }
                    reference = Some((rds.spec.schema.clone(), rc.name.clone()));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    // the source's planner checks the filter and the row predicate (types, columns, functions, regex)
    let conn = s.store.connection(ds.connection_id).await?;
    let endpoint = assay_postgres::Endpoint {
        connection: &conn.spec,
        database: &ds.spec.database,
    };
    let client = match endpoint.resolve(&s.resolver).await {
        Ok(p) => s.source_sessions.lease(&p).await.ok().map(|c| (c, p)),
        Err(_) => None,
    };
    match client {
        None => {
            tracing::warn!(
                container_id,
                "the source could not be reached; the check's SQL is checked at its first scan"
            );
        }
        Some((client, params)) => {
            let relation = assay_ops::computed::relation_of(&s.ops, &ds, &container)
                .await
                .map_err(ApiError::internal)?;
            let columns = match &relation {
                Some(r) => assay_postgres::scan::relation_columns(&client, r)
                    .await
                    .map(|cols| {
                        cols.into_iter()
                            .map(
                                |(name, typname, typtype, cat)| assay_postgres::scan::ScanColumn {
                                    field_type: assay_core::catalog::FieldType::from_postgres(
                                        &typname, &typtype, &cat,
                                    )
                                    .as_str()
                                    .to_string(),
                                    name,
                                    typname,
                                },
                            )
                            .collect()
                    })
                    .unwrap_or_default(),
                None => assay_postgres::scan::live_columns(
                    &client,
                    &params,
                    &ds.spec.schema,
                    &container.name,
                )
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
            };
            let rel_sql = relation.clone().unwrap_or_else(|| {
                assay_postgres::ident::qualified(&ds.spec.schema, &container.name)
            });
            let k = ScanCheck {
                id: 0,
                rule: input.rule_type.clone(),
                fields: input.fields.clone(),
                coverage: input.coverage,
                filter: input.filter.clone(),
                properties: props.clone(),
                reference,
                previous: None,
            };
            if let Err(e) = assay_postgres::scan::plan_fragment(
                &client,
                &rel_sql,
                input.filter.as_deref(),
                Some(&k),
                &columns,
            )
            .await
            {
                let field = if e.starts_with("properties.pattern") {
                    "properties.pattern"
                } else if input.filter.is_some() && e.starts_with("filter") {
                    "filter"
                } else {
                    "definition"
                };
                return Err(ApiError::fields(vec![FieldError::new(
                    field,
                    format!("the source rejects this check: {e}"),
                )]));
            }
        }
    }
    Ok(props)
}

pub async fn create(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let map = body.object()?;
    let mut errors = Vec::new();
    let mut f = Fields::new(&map);
    let container_id = f.int("container_id").value();
    let rule = f
        .string("rule")
        .value()
        .or_else(|| f.string("rule_type").value());
    errors.append(&mut f.errors);
    let p = parse(&map, &mut errors);
    if container_id.is_none() {
        errors.push(FieldError::new("container_id", "is required"));
    }
    if rule.is_none() {
        errors.push(FieldError::new(
            "rule",
            "is required: a rule type such as notNull or between",
        ));
    }
    let (Some(container_id), Some(rule), true) = (container_id, rule, errors.is_empty()) else {
        return Err(ApiError::fields(errors));
    };
    known_owner(&s, p.owner).await?;
    let viewer = u.viewer();
    if s.store.container(container_id, &viewer).await.is_err() {
        return Err(ApiError::fields(vec![FieldError::new(
            "container_id",
            format!("no container {container_id} that you can see; run a sync or check the id"),
        )]));
    }
    let mut input = CheckInput {
        container_id,
        rule_type: rule,
        description: p.description.unwrap_or_default(),
        fields: p.fields.unwrap_or_default(),
        coverage: p.coverage.flatten(),
        filter: p.filter.flatten(),
        properties: p.properties.unwrap_or_else(|| json!({})),
        status: p.status.unwrap_or_else(|| "Active".into()),
        tags: p.tags.unwrap_or_default(),
        additional_metadata: p.metadata.unwrap_or_else(|| json!({})),
        anomaly_message_field: p.message_field.flatten(),
        owner_id: p.owner,
    };
    input.properties = validate(&s, &viewer, container_id, &input).await?;
    let new_id = s.store.create_check(&input, &u.label()).await?;
    let rec = s.store.check(new_id, &viewer).await?;
    Ok((StatusCode::OK, Json(check(&rec))))
}

pub async fn update(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let check_id = id(&raw, "quality check")?;
    let viewer = u.viewer();
    let map = body.object()?;
    let mut errors = Vec::new();
    let p = parse(&map, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    known_owner(&s, p.owner).await?;
    // The keys the body leaves out keep their stored values. The write applies only if the check was not
    // changed since it was read, so two concurrent edits of different keys (a description, the properties)
    // both land; a lost race reads the check again.
    for _ in 0..EDIT_ATTEMPTS {
        let old = s.store.check(check_id, &viewer).await?;
        let mut input = CheckInput {
            container_id: old.container_id,
            rule_type: old.rule_type.clone(),
            description: p.description.clone().unwrap_or(old.description.clone()),
            fields: p.fields.clone().unwrap_or(old.fields.clone()),
            coverage: p.coverage.unwrap_or(old.coverage),
            filter: p.filter.clone().unwrap_or(old.filter.clone()),
            properties: p.properties.clone().unwrap_or(old.properties.clone()),
            status: p.status.clone().unwrap_or_else(|| {
                if matches!(old.status.as_str(), "Active" | "Draft") {
                    old.status.clone()
                } else {
                    "Active".into()
                }
            }),
            tags: p.tags.clone().unwrap_or_else(|| {
                old.tags
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            }),
            additional_metadata: p
                .metadata
                .clone()
                .unwrap_or(old.additional_metadata.clone()),
            anomaly_message_field: p
                .message_field
                .clone()
                .unwrap_or(old.anomaly_message_field.clone()),
            owner_id: p.owner,
        };
        // An edit that leaves the definition as stored (a description, tags, metadata, the owner) keeps the
        // properties that were validated when it was written, and does not need the source.
        let same_definition = input.fields == old.fields
            && input.coverage == old.coverage
            && input.filter == old.filter
            && input.properties == old.properties
            && input.status == old.status;
        if !same_definition {
            input.properties = validate(&s, &viewer, old.container_id, &input).await?;
        }
        if s.store
            .update_check(check_id, &input, &u.label(), old.updated)
            .await?
        {
            return Ok(Json(check(&s.store.check(check_id, &viewer).await?)));
        }
    }
    Err(ApiError::conflict(format!(
        "quality check {check_id} was changed by other edits {EDIT_ATTEMPTS} times while this edit was being \
         saved; send the edit again"
    )))
}

/// How often an edit re-reads a check that changed under it before it gives up with 409.
const EDIT_ATTEMPTS: usize = 8;

fn archive_status(raw: Option<&str>) -> Result<String, ApiError> {
    match raw.unwrap_or("Discarded") {
        st @ ("Discarded" | "Invalid") => Ok(st.to_string()),
        other => Err(ApiError::invalid(format!(
            "status '{other}' is not an archive status: use Discarded or Invalid"
        ))),
    }
}

pub async fn delete_one(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<StatusCode, ApiError> {
    let check_id = id(&raw, "quality check")?;
    s.store.check(check_id, &u.viewer()).await?;
    let archive = q.bool("archive")?.unwrap_or(true);
    let status = archive_status(q.get("status"))?;
    let delete_anomalies = q.bool("delete_anomalies")?.unwrap_or(true);
    s.store
        .delete_check(check_id, archive, &status, delete_anomalies)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/quality-checks` with `[{"id": N, "archive"?, "status"?, "delete_anomalies"?}, ...]`.
pub async fn delete_many(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let items = match body.0 {
        Some(Value::Array(a)) => a,
        _ => {
            return Err(ApiError::invalid(
                "send a list such as [{\"id\": 19, \"archive\": false}]",
            ));
        }
    };
    let mut plan = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(check_id) = item["id"].as_i64() else {
            return Err(ApiError::fields(vec![FieldError::new(
                format!("[{i}].id"),
                "is required",
            )]));
        };
        s.store.check(check_id, &u.viewer()).await?;
        let archive = item["archive"].as_bool().unwrap_or(true);
        let status = archive_status(item["status"].as_str())?;
        let del = item["delete_anomalies"].as_bool().unwrap_or(true);
        plan.push((check_id, archive, status, del));
    }
    for (check_id, archive, status, del) in plan {
        s.store
            .delete_check(check_id, archive, &status, del)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn metrics(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let k = s
        .store
        .check(id(&raw, "quality check")?, &u.viewer())
        .await?;
    let (items, total) = s.store.check_metrics(k.id, page, size).await?;
    Ok(Json(views::page(items, total, page, size)))
}
