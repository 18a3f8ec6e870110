//! The route table of `/api`, and helpers shared by the handlers.

pub(crate) mod anomalies;
mod catalog;
pub(crate) mod checks;
pub(crate) mod connections;
mod containers;
pub(crate) mod datastores;
pub(crate) mod flows;
pub(crate) mod observability;
pub(crate) mod operations;
mod profiles;
pub(crate) mod schedules;
mod system;
mod table;
mod users;

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::http::StatusCode;
use table::{Routes, delete, get, patch, post, put};

/// The routes of `/api`, with their own JSON fallbacks.
pub fn api() -> Router<AppState> {
    table()
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Every route of `/api`. A test in `table.rs` holds them equal to the OpenAPI table (`openapi::ROUTES`), but
/// for the few it lists as deliberately undocumented.
fn table() -> Routes {
    Routes::new()
        .route("/status", get(system::status))
        .route("/health", get(system::health))
        .route("/health/ready", get(system::ready))
        .route("/openapi.json", get(system::openapi))
        .route("/docs", get(system::docs))
        .route("/auth/login", post(users::login))
        .route(
            "/connections",
            get(connections::list).post(connections::create),
        )
        .route("/connections/test", post(connections::test_unsaved))
        .route(
            "/connections/{id}",
            get(connections::get_one)
                .put(connections::update)
                .delete(connections::delete),
        )
        .route("/connections/{id}/test", post(connections::test))
        .route(
            "/datastores",
            get(datastores::list).post(datastores::create),
        )
        .route("/datastores/connection", post(datastores::test_unsaved))
        .route(
            "/datastores/{id}",
            get(datastores::get_one)
                .put(datastores::update)
                .delete(datastores::delete),
        )
        .route("/datastores/{id}/connection", post(datastores::test))
        .route("/datastores/{id}/schemas", get(datastores::schemas))
        .route("/datastores/{id}/enrichment", delete(datastores::unlink))
        .route("/datastores/{id}/enrichment/{eid}", patch(datastores::link))
        .route(
            "/containers",
            get(catalog::list)
                .post(containers::create)
                .patch(containers::patch_many),
        )
        .route("/containers/validate", post(containers::validate))
        .route("/containers/listing", get(catalog::listing))
        .route(
            "/containers/{id}",
            get(catalog::get_one)
                .put(containers::update)
                .delete(containers::delete),
        )
        .route("/computed-fields", post(containers::create_field))
        .route(
            "/computed-fields/{id}",
            put(containers::update_field).delete(containers::delete_field),
        )
        .route(
            "/global-tags",
            get(containers::list_tags).post(containers::create_tag),
        )
        .route(
            "/global-tags/{name}",
            get(containers::get_tag).delete(containers::delete_tag),
        )
        .route(
            "/quality-check-templates",
            post(containers::create_template),
        )
        .route("/containers/{id}/fields", get(catalog::fields))
        .route(
            "/containers/{id}/field-profiles",
            get(profiles::of_container),
        )
        .route("/containers/{id}/profiles", get(profiles::history))
        .route(
            "/containers/{id}/measurements",
            get(observability::measurements),
        )
        .route("/field-profiles", get(profiles::list))
        .route(
            "/quality-checks",
            get(checks::list)
                .post(checks::create)
                .delete(checks::delete_many),
        )
        .route("/quality-checks/spec", get(checks::spec))
        .route(
            "/quality-checks/{id}",
            get(checks::get_one)
                .put(checks::update)
                .delete(checks::delete_one),
        )
        .route("/quality-checks/{id}/metrics", get(checks::metrics))
        .route(
            "/anomalies",
            get(anomalies::list)
                .patch(anomalies::update_many)
                .delete(anomalies::delete_many),
        )
        .route(
            "/anomalies/{id}",
            get(anomalies::get_one)
                .put(anomalies::update)
                .delete(anomalies::delete_one),
        )
        .route(
            "/anomalies/{id}/source-records",
            get(anomalies::source_records),
        )
        .route("/containers/{id}/scans", get(catalog::scans))
        .route("/export/{asset}", post(operations::export))
        .route(
            "/datastores/{id}/enrichment-tables",
            get(datastores::enrichment_tables).delete(datastores::drop_enrichment_tables),
        )
        .route("/operations", get(operations::list))
        .route("/operations/run", post(operations::run))
        .route("/operations/{id}", get(operations::get_one))
        .route("/operations/abort/{id}", put(operations::abort))
        .route("/flows", get(flows::list).post(flows::create))
        .route(
            "/flows/{id}",
            get(flows::get_one)
                .put(flows::update)
                .delete(flows::delete_one),
        )
        .route("/flows/{id}/activate", post(flows::activate))
        .route("/flows/{id}/deactivate", post(flows::deactivate))
        .route("/flows/{id}/test", post(flows::test))
        .route("/flows/{id}/executions", get(flows::executions))
        .route("/operations/schedule", post(schedules::create))
        .route("/operations/schedules", get(schedules::list))
        .route(
            "/operations/schedules/{id}",
            get(schedules::get_one)
                .put(schedules::update)
                .delete(schedules::delete_one),
        )
        .route("/operations/schedules/{id}/enable", post(schedules::enable))
        .route(
            "/operations/schedules/{id}/disable",
            post(schedules::disable),
        )
        .route(
            "/operations/schedules/{id}/instants",
            get(schedules::instants),
        )
        .route("/users", get(users::list_users).post(users::create_user))
        .route("/users/me", get(users::me))
        .route("/users/{id}", get(users::get_user))
        .route("/teams", get(users::list_teams).post(users::create_team))
        .route("/teams/{id}", get(users::get_team))
        .route("/teams/{id}/members", post(users::add_member))
        .route("/tokens", post(users::create_token))
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found: no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed for this route",
    )
}

/// Parses a path id.
pub(crate) fn id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::invalid(format!("{what} id '{raw}' is not an integer")))
}
