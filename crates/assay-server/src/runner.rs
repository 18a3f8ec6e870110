//! The background operation runner: claims queued operations from the store (`FOR UPDATE SKIP LOCKED`), runs
//! them holding the operation's advisory lock and beating a heartbeat, honours abort requests between steps,
//! records each end even across a metadata store outage, and fails the runs whose server died.

use crate::AppState;
use assay_store::Viewer;
use assay_store::operations::{OperationRecord, STALE_AFTER_SECONDS};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const IDLE_POLL: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_secs(5);
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How often a run whose lock session dropped tries to take its lock again.
const RELOCK_EVERY: Duration = Duration::from_secs(1);
/// Recording an operation's end is retried with backoff up to this pause between tries, for up to
/// `FINISH_FOR` in all; past that the sweep ends the run once the store is back.
const FINISH_BACKOFF_MAX: Duration = Duration::from_secs(5);
const FINISH_FOR: Duration = Duration::from_secs(600);

/// How an operation ended.
struct Ending {
    result: &'static str,
    message: Option<String>,
    detail: Option<String>,
    status: Value,
}

/// Starts the runner; it stops claiming work when `shutdown` turns true and lets the running operation finish.
/// The sweep of interrupted runs has a task of its own, so it goes on while this runner is busy.
pub fn spawn(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let worker = format!("assay-{}", uuid::Uuid::new_v4());
    let current = Arc::new(AtomicI64::new(0));
    let sweeper = sweep(state.clone(), current.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            match state.store.claim_operation(&worker).await {
                Ok(Some(op)) => {
                    current.store(op.id, Ordering::SeqCst);
                    run(&state, op).await;
                    current.store(0, Ordering::SeqCst);
                }
                Ok(None) => {
                    tokio::select! {
                        _ = state.wake_runner.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim operations; retrying");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
        sweeper.abort();
    })
}

/// Every `SWEEP_EVERY`, ends the runs whose runner is gone (their lock is free and their heartbeat stale),
/// whichever server ran them, except this server's own run (`current`). After a sweep that could not reach the
/// store, the next one is skipped: runners cut off by the same outage get a period to take their locks again.
fn sweep(
    state: AppState,
    current: Arc<AtomicI64>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut after_outage = false;
        loop {
            let own = current.load(Ordering::SeqCst);
            let own: Vec<i64> = if own == 0 { vec![] } else { vec![own] };
            if after_outage {
                after_outage = state.store.ping().await.is_err();
            } else {
                match state
                    .store
                    .fail_interrupted_except(STALE_AFTER_SECONDS, &own)
                    .await
                {
                    Ok(ids) if !ids.is_empty() => tracing::warn!(?ids, "OperationsInterrupted"),
                    Ok(_) => {}
                    Err(e) => {
                        after_outage = e.is_unavailable();
                        tracing::warn!(error = %e, "cannot sweep interrupted operations");
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    })
}

async fn run(state: &AppState, op: OperationRecord) {
    tracing::info!(operation_id = op.id, op_type = %op.op_type, datastore_id = op.datastore_id, "OperationStarted");
    // the lock tells sweeps on every server sharing the store that this run is alive
    let lock = match state.store.lock_operation(op.id).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(operation_id = op.id, error = %e, "cannot take the operation's lock yet; retrying");
            None
        }
    };
    let beat = {
        let store = state.store.clone();
        let id = op.id;
        tokio::spawn(async move {
            let mut lock = lock;
            loop {
                let held = lock.as_ref().is_some_and(|l| l.is_held());
                tokio::time::sleep(if held { HEARTBEAT } else { RELOCK_EVERY }).await;
                if !lock.as_ref().is_some_and(|l| l.is_held()) {
                    // the session ended (a metadata store restart): take the lock again before beating
                    match store.lock_operation(id).await {
                        Ok(Some(l)) => lock = Some(l),
                        _ => continue,
                    }
                }
                let _ = store.heartbeat(id).await;
            }
        })
    };
    let from = |e: crate::profiler::Ending| Ending {
        result: e.result,
        detail: e.message.clone().filter(|_| e.result != "success"),
        message: e.message,
        status: e.status,
    };
    let ending = match op.op_type.as_str() {
        "sync" => sync(state, &op).await,
        "profile" => from(crate::profiler::run(state, &op).await),
        "export" => from(crate::exporter::run(state, &op).await),
        "scan" => from(crate::scanner::run(state, &op).await),
        "materialize" => from(crate::materializer::run(state, &op).await),
        other => Ending {
            result: "failure",
            message: Some(format!(
                "the {other} operation is not available in this version of Assay"
            )),
            detail: None,
            status: json!({}),
        },
    };
    record_end(state, op.id, &ending).await;
    // the lock goes with the heartbeat task, once the end is recorded
    beat.abort();
    tracing::info!(
        operation_id = op.id,
        result = ending.result,
        "OperationFinished"
    );
}

/// Writes the end of a run, retrying with backoff while the metadata store is unreachable (a restart), so a run
/// that finished during an outage is recorded once the store is back instead of staying `running`.
async fn record_end(state: &AppState, id: i64, ending: &Ending) {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        let done = state
            .store
            .finish_operation(
                id,
                ending.result,
                ending.message.as_deref(),
                ending.detail.as_deref(),
                &ending.status,
            )
            .await;
        match done {
            Ok(()) => return,
            Err(e) if e.is_unavailable() && started.elapsed() < FINISH_FOR => {
                tracing::warn!(operation_id = id, error = %e, "cannot record the end of an operation yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(FINISH_BACKOFF_MAX);
            }
            Err(e) => {
                tracing::error!(operation_id = id, error = %e, "cannot record the end of an operation");
                return;
            }
        }
    }
}

fn failure(message: String, status: Value) -> Ending {
    Ending {
        result: "failure",
        detail: Some(message.clone()),
        message: Some(message),
        status,
    }
}

/// Sync: read the schema's catalog and apply it to the containers and fields of the datastore.
async fn sync(state: &AppState, op: &OperationRecord) -> Ending {
    let mut status =
        json!({"total_containers": 0, "containers_analyzed": 0, "records_processed": 0});
    let ds = match state
        .store
        .datastore(op.datastore_id, &Viewer::admin(0))
        .await
    {
        Ok(d) => d,
        Err(e) => return failure(format!("datastore {}: {e}", op.datastore_id), status),
    };
    let conn = match state.store.connection(ds.connection_id).await {
        Ok(c) => c,
        Err(e) => return failure(format!("connection {}: {e}", ds.connection_id), status),
    };
    let kinds: Vec<String> = op
        .params
        .get("include")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| vec!["table".into(), "view".into()]);
    let prune = op
        .params
        .get("prune")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let recreate = op
        .params
        .get("recreate")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let endpoint = assay_postgres::Endpoint {
        connection: &conn.spec,
        database: &ds.spec.database,
    };
    let params = match endpoint.resolve(&state.resolver).await {
        Ok(p) => p,
        Err(e) => {
            return failure(
                format!("cannot connect to datastore '{}': {e}", ds.spec.name),
                status,
            );
        }
    };
    let client = match params.connect().await {
        Ok(c) => c,
        Err(e) => {
            return failure(
                format!("cannot connect to datastore '{}': {e}", ds.spec.name),
                status,
            );
        }
    };
    let snapshot = match assay_postgres::catalog::discover(&client, &params, &ds.spec.schema).await
    {
        Ok(s) => s,
        Err(e) => {
            return failure(
                format!(
                    "cannot read the catalog of datastore '{}': {e}",
                    ds.spec.name
                ),
                status,
            );
        }
    };
    let wanted = snapshot
        .tables
        .iter()
        .filter(|t| kinds.iter().any(|k| k == t.kind.container_type()))
        .count();
    status["total_containers"] = json!(wanted);
    match state.store.operation_progress(op.id, &status).await {
        Ok(true) => {
            return Ending {
                result: "aborted",
                message: Some("aborted before the catalog was saved".into()),
                detail: None,
                status,
            };
        }
        Ok(false) => {}
        Err(e) => return failure(format!("metadata store: {e}"), status),
    }
    let outcome = match state
        .store
        .apply_sync(
            ds.id,
            &snapshot.tables,
            snapshot.commit_timestamps,
            &kinds,
            prune,
            recreate,
        )
        .await
    {
        Ok(o) => o,
        Err(e) => return failure(format!("cannot save the catalog: {e}"), status),
    };
    status["containers_analyzed"] = json!(outcome.containers);
    status["containers_added"] = json!(outcome.added);
    status["containers_updated"] = json!(outcome.updated);
    status["containers_restored"] = json!(outcome.restored);
    status["containers_missing"] = json!(outcome.missing);
    status["containers_pruned"] = json!(outcome.pruned);
    status["fields_synced"] = json!(outcome.fields);
    status["commit_timestamps"] = json!(snapshot.commit_timestamps);
    // success with a message is the UI's "warning"
    let message = if outcome.containers == 0 {
        Some(format!(
            "schema \"{}\" has no tables or views this role can see; check the schema name and the role's grants",
            ds.spec.schema
        ))
    } else {
        None
    };
    Ending {
        result: "success",
        message,
        detail: None,
        status,
    }
}
