//! Status, health and the OpenAPI document.

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

pub async fn health() -> StatusCode {
    StatusCode::NO_CONTENT
}

pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
