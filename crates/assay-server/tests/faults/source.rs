//! Source faults while a profile or a scan of three tables runs: the reader's backends killed mid-read, SELECT
//! revoked and a table dropped before the operation reaches it, and the whole source cluster stopped mid-scan.
//! The container hit fails with its own message, the others finish and keep their results, and the next run works.

use super::common::checks;
use super::{SLOW_ROWS, Src, container, message, source};
use assay_testkit::TestPg;
use serde_json::json;

const ALL: [&str; 3] = ["a_first", "m_slow", "z_last"];

/// A passing check on every table and a failing one (three negative values) on `a_first`.
async fn checks_on(s: &Src) {
    let a = s.id("a_first").await;
    checks::create(&s.api, a, "notNegative", &["v"], json!({})).await;
    let m = s.id("m_slow").await;
    checks::create(&s.api, m, "notNull", &["h"], json!({})).await;
    let z = s.id("z_last").await;
    checks::create(&s.api, z, "notNull", &["note"], json!({})).await;
}

/// The profile of `name` taken by `op` is complete: its rows and one field profile per column.
async fn profiled(s: &Src, name: &str, op: i64, rows: i64) {
    let p = s.profiles_of(name, op).await;
    assert_eq!(
        p.len(),
        1,
        "{name} has one profile from operation {op}: {p:?}"
    );
    assert_eq!(p[0]["records_count"], rows, "{name}: {}", p[0]);
    assert_eq!(p[0]["field_count"], 2, "{name}: {}", p[0]);
}

/// The scan of `name` by `op` was recorded once with `result`.
async fn scanned(s: &Src, name: &str, op: i64, result: &str) -> serde_json::Value {
    let scans = s.scans_of(name, op).await;
    assert_eq!(
        scans.len(),
        1,
        "{name} has one scan row from operation {op}: {scans:?}"
    );
    assert_eq!(scans[0]["result"], result, "{name}: {}", scans[0]);
    scans[0].clone()
}

#[tokio::test]
async fn a_killed_backend_mid_profile_fails_only_that_container() {
    let s = source("fkillprof", TestPg::shared()).await;
    let op = s.start("profile", &ALL).await;
    // both page-range partitions of m_slow are reading
    s.until_active("COPY%m_slow%").await;
    let killed = s.kill("COPY%m_slow%").await;
    assert!(killed >= 1, "the profile's reads of m_slow were killed");
    let done = s.api.wait(op).await;
    assert_eq!(
        done["result"], "success",
        "the other containers were profiled: {done}"
    );
    let m = container(&done, "m_slow");
    assert_eq!(m["result"], "failure", "{done}");
    assert!(
        message(m).contains("57P01")
            && message(m).contains("terminating connection")
            && message(m).contains("pg_terminate_backend"),
        "the container's message says its session was terminated, and by what: {m}"
    );
    assert!(
        message(&done).contains("failed containers: m_slow"),
        "{done}"
    );
    for name in ["a_first", "z_last"] {
        assert_eq!(
            container(&done, name)["result"],
            "success",
            "{name}: {done}"
        );
    }
    profiled(&s, "a_first", op, 500).await;
    profiled(&s, "z_last", op, 300).await;
    assert!(
        s.profiles_of("m_slow", op).await.is_empty(),
        "no profile is saved for the container whose read was killed"
    );
    let m_id = s.id("m_slow").await;
    let fp = s
        .api
        .get(&format!("/containers/{m_id}/field-profiles"))
        .await
        .body;
    assert_eq!(fp["total"], 0, "no field profiles for m_slow: {fp}");

    let again = s.run("profile", &["m_slow"]).await;
    assert_eq!(again["result"], "success", "{again}");
    assert!(again["message"].is_null(), "{again}");
    profiled(&s, "m_slow", again["id"].as_i64().unwrap(), SLOW_ROWS).await;
}

#[tokio::test]
async fn a_killed_backend_mid_scan_fails_only_that_container() {
    let s = source("fkillscan", TestPg::shared()).await;
    checks_on(&s).await;
    let op = s.start("scan", &ALL).await;
    s.until_active("SELECT count(*)%\"m_slow\"%").await;
    assert!(s.kill("SELECT count(*)%\"m_slow\"%").await >= 1);
    let done = s.api.wait(op).await;
    assert_eq!(done["result"], "success", "{done}");
    let m = container(&done, "m_slow");
    assert_eq!(m["result"], "failure", "{done}");
    assert!(
        message(m).contains("57P01") && message(m).contains("the server ended the session"),
        "{m}"
    );
    assert!(
        message(&done).contains("failed containers: m_slow"),
        "{done}"
    );
    let a = scanned(&s, "a_first", op, "success").await;
    assert_eq!(a["anomaly_count"], 3, "{a}");
    assert_eq!(a["records_processed"], 500, "{a}");
    scanned(&s, "z_last", op, "success").await;
    let failed = scanned(&s, "m_slow", op, "failure").await;
    assert!(message(&failed).contains("57P01"), "{failed}");
    let m_id = s.id("m_slow").await;
    assert!(
        checks::anomalies(&s.api, m_id, &format!("&operation={op}"))
            .await
            .is_empty()
    );
    let a_id = s.id("a_first").await;
    assert_eq!(
        checks::anomalies(&s.api, a_id, &format!("&operation={op}"))
            .await
            .len(),
        3
    );

    let again = s.run("scan", &["m_slow"]).await;
    assert_eq!(again["result"], "success", "{again}");
    let row = scanned(&s, "m_slow", again["id"].as_i64().unwrap(), "success").await;
    assert_eq!(row["records_processed"], SLOW_ROWS, "{row}");
}

#[tokio::test]
async fn select_revoked_mid_profile_names_the_grant_and_a_grant_fixes_it() {
    let s = source("frevoke", TestPg::shared()).await;
    let op = s.start("profile", &ALL).await;
    s.until_active("COPY%m_slow%").await;
    let su = s.su().await;
    su.batch_execute(&format!("REVOKE SELECT ON sales.z_last FROM {}", s.reader))
        .await
        .unwrap();
    let done = s.api.wait(op).await;
    assert_eq!(done["result"], "success", "{done}");
    let z = container(&done, "z_last");
    assert_eq!(z["result"], "failure", "{done}");
    let msg = message(z);
    assert!(
        msg.contains("permission denied for table z_last")
            && msg.contains("42501")
            && msg.contains("GRANT SELECT ON ALL TABLES IN SCHEMA")
            && msg.contains(&s.reader),
        "the message names the privilege and the GRANT that restores it: {msg}"
    );
    for name in ["a_first", "m_slow"] {
        assert_eq!(
            container(&done, name)["result"],
            "success",
            "{name}: {done}"
        );
    }
    profiled(&s, "m_slow", op, SLOW_ROWS).await;
    assert!(s.profiles_of("z_last", op).await.is_empty());

    su.batch_execute(&format!("GRANT SELECT ON sales.z_last TO {}", s.reader))
        .await
        .unwrap();
    let again = s.run("profile", &["z_last"]).await;
    assert_eq!(again["result"], "success", "{again}");
    profiled(&s, "z_last", again["id"].as_i64().unwrap(), 300).await;
}

#[tokio::test]
async fn a_table_dropped_mid_scan_fails_only_that_container() {
    let s = source("fdrop", TestPg::shared()).await;
    checks_on(&s).await;
    let op = s.start("scan", &ALL).await;
    s.until_active("SELECT count(*)%\"m_slow\"%").await;
    s.su()
        .await
        .batch_execute("DROP TABLE sales.z_last")
        .await
        .unwrap();
    let done = s.api.wait(op).await;
    assert_eq!(done["result"], "success", "{done}");
    let z = container(&done, "z_last");
    assert_eq!(z["result"], "failure", "{done}");
    assert!(
        message(z).contains("z_last no longer exists in schema sales; run a sync"),
        "{z}"
    );
    scanned(&s, "a_first", op, "success").await;
    scanned(&s, "m_slow", op, "success").await;
    let failed = scanned(&s, "z_last", op, "failure").await;
    assert!(message(&failed).contains("no longer exists"), "{failed}");

    // after a sync the container is marked missing and the next scan of the others works
    let synced = s.api.sync(s.ds, json!({})).await;
    assert_eq!(synced["result"], "success", "{synced}");
    assert_eq!(synced["status"]["containers_missing"], 1, "{synced}");
    let again = s.run("scan", &["a_first"]).await;
    assert_eq!(again["result"], "success", "{again}");
}

#[tokio::test]
async fn a_source_cluster_stopped_mid_scan_fails_clearly_and_recovers() {
    static PRIVATE: std::sync::OnceLock<TestPg> = std::sync::OnceLock::new();
    let pg: &'static TestPg = PRIVATE.get_or_init(TestPg::start_private);
    let s = source("fstop", pg).await;
    checks_on(&s).await;
    // the test cluster commits asynchronously (synchronous_commit = off): an immediate stop loses the WAL not
    // yet flushed, so the schema made just now is flushed first, or the restarted cluster may not have it
    pg.superuser("postgres")
        .await
        .batch_execute("CHECKPOINT")
        .await
        .unwrap();
    let op = s.start("scan", &ALL).await;
    s.until_active("SELECT count(*)%\"m_slow\"%").await;
    pg.cluster
        .stop_immediate()
        .expect("stop the source cluster");
    let done = s.api.wait(op).await;
    assert!(
        done["result"] == "success" || done["result"] == "failure",
        "{done}"
    );
    assert_eq!(container(&done, "a_first")["result"], "success", "{done}");
    scanned(&s, "a_first", op, "success").await;
    let m = container(&done, "m_slow");
    assert_eq!(m["result"], "failure", "{done}");
    assert!(
        message(m).contains("connection_closed") && message(m).contains("the server was stopped"),
        "the container being read names the closed session and its likely reason: {m}"
    );
    let z = container(&done, "z_last");
    assert_eq!(z["result"], "failure", "{done}");
    assert!(
        message(z).contains("connection_refused")
            && message(z).contains("the server is not running"),
        "the container after the stop names the refused connection and its likely reason: {z}"
    );
    let port = pg.port().to_string();
    assert!(message(z).contains(&port), "{z}");
    scanned(&s, "m_slow", op, "failure").await;
    scanned(&s, "z_last", op, "failure").await;

    pg.cluster.start().expect("start the source cluster again");
    let again = s.run("scan", &ALL).await;
    assert_eq!(again["result"], "success", "{again}");
    assert!(!message(&again).contains("failed containers"), "{again}");
    for name in ALL {
        scanned(&s, name, again["id"].as_i64().unwrap(), "success").await;
    }
}
