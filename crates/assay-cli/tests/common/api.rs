//! The API over HTTP with the admin token, and a source with a view that sleeps on demand (to catch an
//! operation mid-run).

use super::shop;
use assay_testkit::TestPg;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The API with the admin token.
pub struct Http {
    pub base: String,
    pub token: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: &str, token: &str) -> Http {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Http {
            base: base.to_string(),
            token: token.to_string(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path}: the answer is not JSON: {text}"));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, b) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {b}");
        b
    }

    pub async fn queue(&self, ds: i64, kind: &str) -> i64 {
        self.ok("/operations/run", json!({"datastore_id": ds, "type": kind}))
            .await["id"]
            .as_i64()
            .unwrap()
    }

    /// Waits until the operation has an end time; returns it.
    pub async fn wait(&self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (status, op) = self.get(&format!("/operations/{id}")).await;
            if status == 200 && !op["end_time"].is_null() {
                return op;
            }
            assert!(
                Instant::now() < deadline,
                "operation {id} did not end: {op}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Polls `cond` every 100 ms for up to `secs` seconds; panics with `what` when it never holds.
pub async fn until<F: std::future::Future<Output = bool>>(
    secs: u64,
    what: &str,
    cond: impl Fn() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shop source plus `sales.slow`, a view that sleeps `secs` seconds per read while `sales.ctl.slow` is on.
/// Returns (database, reader).
pub async fn slow_source(pg: &TestPg, secs: u32) -> (String, String) {
    let (db, reader, _) = shop(pg).await;
    pg.superuser(&db)
        .await
        .batch_execute(&format!(
            "CREATE TABLE sales.ctl (slow boolean NOT NULL); INSERT INTO sales.ctl VALUES (false);
             CREATE VIEW sales.slow AS SELECT o.id, o.total FROM sales.orders o,
               (SELECT pg_sleep(CASE WHEN c.slow THEN {secs} ELSE 0 END) FROM sales.ctl c) s;
             GRANT SELECT ON sales.ctl, sales.slow TO {reader};"
        ))
        .await
        .unwrap();
    (db, reader)
}

pub async fn set_slow(pg: &TestPg, db: &str, on: bool) {
    pg.superuser(db)
        .await
        .execute("UPDATE sales.ctl SET slow = $1", &[&on])
        .await
        .unwrap();
}

/// Sessions of the source sleeping in the slow view.
pub async fn sleeping(pg: &TestPg, db: &str) -> i64 {
    pg.superuser("postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep'",
            &[&db],
        )
        .await
        .unwrap()
        .get(0)
}

/// A connection and a synced datastore over the source; returns the datastore id.
pub async fn datastore(http: &Http, pg: &TestPg, db: &str, reader: &str) -> i64 {
    let c = http
        .ok(
            "/connections",
            json!({"type": "postgresql", "name": "restart-src", "host": "127.0.0.1",
                                   "port": pg.port(), "username": reader, "password": "readerpw"}),
        )
        .await;
    let ds = http
        .ok(
            "/datastores",
            json!({"name": "restart", "connection_id": c["id"], "database": db,
                                  "schema": "sales", "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let sync = http.queue(ds, "sync").await;
    assert_eq!(http.wait(sync).await["result"], "success");
    ds
}
