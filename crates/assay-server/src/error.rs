//! API errors: JSON `{"detail": ...}` with the right status code. User input never produces a 500; a 500's
//! cause is logged under a request id and only the id is returned.

use assay_core::{CoreError, FieldError};
use assay_postgres::PgError;
use assay_store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
    /// 422 listing every field error.
    pub fn fields(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            // the cause stays in the log, where the id finds it; the client learns only the id
            let request_id =
                crate::observe::request_id().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            tracing::error!(%request_id, detail = %self.detail, "request failed");
            format!(
                "internal error (request id {request_id}); the server's log has the cause under that id"
            )
        } else {
            if self.status.is_server_error() {
                tracing::error!(status = %self.status, detail = %self.detail, "request failed");
            }
            self.detail
        };
        let mut body = json!({ "detail": detail });
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Invalid(m) => ApiError::invalid(m),
            StoreError::Db(e) if e.code().is_some_and(|c| c.code().starts_with("22")) => {
                let why = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string());
                ApiError::invalid(format!(
                    "a value of the request cannot be stored: {why}; send a smaller or plainer value"
                ))
            }
            StoreError::Pool(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "metadata store unavailable: {m}; check that its PostgreSQL is running and retry"
                ),
            ),
            e if e.is_unavailable() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "metadata store unavailable: {e}; check that its PostgreSQL is running and retry"
                ),
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(errors) => ApiError::fields(errors),
        }
    }
}

impl From<PgError> for ApiError {
    fn from(e: PgError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

impl From<assay_ops::OpsError> for ApiError {
    fn from(e: assay_ops::OpsError) -> Self {
        use assay_ops::OpsError;
        match e {
            OpsError::Store(e) => e.into(),
            OpsError::Source(m) => ApiError::new(StatusCode::BAD_GATEWAY, m),
            OpsError::Fields(errors) => ApiError::fields(errors),
            OpsError::Invalid(m) => ApiError::invalid(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: ApiError) -> (StatusCode, String) {
        let r = e.into_response();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn an_internal_error_returns_a_request_id_instead_of_its_cause() {
        let (status, body) =
            body_of(ApiError::internal("relation pg_secret_table is broken")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("pg_secret_table"), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let detail = v["detail"].as_str().unwrap();
        let id = detail
            .split("request id ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{detail}");
        // a gateway error names its cause: the client can act on it
        let (status, body) = body_of(ApiError::new(StatusCode::BAD_GATEWAY, "source down")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(body.contains("source down"), "{body}");
    }
}
