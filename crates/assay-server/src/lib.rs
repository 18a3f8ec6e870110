//! The Assay server: the Qualytics-compatible REST API under `/api`, the server-rendered web UI at `/`,
//! authentication (JWT tokens, users, teams). Operations are queued in the store and run by `assay-ops`.

pub mod auth;
mod body;
mod error;
pub mod metrics;
mod observe;
mod openapi;
mod params;
mod routes;
mod testing;
pub mod throttle;
mod ui;
mod views;

pub use error::ApiError;

use assay_secrets::Resolver;
use assay_store::Store;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub resolver: Resolver,
    pub keys: Arc<auth::Keys>,
    /// The operations' context: the same store and resolver, and the bell that wakes the runner.
    pub ops: assay_ops::Context,
    pub logins: Arc<throttle::LoginThrottle>,
    /// Idle source sessions for checking a quality check's SQL with the source's planner.
    pub source_sessions: assay_postgres::idle::IdleSessions,
    /// The token scrapers may present on `/metrics` (admins' API tokens work too).
    pub metrics_token: metrics::MetricsToken,
}

/// How many source sessions a server keeps idle for check validation (each is a backend on a source).
const SOURCE_SESSIONS_IDLE: usize = 4;

impl AppState {
    /// Builds the state from an open store (loading or creating the token signing key).
    pub async fn new(store: Store) -> Result<AppState, ApiError> {
        let keys = auth::Keys::load(&store).await?;
        let ops = assay_ops::Context::new(store.clone(), Resolver::default());
        Ok(AppState {
            resolver: ops.resolver.clone(),
            ops,
            store,
            keys: Arc::new(keys),
            logins: Arc::new(throttle::LoginThrottle::default()),
            source_sessions: assay_postgres::idle::IdleSessions::new(
                SOURCE_SESSIONS_IDLE,
                std::time::Duration::from_secs(60),
            ),
            metrics_token: metrics::MetricsToken::default(),
        })
    }
}

/// The full HTTP application: the API under `/api`, the web UI at `/` (its fallback answers HTML 404 pages for
/// every other path; `/api` keeps its JSON fallback).
pub fn app(state: AppState) -> axum::Router {
    axum::Router::new()
        .nest("/api", routes::api())
        .route("/metrics", axum::routing::get(metrics::scrape))
        .merge(ui::router())
        .fallback(ui::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(2 * 1024 * 1024))
        .with_state(state)
}

/// Serves a separate metrics listener until `shutdown` resolves: `GET /metrics` without a token (its address is
/// the protection).
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics::scrape_open))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
