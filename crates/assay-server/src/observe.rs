//! Every request's id, span, access-log line and metrics. The id is the client's `X-Request-Id` when it sent a
//! usable one (up to 64 letters, digits, `-` and `_`), else a new UUID; it is answered in `X-Request-Id`, carried
//! by the span every log line of the request sits in, and named by a 500's answer (see `error.rs`) so an operator
//! can find the cause in the log. Metrics label requests by route template, never by path, so ids in paths do
//! not multiply series.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered on this task, if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn usable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The middleware: id, span, log line and metrics around the rest of the stack.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let started = std::time::Instant::now();
    let mut res = REQUEST_ID
        .scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    let took = started.elapsed().as_secs_f64();
    let status = res.status().as_u16();
    state
        .ops
        .metrics
        .http_request(&method, &route, status, took);
    span.in_scope(|| tracing::info!(status, ms = took * 1000.0, "RequestFinished"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_short_plain_ids_are_taken_from_the_client() {
        assert!(super::usable("3f2c-AB_9"));
        assert!(!super::usable(""));
        assert!(!super::usable(&"a".repeat(65)));
        assert!(!super::usable("a b"));
        assert!(!super::usable("a\nb"));
    }
}
