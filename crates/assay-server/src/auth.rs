//! Authentication: API tokens are HS256 JWTs (the Qualytics CLI decodes them client-side) whose `tid` claim
//! names a token row, so tokens can expire or be revoked; passwords are hashed with Argon2id.

use crate::AppState;
use crate::error::ApiError;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use assay_store::users::User;
use assay_store::{Store, Viewer};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const SECRET_SETTING: &str = "jwt_secret";
/// Tokens live one year by default (the Qualytics CLI warns when fewer than 7 days remain).
pub const DEFAULT_TOKEN_DAYS: i64 = 365;
/// The longest a token may last: a hundred years.
pub const MAX_TOKEN_DAYS: i64 = 36_525;

pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    tid: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iss: String,
}

impl Keys {
    /// Loads the signing secret from the store, creating it on first start.
    pub async fn load(store: &Store) -> Result<Keys, ApiError> {
        let fresh: [u8; 48] = rand::random();
        let fresh = base64::engine::general_purpose::STANDARD.encode(fresh);
        let secret = store.init_secret_setting(SECRET_SETTING, &fresh).await?;
        Ok(Keys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        })
    }
}

/// A new API token for `user_id`: a token row plus its JWT.
pub async fn issue_token(
    state: &AppState,
    user_id: i64,
    name: &str,
    days: Option<i64>,
) -> Result<(i64, String, Option<chrono::DateTime<Utc>>), ApiError> {
    let expires = match days {
        None => None,
        Some(d) => Some(
            Duration::try_days(d)
                .and_then(|d| Utc::now().checked_add_signed(d))
                .ok_or_else(|| ApiError::invalid(format!("a token cannot last {d} days")))?,
        ),
    };
    let tid = state.store.create_token(user_id, name, expires).await?;
    let claims = Claims {
        sub: user_id.to_string(),
        tid,
        iat: Utc::now().timestamp(),
        exp: expires.map(|e| e.timestamp()),
        iss: "assay".to_string(),
    };
    let jwt = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &state.keys.encoding,
    )
    .map_err(|e| ApiError::internal(format!("cannot sign token: {e}")))?;
    Ok((tid, jwt, expires))
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("cannot hash password: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser(pub User);

impl AuthUser {
    pub fn viewer(&self) -> Viewer {
        Viewer {
            user_id: self.0.id,
            is_admin: self.0.is_admin(),
        }
    }
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this action needs the Admin role"))
        }
    }
    pub fn label(&self) -> String {
        self.0.username.clone()
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized("missing Authorization: Bearer <token> header")
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be 'Bearer <token>'")
            })?
            .trim();
        Ok(AuthUser(verify_token(state, token).await?.0))
    }
}

/// The user a JWT belongs to and the token row's id, if the token is valid, live (not revoked or expired) and
/// names that user. The API's bearer tokens and the web UI's session cookie both go through here.
pub async fn verify_token(state: &AppState, token: &str) -> Result<(User, i64), ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.set_issuer(&["assay"]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &state.keys.decoding, &validation).map_err(|_| {
            ApiError::unauthorized("the token is not valid or has expired; create a new one")
        })?;
    let user = state
        .store
        .token_user(data.claims.tid)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("the token was revoked or has expired; create a new one")
        })?;
    if user.id.to_string() != data.claims.sub {
        return Err(ApiError::unauthorized("the token is not valid"));
    }
    Ok((user, data.claims.tid))
}

/// Checks a username and password and issues a new token named `token_name` for that user.
pub async fn password_login(
    state: &AppState,
    username: &str,
    password: &str,
    token_name: &str,
    days: i64,
) -> Result<(User, i64, String, Option<chrono::DateTime<Utc>>), ApiError> {
    if let Some(secs) = state.logins.locked(username) {
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many wrong passwords for this user: sign-in is paused for {secs} s; wait, or ask an admin to reset the password"
            ),
        ));
    }
    let bad = || {
        state.logins.failed(username);
        ApiError::unauthorized("unknown user or wrong password")
    };
    let (user, hash) = state
        .store
        .user_by_username(username)
        .await?
        .ok_or_else(bad)?;
    if !hash.is_some_and(|h| verify_password(password, &h)) {
        return Err(bad());
    }
    state.logins.succeeded(username);
    let (tid, token, expires) = issue_token(state, user.id, token_name, Some(days)).await?;
    Ok((user, tid, token, expires))
}

/// On a fresh store: creates the `admin` user and returns its password and first token, to print once.
pub async fn bootstrap_admin(state: &AppState) -> Result<Option<(String, String)>, ApiError> {
    if state.store.count_users().await? > 0 {
        return Ok(None);
    }
    let password: String = {
        let bytes: [u8; 18] = rand::random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let hash = hash_password(&password)?;
    let user = match state
        .store
        .create_user("admin", "Administrator", None, Some(&hash), "Admin")
        .await
    {
        Ok(u) => u,
        // another server created it at the same moment
        Err(assay_store::StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (_, jwt, _) = issue_token(
        state,
        user.id,
        "initial admin token",
        Some(DEFAULT_TOKEN_DAYS),
    )
    .await?;
    Ok(Some((password, jwt)))
}
