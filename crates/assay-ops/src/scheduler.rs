//! The scheduler: every tick it asks each enabled schedule which instant is due now (`Cadence::due`: the latest
//! instant after the schedule's anchor, so a server that was down runs the latest missed instant once) and, when
//! that instant is newer than the schedule's last claimed one, fires it through the store, which claims the
//! (schedule, instant) pair exactly once across every server sharing it and queues the operation or records the
//! instant as skipped. Cost per tick: one query for the enabled schedules (with their newest instant) plus one
//! transaction per due instant; a tick that cannot reach the store logs and tries again at the next tick.

use crate::Context;
use assay_core::schedule::Cadence;
use assay_store::schedules::{Fired, ScheduleRecord};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The cadence a stored schedule fires on (`None` for a row that holds neither, which the store forbids).
pub fn cadence_of(s: &ScheduleRecord) -> Option<Cadence> {
    match (&s.cron, s.interval_seconds) {
        (Some(c), _) => Some(Cadence::Cron(c.clone())),
        (None, Some(n)) => Some(Cadence::Interval(n)),
        (None, None) => None,
    }
}

/// The next instant of an enabled schedule after now (`None` when it is disabled).
pub fn next_run(s: &ScheduleRecord) -> Option<DateTime<Utc>> {
    cadence_of(s)
        .filter(|_| s.enabled)
        .and_then(|c| c.upcoming(s.anchor, Utc::now(), 1).into_iter().next())
}

/// The instant a schedule should fire at `now`, if it has one it has not fired yet.
pub fn due_now(s: &ScheduleRecord, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let due = cadence_of(s)?.due(s.anchor, now)?;
    match &s.last {
        Some(last) if last.instant >= due => None,
        _ => Some(due),
    }
}

/// One pass over the enabled schedules at `now`: fires every due instant and returns what became of each.
pub async fn tick(
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, DateTime<Utc>, Fired)>, assay_store::StoreError> {
    let mut out = Vec::new();
    for s in ctx.store.enabled_schedules().await? {
        let Some(due) = due_now(&s, now) else {
            continue;
        };
        let fired = ctx.store.fire_schedule(s.id, due).await?;
        let lag_ms = (Utc::now() - due).num_milliseconds();
        match &fired {
            Fired::Queued(op) => {
                ctx.metrics
                    .schedule_instant("queued", lag_ms as f64 / 1000.0);
                tracing::info!(schedule_id = s.id, operation_id = op, %due, lag_ms, "ScheduleFired");
                ctx.wake_runner.notify_one();
            }
            Fired::Skipped(reason) => {
                ctx.metrics
                    .schedule_instant("skipped", lag_ms as f64 / 1000.0);
                tracing::warn!(schedule_id = s.id, %due, reason = %reason, "ScheduleSkipped")
            }
            Fired::Taken => {}
        }
        out.push((s.id, due, fired));
    }
    Ok(out)
}

/// Runs [`tick`] every `ctx.settings.schedule_tick` until `shutdown` turns true or its sender is dropped.
pub fn spawn(ctx: Context, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = tick(&ctx, Utc::now()).await {
                tracing::warn!(error = %e, "cannot fire schedules; retrying at the next tick");
            }
            tokio::select! {
                _ = tokio::time::sleep(ctx.settings.schedule_tick) => {}
                changed = shutdown.changed() => if changed.is_err() { break },
            }
            if *shutdown.borrow() {
                break;
            }
        }
    })
}
