//! The web UI: server-rendered pages (askama templates, htmx for partial updates, SVG charts drawn in Rust)
//! served at `/` next to the API. Every page reads through the store with the signed-in user's `Viewer`, and every
//! change goes through the same handler the API uses, so team visibility and validation are the API's own.

mod add;
mod anomalies;
mod check;
mod checkform;
mod datastores;
mod details;
mod flows;
mod form;
mod link;
mod login;
mod observability;
mod page;
mod schedules;
mod session;
mod svg;
mod tables;

pub(crate) use page::not_found;

use crate::AppState;
use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

/// The UI's routes. POSTs are checked for a same-origin `Origin` (the session cookie is also `SameSite=Strict`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/datastores") }))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/static/{file}", get(asset))
        .route("/datastores", get(datastores::sources))
        .route("/enrichment", get(datastores::enrichments))
        .route("/flows", get(flows::list))
        .route("/flows/new", get(flows::new).post(flows::create))
        .route("/flows/{id}", get(flows::page))
        .route("/flows/{id}/edit", get(flows::edit).post(flows::update))
        .route("/flows/{id}/{action}", post(flows::change))
        .route("/datastores/new", get(add::form).post(add::submit))
        .route("/datastores/new/test", post(add::test))
        .route("/datastores/{id}", get(details::overview))
        .route("/datastores/{id}/run", post(details::run))
        .route(
            "/datastores/{id}/operations",
            get(details::operations_fragment),
        )
        .route("/datastores/{id}/activity", get(details::activity))
        .route("/datastores/{id}/observability", get(observability::page))
        .route(
            "/datastores/{id}/schedules/new",
            get(schedules::new).post(schedules::create),
        )
        .route("/schedules/{id}", get(schedules::show))
        .route("/schedules/{id}/{action}", post(schedules::change))
        .route("/operations/{id}/abort", post(details::abort))
        .route("/datastores/{id}/tables", get(tables::list))
        .route("/containers/{id}", get(tables::container))
        .route("/containers/{id}/fields/{fid}", get(tables::field))
        .route("/datastores/{id}/checks", get(anomalies::checks))
        .route(
            "/datastores/{id}/checks/new",
            get(checkform::new).post(checkform::create),
        )
        .route("/datastores/{id}/checks/form", post(checkform::refresh))
        .route(
            "/checks/{id}/edit",
            get(checkform::edit).post(checkform::update),
        )
        .route("/checks/{id}", get(check::page))
        .route("/checks/{id}/archive", post(anomalies::archive_check))
        .route("/datastores/{id}/anomalies", get(anomalies::list))
        .route("/datastores/{id}/anomalies/bulk", post(anomalies::bulk))
        .route("/anomalies/{id}", get(anomalies::detail))
        .route("/anomalies/{id}/status", post(anomalies::set_status))
        .route(
            "/datastores/{id}/settings",
            get(details::settings).post(details::save_settings),
        )
        .route("/datastores/{id}/unlink", post(details::unlink))
        .route("/datastores/{id}/delete", post(details::delete))
        .route("/datastores/{id}/link", get(link::form).post(link::submit))
        .route("/datastores/{id}/link/test", post(link::test))
        .route_layer(axum::middleware::from_fn(session::same_origin))
        .layer(axum::middleware::from_fn(page::security_headers))
}

const HTMX: &str = include_str!("../../static/htmx.min.js");
const HTMX_LICENSE: &str = include_str!("../../static/htmx.LICENSE");
const CSS: &str = include_str!("../../static/assay.css");
// Swagger UI for `/api/docs`, from the swagger-ui-dist npm package (licence file kept)
const SWAGGER_JS: &str = include_str!("../../static/swagger-ui-bundle.js");
const SWAGGER_CSS: &str = include_str!("../../static/swagger-ui.css");
const SWAGGER_INIT: &str = include_str!("../../static/swagger-init.js");
const SWAGGER_LICENSE: &str = include_str!("../../static/swagger-ui.LICENSE");

/// The static files, compiled into the binary.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "htmx.LICENSE" => (HTMX_LICENSE, "text/plain; charset=utf-8"),
        "assay.css" => (CSS, "text/css; charset=utf-8"),
        "swagger-ui-bundle.js" => (SWAGGER_JS, "text/javascript; charset=utf-8"),
        "swagger-ui.css" => (SWAGGER_CSS, "text/css; charset=utf-8"),
        "swagger-init.js" => (SWAGGER_INIT, "text/javascript; charset=utf-8"),
        "swagger-ui.LICENSE" => (SWAGGER_LICENSE, "text/plain; charset=utf-8"),
        _ => return not_found().await.into_response(),
    };
    (
        [
            (CONTENT_TYPE, ctype),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
