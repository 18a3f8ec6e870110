//! Operations: the runner that claims queued operations from the metadata store and runs them (sync, profile,
//! scan, export, materialize), one module per operation type, the enrichment glue, and the computed containers
//! and joins that operations read through. Nothing here knows HTTP: the server enqueues operations in the store
//! and wakes the runner through [`Context`]; the runner reads and writes only the store and the sources.

pub mod choose;
pub mod computed;
pub mod enrichment;
mod error;
pub mod exporter;
pub mod flows;
pub mod inference;
pub mod join;
pub mod materializer;
pub mod observe;
pub mod profiler;
pub mod runner;
pub mod scanner;
pub mod scheduler;
pub mod source;
pub mod sync;

pub use error::OpsError;

use assay_core::operation::OperationParams;
use assay_secrets::Resolver;
use assay_store::Store;
use assay_store::operations::OperationRecord;
use std::sync::Arc;

/// What operations need from the process that hosts them: the metadata store, the secrets resolver that turns
/// `${key}` references into values (see [`source`]), and the bell that wakes the runner when work is queued.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub resolver: Resolver,
    pub wake_runner: Arc<tokio::sync::Notify>,
    /// Rung when this server ended an operation, so its notifications leave without waiting for a tick.
    pub wake_flows: Arc<tokio::sync::Notify>,
    pub settings: Settings,
    /// The process's metrics, moved by the runner, the scheduler, the dispatcher and the resolver.
    pub metrics: Arc<assay_metrics::Metrics>,
    /// True while this process's runner claims work (from its start until shutdown stops it).
    pub runner_claiming: Arc<std::sync::atomic::AtomicBool>,
}

/// How operations are paced.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often the scheduler looks for due instants.
    pub schedule_tick: std::time::Duration,
    /// The shortest interval a schedule may have.
    pub min_schedule_interval: i64,
    /// How often the flows dispatcher looks for events and due deliveries.
    pub flows_tick: std::time::Duration,
    /// The pause after a delivery's first failed attempt (doubled after each further one).
    pub retry_base: std::time::Duration,
    /// Where people reach the web UI, for the links in messages.
    pub public_url: String,
    /// Deliver notifications only to loopback addresses (test servers, whose flows are written by fuzzers).
    pub loopback_only: bool,
    /// How long a running operation may go on after shutdown begins before it is stopped and queued again.
    pub shutdown_grace: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            schedule_tick: std::time::Duration::from_secs(1),
            min_schedule_interval: assay_core::schedule::MIN_INTERVAL_SECONDS,
            flows_tick: std::time::Duration::from_secs(1),
            retry_base: std::time::Duration::from_secs(2),
            public_url: "http://127.0.0.1:8000".into(),
            loopback_only: false,
            shutdown_grace: std::time::Duration::from_secs(30),
        }
    }
}

impl Context {
    /// A context with fresh metrics, which `resolver` reports its resolutions to.
    pub fn new(store: Store, resolver: Resolver) -> Context {
        let metrics = Arc::new(assay_metrics::Metrics::new());
        let observed = metrics.clone();
        Context {
            store,
            resolver: resolver.observed(Arc::new(move |ok| observed.secrets_request(ok))),
            metrics,
            runner_claiming: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            wake_runner: Arc::new(tokio::sync::Notify::new()),
            wake_flows: Arc::new(tokio::sync::Notify::new()),
            settings: Settings::default(),
        }
    }

    /// Queues an operation of a datastore with its (validated) parameters and wakes the runner.
    /// `triggered_by` names who asked for it.
    pub async fn enqueue(
        &self,
        datastore_id: i64,
        params: &OperationParams,
        triggered_by: &str,
        user_id: Option<i64>,
    ) -> Result<OperationRecord, OpsError> {
        let op = self
            .store
            .enqueue_operation(
                params.op_type().as_str(),
                datastore_id,
                &params.to_json(),
                triggered_by,
                user_id,
            )
            .await?;
        self.wake_runner.notify_one();
        Ok(op)
    }
}

/// How an operation ended: its result (`success`, `failure` or `aborted`; success with a message is the UI's
/// warning), the message, and the operation's final status (counts and per-container results).
pub struct Ending {
    pub result: &'static str,
    pub message: Option<String>,
    pub status: serde_json::Value,
}

impl Ending {
    pub fn failure(message: String, status: serde_json::Value) -> Ending {
        Ending {
            result: "failure",
            message: Some(message),
            status,
        }
    }
}

/// An operation's stored parameters as their type (absent keys take the type's defaults).
pub(crate) fn params_of<T: serde::de::DeserializeOwned>(op: &OperationRecord) -> Result<T, String> {
    assay_core::operation::read_stored(&op.params)
}
