//! Restarts with the real `assay serve`: a server SIGKILLed while a scan runs, started again on the same store
//! (the interrupted run ends as a failure, the queue behind it runs, rescans add no duplicate anomalies, the store
//! stays consistent), and a restart of the metadata cluster (a private one) while the server is idle and while an
//! operation runs (503 JSON errors during the outage, then the server carries on without a restart and records
//! the operation's end: the container whose profile could not be stored fails, the others keep theirs).

mod common;

use assay_testkit::TestPg;
use common::api::{Http, datastore, set_slow, sleeping, slow_source, until};
use common::meta::MetaCluster;
use common::{Server, tmp};
use serde_json::json;
use std::time::{Duration, Instant};

async fn container(http: &Http, ds: i64, name: &str) -> i64 {
    let (_, list) = http
        .get(&format!("/containers/listing?datastore={ds}"))
        .await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {list}"))["id"]
        .as_i64()
        .unwrap()
}

/// Store consistency: every anomaly has its failed checks, every ended operation has an end time, none is left
/// running, and no two open anomalies share a fingerprint. Returns the open anomaly ids.
async fn consistent(meta: &tokio_postgres::Client) -> Vec<i64> {
    let count =
        |sql: &'static str| async move { meta.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) };
    assert_eq!(
        count("SELECT count(*) FROM anomalies a WHERE NOT EXISTS (SELECT 1 FROM anomaly_checks k WHERE k.anomaly_id = a.id)").await,
        0,
        "an anomaly without its failed checks"
    );
    assert_eq!(
        count("SELECT count(*) FROM operations WHERE result NOT IN ('queued', 'running') AND end_time IS NULL").await,
        0,
        "an ended operation without an end time"
    );
    assert_eq!(
        count("SELECT count(*) FROM operations WHERE result = 'running'").await,
        0,
        "an operation left running"
    );
    assert_eq!(
        count("SELECT count(*) FROM (SELECT 1 FROM anomalies WHERE archived_at IS NULL GROUP BY container_id, fingerprint HAVING count(*) > 1) d").await,
        0,
        "two open anomalies with one fingerprint"
    );
    meta.query(
        "SELECT id FROM anomalies WHERE archived_at IS NULL ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn result_of(meta: &tokio_postgres::Client, id: i64) -> String {
    meta.query_one("SELECT result FROM operations WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_fails_its_interrupted_run_and_the_queue_runs_after_restart() {
    let pg = TestPg::shared();
    let meta_db = pg.create_database("restartmeta").await;
    let (db, reader) = slow_source(pg, 120).await;
    let data = tmp("restart-data");
    let url = pg.superuser_url(&meta_db);
    let args = [
        "--metadata-url",
        url.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let mut server = Server::start(&args);
    let token = server.token.clone().expect("first start prints a token");
    let http = Http::new(&format!("{}/api", server.url), &token);
    let ds = datastore(&http, pg, &db, &reader).await;
    let orders = container(&http, ds, "orders").await;
    let slow = container(&http, ds, "slow").await;
    for (c, value) in [(orders, 45), (slow, 48)] {
        http.ok("/quality-checks", json!({"container_id": c, "rule": "maxValue", "fields": ["total"],
                                          "description": "totals stay small", "properties": {"value": value}}))
            .await;
    }

    set_slow(pg, &db, true).await;
    let interrupted = http.queue(ds, "scan").await;
    let profile = http.queue(ds, "profile").await;
    let rescan = http.queue(ds, "scan").await;
    until(60, "the scan reads the slow view", || async {
        sleeping(pg, &db).await > 0
    })
    .await;
    // another server's sweep leaves a live run alone, even with its heartbeat long stale: the runner holds the
    // run's lock
    let meta = pg.superuser(&meta_db).await;
    meta.execute(
        "UPDATE operations SET heartbeat = now() - interval '1 hour' WHERE id = $1",
        &[&interrupted],
    )
    .await
    .unwrap();
    let other = assay_store::Store::open(
        &url,
        assay_store::crypto::Cipher::load_or_create(&data.join("secret.key")).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        other.fail_interrupted(0.0).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(result_of(&meta, interrupted).await, "running");
    // as fresh as a beat just before the crash, so the recovery time below is the worst case
    meta.execute(
        "UPDATE operations SET heartbeat = now() WHERE id = $1",
        &[&interrupted],
    )
    .await
    .unwrap();
    server.sigkill();
    let killed_at = Instant::now();
    set_slow(pg, &db, false).await;
    pg.superuser("postgres")
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep'",
            &[&db],
        )
        .await
        .unwrap();
    assert_eq!(result_of(&meta, interrupted).await, "running");
    assert_eq!(result_of(&meta, profile).await, "queued");
    assert_eq!(result_of(&meta, rescan).await, "queued");

    let server = Server::start(&args);
    assert!(server.token.is_none(), "the admin exists already");
    let http = Http::new(&format!("{}/api", server.url), &http.token);
    let op = http.wait(interrupted).await;
    let recovered = killed_at.elapsed();
    assert_eq!(op["result"], "failure", "{op}");
    assert!(
        op["message"]
            .as_str()
            .unwrap()
            .contains("interrupted by restart"),
        "{op}"
    );
    assert!(server.logged("OperationsInterrupted"));
    assert_eq!(http.wait(profile).await["result"], "success");
    assert_eq!(http.wait(rescan).await["result"], "success");
    // the interrupted scan committed nothing for the container it was reading
    let partial: i64 = meta
        .query_one(
            "SELECT count(*) FROM anomalies WHERE operation_id = $1 AND container_id = $2",
            &[&interrupted, &slow],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(partial, 0);
    let open = consistent(&meta).await;
    let failing: Vec<i64> = meta
        .query(
            "SELECT DISTINCT container_id FROM anomalies WHERE archived_at IS NULL ORDER BY container_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut both = vec![orders, slow];
    both.sort();
    assert_eq!(failing, both, "the checks fail on both containers");
    // a further scan finds the same anomalies: they come back as archived duplicates, none opens twice
    let again = http.queue(ds, "scan").await;
    assert_eq!(http.wait(again).await["result"], "success");
    assert_eq!(
        consistent(&meta).await,
        open,
        "rescans add no open anomalies"
    );
    let dupes: i64 = meta
        .query_one(
            "SELECT count(*) FROM anomalies WHERE operation_id = $1 AND status = 'Duplicate'",
            &[&again],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        dupes as usize,
        open.len(),
        "each open anomaly found again once"
    );
    println!(
        "interrupted run ended {:.1} s after the kill",
        recovered.as_secs_f64()
    );
    server.stop();
}

/// During an outage the API answers 503 with a JSON detail naming the metadata store.
async fn unavailable(http: &Http, path: &str) {
    let (status, body) = http.get(path).await;
    assert_eq!(status, 503, "{path}: {body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("metadata store unavailable") && !detail.contains("metapw"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_rides_out_a_restart_of_its_metadata_cluster() {
    let pg = TestPg::shared();
    let cluster = MetaCluster::with_store_database().await;
    let (db, reader) = slow_source(pg, 3).await;
    let data = tmp("restart-meta-data");
    let url = cluster.0.superuser_url("assay");
    let server = Server::start(&[
        "--metadata-url",
        url.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let http = Http::new(
        &format!("{}/api", server.url),
        server.token.as_ref().expect("first start prints a token"),
    );
    let ds = datastore(&http, pg, &db, &reader).await;

    // idle: the outage answers 503, and the first request after it succeeds without a server restart
    cluster.down().await;
    unavailable(&http, "/operations").await;
    unavailable(&http, &format!("/datastores/{ds}")).await;
    cluster.up().await;
    let (status, body) = http.get(&format!("/datastores/{ds}")).await;
    assert_eq!(status, 200, "{body}");

    // busy: the store goes away while a profile reads the slow view and comes back after it finished reading
    set_slow(pg, &db, true).await;
    let profile = http.queue(ds, "profile").await;
    until(60, "the profile reads the slow view", || async {
        sleeping(pg, &db).await > 0
    })
    .await;
    cluster.down().await;
    unavailable(&http, &format!("/operations/{profile}")).await;
    until(60, "the runner tries to record the end", || async {
        server.logged("cannot record the end of an operation yet")
    })
    .await;
    // an outage longer than the heartbeat's staleness limit (12 s): the server's own sweep must still leave
    // the run to its runner
    tokio::time::sleep(Duration::from_secs(13)).await;
    cluster.up().await;
    let op = http.wait(profile).await;
    // the slow view is profiled last (catalog order), so the containers before it were stored before the
    // outage; the slow one's profile could not be stored and fails alone, naming the store, and a profile with
    // a failed container among successful ones ends a success that lists it
    assert_eq!(op["result"], "success", "{op}");
    let message = op["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("failed containers: slow: ") && message.contains("metadata store"),
        "{op}"
    );
    let containers = op["status"]["containers"].as_array().unwrap();
    assert_eq!(
        containers.len() as i64,
        op["status"]["total_containers"].as_i64().unwrap(),
        "{op}"
    );
    for c in containers {
        let want = if c["container"]["name"] == "slow" {
            "failure"
        } else {
            "success"
        };
        assert_eq!(c["result"], want, "{c}");
    }
    assert!(
        !op["message"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted by restart"),
        "the runner recorded its own end, not a sweep: {op}"
    );
    // the runner goes on claiming work
    set_slow(pg, &db, false).await;
    let sync = http.queue(ds, "sync").await;
    assert_eq!(http.wait(sync).await["result"], "success");
    let (meta, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    consistent(&meta).await;
    for secret in ["metapw", "readerpw"] {
        assert!(!server.logged(secret), "a password in the server's log");
    }
    server.stop();
}

/// A server SIGKILLed while a receiver holds its delivery: after a restart the delivery is tried again once its
/// lease passes, under the same delivery id, and the receiver has the message.
#[tokio::test]
async fn a_delivery_cut_off_by_a_kill_is_delivered_after_restart() {
    use assay_testkit::receiver::{Mode, Receiver};
    let pg = TestPg::shared();
    let meta_db = pg.create_database("restartflow").await;
    let (db, reader) = slow_source(pg, 0).await;
    let data = tmp("restart-flow-data");
    let url = pg.superuser_url(&meta_db);
    let args = [
        "--metadata-url",
        url.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let rx = Receiver::start().await;
    rx.set(Mode::Hang);
    let mut server = Server::start(&args);
    let token = server.token.clone().expect("first start prints a token");
    let http = Http::new(&format!("{}/api", server.url), &token);
    let ds = datastore(&http, pg, &db, &reader).await;
    let flow = http
        .ok(
            "/flows",
            json!({"name": "syncs", "trigger": {"type": "operation", "operation_types": ["sync"]},
                   "actions": [{"type": "webhook", "url": rx.url("/hook")}]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let sync = http.queue(ds, "sync").await;
    http.wait(sync).await;
    // the receiver has the request and is holding it: kill the server mid-delivery
    let first = rx.wait_for(1, 30).await;
    server.sigkill();
    drop(server);
    rx.set(Mode::Ok);
    let server = Server::start(&args);
    let http = Http::new(&format!("{}/api", server.url), &token);
    let got = rx.wait_for(2, 60).await;
    let id = first[0].header("x-assay-delivery").unwrap();
    assert_eq!(
        got[1].header("x-assay-delivery"),
        Some(id),
        "the same delivery, retried"
    );
    until(20, "the retried delivery is recorded", || async {
        let (_, x) = http.get(&format!("/flows/{flow}/executions")).await;
        x["items"][0]["actions"][0]["status"] == "delivered"
    })
    .await;
    let (_, x) = http.get(&format!("/flows/{flow}/executions")).await;
    let status = &x["items"][0]["actions"][0];
    assert_eq!(status["delivery_id"].as_str(), Some(id), "{status}");
    assert_eq!(
        status["attempts"], 1,
        "the cut-off attempt left no record: {status}"
    );
}

/// A notification waiting for its receiver while the metadata cluster restarts is neither lost nor doubled: the
/// dispatcher's passes fail during the outage, and once the store and the receiver are back the delivery goes
/// out once, under its delivery id, with every attempt recorded.
#[tokio::test(flavor = "multi_thread")]
async fn a_notification_pending_across_a_metadata_restart_is_delivered_once() {
    use assay_testkit::receiver::Receiver;
    let pg = TestPg::shared();
    let cluster = MetaCluster::with_store_database().await;
    let (db, reader) = slow_source(pg, 0).await;
    let data = tmp("restart-notify-data");
    let url = cluster.0.superuser_url("assay");
    let server = Server::start(&[
        "--metadata-url",
        url.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let http = Http::new(
        &format!("{}/api", server.url),
        server.token.as_ref().expect("first start prints a token"),
    );
    let ds = datastore(&http, pg, &db, &reader).await;
    let rx = Receiver::start().await;
    let flow = http
        .ok(
            "/flows",
            json!({"name": "syncs", "trigger": {"type": "operation", "operation_types": ["sync"]},
                   "actions": [{"type": "webhook", "url": rx.url("/hook")}]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    rx.down().await;
    let sync = http.queue(ds, "sync").await;
    http.wait(sync).await;
    until(30, "a refused attempt is recorded", || async {
        let (_, x) = http.get(&format!("/flows/{flow}/executions")).await;
        x["items"][0]["actions"][0]["attempts"]
            .as_i64()
            .unwrap_or(0)
            >= 1
    })
    .await;
    // the store goes away with the delivery pending, the receiver comes back meanwhile, then the store
    cluster.down().await;
    until(30, "the dispatcher notices the outage", || async {
        server.logged("cannot dispatch notifications")
    })
    .await;
    rx.up().await;
    cluster.up().await;
    let got = rx.wait_for(1, 60).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rx.received().len(), 1, "delivered once: {got:?}");
    let (_, x) = http.get(&format!("/flows/{flow}/executions")).await;
    let a = &x["items"][0]["actions"][0];
    assert_eq!(a["status"], "delivered", "{a}");
    assert_eq!(got[0].header("x-assay-delivery"), a["delivery_id"].as_str());
    assert!(a["attempts"].as_i64().unwrap() >= 2, "{a}");
    server.stop();
}
