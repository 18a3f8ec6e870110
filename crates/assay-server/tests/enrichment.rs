//! Scans writing into a linked enrichment datastore (the seed's read-write role on its own schema): the four
//! tables, source_enriched anomalies, remediation append/overwrite, a killed enrichment backend mid-write (no
//! partial rows, anomalies complete, the next scan writes once), exports, enrichment tables as containers,
//! unlink keeping the tables, and dropping exactly Assay's tables.

mod common;

use assay_testkit::TestPg;
use common::Api;
use serde_json::{Value, json};

struct Env {
    api: Api,
    src: i64,
    enr: i64,
    db: String,
    writer: String,
}

async fn setup(prefix: &str) -> Env {
    let api = Api::start().await;
    let (db, reader, writer) = common::shop(prefix).await;
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(&format!(
        "CREATE TABLE sales.lines (id int PRIMARY KEY, qty int, note text);
         INSERT INTO sales.lines SELECT i, CASE WHEN i % 50 = 0 THEN -1 ELSE i % 7 END, 'n' || i FROM generate_series(1, 200) i;
         GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {reader};"
    ))
    .await
    .unwrap();
    let rc = api
        .ok(
            "/connections",
            Api::conn_body(&format!("r-{prefix}"), &reader, "readerpw"),
        )
        .await;
    let wc = api
        .ok(
            "/connections",
            Api::conn_body(&format!("w-{prefix}"), &writer, "writerpw"),
        )
        .await;
    let src = api
        .ok(
            "/datastores",
            json!({"name": format!("{prefix} src"), "connection_id": rc["id"], "database": db,
            "schema": "sales", "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let enr = api
        .ok(
            "/datastores",
            json!({"name": format!("{prefix} enr"), "connection_id": wc["id"], "database": db,
            "schema": "enrich", "enrichment_only": true, "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = api
        .call(
            "PATCH",
            &format!("/datastores/{src}/enrichment/{enr}?prefix=shop"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(api.sync(src, json!({})).await["result"], "success");
    Env {
        api,
        src,
        enr,
        db,
        writer,
    }
}

async fn run(api: &Api, ds: i64, body: Value) -> Value {
    let mut b = json!({"datastore_id": ds, "type": "scan", "incremental": false, "container_names": ["lines"]});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    let op = api.ok("/operations/run", b).await;
    api.wait(op["id"].as_i64().unwrap()).await
}

async fn lines_id(api: &Api, ds: i64) -> i64 {
    let list = api
        .get(&format!("/containers/listing?datastore={ds}"))
        .await
        .body;
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lines")
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn n(su: &tokio_postgres::Client, sql: &str, op: i64) -> i64 {
    su.query_one(sql, &[&op]).await.unwrap().get(0)
}

#[tokio::test]
async fn scans_write_the_enrichment_tables_and_remediation() {
    let e = setup("enrscan").await;
    let api = &e.api;
    let lines = lines_id(api, e.src).await;
    let neg = api
        .ok(
            "/quality-checks",
            json!({"container_id": lines, "rule": "notNegative", "fields": ["qty"],
            "description": "qty is never negative", "tags": ["stock"]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    api.ok(
        "/quality-checks",
        json!({"container_id": lines, "rule": "notNull", "fields": ["note"], "description": "x"}),
    )
    .await;
    let op = run(api, e.src, json!({})).await;
    assert_eq!(op["result"], "success", "{op}");
    assert!(op["message"].is_null(), "{op}");
    let id = op["id"].as_i64().unwrap();
    let su = TestPg::shared().superuser(&e.db).await;
    assert_eq!(n(&su, "SELECT count(*) FROM enrich._shop_scan_operations WHERE operation_id = $1 AND records_processed = 200", id).await, 1);
    assert_eq!(
        n(
            &su,
            "SELECT count(*) FROM enrich._shop_check_metrics WHERE operation_id = $1",
            id
        )
        .await,
        2
    );
    assert_eq!(
        n(&su, "SELECT count(*) FROM enrich._shop_check_metrics WHERE operation_id = $1 AND assertion_result = 'failed' AND anomalous_records_count = 4", id).await,
        1
    );
    // 4 offending rows, each a record anomaly with one failed check and its row
    assert_eq!(n(&su, "SELECT count(*) FROM enrich._shop_failed_checks WHERE operation_id = $1 AND quality_check_rule_type = 'notNegative' AND quality_check_tags = 'stock'", id).await, 4);
    assert_eq!(n(&su, "SELECT count(*) FROM enrich._shop_source_records WHERE operation_id = $1 AND (record::jsonb ->> 'qty')::int = -1", id).await, 4);
    let anomalies = api.get(&format!("/anomalies?container={lines}")).await.body;
    let items = anomalies["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    for a in items {
        assert_eq!(a["source_enriched"], true, "{a}");
        let uuid = a["uuid"].as_str().unwrap();
        let k: i64 = su
            .query_one("SELECT count(*) FROM enrich._shop_failed_checks WHERE anomaly_uuid = $1 AND quality_check_id = $2", &[&uuid, &neg])
            .await
            .unwrap()
            .get(0);
        assert_eq!(k, 1, "the anomaly {uuid} is in the enrichment store");
        let here = api
            .get(&format!("/anomalies/{}/source-records", a["id"]))
            .await
            .body;
        let there = api
            .get(&format!(
                "/anomalies/{}/source-records?source=enrichment",
                a["id"]
            ))
            .await
            .body;
        assert_eq!(there["source"], "enrichment");
        assert_eq!(
            here["items"], there["items"],
            "the enrichment store holds the same rows"
        );
    }

    // remediation: append accumulates per scan, overwrite keeps the latest
    let r = api
        .put(
            &format!("/datastores/{}", e.src),
            json!({"enrichment_remediation_strategy": "append"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    run(api, e.src, json!({})).await;
    run(api, e.src, json!({})).await;
    let table = format!("enrich._shop_remediation_{lines}");
    let rows: i64 = su
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 8, "two scans appended 4 rows each");
    let typed: String = su
        .query_one(
            &format!("SELECT pg_typeof(qty)::text FROM {table} LIMIT 1"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        typed, "integer",
        "remediation columns keep the source types"
    );
    api.put(
        &format!("/datastores/{}", e.src),
        json!({"enrichment_remediation_strategy": "overwrite"}),
    )
    .await;
    run(api, e.src, json!({})).await;
    let rows: i64 = su
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 4);

    // exports replace their table each time
    let r = api
        .post(&format!("/export/checks?datastore={}", e.src), json!(null))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let done = api.wait(r.body["id"].as_i64().unwrap()).await;
    assert_eq!(done["result"], "success", "{done}");
    let checks: i64 = su
        .query_one("SELECT count(*) FROM enrich._shop_export_checks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(checks, 2);
    for asset in ["anomalies", "profiles"] {
        let op = api
            .ok(
                "/operations/run",
                json!({"datastore_id": e.src, "type": "export", "asset_type": asset}),
            )
            .await;
        assert_eq!(
            api.wait(op["id"].as_i64().unwrap()).await["result"],
            "success",
            "{asset}"
        );
    }
    let anomalies: i64 = su
        .query_one("SELECT count(*) FROM enrich._shop_export_anomalies", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(anomalies, 4);
    let r = api
        .post(
            &format!("/export/check-templates?enrich_datastore_id={}", e.enr),
            json!(null),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api
        .post(
            "/operations/run",
            json!({"datastore_id": e.src, "type": "export", "asset_type": "nope"}),
        )
        .await;
    assert_eq!(r.status, 422);

    // the enrichment tables are containers of the enrichment datastore after a sync
    assert_eq!(api.sync(e.enr, json!({})).await["result"], "success");
    let listed = api
        .get(&format!("/containers/listing?datastore={}", e.enr))
        .await
        .body;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for t in [
        "_shop_scan_operations",
        "_shop_failed_checks",
        "_shop_source_records",
        "_shop_check_metrics",
    ] {
        assert!(names.contains(&t), "{t} in {names:?}");
    }

    // unlink keeps the tables; relinking resumes; drop removes exactly Assay's tables
    su.batch_execute(&format!(
        "SET ROLE {}; CREATE TABLE enrich._shop_notes (x int); RESET ROLE",
        e.writer
    ))
    .await
    .unwrap();
    assert_eq!(
        api.call("DELETE", &format!("/datastores/{}/enrichment", e.src), None)
            .await
            .status,
        204
    );
    let ds = api.get(&format!("/datastores/{}", e.src)).await.body;
    assert_eq!(ds["enrichment_remediation_strategy"], "none");
    let listed = api
        .get(&format!(
            "/datastores/{}/enrichment-tables?prefix=shop",
            e.enr
        ))
        .await
        .body;
    assert!(listed["tables"].as_array().unwrap().len() >= 8, "{listed}");
    api.call(
        "PATCH",
        &format!("/datastores/{}/enrichment/{}?prefix=shop", e.src, e.enr),
        None,
    )
    .await;
    let op = run(api, e.src, json!({})).await;
    let id = op["id"].as_i64().unwrap();
    assert_eq!(
        n(
            &su,
            "SELECT count(*) FROM enrich._shop_scan_operations WHERE operation_id = $1",
            id
        )
        .await,
        1
    );
    let r = api
        .call(
            "DELETE",
            &format!("/datastores/{}/enrichment-tables?prefix=shop", e.enr),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let left: Vec<String> = su
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'enrich' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        left,
        vec!["_shop_notes".to_string()],
        "only the table Assay did not create is left"
    );
}

#[tokio::test]
async fn a_killed_enrichment_backend_leaves_no_partial_rows() {
    let e = setup("enrkill").await;
    let api = &e.api;
    let lines = lines_id(api, e.src).await;
    api.ok("/quality-checks", json!({"container_id": lines, "rule": "notNegative", "fields": ["qty"], "description": "x"}))
        .await;
    // a first scan creates the tables
    assert_eq!(run(api, e.src, json!({})).await["result"], "success");
    let su = TestPg::shared().superuser(&e.db).await;
    // hold a lock on the last table written, so the next write waits inside its transaction
    let (mut locker, conn) = tokio_postgres::connect(
        &TestPg::shared().superuser_url(&e.db),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE enrich._shop_source_records IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let op = api
        .ok(
            "/operations/run",
            json!({"datastore_id": e.src, "type": "scan", "incremental": false,
        "container_names": ["lines"]}),
        )
        .await;
    let id = op["id"].as_i64().unwrap();
    let mut killed: i64 = 0;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        killed = su
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'",
                &[&e.writer],
            )
            .await
            .unwrap()
            .get(0);
        if killed > 0 {
            break;
        }
    }
    assert_eq!(killed, 1, "the enrichment write was waiting and got killed");
    tx.rollback().await.unwrap();
    let done = api.wait(id).await;
    assert_eq!(
        done["result"], "success",
        "the scan itself succeeded: {done}"
    );
    assert!(
        done["message"]
            .as_str()
            .unwrap()
            .contains("enrichment not written"),
        "{done}"
    );
    for t in [
        "_shop_scan_operations",
        "_shop_check_metrics",
        "_shop_failed_checks",
        "_shop_source_records",
    ] {
        assert_eq!(
            n(
                &su,
                &format!("SELECT count(*) FROM enrich.{t} WHERE operation_id = $1"),
                id
            )
            .await,
            0,
            "{t}"
        );
    }
    // the anomalies of the scan are complete in the metadata store, marked as not enriched
    let a = api
        .get(&format!("/anomalies?operation={id}&archived=include"))
        .await
        .body;
    let items = a["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{a}");
    assert!(items.iter().all(
        |x| x["source_enriched"] == false && !x["failed_checks"].as_array().unwrap().is_empty()
    ));
    // the next scan writes its rows once
    let op = run(api, e.src, json!({})).await;
    let id = op["id"].as_i64().unwrap();
    assert!(op["message"].is_null(), "{op}");
    assert_eq!(
        n(
            &su,
            "SELECT count(*) FROM enrich._shop_scan_operations WHERE operation_id = $1",
            id
        )
        .await,
        1
    );
    assert_eq!(
        n(
            &su,
            "SELECT count(*) FROM enrich._shop_source_records WHERE operation_id = $1",
            id
        )
        .await,
        4
    );
}
