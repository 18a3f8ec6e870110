//! The background operation runner: claims queued operations from the store (`FOR UPDATE SKIP LOCKED`), runs
//! them holding the operation's advisory lock and beating a heartbeat, honours abort requests between steps,
//! records each end even across a metadata store outage, and fails the runs whose server died.

use crate::{Context, Ending};
use assay_store::operations::{OperationRecord, STALE_AFTER_SECONDS};
use serde_json::json;
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

/// Starts the runner; it stops claiming work when `shutdown` turns true (or its sender is dropped) and lets the
/// running operation finish. The sweep of interrupted runs has a task of its own, so it goes on while this runner
/// is busy.
pub fn spawn(ctx: Context, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let worker = format!("assay-{}", uuid::Uuid::new_v4());
    let current = Arc::new(AtomicI64::new(0));
    let sweeper = sweep(ctx.clone(), current.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            match ctx.store.claim_operation(&worker).await {
                Ok(Some(op)) => {
                    current.store(op.id, Ordering::SeqCst);
                    run(&ctx, op).await;
                    current.store(0, Ordering::SeqCst);
                }
                Ok(None) => {
                    tokio::select! {
                        _ = ctx.wake_runner.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        // a dropped sender is a shutdown too (else `changed` would return at once, forever)
                        changed = shutdown.changed() => if changed.is_err() { break },
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
    ctx: Context,
    current: Arc<AtomicI64>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut after_outage = false;
        loop {
            let own = current.load(Ordering::SeqCst);
            let own: Vec<i64> = if own == 0 { vec![] } else { vec![own] };
            if after_outage {
                after_outage = ctx.store.ping().await.is_err();
            } else {
                match ctx
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
                changed = shutdown.changed() => if changed.is_err() { break },
            }
            if *shutdown.borrow() {
                break;
            }
        }
    })
}

async fn run(ctx: &Context, op: OperationRecord) {
    tracing::info!(operation_id = op.id, op_type = %op.op_type, datastore_id = op.datastore_id, "OperationStarted");
    // the lock tells sweeps on every server sharing the store that this run is alive
    let lock = match ctx.store.lock_operation(op.id).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(operation_id = op.id, error = %e, "cannot take the operation's lock yet; retrying");
            None
        }
    };
    let beat = {
        let store = ctx.store.clone();
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
    let ending = match op.op_type.as_str() {
        "sync" => crate::sync::run(ctx, &op).await,
        "profile" => crate::profiler::run(ctx, &op).await,
        "export" => crate::exporter::run(ctx, &op).await,
        "scan" => crate::scanner::run(ctx, &op).await,
        "materialize" => crate::materializer::run(ctx, &op).await,
        other => Ending::failure(
            format!("the {other} operation is not available in this version of Assay"),
            json!({}),
        ),
    };
    record_end(ctx, op.id, &ending).await;
    // the end's notification event committed with it
    ctx.wake_flows.notify_one();
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
async fn record_end(ctx: &Context, id: i64, ending: &Ending) {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        let done = ctx
            .store
            .finish_operation(
                id,
                ending.result,
                ending.message.as_deref(),
                // the detail of an operation that did not succeed is its message
                ending
                    .message
                    .as_deref()
                    .filter(|_| ending.result != "success"),
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
