//! Lock waits on the source never hang an operation: every source session gets a statement and a lock timeout
//! (Assay's defaults, or the role's own), an abort cancels a profile's or a scan's statement that waits for an
//! ACCESS EXCLUSIVE lock on the server, a sync reads the catalog while the table is locked, and a role's
//! `lock_timeout` ends the wait with an error that names the lock and the way out.

use super::common::checks;
use super::{Src, container, message, source, source_with};
use assay_postgres::Endpoint;
use assay_postgres::connect::{DEFAULT_LOCK_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT};
use assay_testkit::TestPg;
use serde_json::json;
use std::time::Duration;

/// A superuser session holding ACCESS EXCLUSIVE on `sales.<table>` in an open transaction.
async fn lock(s: &Src, table: &str) -> tokio_postgres::Client {
    let (locker, conn) = tokio_postgres::connect(&s.pg.superuser_url(&s.db), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE sales.{table} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    locker
}

/// Waits until a session of the reader waits for a lock; returns its pid.
async fn until_waiting(s: &Src) -> i32 {
    let su = s.su().await;
    for _ in 0..1000 {
        if let Some(r) = su
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'",
                &[&s.reader],
            )
            .await
            .unwrap()
        {
            return r.get(0);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no session of the reader waited for the lock");
}

/// Polls (bounded) until session `pid` no longer waits for a lock; panics if it still does after 10 s.
async fn until_not_waiting(s: &Src, pid: i32) {
    let su = s.su().await;
    for _ in 0..200 {
        let n: i64 = su
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "session {pid} still waits for the lock after the abort: the statement was not cancelled"
    );
}

/// What a source session of the connection has for `statement_timeout` and `lock_timeout`.
async fn session_timeouts(s: &Src) -> (String, String) {
    let conn = s.api.state.store.connection(s.conn).await.unwrap();
    let params = Endpoint {
        connection: &conn.spec,
        database: &s.db,
    }
    .resolve(&s.api.state.resolver)
    .await
    .unwrap();
    let client = params.connect().await.unwrap();
    let st: String = client
        .query_one("SELECT current_setting('statement_timeout')", &[])
        .await
        .unwrap()
        .get(0);
    let lt: String = client
        .query_one("SELECT current_setting('lock_timeout')", &[])
        .await
        .unwrap()
        .get(0);
    (st, lt)
}

#[tokio::test]
async fn abort_cancels_lock_waits_on_the_server_and_sync_does_not_wait() {
    // over TLS, so the cancel request has to speak TLS too
    let s = source_with(
        "flockabort",
        TestPg::shared(),
        json!({"sslmode": "require"}),
    )
    .await;
    let a = s.id("a_first").await;
    checks::create(&s.api, a, "notNegative", &["v"], json!({})).await;
    // a computed table over the locked table: describing its query waits for the lock too
    let computed = s
        .api
        .ok(
            "/containers",
            json!({"container_type": "computed_table", "name": "a_copy", "datastore_id": s.ds,
                   "query": "SELECT id, v FROM sales.a_first"}),
        )
        .await;
    let c = computed["id"].as_i64().unwrap();
    checks::create(&s.api, c, "notNegative", &["v"], json!({})).await;
    let locker = lock(&s, "a_first").await;

    // the catalog is read while the table is locked
    let synced = s.api.sync(s.ds, json!({})).await;
    assert_eq!(synced["result"], "success", "{synced}");
    assert_eq!(synced["status"]["containers_analyzed"], 3, "{synced}");

    for (kind, name) in [
        ("profile", "a_first"),
        ("scan", "a_first"),
        ("profile", "a_copy"),
        ("scan", "a_copy"),
    ] {
        let op = s.start(kind, &[name]).await;
        let pid = until_waiting(&s).await;
        let r = s
            .api
            .call("PUT", &format!("/operations/abort/{op}"), None)
            .await;
        assert_eq!(r.status, 200, "{kind}: {}", r.body);
        let done = s.api.wait(op).await;
        assert_eq!(done["result"], "aborted", "{kind}: {done}");
        assert_eq!(
            container(&done, name)["result"],
            "aborted",
            "{kind} {name}: {done}"
        );
        until_not_waiting(&s, pid).await;
        assert!(
            s.profiles_of(name, op).await.is_empty(),
            "{kind} {name}: no profile from the aborted operation"
        );
        assert!(
            s.scans_of(name, op)
                .await
                .iter()
                .all(|r| r["result"] == "aborted"),
            "{kind} {name}: no scan result from the aborted operation"
        );
        let id = s.id(name).await;
        assert!(
            checks::anomalies(&s.api, id, &format!("&operation={op}&archived=include"))
                .await
                .is_empty()
        );
    }

    locker.batch_execute("ROLLBACK").await.unwrap();
    for kind in ["profile", "scan"] {
        let done = s.run(kind, &["a_first", "a_copy"]).await;
        assert_eq!(done["result"], "success", "{kind}: {done}");
        assert!(done["message"].is_null(), "{kind}: {done}");
    }
}

#[tokio::test]
async fn sessions_get_timeouts_and_a_roles_lock_timeout_names_the_lock() {
    let s = source("flocktimeout", TestPg::shared()).await;
    assert_eq!(
        session_timeouts(&s).await,
        (
            DEFAULT_STATEMENT_TIMEOUT.to_string(),
            DEFAULT_LOCK_TIMEOUT.to_string()
        ),
        "a role without settings gets Assay's timeouts"
    );
    s.su()
        .await
        .batch_execute(&format!(
            "ALTER ROLE {} SET lock_timeout = '1s'; ALTER ROLE {} SET statement_timeout = '10min'",
            s.reader, s.reader
        ))
        .await
        .unwrap();
    assert_eq!(
        session_timeouts(&s).await,
        ("10min".to_string(), "1s".to_string()),
        "the role's own settings win"
    );
    let a = s.id("a_first").await;
    checks::create(&s.api, a, "notNegative", &["v"], json!({})).await;
    let locker = lock(&s, "a_first").await;
    for kind in ["profile", "scan"] {
        let done = s.run(kind, &["a_first", "z_last"]).await;
        assert_eq!(done["result"], "success", "{kind}: {done}");
        let failed = container(&done, "a_first");
        assert_eq!(failed["result"], "failure", "{kind}: {done}");
        let msg = message(failed);
        assert!(
            msg.contains("55P03")
                && msg.contains("lock timeout")
                && msg.contains("another session holds a lock")
                && msg.contains("pg_locks")
                && msg.contains("lock_timeout"),
            "{kind}: the message names the lock wait, how to find the holder and the setting: {msg}"
        );
        assert!(
            message(&done).contains("failed containers: a_first"),
            "{done}"
        );
        assert_eq!(
            container(&done, "z_last")["result"],
            "success",
            "{kind}: {done}"
        );
    }
    locker.batch_execute("ROLLBACK").await.unwrap();
    for kind in ["profile", "scan"] {
        let done = s.run(kind, &["a_first"]).await;
        assert_eq!(done["result"], "success", "{kind}: {done}");
        assert!(done["message"].is_null(), "{kind}: {done}");
    }

    // the role's statement_timeout ends a read that runs too long, with the setting named
    s.su()
        .await
        .batch_execute(&format!(
            "ALTER ROLE {} SET statement_timeout = '300ms'",
            s.reader
        ))
        .await
        .unwrap();
    for kind in ["profile", "scan"] {
        let done = s.run(kind, &["m_slow", "z_last"]).await;
        assert_eq!(done["result"], "success", "{kind}: {done}");
        let failed = container(&done, "m_slow");
        assert_eq!(failed["result"], "failure", "{kind}: {done}");
        let msg = message(failed);
        assert!(
            msg.contains("57014")
                && msg.contains("statement timeout")
                && msg.contains("raise statement_timeout"),
            "{kind}: {msg}"
        );
        assert_eq!(
            container(&done, "z_last")["result"],
            "success",
            "{kind}: {done}"
        );
    }
}
