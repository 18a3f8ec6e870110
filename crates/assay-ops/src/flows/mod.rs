//! The flows dispatcher: it turns outbox events into executions of the flows they match (`matching`), renders one
//! message per execution (`message`), and delivers it to each action (`deliver`) with a timeout, retries with
//! exponential backoff and jitter, and a final `failed` after a bounded number of attempts, each attempt recorded.
//! Several servers may dispatch from one store: events and deliveries are claimed with `SKIP LOCKED`, deliveries
//! under a lease, so a killed server's delivery is retried by another once its lease passes, under the same
//! delivery id.

mod deliver;
mod email;
mod matching;
pub mod message;

pub use deliver::{resolved, send, sign};

use crate::Context;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How many attempts a delivery gets before it is `failed`.
pub const MAX_ATTEMPTS: i32 = 6;
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause before attempt `n + 1` after `n` failed ones: `base · 2^(n-1)`, at most 5 minutes, with ±20 %
/// jitter so that many deliveries to one receiver that was down do not come back at the same instant.
pub fn backoff(base: Duration, failed: i32) -> Duration {
    let exp = base.as_secs_f64() * 2f64.powi((failed - 1).clamp(0, 16));
    let jitter = 0.8 + 0.4 * rand_unit();
    Duration::from_secs_f64((exp * jitter).min(300.0))
}

fn rand_unit() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

/// One pass: dispatch pending events, then attempt due deliveries. Returns (events, attempts).
pub async fn pass(ctx: &Context) -> Result<(usize, usize), assay_store::StoreError> {
    let events = ctx
        .store
        .dispatch_events(100, async |events| matching::plan(ctx, events).await)
        .await?;
    let lease = ATTEMPT_TIMEOUT.as_secs_f64() + 5.0;
    let due = ctx.store.claim_deliveries(20, lease).await?;
    let attempts = due.len();
    // each flow of the batch read (and its secrets decrypted) once; a deleted one is `None`
    let mut flows = std::collections::HashMap::new();
    for d in &due {
        if let std::collections::hash_map::Entry::Vacant(slot) = flows.entry(d.flow_id) {
            slot.insert(match ctx.store.flow(d.flow_id).await {
                Ok(f) => Some(f),
                Err(assay_store::StoreError::NotFound(_)) => None,
                Err(e) => return Err(e),
            });
        }
    }
    let sends = due.into_iter().map(|d| {
        let flow = flows.get(&d.flow_id).and_then(Option::as_ref);
        deliver::attempt(ctx, flow, d)
    });
    for r in futures_util::future::join_all(sends).await {
        r?;
    }
    Ok((events, attempts))
}

/// Runs [`pass`] every `ctx.settings.flows_tick`, at once when this server ends an operation, and again while
/// there is work, until `shutdown`.
pub fn spawn(ctx: Context, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let busy = match pass(&ctx).await {
                Ok((e, a)) => e + a > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot dispatch notifications; retrying");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(ctx.settings.flows_tick) => {}
                    _ = ctx.wake_flows.notified() => {}
                    changed = shutdown.changed() => if changed.is_err() { break },
                }
            }
            if *shutdown.borrow() {
                break;
            }
        }
    })
}
