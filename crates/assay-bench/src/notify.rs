//! `assay-bench notify`: the flows dispatcher's throughput. A flow with one signed webhook to a local receiver,
//! `--deliveries` operations ended in one statement (so their events are all in the outbox at once), then the
//! dispatcher started: it prints the time until the receiver has every message, deliveries per second, and the
//! spread between an operation's end and its message's arrival.

use super::load::{conninfo, start_server};
use anyhow::{Context, Result, bail};
use axum::Router;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub async fn run(url: &str, deliveries: usize) -> Result<()> {
    let su = super::client(url).await?;
    let meta = format!("assay_notify_{}", std::process::id());
    su.batch_execute(&format!("CREATE DATABASE {meta}")).await?;
    let result = measure(url, &meta, deliveries).await;
    let _ = su
        .batch_execute(&format!("DROP DATABASE IF EXISTS {meta} WITH (FORCE)"))
        .await;
    println!("{}", serde_json::to_string_pretty(&result?)?);
    Ok(())
}

async fn measure(url: &str, meta: &str, n: usize) -> Result<serde_json::Value> {
    // the receiver: a real HTTP server on loopback noting when each message arrived
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = arrivals.clone();
    let app = Router::new().fallback(move || {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(Instant::now());
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let server = start_server(&conninfo(url, meta)?).await?;
    let p = super::params_of(url)?;
    let conn = server
        .http
        .post(
            "/api/connections",
            json!({"type": "postgresql", "name": "bench", "host": p.host, "port": p.port,
                   "username": p.user, "password": p.password}),
        )
        .await?;
    let ds = server
        .http
        .post(
            "/api/datastores",
            json!({"name": "bench", "connection_id": conn["id"], "database": "postgres", "schema": "public",
                   "trigger_sync": false}),
        )
        .await?;
    server
        .http
        .post(
            "/api/flows",
            json!({"name": "bench", "trigger": {"type": "operation"},
                   "actions": [{"type": "webhook", "url": hook, "secret": "bench-signing-secret-0001"}]}),
        )
        .await?;
    let id = ds["id"].as_i64().context("datastore id")?;
    let db = super::client(&conninfo(url, meta)?).await?;
    db.execute(
        "INSERT INTO operations (type, datastore_id, triggered_by, result, start_time) \
         SELECT 'sync', $1, 'bench', 'running', now() FROM generate_series(1, $2::int)",
        &[&id, &(n as i32)],
    )
    .await?;
    db.batch_execute(
        "UPDATE operations SET result = 'success', end_time = now() WHERE triggered_by = 'bench'",
    )
    .await?;
    let ended = Instant::now();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    assay_ops::flows::spawn(server.state.ops.clone(), rx);
    while arrivals.lock().unwrap().len() < n {
        if ended.elapsed() > Duration::from_secs(600) {
            bail!(
                "{} of {n} messages arrived within 600 s",
                arrivals.lock().unwrap().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = ended.elapsed().as_secs_f64();
    let mut waits: Vec<f64> = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|t| (*t - ended).as_secs_f64() * 1000.0)
        .collect();
    waits.sort_by(f64::total_cmp);
    let pct = |q: f64| waits[((waits.len() - 1) as f64 * q) as usize];
    Ok(json!({
        "deliveries": n,
        "seconds": secs,
        "deliveries_per_second": n as f64 / secs,
        "arrival_after_end_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
    }))
}
