//! The UI's session: an `HttpOnly; SameSite=Strict` cookie holding the JWT the API issues at login, checked by
//! the same code as bearer tokens (`auth::verify_token`), and the same-origin check on every POST.

use crate::AppState;
use crate::auth::{self, AuthUser};
use assay_store::users::User;
use axum::extract::{FromRequestParts, Request};
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

pub const COOKIE_NAME: &str = "assay_session";
/// A web session lasts a day.
pub const SESSION_DAYS: i64 = 1;

/// The signed-in user of a page request and the id of the session's token.
pub struct Session {
    pub user: User,
    pub token_id: i64,
}

impl Session {
    /// The user as the API handlers take it.
    pub fn auth(&self) -> AuthUser {
        AuthUser(self.user.clone())
    }
    pub fn viewer(&self) -> assay_store::Viewer {
        self.auth().viewer()
    }
}

/// The session cookie's value, if the request has one.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session (or, with `None`, one that ends it).
pub fn set_cookie(token: Option<&str>) -> HeaderValue {
    let v = match token {
        Some(t) => format!(
            "{COOKIE_NAME}={t}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_DAYS * 86_400
        ),
        None => format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Where an unauthenticated request goes: the login page (htmx requests are told to navigate there).
fn to_login(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let target = format!("/login?next={}", super::page::encode(&next));
    if parts.headers.contains_key("hx-request") {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert("HX-Redirect", v);
        }
        return r;
    }
    Redirect::to(&target).into_response()
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers) else {
            return Err(to_login(parts));
        };
        match auth::verify_token(state, &token).await {
            Ok((user, token_id)) => Ok(Session { user, token_id }),
            Err(e) if e.status == StatusCode::UNAUTHORIZED => Err(to_login(parts)),
            Err(e) => Err(super::page::UiError(e).into_response()),
        }
    }
}

/// Refuses a state-changing request whose `Origin` (or, without one, `Sec-Fetch-Site`) says it came from another
/// site. Browsers send `Origin` on every POST; non-browser clients send neither and have no ambient cookie.
pub async fn same_origin(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let h = req.headers();
        let host = h.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let ok = match h.get(ORIGIN).and_then(|v| v.to_str().ok()) {
            Some(origin) => {
                let bare = origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"));
                bare == Some(host) && !host.is_empty()
            }
            None => !matches!(
                h.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
                Some("cross-site") | Some("same-site")
            ),
        };
        if !ok {
            return super::page::UiError(crate::ApiError::forbidden(
                "this form was sent from another site; reload the page and try again",
            ))
            .into_response();
        }
    }
    next.run(req).await
}
