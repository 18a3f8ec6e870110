//! `/api/datastores`: create (reusing a connection or with a new one), list, get, update, delete, test with the
//! permission preflight, and link or unlink the enrichment datastore.

use super::connections::parse_spec;
use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::{Fields, JsonBody, Opt};
use crate::error::ApiError;
use crate::params::Params;
use crate::{testing, views};
use assay_core::FieldError;
use assay_core::connection::ConnectionSpec;
use assay_core::datastore::{
    DEFAULT_ROLLUP_THRESHOLD, DEFAULT_SOURCE_RECORD_LIMIT, DatastoreSpec, PUBLIC_TEAM,
    RemediationStrategy, normalize_prefix,
};
use assay_core::operation::{OperationParams, SyncParams};
use assay_store::datastores::{DatastoreFilter, DatastoreRecord};
use assay_store::operations::OperationFilter;
use assay_store::{StoreError, Viewer};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// Connection properties that belong to the connection, not the datastore.
const CONNECTION_KEYS: &[&str] = &[
    "host",
    "port",
    "username",
    "password",
    "parameters",
    "secrets_manager",
];

enum ConnectionChoice {
    Existing(i64),
    New(Box<ConnectionSpec>),
}

struct Parsed {
    spec: DatastoreSpec,
    teams: Option<Vec<String>>,
    trigger_sync: bool,
}

/// Reads the datastore settings of a body over `base` (defaults for a create, the stored ones for an update).
fn parse_settings(map: &Map<String, Value>, base: DatastoreSpec) -> (Parsed, Vec<FieldError>) {
    let mut f = Fields::new(map);
    let mut spec = base;
    if let Opt::Set(v) = f.string("name") {
        spec.name = v;
    }
    if let Opt::Set(v) = f.string("database") {
        spec.database = v;
    }
    if let Opt::Set(v) = f.string("schema") {
        spec.schema = v;
    }
    match f.string("description") {
        Opt::Set(v) => spec.description = Some(v),
        Opt::Null => spec.description = None,
        Opt::Absent => {}
    }
    if let Opt::Set(v) = f.boolean("enrichment_only") {
        spec.enrichment_only = v;
    } else if let Opt::Set(v) = f.boolean("enrich_only") {
        spec.enrichment_only = v;
    }
    match f.string("enrichment_prefix") {
        Opt::Set(v) if v.trim().is_empty() => spec.enrichment_prefix = None,
        Opt::Set(v) => match normalize_prefix(&v) {
            Ok(p) => spec.enrichment_prefix = Some(p),
            Err(e) => f.errors.push(e),
        },
        Opt::Null => {}
        Opt::Absent => {}
    }
    if let Opt::Set(v) = f.int("enrichment_source_record_limit") {
        spec.enrichment_source_record_limit = v;
    }
    if let Opt::Set(v) = f.int("high_count_rollup_threshold") {
        spec.high_count_rollup_threshold = v;
    }
    if let Opt::Set(v) = f.string("enrichment_remediation_strategy") {
        match RemediationStrategy::parse(&v) {
            Some(r) => spec.enrichment_remediation_strategy = r,
            None => f.invalid(
                "enrichment_remediation_strategy",
                format!("'{v}' is not one of none, append, overwrite"),
            ),
        }
    }
    let teams = f.strings("teams").value();
    let trigger_sync = match f.boolean("trigger_sync") {
        Opt::Set(v) => v,
        _ => f.boolean("trigger_catalog").value().unwrap_or(true),
    };
    let mut errors = f.errors;
    if let Err(assay_core::CoreError::Invalid(more)) = spec.validate() {
        errors.extend(
            more.into_iter()
                .filter(|e| !errors.iter().any(|x| x.field == e.field))
                .collect::<Vec<_>>(),
        );
    }
    if assay_postgres::preflight::is_system_schema(&spec.schema) {
        errors.push(FieldError::new(
            "schema",
            format!(
                "\"{}\" is a system schema; choose one that holds your tables",
                spec.schema
            ),
        ));
    }
    (
        Parsed {
            spec,
            teams,
            trigger_sync,
        },
        errors,
    )
}

fn defaults() -> DatastoreSpec {
    DatastoreSpec {
        name: String::new(),
        database: String::new(),
        schema: String::new(),
        enrichment_only: false,
        enrichment_prefix: None,
        enrichment_source_record_limit: DEFAULT_SOURCE_RECORD_LIMIT,
        high_count_rollup_threshold: DEFAULT_ROLLUP_THRESHOLD,
        enrichment_remediation_strategy: RemediationStrategy::None,
        description: None,
    }
}

/// Which connection a create body uses; a reused connection's properties cannot be set here.
fn connection_choice(
    map: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<ConnectionChoice> {
    let mut f = Fields::new(map);
    let cid = f.int("connection_id").value();
    let nested = f.object("connection").value();
    errors.extend(f.errors);
    match (cid, nested) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "connection",
                "give either connection_id (reuse) or connection (new), not both",
            ));
            None
        }
        (Some(cid), None) => {
            let set: Vec<&str> = CONNECTION_KEYS
                .iter()
                .copied()
                .filter(|k| map.get(*k).is_some_and(|v| !v.is_null()))
                .collect();
            if !set.is_empty() {
                errors.push(FieldError::new(
                    set[0],
                    format!(
                        "with an existing connection only name, database, schema, teams and trigger_sync can be set \
                         here ({} given); change the connection itself with PUT /api/connections/{cid}",
                        set.join(", ")
                    ),
                ));
                return None;
            }
            Some(ConnectionChoice::Existing(cid))
        }
        (None, Some(obj)) => match parse_spec(obj, None) {
            Ok(spec) => Some(ConnectionChoice::New(Box::new(spec))),
            Err(e) => {
                errors.extend(
                    e.errors
                        .into_iter()
                        .map(|x| FieldError::new(format!("connection.{}", x.field), x.message)),
                );
                None
            }
        },
        (None, None) => {
            errors.push(FieldError::new(
                "connection_id",
                "is required: give connection_id to reuse a connection, or a connection object to create one",
            ));
            None
        }
    }
}

/// Team ids for names (null → Public); a member may only use their own teams and Public.
async fn team_ids(
    s: &AppState,
    u: &AuthUser,
    names: Option<Vec<String>>,
) -> Result<Vec<i64>, ApiError> {
    let names = match names {
        Some(n) if !n.is_empty() => n,
        _ => vec![PUBLIC_TEAM.to_string()],
    };
    if !u.0.is_admin() {
        for n in &names {
            if n != PUBLIC_TEAM && !u.0.teams.iter().any(|t| &t.name == n) {
                return Err(ApiError::fields(vec![FieldError::new(
                    "teams",
                    format!("you are not a member of team '{n}'; use your teams or Public"),
                )]));
            }
        }
    }
    s.store.team_ids(&names).await.map_err(|e| match e {
        StoreError::Invalid(m) => ApiError::fields(vec![FieldError::new("teams", m)]),
        other => other.into(),
    })
}

/// The datastore of a path id, if the user may see it.
async fn load(s: &AppState, u: &AuthUser, raw: &str) -> Result<DatastoreRecord, ApiError> {
    Ok(s.store
        .datastore(id(raw, "datastore")?, &u.viewer())
        .await?)
}

async fn render(s: &AppState, rec: &DatastoreRecord) -> Result<Value, ApiError> {
    let filter = OperationFilter {
        datastores: vec![rec.id],
        ..Default::default()
    };
    let (ops, _) = s
        .store
        .list_operations(&Viewer::admin(0), &filter, 1, 1)
        .await?;
    let scheduled = !s.store.scheduled_datastores(&[rec.id]).await?.is_empty();
    let mut v = views::datastore(rec, ops.first(), scheduled);
    let defaults = s.store.observability_defaults(rec.id).await?;
    if let (Value::Object(m), Value::Object(d)) =
        (&mut v, super::observability::defaults_json(&defaults))
    {
        m.extend(d);
    }
    Ok(v)
}

pub async fn list(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let filter = DatastoreFilter {
        name: q.get("name").or(q.get("search")).map(str::to_string),
        enrichment_only: q.bool("enrichment_only")?,
        types: q.all("datastore_type"),
        tags: q.all("tag"),
    };
    let (items, total) = s
        .store
        .list_datastores(&u.viewer(), &filter, page, size)
        .await?;
    // the newest operation of every datastore of the page in one query
    let ids: Vec<i64> = items.iter().map(|d| d.id).collect();
    let latest = s.store.latest_operations(&ids).await?;
    let scheduled = s.store.scheduled_datastores(&ids).await?;
    let out = items
        .iter()
        .map(|rec| views::datastore(rec, latest.get(&rec.id), scheduled.contains(&rec.id)))
        .collect();
    Ok(Json(views::page(out, total, page, size)))
}

/// `tags` (or `global_tags`) as names: strings or `{name}` objects.
fn tags_of(map: &serde_json::Map<String, Value>) -> Option<Vec<String>> {
    let v = map.get("tags").or(map.get("global_tags"))?.as_array()?;
    Some(
        v.iter()
            .filter_map(|t| t.as_str().or(t["name"].as_str()).map(str::to_string))
            .collect(),
    )
}

pub async fn create(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let map = body.object()?;
    let (parsed, mut errors) = parse_settings(&map, defaults());
    let choice = connection_choice(&map, &mut errors);
    if parsed.spec.name.trim().is_empty() && !errors.iter().any(|e| e.field == "name") {
        errors.push(FieldError::new("name", "is required"));
    }
    let (Some(choice), true) = (choice, errors.is_empty()) else {
        return Err(ApiError::fields(errors));
    };
    let teams = team_ids(&s, &u, parsed.teams.clone()).await?;
    let (connection_id, created_connection) = match choice {
        ConnectionChoice::Existing(cid) => {
            s.store
                .connection_for(cid, &u.viewer())
                .await
                .map_err(|_| {
                    ApiError::fields(vec![FieldError::new(
                        "connection_id",
                        format!("connection {cid} does not exist"),
                    )])
                })?;
            (cid, None)
        }
        ConnectionChoice::New(spec) => {
            let rec = s.store.create_connection(&spec).await?;
            (rec.id, Some(rec.id))
        }
    };
    let rec = match s
        .store
        .create_datastore(&parsed.spec, connection_id, &teams)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            // nothing half-made: a connection created for this datastore goes with it
            if let Some(cid) = created_connection {
                let _ = s.store.delete_connection(cid).await;
            }
            return Err(e.into());
        }
    };
    let rec = match tags_of(&map) {
        Some(tags) => {
            s.store.set_datastore_tags(rec.id, &tags).await?;
            s.store.datastore(rec.id, &u.viewer()).await?
        }
        None => rec,
    };
    tracing::info!(datastore_id = rec.id, name = %rec.spec.name, "DatastoreCreated");
    if parsed.trigger_sync {
        let params = OperationParams::Sync(SyncParams::default());
        s.ops
            .enqueue(rec.id, &params, &u.label(), Some(u.0.id))
            .await?;
    }
    Ok(Json(render(&s, &rec).await?))
}

pub async fn get_one(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rec = load(&s, &u, &raw).await?;
    Ok(Json(render(&s, &rec).await?))
}

pub async fn update(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let did = id(&raw, "datastore")?;
    let current = s.store.datastore(did, &u.viewer()).await?;
    let map = body.object()?;
    let was_enrichment = current.spec.enrichment_only;
    let (parsed, mut errors) = parse_settings(&map, current.spec.clone());
    if parsed.spec.enrichment_only != was_enrichment {
        errors.push(FieldError::new(
            "enrichment_only",
            "cannot change after creation; create another datastore for the other role",
        ));
    }
    let mut f = Fields::new(&map);
    let connection_id = f
        .int("connection_id")
        .value()
        .unwrap_or(current.connection_id);
    let defaults = super::observability::flags_of(&mut f, "default_");
    errors.extend(f.errors);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    if connection_id != current.connection_id {
        s.store
            .connection_for(connection_id, &u.viewer())
            .await
            .map_err(|_| {
                ApiError::fields(vec![FieldError::new(
                    "connection_id",
                    format!("connection {connection_id} does not exist"),
                )])
            })?;
    }
    let teams = match parsed.teams.clone() {
        Some(names) => team_ids(&s, &u, Some(names)).await?,
        None => current.teams.iter().map(|t| t.id).collect(),
    };
    let rec = s
        .store
        .update_datastore(did, &parsed.spec, connection_id, &teams)
        .await?;
    s.store.set_observability_defaults(did, defaults).await?;
    let rec = match tags_of(&map) {
        Some(tags) => {
            s.store.set_datastore_tags(did, &tags).await?;
            s.store.datastore(did, &u.viewer()).await?
        }
        None => rec,
    };
    Ok(Json(render(&s, &rec).await?))
}

pub async fn delete(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let rec = load(&s, &u, &raw).await?;
    if !rec.linked_datastores.is_empty() {
        let names: Vec<String> = rec
            .linked_datastores
            .iter()
            .map(|d| format!("'{}' (id {})", d.name, d.id))
            .collect();
        return Err(ApiError::conflict(format!(
            "enrichment datastore '{}' is linked to {}; unlink them first",
            rec.spec.name,
            names.join(", ")
        )));
    }
    s.store.delete_datastore(rec.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tests a saved datastore: connect and preflight the privileges its role needs.
pub async fn test(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rec = load(&s, &u, &raw).await?;
    let conn = s.store.connection(rec.connection_id).await?;
    let outcome = testing::datastore(
        &s.resolver,
        &conn.spec,
        &rec.spec.database,
        &rec.spec.schema,
        rec.spec.enrichment_only,
    )
    .await;
    Ok(Json(outcome.json()))
}

/// Tests a datastore before it is saved, from a create body.
pub async fn test_unsaved(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut map = body.object()?;
    map.entry("name")
        .or_insert_with(|| Value::String("unsaved datastore".into()));
    if let Some(Value::Object(c)) = map.get_mut("connection") {
        c.entry("name")
            .or_insert_with(|| Value::String("unsaved connection".into()));
    }
    let (parsed, mut errors) = parse_settings(&map, defaults());
    let choice = connection_choice(&map, &mut errors);
    let (Some(choice), true) = (choice, errors.is_empty()) else {
        return Err(ApiError::fields(errors));
    };
    let spec = match choice {
        ConnectionChoice::Existing(cid) => s.store.connection_for(cid, &u.viewer()).await?.0.spec,
        ConnectionChoice::New(spec) => *spec,
    };
    let outcome = testing::datastore(
        &s.resolver,
        &spec,
        &parsed.spec.database,
        &parsed.spec.schema,
        parsed.spec.enrichment_only,
    )
    .await;
    Ok(Json(outcome.json()))
}

/// The user schemas of the datastore's database (system and temporary schemas left out).
pub async fn schemas(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rec = load(&s, &u, &raw).await?;
    let conn = s.store.connection(rec.connection_id).await?;
    let params = assay_postgres::Endpoint {
        connection: &conn.spec,
        database: &rec.spec.database,
    }
    .resolve(&s.resolver)
    .await?;
    let client = params.connect().await?;
    let names = assay_postgres::catalog::list_schemas(&client, &params).await?;
    Ok(Json(json!(names)))
}

/// Links an enrichment datastore. The prefix comes from the body or query (`enrichment_prefix` or `prefix`),
/// else the source's stored prefix, else one made from the source's name.
pub async fn link(
    State(s): State<AppState>,
    u: AuthUser,
    Path((raw, raw_e)): Path<(String, String)>,
    q: Params,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let did = id(&raw, "datastore")?;
    let eid = id(&raw_e, "enrichment datastore")?;
    let viewer = u.viewer();
    let source = s.store.datastore(did, &viewer).await?;
    let target = s.store.datastore(eid, &viewer).await?;
    if did == eid {
        return Err(ApiError::conflict(
            "a datastore cannot be its own enrichment datastore",
        ));
    }
    if !target.spec.enrichment_only {
        return Err(ApiError::conflict(format!(
            "datastore '{}' (id {eid}) is not an enrichment datastore; create one with enrichment_only: true",
            target.spec.name
        )));
    }
    if source.spec.enrichment_only {
        return Err(ApiError::conflict(format!(
            "datastore '{}' (id {did}) is an enrichment datastore; link enrichment to a source datastore",
            source.spec.name
        )));
    }
    let map = body.object()?;
    let given = map
        .get("enrichment_prefix")
        .or_else(|| map.get("prefix"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            q.get("enrichment_prefix")
                .or(q.get("prefix"))
                .map(str::to_string)
        });
    let prefix = match given {
        Some(p) => normalize_prefix(&p).map_err(|e| ApiError::fields(vec![e]))?,
        None => match &source.spec.enrichment_prefix {
            Some(p) => p.clone(),
            None => {
                normalize_prefix(&source.spec.name).unwrap_or_else(|_| format!("_datastore_{did}"))
            }
        },
    };
    s.store.link_enrichment(did, eid, &prefix).await?;
    let rec = s.store.datastore(did, &viewer).await?;
    Ok(Json(render(&s, &rec).await?))
}

/// Unlinks the enrichment datastore; its tables are kept. A no-op when nothing is linked.
pub async fn unlink(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let rec = load(&s, &u, &raw).await?;
    s.store.unlink_enrichment(rec.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The enrichment datastore, a session on it, and the prefix asked for (`?prefix=`, or the prefix of the one
/// source linked to it).
async fn enrichment_session(
    s: &AppState,
    u: &AuthUser,
    raw: &str,
    q: &Params,
) -> Result<(DatastoreRecord, tokio_postgres::Client, String, String), ApiError> {
    let eds = s
        .store
        .datastore(id(raw, "datastore")?, &u.viewer())
        .await?;
    if !eds.spec.enrichment_only {
        return Err(ApiError::conflict(format!(
            "datastore '{}' is not an enrichment datastore",
            eds.spec.name
        )));
    }
    let prefix = match q.get("prefix") {
        Some(p) => {
            assay_core::datastore::normalize_prefix(p).map_err(|e| ApiError::fields(vec![e]))?
        }
        None => {
            let [only] = eds.linked_datastores.as_slice() else {
                return Err(ApiError::invalid(
                    "query parameter prefix is required (the enrichment prefix, e.g. _shop)",
                ));
            };
            let src = s.store.datastore(only.id, &u.viewer()).await?;
            match src.spec.enrichment_prefix {
                Some(p) => p,
                None => assay_core::datastore::normalize_prefix(&src.spec.name)
                    .map_err(|e| ApiError::fields(vec![e]))?,
            }
        }
    };
    let (client, params) = assay_ops::source::open(&s.ops, &eds).await?;
    Ok((eds, client, prefix, params.user))
}

/// `GET /api/datastores/{id}/enrichment-tables[?prefix=]`: the tables Assay created for a prefix.
pub async fn enrichment_tables(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (eds, client, prefix, _) = enrichment_session(&s, &u, &raw, &q).await?;
    let tables = assay_enrichment::layout::registered(&client, &eds.spec.schema, &prefix)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok(Json(json!({
        "prefix": prefix,
        "schema": eds.spec.schema,
        "tables": tables.iter().map(|(n, k, v)| json!({"name": n, "kind": k, "schema_version": v})).collect::<Vec<_>>(),
    })))
}

/// `DELETE /api/datastores/{id}/enrichment-tables[?prefix=]`: drops exactly the tables Assay created for the
/// prefix (listed in its registry), nothing else.
pub async fn drop_enrichment_tables(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (eds, mut client, prefix, role) = enrichment_session(&s, &u, &raw, &q).await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    let dropped = assay_enrichment::layout::drop_all(&tx, &eds.spec.schema, &prefix, &role)
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.to_string()))?;
    tx.commit()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    tracing::info!(datastore_id = eds.id, prefix = %prefix, tables = dropped.len(), "EnrichmentTablesDropped");
    Ok(Json(json!({"prefix": prefix, "dropped": dropped})))
}
