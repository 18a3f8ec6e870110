//! Status, health, the OpenAPI document and Swagger UI over it.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

/// Public: whether the metadata store answers.
pub async fn status(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"database_connection": "OK", "rabbitmq_connection": "OK"})),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"database_connection": "UNAVAILABLE", "rabbitmq_connection": "OK"})),
        ),
    }
}

/// Public liveness: the process answers HTTP.
pub async fn health() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Public readiness: the metadata store answers, its schema is at this build's newest migration, and this
/// server's runner is claiming work. 200 when all hold, else 503; the body names each check.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (store, migrations) = match state.store.migrations_applied().await {
        Ok(applied) => (true, applied),
        Err(_) => (false, false),
    };
    let runner = state
        .ops
        .runner_claiming
        .load(std::sync::atomic::Ordering::SeqCst);
    let ready = store && migrations && runner;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "checks": {"metadata_store": store, "migrations": migrations, "runner": runner},
        })),
    )
}

pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

/// Public: Swagger UI on `/api/openapi.json`. Its script and stylesheet are compiled into the binary and served
/// from `/static/`, so the page works offline; its policy allows nothing from elsewhere.
pub async fn docs() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                 frame-ancestors 'none'",
            ),
        ],
        DOCS_PAGE,
    )
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Assay API</title>
<link rel="stylesheet" href="/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"#;
