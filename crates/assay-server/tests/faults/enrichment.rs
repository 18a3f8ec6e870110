//! Enrichment faults while a scan's enrichment write waits for a lock a superuser session holds on
//! `_shop_source_records`: INSERT revoked (committed with the lock's release), and the write's backend killed
//! for one of two containers. Nothing of the failed write is visible, the metadata store has every anomaly with
//! `source_enriched = false`, the operation ends as a warning that says "enrichment not written" (with the GRANT
//! for the privilege), the other container's rows are written, and after the fix a rerun writes each anomaly's
//! rows exactly once. (`tests/enrichment.rs` covers a killed write of a single container.)

use super::common::checks;
use super::{Src, container, message, source};
use assay_testkit::TestPg;
use serde_json::{Value, json};
use std::time::Duration;

const TABLES: [&str; 4] = [
    "_shop_scan_operations",
    "_shop_check_metrics",
    "_shop_failed_checks",
    "_shop_source_records",
];

/// Links an enrichment datastore (a writer role on schema `enrich` of the same database, prefix `shop`), puts a
/// failing check on `a_first` and a passing one on `z_last`, and runs a first scan that creates the tables.
/// Returns the writer role.
async fn linked(s: &Src) -> String {
    let writer = assay_testkit::unique("writer");
    s.pg.create_role(&writer, "writerpw").await;
    s.su()
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA enrich AUTHORIZATION {writer}; GRANT USAGE ON SCHEMA enrich TO {writer};"
        ))
        .await
        .unwrap();
    let wc = s
        .api
        .ok(
            "/connections",
            common_conn(&format!("w-{}", s.ds), &writer, s.pg.port()),
        )
        .await;
    let enr = s
        .api
        .ok(
            "/datastores",
            json!({"name": format!("enr {}", s.ds), "connection_id": wc["id"], "database": s.db,
                   "schema": "enrich", "enrichment_only": true, "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = s
        .api
        .call(
            "PATCH",
            &format!("/datastores/{}/enrichment/{enr}?prefix=shop", s.ds),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = s.id("a_first").await;
    checks::create(&s.api, a, "notNegative", &["v"], json!({})).await;
    let z = s.id("z_last").await;
    checks::create(&s.api, z, "notNull", &["note"], json!({})).await;
    let first = s.run("scan", &["a_first", "z_last"]).await;
    assert_eq!(first["result"], "success", "{first}");
    assert!(first["message"].is_null(), "{first}");
    writer
}

fn common_conn(name: &str, user: &str, port: u16) -> Value {
    json!({"type": "postgresql", "name": name, "host": "127.0.0.1", "port": port,
           "username": user, "password": "writerpw"})
}

/// A superuser session holding ACCESS EXCLUSIVE on `enrich._shop_source_records` in an open transaction.
async fn lock_source_records(s: &Src) -> tokio_postgres::Client {
    let (locker, conn) = tokio_postgres::connect(&s.pg.superuser_url(&s.db), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    locker
        .batch_execute("BEGIN; LOCK TABLE enrich._shop_source_records IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    locker
}

/// Waits until the writer's session waits for a lock; returns its pid.
async fn until_write_waits(s: &Src, writer: &str) -> i32 {
    let su = s.su().await;
    for _ in 0..1000 {
        if let Some(r) = su
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'",
                &[&writer],
            )
            .await
            .unwrap()
        {
            return r.get(0);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the enrichment write never waited for the lock");
}

async fn count(
    su: &tokio_postgres::Client,
    sql: &str,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> i64 {
    su.query_one(sql, args).await.unwrap().get(0)
}

/// Rows of operation `op` (and container `c`, when given) in each enrichment table.
async fn rows_of(s: &Src, op: i64, c: Option<i64>) -> Vec<i64> {
    let su = s.su().await;
    let mut out = Vec::new();
    for t in TABLES {
        out.push(
            count(
                &su,
                &format!(
                    "SELECT count(*) FROM enrich.{t} WHERE operation_id = $1 \
                     AND ($2::int8 IS NULL OR container_id = $2)"
                ),
                &[&op, &c],
            )
            .await,
        );
    }
    out
}

/// The anomalies an operation found on `a_first`, duplicates included.
async fn anomalies_of(s: &Src, op: i64) -> Vec<Value> {
    let a = s.id("a_first").await;
    checks::anomalies(&s.api, a, &format!("&operation={op}&archived=include")).await
}

/// The metadata store holds every anomaly of the failed write, none marked as enriched.
async fn complete_but_not_enriched(s: &Src, op: i64) {
    let items = anomalies_of(s, op).await;
    assert_eq!(items.len(), 3, "{items:?}");
    for a in &items {
        assert_eq!(a["source_enriched"], false, "{a}");
        assert!(!a["failed_checks"].as_array().unwrap().is_empty(), "{a}");
    }
}

/// A rerun writes each of its anomalies once: one failed-check row and one source record per anomaly.
async fn rerun_writes_once(s: &Src) {
    let again = s.run("scan", &["a_first"]).await;
    assert_eq!(again["result"], "success", "{again}");
    assert!(again["message"].is_null(), "{again}");
    let op = again["id"].as_i64().unwrap();
    assert_eq!(
        rows_of(s, op, None).await,
        vec![1, 1, 3, 3],
        "rows of the rerun"
    );
    let su = s.su().await;
    let items = anomalies_of(s, op).await;
    assert_eq!(items.len(), 3, "{items:?}");
    for a in &items {
        assert_eq!(a["source_enriched"], true, "{a}");
        let uuid = a["uuid"].as_str().unwrap().to_string();
        for t in ["_shop_failed_checks", "_shop_source_records"] {
            let n = count(
                &su,
                &format!("SELECT count(*) FROM enrich.{t} WHERE anomaly_uuid = $1"),
                &[&uuid],
            )
            .await;
            assert_eq!(n, 1, "{t} holds anomaly {uuid} once");
        }
    }
}

#[tokio::test]
async fn insert_revoked_mid_write_leaves_nothing_and_a_grant_fixes_it() {
    let s = source("fenrgrant", TestPg::shared()).await;
    let writer = linked(&s).await;
    let locker = lock_source_records(&s).await;
    let op = s.start("scan", &["a_first"]).await;
    until_write_waits(&s, &writer).await;
    // the privilege goes away as the lock is released: the waiting write goes on without it
    locker
        .batch_execute(&format!(
            "REVOKE INSERT ON enrich._shop_source_records FROM {writer}; COMMIT"
        ))
        .await
        .unwrap();
    let done = s.api.wait(op).await;
    assert_eq!(done["result"], "success", "the scan itself worked: {done}");
    let msg = message(&done);
    assert!(
        msg.contains("a_first: enrichment not written")
            && msg.contains("permission denied for table _shop_source_records")
            && msg.contains(&format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"enrich\" TO \"{writer}\""
            )),
        "the warning names the write, the privilege and the GRANT: {msg}"
    );
    assert_eq!(container(&done, "a_first")["result"], "success", "{done}");
    assert_eq!(
        rows_of(&s, op, None).await,
        vec![0, 0, 0, 0],
        "the rows written before the failing INSERT were rolled back with it"
    );
    complete_but_not_enriched(&s, op).await;

    s.su()
        .await
        .batch_execute(&format!(
            "GRANT INSERT ON enrich._shop_source_records TO {writer}"
        ))
        .await
        .unwrap();
    rerun_writes_once(&s).await;
}

#[tokio::test]
async fn a_killed_write_of_one_container_keeps_the_other_containers_rows() {
    let s = source("fenrkill", TestPg::shared()).await;
    let writer = linked(&s).await;
    let locker = lock_source_records(&s).await;
    let op = s.start("scan", &["a_first", "z_last"]).await;
    // a_first is written first; its write waits for the lock and is killed there
    let pid = until_write_waits(&s, &writer).await;
    let su = s.su().await;
    let killed: bool = su
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    locker.batch_execute("ROLLBACK").await.unwrap();
    let done = s.api.wait(op).await;
    assert_eq!(done["result"], "success", "{done}");
    let msg = message(&done);
    assert!(
        msg.contains("a_first: enrichment not written") && msg.contains("57P01"),
        "{msg}"
    );
    assert!(!msg.contains("z_last"), "z_last's write worked: {msg}");
    let a = s.id("a_first").await;
    let z = s.id("z_last").await;
    assert_eq!(rows_of(&s, op, Some(a)).await, vec![0, 0, 0, 0]);
    assert_eq!(
        rows_of(&s, op, Some(z)).await,
        vec![1, 1, 0, 0],
        "z_last's scan row and metric are written"
    );
    complete_but_not_enriched(&s, op).await;
    rerun_writes_once(&s).await;
}
