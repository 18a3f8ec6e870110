//! Users, teams, API tokens and password login.

use super::id;
use crate::AppState;
use crate::auth::{self, AuthUser};
use crate::body::{Fields, JsonBody};
use crate::error::ApiError;
use crate::params::Params;
use crate::views;
use assay_core::FieldError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

/// `POST /api/auth/login {username, password}` → a new token.
pub async fn login(State(s): State<AppState>, body: JsonBody) -> Result<Json<Value>, ApiError> {
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let username = f.string("username").value().unwrap_or_default();
    let password = f.string("password").value().unwrap_or_default();
    let (user, tid, token, expires) =
        auth::password_login(&s, &username, &password, "login", auth::DEFAULT_TOKEN_DAYS).await?;
    Ok(Json(
        json!({"token": token, "token_id": tid, "expires_at": expires, "user": views::user(&user)}),
    ))
}

pub async fn list_users(
    State(s): State<AppState>,
    _u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let (items, total) = s.store.list_users(page, size).await?;
    Ok(Json(views::page(
        items.iter().map(views::user).collect(),
        total,
        page,
        size,
    )))
}

pub async fn me(u: AuthUser) -> Json<Value> {
    Json(views::user(&u.0))
}

pub async fn get_user(
    State(s): State<AppState>,
    _u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(views::user(&s.store.user(id(&raw, "user")?).await?)))
}

/// Admin: `{username, name?, email?, password?, role: Admin|Member, teams?: [names]}`.
pub async fn create_user(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    u.require_admin()?;
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let username = f
        .string("username")
        .value()
        .or_else(|| f.string("email").value())
        .unwrap_or_default();
    let name = f.string("name").value().unwrap_or_else(|| username.clone());
    let email = f.string("email").value();
    let password = f.string("password").value();
    let role = f
        .string("role")
        .value()
        .unwrap_or_else(|| "Member".to_string());
    let teams = f.strings("teams").value().unwrap_or_default();
    let mut errors = f.errors;
    if username.trim().is_empty() {
        errors.push(FieldError::new("username", "is required"));
    }
    let role = match role.to_ascii_lowercase().as_str() {
        "admin" => "Admin",
        "member" => "Member",
        _ => {
            errors.push(FieldError::new(
                "role",
                format!("'{role}' is not Admin or Member"),
            ));
            "Member"
        }
    };
    if password.as_ref().is_some_and(|p| p.len() < 8) {
        errors.push(FieldError::new(
            "password",
            "must have at least 8 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let team_ids = s.store.team_ids(&teams).await?;
    let hash = password.as_deref().map(auth::hash_password).transpose()?;
    let user = s
        .store
        .create_user(&username, &name, email.as_deref(), hash.as_deref(), role)
        .await?;
    for t in team_ids {
        s.store.add_member(t, user.id).await?;
    }
    Ok(Json(views::user(&s.store.user(user.id).await?)))
}

pub async fn list_teams(
    State(s): State<AppState>,
    _u: AuthUser,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = q.page()?;
    let (items, total) = s.store.list_teams(page, size).await?;
    Ok(Json(views::page(
        items.iter().map(views::team).collect(),
        total,
        page,
        size,
    )))
}

pub async fn get_team(
    State(s): State<AppState>,
    _u: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(views::team(&s.store.team(id(&raw, "team")?).await?)))
}

pub async fn create_team(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    u.require_admin()?;
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let name = f.string("name").value().unwrap_or_default();
    let description = f.string("description").value();
    let mut errors = f.errors;
    if name.trim().is_empty() {
        errors.push(FieldError::new("name", "is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    Ok(Json(views::team(
        &s.store
            .create_team(name.trim(), description.as_deref())
            .await?,
    )))
}

/// Admin: `{user_id}` or `{username}`.
pub async fn add_member(
    State(s): State<AppState>,
    u: AuthUser,
    Path(raw): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    u.require_admin()?;
    let team_id = id(&raw, "team")?;
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let user_id = match (f.int("user_id").value(), f.string("username").value()) {
        (Some(uid), _) => uid,
        (None, Some(name)) => {
            s.store
                .user_by_username(&name)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("user '{name}' not found")))?
                .0
                .id
        }
        (None, None) => {
            return Err(ApiError::fields(vec![FieldError::new(
                "user_id",
                "is required (or username)",
            )]));
        }
    };
    Ok(Json(views::team(
        &s.store.add_member(team_id, user_id).await?,
    )))
}

/// `{name?, user_id?, days?}`: a token for yourself, or (admin) for another user. `days: 0` means no expiry.
pub async fn create_token(
    State(s): State<AppState>,
    u: AuthUser,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let map = body.object()?;
    let mut f = Fields::new(&map);
    let name = f
        .string("name")
        .value()
        .unwrap_or_else(|| "api token".to_string());
    let user_id = f.int("user_id").value().unwrap_or(u.0.id);
    let days = f.int("days").value().unwrap_or(auth::DEFAULT_TOKEN_DAYS);
    if !f.errors.is_empty() {
        return Err(ApiError::fields(f.errors));
    }
    if !(0..=auth::MAX_TOKEN_DAYS).contains(&days) {
        return Err(ApiError::fields(vec![FieldError::new(
            "days",
            format!(
                "must be 0 (no expiry) to {} (about a hundred years)",
                auth::MAX_TOKEN_DAYS
            ),
        )]));
    }
    if user_id != u.0.id {
        u.require_admin()?;
    }
    let user = s.store.user(user_id).await?;
    let (tid, token, expires) = auth::issue_token(
        &s,
        user.id,
        &name,
        if days == 0 { None } else { Some(days) },
    )
    .await?;
    Ok(Json(
        json!({"id": tid, "name": name, "token": token, "expires_at": expires, "user": views::user(&user)}),
    ))
}
