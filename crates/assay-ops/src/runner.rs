//! The background operation runner: claims queued operations from the store (`FOR UPDATE SKIP LOCKED`), runs
//! them holding the operation's advisory lock and beating a heartbeat, honours abort requests between steps,
//! records each end even across a metadata store outage, and fails the runs whose server died. At shutdown it
//! stops claiming; a run still going after the grace period (`Settings::shutdown_grace`) is asked to stop at its
//! next step, ends `aborted` with consistent results, and is queued again as a new operation for any server.

use crate::{Context, Ending};
use assay_store::operations::{OperationRecord, STALE_AFTER_SECONDS};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

const IDLE_POLL: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_secs(5);
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How often a run whose lock session dropped tries to take its lock again.
const RELOCK_EVERY: Duration = Duration::from_secs(1);
/// Recording an operation's end is retried with backoff up to this pause between tries, for up to
/// `FINISH_FOR` in all; past that the sweep ends the run once the store is back.
const FINISH_BACKOFF_MAX: Duration = Duration::from_secs(5);
const FINISH_FOR: Duration = Duration::from_secs(600);

/// Starts the runner; it stops claiming work when `shutdown` turns true (or its sender is dropped) and gives the
/// running operation the grace period to finish before handing it back. The sweep of interrupted runs has a task of its own, so it goes on while this runner
/// is busy.
pub fn spawn(ctx: Context, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let worker = format!("assay-{}", uuid::Uuid::new_v4());
    let current = Arc::new(AtomicI64::new(0));
    let sweeper = sweep(ctx.clone(), current.clone(), shutdown.clone());
    ctx.runner_claiming.store(true, Ordering::SeqCst);
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            match ctx.store.claim_operation(&worker).await {
                Ok(Some(op)) => {
                    current.store(op.id, Ordering::SeqCst);
                    run_minding_shutdown(&ctx, op, shutdown.clone()).await;
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
        ctx.runner_claiming.store(false, Ordering::SeqCst);
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

/// Runs `op`; once `shutdown` turns true and the grace period has passed, asks it to stop and hands it back.
async fn run_minding_shutdown(
    ctx: &Context,
    op: OperationRecord,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = op.id;
    let handing_back = AtomicBool::new(false);
    let span = tracing::info_span!(
        "operation",
        operation_id = op.id,
        datastore_id = op.datastore_id
    );
    let running = run(ctx, op, &handing_back).instrument(span);
    tokio::pin!(running);
    let grace_over = async {
        // a dropped sender is a shutdown too
        let _ = shutdown.wait_for(|v| *v).await;
        ctx.runner_claiming.store(false, Ordering::SeqCst);
        tokio::time::sleep(ctx.settings.shutdown_grace).await;
    };
    tokio::select! {
        _ = &mut running => return,
        _ = grace_over => {}
    }
    tracing::warn!(
        operation_id = id,
        grace_s = ctx.settings.shutdown_grace.as_secs_f64(),
        "the server is shutting down and the operation has not finished; stopping it to queue it again"
    );
    handing_back.store(true, Ordering::SeqCst);
    if let Err(e) = ctx.store.request_stop_for_shutdown(id).await {
        tracing::warn!(operation_id = id, error = %e, "cannot ask the operation to stop");
    }
    running.await;
}

async fn run(ctx: &Context, op: OperationRecord, handing_back: &AtomicBool) {
    tracing::info!(operation_id = op.id, op_type = %op.op_type, datastore_id = op.datastore_id, "OperationStarted");
    ctx.metrics.operation_started(&op.op_type);
    let started = std::time::Instant::now();
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
    let mut ending = match op.op_type.as_str() {
        "sync" => crate::sync::run(ctx, &op).await,
        "profile" => crate::profiler::run(ctx, &op).await,
        "export" => crate::exporter::run(ctx, &op).await,
        "scan" => crate::scanner::run(ctx, &op).await,
        "materialize" => crate::materializer::run(ctx, &op).await,
        "measure" => crate::observe::run(ctx, &op).await,
        other => Ending::failure(
            format!("the {other} operation is not available in this version of Assay"),
            json!({}),
        ),
    };
    if ending.result == "aborted" && handing_back.load(Ordering::SeqCst) {
        let grace = ctx.settings.shutdown_grace.as_secs_f64();
        ending.message = Some(match ctx.store.hand_back(op.id).await {
            Ok(again) => format!(
                "stopped because the server shut down before it finished (grace period {grace} s); \
                 queued again as operation {again}"
            ),
            Err(e) => format!(
                "stopped because the server shut down before it finished (grace period {grace} s); \
                 it could not be queued again ({e}): run it again"
            ),
        });
    }
    record_end(ctx, op.id, &ending).await;
    let rows_read = ending.status["records_processed"].as_u64().unwrap_or(0);
    ctx.metrics.operation_ended(
        &op.op_type,
        ending.result,
        started.elapsed().as_secs_f64(),
        rows_read,
    );
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
