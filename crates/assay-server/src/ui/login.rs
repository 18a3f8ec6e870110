//! The login page (the API's username/password check; the session is the JWT the API issues, in a cookie) and
//! sign-out (the session's token is revoked).

use super::form::Pairs;
use super::page::{PageResult, Shell, UiError, html_status};
use super::session::{self, Session};
use crate::{AppState, auth};
use askama::Template;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    shell: Option<Shell>,
    error: Option<String>,
    username: String,
    next: String,
}

/// Only local paths are followed after login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            n.to_string()
        }
        _ => "/datastores".to_string(),
    }
}

pub async fn form(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: crate::params::Params,
) -> PageResult {
    // already signed in: straight on
    if let Some(token) = session::cookie(&headers)
        && auth::verify_token(&s, &token).await.is_ok()
    {
        return Ok(Redirect::to(&safe_next(q.get("next"))).into_response());
    }
    html_status(
        StatusCode::OK,
        &LoginPage {
            shell: None,
            error: None,
            username: String::new(),
            next: safe_next(q.get("next")),
        },
    )
}

pub async fn submit(State(s): State<AppState>, body: String) -> PageResult {
    let f = Pairs::parse(&body);
    let username = f.get("username").trim().to_string();
    let next = safe_next(Some(f.get("next")));
    match auth::password_login(
        &s,
        &username,
        f.get("password"),
        "web session",
        session::SESSION_DAYS,
    )
    .await
    {
        Ok((user, _, token, _)) => {
            tracing::info!(user = %user.username, "WebLogin");
            let mut r = Redirect::to(&next).into_response();
            r.headers_mut()
                .insert(SET_COOKIE, session::set_cookie(Some(&token)));
            Ok(r)
        }
        Err(e)
            if e.status == StatusCode::UNAUTHORIZED
                || e.status == StatusCode::TOO_MANY_REQUESTS =>
        {
            html_status(
                e.status,
                &LoginPage {
                    shell: None,
                    error: Some(if e.status == StatusCode::UNAUTHORIZED {
                        "Unknown user or wrong password.".to_string()
                    } else {
                        e.detail.clone()
                    }),
                    username,
                    next,
                },
            )
        }
        Err(e) => Err(UiError(e)),
    }
}

pub async fn logout(State(s): State<AppState>, session: Session) -> PageResult {
    s.store.revoke_token(session.token_id).await?;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut()
        .insert(SET_COOKIE, session::set_cookie(None));
    Ok(r)
}
