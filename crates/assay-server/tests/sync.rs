//! Sync through the API: containers and fields from pg_catalog, stable ids across re-syncs, dropped tables marked
//! or pruned, include filters, operation objects as the CLI polls them, abort, and restart persistence.

mod common;

use assay_testkit::TestPg;
use common::Api;
use serde_json::{Value, json};

async fn source(api: &Api, prefix: &str) -> (i64, String) {
    let (ds, db, _) = source_and_reader(api, prefix).await;
    (ds, db)
}

/// [`source`], and the role the connection reads as.
async fn source_and_reader(api: &Api, prefix: &str) -> (i64, String, String) {
    let (db, reader, _) = common::shop(prefix).await;
    let c = api
        .ok(
            "/connections",
            Api::conn_body(&format!("c-{prefix}"), &reader, "readerpw"),
        )
        .await;
    let ds = api
        .ok("/datastores", json!({"name": format!("ds-{prefix}"), "connection_id": c["id"], "database": db, "schema": "sales", "trigger_sync": false}))
        .await;
    (ds["id"].as_i64().unwrap(), db, reader)
}

/// Waits (10 s at most) until a statement of `reader` like `like` is active on the source.
async fn until_reading(su: &tokio_postgres::Client, reader: &str, like: &str) {
    for _ in 0..1000 {
        let n: i64 = su
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active' \
                 AND query LIKE $2",
                &[&reader, &like],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no statement like {like} became active");
}

async fn containers(api: &Api, ds: i64, extra: &str) -> Vec<Value> {
    api.get(&format!("/containers?datastore={ds}&size=100{extra}"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn by_name<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list:?}"))
}

#[tokio::test]
async fn resync_keeps_ids_marks_dropped_and_restores() {
    let api = Api::start().await;
    let (ds, db) = source(&api, "resync").await;
    let op = api.sync(ds, json!({})).await;
    assert_eq!(op["result"], "success", "{op}");
    assert!(op["message"].is_null());
    assert_eq!(op["status"]["containers_added"], 3);
    let first = containers(&api, ds, "").await;
    let names: Vec<&str> = first.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["big", "customers", "orders"]);
    let orders = by_name(&first, "orders");
    assert_eq!(orders["container_type"], "table");
    assert_eq!(orders["primary_key"], json!(["id"]));
    assert_eq!(orders["incremental_field_name"], "updated_at");
    assert_eq!(orders["incremental_identifier_type"], "last-modified");
    assert_eq!(by_name(&first, "big")["container_type"], "view");
    let cust_fields = api
        .get(&format!(
            "/containers/{}/fields",
            by_name(&first, "customers")["id"]
        ))
        .await
        .body;
    assert_eq!(cust_fields, json!(cust_fields.as_array().unwrap().clone()));
    let f: Vec<(&str, &str)> = cust_fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(f, [("id", "Integral"), ("email", "String")]);
    // customers has no time column and no sequence: commit timestamps (track_commit_timestamp = on)
    assert_eq!(
        by_name(&first, "customers")["incremental_identifier_type"],
        "postgresql"
    );

    // between syncs: a table is added, one dropped, a column added and one dropped
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(
        "DROP VIEW sales.big; CREATE TABLE sales.refunds (id int PRIMARY KEY, at date); \
         ALTER TABLE sales.customers ADD COLUMN country text; ALTER TABLE sales.customers DROP COLUMN email; \
         GRANT SELECT ON sales.refunds TO PUBLIC",
    )
    .await
    .unwrap();
    let op = api.sync(ds, json!({})).await;
    assert_eq!(op["status"]["containers_added"], 1, "{op}");
    assert_eq!(op["status"]["containers_missing"], 1);
    let second = containers(&api, ds, "").await;
    let names: Vec<&str> = second.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["customers", "orders", "refunds"]);
    for n in ["customers", "orders"] {
        assert_eq!(
            by_name(&first, n)["id"],
            by_name(&second, n)["id"],
            "{n} keeps its id"
        );
    }
    let missing = containers(&api, ds, "&archived=only").await;
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["name"], "big");
    assert_eq!(missing[0]["status"], "Inaccessible");
    let fields = api
        .get(&format!(
            "/containers/{}/fields",
            by_name(&second, "customers")["id"]
        ))
        .await
        .body;
    let status: Vec<(&str, &str)> = fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [
            ("id", "active"),
            ("country", "active"),
            ("email", "missing")
        ]
    );

    // the view comes back with its old id
    su.batch_execute("CREATE VIEW sales.big AS SELECT * FROM sales.orders")
        .await
        .unwrap();
    let op = api.sync(ds, json!({})).await;
    assert_eq!(op["status"]["containers_restored"], 1, "{op}");
    let third = containers(&api, ds, "").await;
    assert_eq!(by_name(&third, "big")["id"], by_name(&first, "big")["id"]);

    // include=table only leaves views alone; prune deletes what is gone
    su.batch_execute("DROP VIEW sales.big; DROP TABLE sales.refunds")
        .await
        .unwrap();
    let op = api
        .sync(ds, json!({"include": ["table"], "prune": true}))
        .await;
    assert_eq!(op["status"]["containers_pruned"], 1, "{op}");
    assert_eq!(op["include"], json!(["table"]));
    let all = containers(&api, ds, "&archived=include").await;
    let names: Vec<&str> = all.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["big", "customers", "orders"],
        "the view is untouched by a table-only sync"
    );
    // listing is a bare array
    let listing = api
        .get(&format!("/containers/listing?datastore={ds}"))
        .await
        .body;
    assert!(listing.is_array());
    // the dropped view stays listed: a table-only sync does not look at views
    assert_eq!(listing.as_array().unwrap().len(), 3);
    // recreate gives new ids
    let op = api.sync(ds, json!({"recreate": true})).await;
    assert_eq!(op["result"], "success");
    assert_ne!(
        by_name(&containers(&api, ds, "").await, "orders")["id"],
        by_name(&first, "orders")["id"]
    );
}

#[tokio::test]
async fn operation_objects_and_failures_are_what_the_cli_polls() {
    let api = Api::start().await;
    let (ds, db) = source(&api, "ops").await;
    let r = api
        .post(
            "/operations/run",
            json!({"datastore_id": ds, "type": "sync"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let op = &r.body;
    assert!(op["id"].is_i64());
    assert!(op["end_time"].is_null());
    assert!(op["status"].is_object());
    assert!(op.as_object().unwrap().contains_key("message"));
    let done = api.wait(op["id"].as_i64().unwrap()).await;
    assert_eq!(done["result"], "success");
    assert!(done.as_object().unwrap().contains_key("message"));
    assert!(done["start_time"].is_string() && done["end_time"].is_string());
    // aborting a finished operation returns it unchanged
    let r = api
        .call("PUT", &format!("/operations/abort/{}", done["id"]), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["result"], "success");
    // an empty schema is a warning (success with a message)
    TestPg::shared()
        .superuser(&db)
        .await
        .batch_execute("CREATE SCHEMA empty")
        .await
        .unwrap();
    let conn = api.get(&format!("/datastores/{ds}")).await.body["connection_id"].clone();
    let empty = api.ok("/datastores", json!({"name": "empty", "connection_id": conn, "database": db, "schema": "empty", "trigger_sync": false})).await;
    let op = api.sync(empty["id"].as_i64().unwrap(), json!({})).await;
    assert_eq!(op["result"], "success");
    assert!(
        op["message"].as_str().unwrap().contains("no tables"),
        "{op}"
    );
    // a failing connection fails the operation with the diagnosis
    let bad = api.ok("/datastores", json!({"name": "gone", "connection_id": conn, "database": "no_such_db", "schema": "s", "trigger_sync": false})).await;
    let op = api.sync(bad["id"].as_i64().unwrap(), json!({})).await;
    assert_eq!(op["result"], "failure");
    assert!(op["message"].as_str().unwrap().contains("3D000"), "{op}");
    // bad run requests
    for (body, needle) in [
        (json!({"type": "sync"}), "datastore_id"),
        (json!({"datastore_id": ds, "type": "dance"}), "type"),
        (
            json!({"datastore_id": ds, "type": "scan", "remediation": "append"}),
            "remediation",
        ),
        (
            json!({"datastore_id": ds, "type": "sync", "include": ["table", "file"]}),
            "include",
        ),
    ] {
        let r = api.post("/operations/run", body).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(
            r.body["detail"].as_str().unwrap().contains(needle),
            "{}",
            r.body
        );
    }
    assert_eq!(
        api.post(
            "/operations/run",
            json!({"datastore_id": 98765, "type": "sync"})
        )
        .await
        .status,
        404
    );
    // list: filters and sort
    let list = api
        .get(&format!(
            "/operations?datastore={ds}&operation_type=sync&sort_created=desc&size=1"
        ))
        .await
        .body;
    assert_eq!(list["total"], 1);
    let all = api.get("/operations?sort_created=asc&size=100").await.body;
    let ids: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert_eq!(
        api.get("/operations?result=failure&finished=True")
            .await
            .body["total"],
        1
    );
    assert_eq!(api.get("/operations?finished=false").await.body["total"], 0);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        api.get(&format!("/operations?start_date={today}&end_date={today}"))
            .await
            .body["total"],
        3
    );
    assert_eq!(
        api.get("/operations?start_date=yesterday").await.status,
        422
    );
}

#[tokio::test]
async fn a_queued_operation_can_be_aborted_and_interrupted_runs_fail() {
    let api = Api::start().await;
    let (ds, db, reader) = source_and_reader(&api, "abort").await;
    // the server's one runner is kept busy by a profile of a table that is slow for the reader (its row-level
    // security policy sleeps a millisecond per row), so an operation queued meanwhile stays queued
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(&format!(
        "CREATE TABLE sales.slow_tbl (id int PRIMARY KEY, h text); \
         INSERT INTO sales.slow_tbl SELECT g, md5(g::text) FROM generate_series(1, 30000) g; \
         ALTER TABLE sales.slow_tbl ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY slow_reads ON sales.slow_tbl FOR SELECT USING (pg_sleep(0.001) IS NOT NULL); \
         GRANT SELECT ON sales.slow_tbl TO {reader}; ANALYZE sales.slow_tbl"
    ))
    .await
    .unwrap();
    assert_eq!(api.sync(ds, json!({})).await["result"], "success");
    let busy = api
        .ok(
            "/operations/run",
            json!({"datastore_id": ds, "type": "profile", "container_names": ["slow_tbl"]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    until_reading(&su, &reader, "COPY (SELECT%slow_tbl%").await;
    let queued = api
        .ok(
            "/operations/run",
            json!({"datastore_id": ds, "type": "sync"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let before = api.get(&format!("/operations/{queued}")).await.body;
    assert_eq!(before["result"], "queued", "{before}");
    assert!(before["start_time"].is_null(), "{before}");
    let r = api
        .call("PUT", &format!("/operations/abort/{queued}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["result"], "aborted", "{}", r.body);
    assert!(!r.body["end_time"].is_null(), "{}", r.body);
    // the busy run is aborted too; the runner then passes the queue, and the aborted sync is never started
    api.call("PUT", &format!("/operations/abort/{busy}"), None)
        .await;
    assert_eq!(api.wait(busy).await["result"], "aborted");
    assert_eq!(api.sync(ds, json!({})).await["result"], "success");
    let done = api.get(&format!("/operations/{queued}")).await.body;
    assert_eq!(done["result"], "aborted", "{done}");
    assert_eq!(done["message"], "aborted before it started", "{done}");
    assert!(done["start_time"].is_null(), "{done}");
    // a run whose server died (no heartbeat) is failed by the sweep, never left running
    let store2 = &api.state.store;
    let stuck = store2
        .enqueue_operation("sync", ds, &json!({}), "test", None)
        .await
        .unwrap();
    TestPg::shared()
        .superuser(&api.metadata_db)
        .await
        .execute("UPDATE operations SET result = 'running', start_time = now(), heartbeat = now() - interval '1 hour' WHERE id = $1", &[&stuck.id])
        .await
        .unwrap();
    let failed = store2.fail_interrupted(30.0).await.unwrap();
    assert_eq!(failed, vec![stuck.id]);
    let op = api.get(&format!("/operations/{}", stuck.id)).await.body;
    assert_eq!(op["result"], "failure");
    assert!(
        op["message"]
            .as_str()
            .unwrap()
            .contains("interrupted by restart")
    );
}

#[tokio::test]
async fn a_restart_keeps_connections_datastores_and_operations() {
    let api = Api::start().await;
    let (ds, _) = source(&api, "restart").await;
    assert_eq!(api.sync(ds, json!({})).await["result"], "success");
    // the first server stops before the second starts on the same store
    let (metadata_db, key, old_token) = (api.metadata_db.clone(), api.key, api.token.clone());
    api.stop().await;
    let again = Api::start_on(&metadata_db, key).await;
    let d = again.get(&format!("/datastores/{ds}")).await.body;
    assert_eq!(d["name"], "ds-restart");
    assert_eq!(d["latest_operation"]["result"], "success");
    // the stored password still decrypts: the datastore tests green after the restart
    let t = again
        .post(&format!("/datastores/{ds}/connection"), json!({}))
        .await
        .body;
    assert_eq!(t["connected"], true, "{t}");
    assert_eq!(
        again.get(&format!("/containers?datastore={ds}")).await.body["total"],
        3
    );
    // tokens are JWTs the Qualytics CLI accepts: three segments, an exp at least 7 days ahead
    let parts: Vec<&str> = again.token.split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert!(claims["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp() + 7 * 86400);
    assert!(claims["sub"].is_string());
    // the old server's token works on the new one (same store, same signing key)
    assert_eq!(
        again
            .call_as(Some(&old_token), "GET", "/users/me", None)
            .await
            .status,
        200
    );
    // a token made by POST /tokens works; one with a forged signature does not
    let t = again.ok("/tokens", json!({"name": "ci", "days": 0})).await;
    let tok = t["token"].as_str().unwrap();
    assert_eq!(
        again
            .call_as(Some(tok), "GET", "/users/me", None)
            .await
            .status,
        200
    );
    let forged = format!("{}.{}.{}", parts[0], parts[1], "AAAA");
    assert_eq!(
        again
            .call_as(Some(&forged), "GET", "/users/me", None)
            .await
            .status,
        401
    );
}
