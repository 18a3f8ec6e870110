//! Faults on the source and the enrichment store while operations run, against real PostgreSQL: a killed source
//! backend mid-profile and mid-scan, a source cluster stopped mid-scan, a privilege revoked and a table dropped
//! mid-operation, a killed or unprivileged enrichment write, and lock waits (abort cancels the waiting statement
//! on the server; a role's `lock_timeout` ends the wait with an error that names the lock). Each test checks the
//! operation's end state, the message of the container that failed, that the other containers finished, and
//! that the next run works.
//!
//! The slow container is a real table whose row-level security policy sleeps a millisecond per row for the
//! reader role, so a profile (two page-range partitions) or a scan of it runs for seconds and the fault lands
//! while its statement is active; the tests find that moment in `pg_stat_activity` instead of sleeping.

mod common;
#[path = "faults/enrichment.rs"]
mod enrichment;
#[path = "faults/locks.rs"]
mod locks;
#[path = "faults/source.rs"]
mod source;

use assay_testkit::TestPg;
use common::Api;
use serde_json::{Value, json};
use std::time::Duration;

/// Rows of the slow table; each costs the reader a millisecond.
pub(crate) const SLOW_ROWS: i64 = 3000;

/// A source datastore over `sales` with three tables synced in this order: `a_first` (500 rows, 3 negative
/// values of `v`), `m_slow` (slow for the reader) and `z_last` (300 rows).
pub(crate) struct Src {
    pub api: Api,
    pub ds: i64,
    pub db: String,
    pub reader: String,
    pub pg: &'static TestPg,
    /// The reader's connection.
    pub conn: i64,
}

pub(crate) async fn source(prefix: &str, pg: &'static TestPg) -> Src {
    source_with(prefix, pg, json!({})).await
}

/// [`source`] with the connection's `parameters` (e.g. an sslmode).
pub(crate) async fn source_with(prefix: &str, pg: &'static TestPg, parameters: Value) -> Src {
    let api = Api::start().await;
    let db = pg.create_database(prefix).await;
    let reader = assay_testkit::unique("reader");
    pg.create_role(&reader, "readerpw").await;
    let su = pg.superuser(&db).await;
    su.batch_execute(&format!(
        "CREATE SCHEMA sales;
         CREATE TABLE sales.a_first (id int PRIMARY KEY, v int);
         INSERT INTO sales.a_first SELECT i, CASE WHEN i % 200 = 0 OR i = 1 THEN -i ELSE i END
           FROM generate_series(1, 500) i;
         CREATE TABLE sales.m_slow (id int PRIMARY KEY, h text);
         INSERT INTO sales.m_slow SELECT i, md5(i::text) FROM generate_series(1, {SLOW_ROWS}) i;
         ALTER TABLE sales.m_slow ENABLE ROW LEVEL SECURITY;
         CREATE POLICY slow_reads ON sales.m_slow FOR SELECT USING (pg_sleep(0.001) IS NOT NULL);
         CREATE TABLE sales.z_last (id int PRIMARY KEY, note text);
         INSERT INTO sales.z_last SELECT i, 'n' || i FROM generate_series(1, 300) i;
         GRANT USAGE ON SCHEMA sales TO {reader};
         GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {reader};
         ANALYZE;"
    ))
    .await
    .unwrap();
    let conn = api
        .ok(
            "/connections",
            json!({"type": "postgresql", "name": format!("c-{prefix}"), "host": "127.0.0.1",
                   "port": pg.port(), "username": reader, "password": "readerpw",
                   "parameters": parameters}),
        )
        .await;
    let ds = api
        .ok(
            "/datastores",
            json!({"name": prefix, "connection_id": conn["id"], "database": db, "schema": "sales",
                   "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let synced = api.sync(ds, json!({})).await;
    assert_eq!(synced["result"], "success", "{synced}");
    Src {
        api,
        ds,
        db,
        reader,
        pg,
        conn: conn["id"].as_i64().unwrap(),
    }
}

impl Src {
    pub async fn su(&self) -> tokio_postgres::Client {
        self.pg.superuser(&self.db).await
    }

    pub async fn id(&self, name: &str) -> i64 {
        let list = self
            .api
            .get(&format!("/containers/listing?datastore={}", self.ds))
            .await
            .body;
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("container {name} in {list}"))["id"]
            .as_i64()
            .unwrap()
    }

    /// Queues an operation of the three tables (or `names`) and returns its id without waiting.
    pub async fn start(&self, kind: &str, names: &[&str]) -> i64 {
        let op = self
            .api
            .ok(
                "/operations/run",
                json!({"datastore_id": self.ds, "type": kind, "incremental": false,
                       "container_names": names}),
            )
            .await;
        op["id"].as_i64().unwrap()
    }

    pub async fn run(&self, kind: &str, names: &[&str]) -> Value {
        let id = self.start(kind, names).await;
        self.api.wait(id).await
    }

    /// Waits until one of the reader's statements on the source matching `like` is active; returns their count.
    pub async fn until_active(&self, like: &str) -> i64 {
        let su = self.su().await;
        for _ in 0..1000 {
            let n: i64 = su
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active' \
                     AND query LIKE $2",
                    &[&self.reader, &like],
                )
                .await
                .unwrap()
                .get(0);
            if n > 0 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no statement like {like} became active");
    }

    /// Terminates the reader's active backends running a statement like `like`; returns how many.
    pub async fn kill(&self, like: &str) -> i64 {
        self.su()
            .await
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1 \
                 AND state = 'active' AND query LIKE $2",
                &[&self.reader, &like],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// The scans recorded for a container by operation `op`.
    pub async fn scans_of(&self, container: &str, op: i64) -> Vec<Value> {
        let id = self.id(container).await;
        let scans = self
            .api
            .get(&format!("/containers/{id}/scans?size=100"))
            .await
            .body;
        scans["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{scans}"))
            .iter()
            .filter(|s| operation_of(s) == Some(op))
            .cloned()
            .collect()
    }

    /// The profiles of a container taken by operation `op`.
    pub async fn profiles_of(&self, container: &str, op: i64) -> Vec<Value> {
        let id = self.id(container).await;
        let list = self
            .api
            .get(&format!("/containers/{id}/profiles?size=100"))
            .await
            .body;
        list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{list}"))
            .iter()
            .filter(|s| operation_of(s) == Some(op))
            .cloned()
            .collect()
    }
}

fn operation_of(v: &Value) -> Option<i64> {
    v["operation_id"]
        .as_i64()
        .or_else(|| v["operation"]["id"].as_i64())
}

/// The per-container result of an operation.
pub(crate) fn container<'a>(op: &'a Value, name: &str) -> &'a Value {
    op["status"]["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("{op}"))
        .iter()
        .find(|c| c["container"]["name"] == name)
        .unwrap_or_else(|| panic!("no result for {name}: {op}"))
}

pub(crate) fn message(v: &Value) -> String {
    v["message"].as_str().unwrap_or_default().to_string()
}
