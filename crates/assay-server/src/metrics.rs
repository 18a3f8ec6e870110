//! `GET /metrics`: the process's metrics in the Prometheus text format. On the main listener it answers the
//! configured metrics token (a bearer token for the scraper, compared in constant time) or an admin's API token;
//! a separate metrics listener (`metrics_app`) answers without a token, its bind address being the protection.

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The content type of the text format that [`assay_metrics::Metrics::encode`] writes (OpenMetrics 1.0).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A token scrapers present on the main listener, besides admins' API tokens.
#[derive(Clone, Default)]
pub struct MetricsToken(pub Option<Arc<str>>);

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The main listener's route: the metrics token or an admin.
pub async fn scrape(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let by_token = match (&state.metrics_token.0, presented) {
        (Some(t), Some(p)) => same(t.as_bytes(), p.as_bytes()),
        _ => false,
    };
    if !by_token {
        let (mut parts, _) = req.into_parts();
        AuthUser::from_request_parts(&mut parts, &state)
            .await?
            .require_admin()?;
    }
    Ok(answer(&state).await)
}

/// The separate listener's route.
pub async fn scrape_open(State(state): State<AppState>) -> Response {
    answer(&state).await
}

async fn answer(state: &AppState) -> Response {
    let backlog = match state.store.backlog().await {
        Ok(b) => Some(assay_metrics::Backlog {
            operations_queued: b.operations_queued,
            oldest_queued_age_seconds: b.oldest_queued_age_seconds,
            outbox: b.outbox,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the metadata store did not answer");
            None
        }
    };
    let (pool_in_use, pool_idle) = state.store.pool_use();
    let text = state.ops.metrics.encode(&assay_metrics::Snapshot {
        backlog,
        pool_in_use,
        pool_idle,
        source_sessions: assay_postgres::sessions::open_sessions(),
    });
    ([(CONTENT_TYPE, OPENMETRICS)], text).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_compare_whole() {
        assert!(super::same(b"abc", b"abc"));
        assert!(!super::same(b"abc", b"abd"));
        assert!(!super::same(b"abc", b"abcd"));
        assert!(!super::same(b"", b"a"));
    }
}
