//! `/api/connections`: create, list, get, update, delete (refused while datastores use it) and test.

use super::id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::body::{Fields, JsonBody, Opt};
use crate::error::ApiError;
use crate::params::Params;
use crate::{testing, views};
use assay_core::FieldError;
use assay_core::connection::{
    ConnectionSpec, DEFAULT_DATA_JSONPATH, DEFAULT_TOKEN_HEADER, DEFAULT_TOKEN_JSONPATH, Port,
    SecretsManager,
};
use assay_store::connections::ConnectionRecord;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// Builds a connection from a body; with `existing`, absent fields keep their stored values (an absent or null
/// password stays as it was; an empty one clears it).
pub fn parse_spec(
    map: &Map<String, Value>,
    existing: Option<&ConnectionSpec>,
) -> Result<ConnectionSpec, ApiError> {
    let mut f = Fields::new(map);
    let text = |f: &mut Fields, key: &str, old: Option<&String>| match f.string(key) {
        Opt::Set(v) => v,
        _ => old.cloned().unwrap_or_default(),
    };
    let name = text(&mut f, "name", existing.map(|e| &e.name));
    let connector = text(&mut f, "type", existing.map(|e| &e.connector)).to_lowercase();
    let host = text(&mut f, "host", existing.map(|e| &e.host));
    let username = text(&mut f, "username", existing.map(|e| &e.username));
    let port = match map.get("port") {
        None | Some(Value::Null) => existing
            .map(|e| e.port.clone())
            .unwrap_or(Port::Number(5432)),
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(p) => Port::Number(p),
            None => {
                f.invalid("port", "must be between 1 and 65535");
                Port::Number(5432)
            }
        },
        Some(Value::String(s)) => match s.trim().parse::<u16>() {
            Ok(p) => Port::Number(p),
            Err(_) => Port::Reference(s.clone()),
        },
        Some(_) => {
            f.invalid("port", "must be a number or a ${key} reference");
            Port::Number(5432)
        }
    };
    let password = match f.string("password") {
        Opt::Set(p) if p.is_empty() => None,
        Opt::Set(p) => Some(p),
        _ => existing.and_then(|e| e.password.clone()),
    };
    let parameters = match f.object("parameters") {
        Opt::Set(m) => m.clone(),
        Opt::Null => Map::new(),
        Opt::Absent => existing.map(|e| e.parameters.clone()).unwrap_or_default(),
    };
    let int_field = |f: &mut Fields, key: &str, old: Option<i32>| match f.int(key) {
        Opt::Set(v) => match i32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                f.invalid(key, "is out of range");
                None
            }
        },
        Opt::Null => None,
        Opt::Absent => old,
    };
    let max_parallelization = int_field(
        &mut f,
        "max_parallelization",
        existing.and_then(|e| e.max_parallelization),
    );
    let jdbc_fetch_size = int_field(
        &mut f,
        "jdbc_fetch_size",
        existing.and_then(|e| e.jdbc_fetch_size),
    );
    let old_sm = existing.and_then(|e| e.secrets_manager.as_ref());
    let secrets_manager = match f.object("secrets_manager") {
        Opt::Absent => old_sm.cloned(),
        Opt::Null => None,
        Opt::Set(m) => Some(parse_secrets_manager(m, old_sm, &mut f.errors)),
    };
    let mut errors = f.errors;
    if existing.is_none() {
        for (key, present) in [("type", !connector.is_empty()), ("name", !name.is_empty())] {
            if !present {
                errors.push(FieldError::new(key, "is required"));
            }
        }
    }
    let spec = ConnectionSpec {
        name,
        connector,
        host,
        port,
        username,
        password,
        parameters,
        max_parallelization,
        jdbc_fetch_size,
        secrets_manager,
    };
    if let Err(assay_core::CoreError::Invalid(more)) = spec.validate() {
        for e in more {
            if !errors.iter().any(|x| x.field == e.field) {
                errors.push(e);
            }
        }
    }
    if let Some(sm) = &spec.secrets_manager {
        errors.extend(assay_secrets::validate(sm));
    }
    if errors.is_empty() {
        Ok(spec)
    } else {
        Err(ApiError::fields(errors))
    }
}

fn parse_secrets_manager(
    m: &Map<String, Value>,
    old: Option<&SecretsManager>,
    errors: &mut Vec<FieldError>,
) -> SecretsManager {
    let mut f = Fields::nested(m, "secrets_manager");
    let mut text = |key: &str, default: Option<&str>| match f.string(key) {
        Opt::Set(v) if !v.trim().is_empty() => Some(v),
        _ => default.map(str::to_string),
    };
    let login_url = text("login_url", None);
    let token_jsonpath = text("token_jsonpath", Some(DEFAULT_TOKEN_JSONPATH)).unwrap_or_default();
    let secret_url = text("secret_url", None).unwrap_or_default();
    let token_header_name =
        text("token_header_name", Some(DEFAULT_TOKEN_HEADER)).unwrap_or_default();
    let data_jsonpath = text("data_jsonpath", Some(DEFAULT_DATA_JSONPATH)).unwrap_or_default();
    // the payload is write-only: when an update omits it, the stored one stays
    let credentials_payload = match m.get("credentials_payload") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(v @ Value::Object(_)) => Some(v.to_string()),
        Some(Value::Null) | None => old.and_then(|o| o.credentials_payload.clone()),
        Some(Value::String(_)) => None,
        Some(_) => {
            f.invalid(
                "credentials_payload",
                "must be a JSON object or a string holding one",
            );
            None
        }
    };
    errors.extend(f.errors);
    SecretsManager {
        login_url,
        credentials_payload,
        token_jsonpath,
        secret_url,
        token_header_name,
        data_jsonpath,
    }
}

pub async fn list(
    State(s): State<AppState>,
    u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let types: Vec<String> = q.all("type").iter().map(|t| t.to_lowercase()).collect();
    let (items, total) = s
        .store
        .list_connections_for(&u.viewer(), q.get("name"), &types, page, size)
        .await?;
    Ok(Json(views::page(
        items.iter().map(views::connection).collect(),
        total,
        page,
        size,
    )))
}

pub async fn create(
    State(s): State<AppState>,
    _u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let spec = parse_spec(&body.object()?, None)?;
    let rec = s.store.create_connection(&spec).await?;
    tracing::info!(connection_id = rec.id, name = %rec.spec.name, "ConnectionCreated");
    Ok(Json(views::connection(&rec)))
}

pub async fn get_one(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (rec, _) = s
        .store
        .connection_for(id(&raw, "connection")?, &u.viewer())
        .await?;
    Ok(Json(views::connection(&rec)))
}

pub async fn update(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let cid = id(&raw, "connection")?;
    let current = changeable(&s, &u, cid, "change").await?;
    let map = body.object()?;
    let spec = parse_spec(&map, Some(&current.spec))?;
    secrets_stay_home(&map, &current.spec, &spec)?;
    let rec = s.store.update_connection(cid, &spec).await?;
    Ok(Json(views::connection(&rec)))
}

pub async fn delete(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let cid = id(&raw, "connection")?;
    changeable(&s, &u, cid, "delete").await?;
    s.store.delete_connection(cid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stored secrets go only where they were saved for: moving a connection to another host or port needs its
/// password again (a literal one, or the secrets manager's credentials payload again), and pointing the secrets
/// manager at another login or secret URL needs the credentials payload again. Otherwise an edit or a test with
/// overrides could send them to a server of the editor's choosing.
fn secrets_stay_home(
    map: &Map<String, Value>,
    old: &ConnectionSpec,
    new: &ConnectionSpec,
) -> Result<(), ApiError> {
    let payload_given = map
        .get("secrets_manager")
        .and_then(|sm| sm.get("credentials_payload"))
        .is_some_and(|p| !p.is_null());
    let literal_password = map
        .get("password")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.contains("${"));
    let mut errors = Vec::new();
    let moved = new.host != old.host || new.port.as_text() != old.port.as_text();
    if moved && old.password.is_some() && !literal_password && !payload_given {
        errors.push(FieldError::new(
            "password",
            "give the password again when changing the host or port: the stored one (or the secret it refers \
             to) is only sent to the host and port it was saved for",
        ));
    }
    if let (Some(o), Some(n)) = (&old.secrets_manager, &new.secrets_manager)
        && (o.login_url != n.login_url || o.secret_url != n.secret_url)
        && o.credentials_payload.is_some()
        && !payload_given
    {
        errors.push(FieldError::new(
            "secrets_manager.credentials_payload",
            "give the credentials payload again when changing the login or secret URL: the stored one is only \
             sent to the URLs it was saved for",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::fields(errors))
    }
}

/// The connection, if `u` may change it: a connection other teams' datastores also use is an admin's to
/// change (its password would otherwise be the other teams' to redirect), and one only they use is not found.
async fn changeable(
    s: &AppState,
    u: &AuthUser,
    cid: i64,
    action: &str,
) -> Result<ConnectionRecord, ApiError> {
    let (rec, whole) = s.store.connection_for(cid, &u.viewer()).await?;
    if !whole {
        return Err(ApiError::forbidden(format!(
            "connection '{}' is also used by datastores of teams you are not in; ask an admin to {action} it",
            rec.spec.name
        )));
    }
    Ok(rec)
}

/// The database a bare connection is tested against: the body's `database`, `parameters.database`, the first
/// datastore's database, else `postgres`.
fn test_database(
    map: &Map<String, Value>,
    spec: &ConnectionSpec,
    first_datastore_db: Option<String>,
) -> String {
    map.get("database")
        .and_then(Value::as_str)
        .or_else(|| spec.parameters.get("database").and_then(Value::as_str))
        .map(str::to_string)
        .or(first_datastore_db)
        .unwrap_or_else(|| "postgres".to_string())
}

/// Tests a saved connection; a body overrides fields for this test only (nothing is saved).
pub async fn test(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let cid = id(&raw, "connection")?;
    let map = body.object()?;
    // overrides could send the stored password or credentials payload elsewhere (another host, login URL)
    let current = if map.keys().any(|k| k != "database") {
        changeable(&s, &u, cid, "test with overrides").await?
    } else {
        s.store.connection_for(cid, &u.viewer()).await?.0
    };
    let spec = parse_spec(&map, Some(&current.spec))?;
    secrets_stay_home(&map, &current.spec, &spec)?;
    let first_db = match current.datastores.first() {
        Some(d) => s
            .store
            .datastore(d.id, &u.viewer())
            .await
            .ok()
            .map(|d| d.spec.database),
        None => None,
    };
    let database = test_database(&map, &spec, first_db);
    let outcome = testing::connection(&s.resolver, &spec, &database).await;
    Ok(Json(outcome.json()))
}

/// Tests a connection before it is saved.
pub async fn test_unsaved(
    State(s): State<AppState>,
    _u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut map = body.object()?;
    map.entry("name")
        .or_insert_with(|| Value::String("unsaved connection".into()));
    let spec = parse_spec(&map, None)?;
    let database = test_database(&map, &spec, None);
    Ok(Json(
        testing::connection(&s.resolver, &spec, &database)
            .await
            .json(),
    ))
}
