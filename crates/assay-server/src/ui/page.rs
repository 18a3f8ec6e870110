//! What every page shares: the header (signed-in user and teams), rendering a template to HTML, and the error
//! pages (404, 403, 500 ... as HTML; a 401 sends the browser to the login page).

use crate::ApiError;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

/// The header of a signed-in page.
pub struct Shell {
    pub name: String,
    pub username: String,
    pub role: String,
    pub teams: String,
    /// Which top-level section is current: `sources`, `enrichment` or `flows`.
    pub section: &'static str,
}

impl Shell {
    pub fn of(user: &assay_store::users::User, section: &'static str) -> Shell {
        let teams: Vec<&str> = user.teams.iter().map(|t| t.name.as_str()).collect();
        Shell {
            name: user.name.clone(),
            username: user.username.clone(),
            role: user.role.clone(),
            teams: if teams.is_empty() {
                "no team".to_string()
            } else {
                teams.join(", ")
            },
            section,
        }
    }
}

/// A UI handler's error: rendered as an HTML page with the API error's status and message.
#[derive(Debug)]
pub struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError(e)
    }
}

impl From<assay_store::StoreError> for UiError {
    fn from(e: assay_store::StoreError) -> Self {
        UiError(e.into())
    }
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> Self {
        UiError(ApiError::internal(format!("cannot render the page: {e}")))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    shell: Option<Shell>,
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.status == StatusCode::UNAUTHORIZED {
            return Redirect::to("/login").into_response();
        }
        if e.status.is_server_error() {
            tracing::error!(status = %e.status, detail = %e.detail, "page failed");
        }
        let title = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::UNPROCESSABLE_ENTITY => "Invalid request",
            s if s.is_server_error() => "Something went wrong",
            _ => "Request failed",
        };
        // a server error's detail may name internals; show a generic message (the log has the detail)
        let message = if e.status.is_server_error() {
            "The server could not complete this request. The error was logged; try again or ask an administrator."
                .to_string()
        } else {
            e.detail.clone()
        };
        let page = ErrorPage {
            shell: None,
            status: e.status.as_u16(),
            title,
            message: &message,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {title}", e.status.as_u16()));
        (e.status, Html(body)).into_response()
    }
}

pub type PageResult = Result<Response, UiError>;

/// Renders a template as a 200 page.
pub fn html(t: &impl Template) -> PageResult {
    Ok(Html(t.render()?).into_response())
}

/// Renders a template with a status (a form re-shown with errors answers 422).
pub fn html_status(status: StatusCode, t: &impl Template) -> PageResult {
    Ok((status, Html(t.render()?)).into_response())
}

/// The HTML 404 for every path outside `/api` that no page answers.
pub async fn not_found() -> UiError {
    UiError(ApiError::not_found(
        "There is no page at this address. It may have been deleted, or you may not have access to it.",
    ))
}

/// Headers on every UI response: no framing, no sniffing, no referrer outside, and a content security policy that
/// allows only this server's own scripts and styles (htmx and the stylesheet are served from `/static/`).
pub async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::HeaderValue;
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    r
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where a list page is: which page of how many, and the links to its neighbours, which keep the page's other
/// query parameters (its filters). `templates/pager.html` shows it when there is more than one page.
pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// The rows a list page shows.
    pub const SIZE: i64 = 50;

    /// The page asked for in `?page=`: 1 when absent or not a positive number.
    pub fn asked(q: &crate::params::Params) -> i64 {
        Pager::asked_as(q, "page")
    }

    /// The page asked for in `?<key>=`.
    pub fn asked_as(q: &crate::params::Params, key: &str) -> i64 {
        q.get(key)
            .and_then(|p| p.parse::<i64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }

    /// `query` holds the other parameters, encoded (`a=1&b=2`, or empty).
    pub fn new(path: &str, query: &str, page: i64, total: i64) -> Pager {
        Pager::keyed(path, query, "page", page, total)
    }

    /// A pager whose page number travels as `key` (for a second list on one page).
    pub fn keyed(path: &str, query: &str, key: &str, page: i64, total: i64) -> Pager {
        let pages = ((total + Self::SIZE - 1) / Self::SIZE).max(1);
        let link = |p: i64| {
            let sep = if query.is_empty() { "" } else { "&" };
            format!("{path}?{query}{sep}{key}={p}")
        };
        Pager {
            page,
            pages,
            total,
            prev: (page > 1).then(|| link((page - 1).min(pages))),
            next: (page < pages).then(|| link(page + 1)),
        }
    }
}

/// A "see other" redirect after a successful POST.
pub fn see_other(to: &str) -> PageResult {
    Ok(Redirect::to(to).into_response())
}

/// Formats an optional time for tables.
pub fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".to_string())
}

/// A duration between two times, in words.
pub fn duration(
    a: Option<chrono::DateTime<chrono::Utc>>,
    b: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    match (a, b) {
        (Some(a), Some(b)) => {
            let ms = (b - a).num_milliseconds().max(0);
            if ms < 1000 {
                format!("{ms} ms")
            } else if ms < 60_000 {
                format!("{:.1} s", ms as f64 / 1000.0)
            } else {
                format!("{}m {}s", ms / 60_000, (ms % 60_000) / 1000)
            }
        }
        (Some(_), None) => "running".to_string(),
        _ => "—".to_string(),
    }
}

/// A JSON value as short display text (strings without quotes).
pub fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> (StatusCode, String) {
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_server_error_is_an_html_page_without_its_detail() {
        let r =
            UiError(ApiError::internal("connection string postgres://u:pw@h/db")).into_response();
        let (status, html) = body(r).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(html.contains("<h1>Something went wrong</h1>"));
        assert!(!html.contains("pw@h"));
    }

    #[tokio::test]
    async fn a_client_error_shows_its_message_escaped() {
        let r = UiError(ApiError::conflict("datastore '<b>x</b>' is linked")).into_response();
        let (status, html) = body(r).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(html.contains("<h1>Conflict</h1>"));
        assert!(!html.contains("<b>x</b>"), "{html}");
        // the message is there, as text
        assert!(
            html.contains(
                r#"<p class="message">datastore &#39;&#60;b&#62;x&#60;/b&#62;&#39; is linked</p>"#
            ),
            "{html}"
        );
    }

    #[test]
    fn an_expired_session_goes_to_the_login_page() {
        let r = UiError(ApiError::unauthorized("expired")).into_response();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], "/login");
    }
}
