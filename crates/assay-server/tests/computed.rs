//! Computed tables and fields, container settings, global tags and check templates against a real PostgreSQL:
//! definitions checked by the source, fields discovered from the query, profiles and scans reading them like any
//! container, syncs leaving them alone, and the write guards.

mod common;

use assay_testkit::TestPg;
use common::Api;
use serde_json::{Value, json};

async fn setup(prefix: &str) -> (Api, i64, String) {
    let api = Api::start().await;
    let (db, reader, _) = common::shop(prefix).await;
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(&format!(
        "INSERT INTO sales.orders (total, updated_at) SELECT i, now() FROM generate_series(1, 100) i;
         UPDATE sales.orders SET total = -5 WHERE id = 3;
         INSERT INTO sales.customers SELECT i, CASE WHEN i = 2 THEN ' ACME, Inc.' ELSE 'c' || i || '@x.io' END FROM generate_series(1, 20) i;
         GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {reader};"
    ))
    .await
    .unwrap();
    let id = common::checks::source(&api, prefix, &reader, &db).await;
    (api, id, db)
}

async fn run(api: &Api, body: Value) -> Value {
    let op = api.ok("/operations/run", body).await;
    api.wait(op["id"].as_i64().unwrap()).await
}

#[tokio::test]
async fn computed_tables_and_fields_are_profiled_and_scanned() {
    let (api, ds, _) = setup("computed").await;
    // definitions the source rejects never get saved
    let bad = api
        .post(
            "/containers",
            json!({"container_type": "computed_table", "name": "x", "datastore_id": ds,
            "query": "SELECT nope FROM sales.orders"}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body["detail"].as_str().unwrap().contains("nope"),
        "{}",
        bad.body
    );
    let bad = api
        .post(
            "/containers",
            json!({"container_type": "computed_table", "name": "x", "datastore_id": ds,
            "query": "SELECT 1; DROP TABLE sales.orders"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    let r = api
        .post(
            "/containers/validate",
            json!({"container": {"container_type": "computed_table",
        "datastore_id": ds, "query": "SELECT id, total * 2 AS doubled FROM sales.orders"}}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let join = api
        .post(
            "/containers",
            json!({"container_type": "computed_join", "name": "j"}),
        )
        .await;
    assert_eq!(join.status, 422);

    let k = api
        .ok("/containers", json!({"container_type": "computed_table", "name": "big_orders_2x", "datastore_id": ds,
            "query": "SELECT id, total * 2 AS doubled FROM sales.orders WHERE total > 50 OR total < 0",
            "tags": ["finance"]}))
        .await;
    assert_eq!(k["container_type"], "computed_table");
    let kid = k["id"].as_i64().unwrap();
    let fields = api.get(&format!("/containers/{kid}/fields")).await.body;
    let names: Vec<&str> = fields
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, vec!["id", "doubled"]);
    let dup = api
        .post(
            "/containers",
            json!({"container_type": "computed_table", "name": "big_orders_2x", "datastore_id": ds,
            "query": "SELECT 1 AS x"}),
        )
        .await;
    assert_eq!(dup.status, 409);

    // a computed field on a table
    let orders = api
        .get(&format!("/containers/listing?datastore={ds}"))
        .await
        .body;
    let orders = orders
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let cf = api
        .ok("/computed-fields", json!({"container_id": orders, "name": "total_cents", "transformation": "customExpression",
            "source_fields": ["total"], "properties": {"column_expression": "total * 100"}}))
        .await;
    let cf_id = cf["id"].as_i64().unwrap();
    let bad = api
        .post(
            "/computed-fields",
            json!({"container_id": orders, "name": "z", "transformation": "customExpression",
            "properties": {"column_expression": "nope + 1"}}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let bad = api
        .post("/computed-fields", json!({"container_id": orders, "name": "z", "transformation": "soundex", "properties": {}}))
        .await;
    assert_eq!(bad.status, 422);
    let got = api.get(&format!("/containers/{orders}")).await.body;
    assert_eq!(got["computed_fields"][0]["name"], "total_cents", "{got}");

    // checks on the computed table and the computed field, then a profile and a scan
    let neg = api
        .ok("/quality-checks", json!({"container_id": kid, "rule": "notNegative", "fields": ["doubled"], "description": "x"}))
        .await["id"].as_i64().unwrap();
    let cents = api
        .ok(
            "/quality-checks",
            json!({"container_id": orders, "rule": "maxValue", "fields": ["total_cents"],
            "properties": {"value": 5000}, "description": "x"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let p = run(&api, json!({"datastore_id": ds, "type": "profile", "container_names": ["big_orders_2x", "orders"]})).await;
    assert_eq!(p["result"], "success", "{p}");
    let profiles = api
        .get(&format!("/containers/{kid}/field-profiles"))
        .await
        .body;
    let doubled = profiles["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "doubled")
        .unwrap()
        .clone();
    assert_eq!(doubled["min"], json!(-10.0), "{doubled}");
    let op = run(
        &api,
        json!({"datastore_id": ds, "type": "scan", "incremental": false,
        "container_names": ["big_orders_2x", "orders"]}),
    )
    .await;
    assert_eq!(op["result"], "success", "{op}");
    for (check, rows) in [(neg, 1), (cents, 50)] {
        let k = api.get(&format!("/quality-checks/{check}")).await.body;
        assert_eq!(k["is_passing"], false, "{k}");
        let m = api
            .get(&format!("/quality-checks/{check}/metrics"))
            .await
            .body;
        assert_eq!(m["items"][0]["anomalous_records"], rows, "{m}");
    }

    // a sync leaves computed containers and fields alone
    assert_eq!(
        api.sync(ds, json!({"prune": true})).await["result"],
        "success"
    );
    assert_eq!(api.get(&format!("/containers/{kid}")).await.status, 200);
    let fields = api.get(&format!("/containers/{orders}/fields")).await.body;
    let f = fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "total_cents")
        .unwrap()
        .clone();
    assert!(f["deleted_at"].is_null() && f["status"] != "missing", "{f}");

    // PUT: a query that drops a field a check uses needs force_drop_fields
    let r = api
        .put(
            &format!("/containers/{kid}"),
            json!({"container_type": "computed_table", "name": "big_orders_2x",
        "query": "SELECT id FROM sales.orders"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = api.put(&format!("/containers/{kid}"), json!({"container_type": "computed_table", "name": "big_orders_2x",
        "query": "SELECT id, total * 3 AS doubled FROM sales.orders", "description": "tripled now"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["description"], "tripled now");
    let r = api
        .call(
            "PATCH",
            "/containers",
            Some(json!([{"id": kid, "tags": ["a", "b"]}])),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        api.get(&format!("/containers/{kid}")).await.body["global_tags"],
        json!([{"name": "a"}, {"name": "b"}])
    );
    // tables are not deleted through the API; computed ones are
    assert_eq!(
        api.call("DELETE", &format!("/containers/{orders}"), None)
            .await
            .status,
        409
    );
    let r = api
        .put(
            &format!("/computed-fields/{cf_id}"),
            json!({"name": "total_x10", "transformation": "cast",
        "source_fields": ["total"], "properties": {"target_type": "bigint"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        api.call("DELETE", &format!("/computed-fields/{cf_id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        api.call("DELETE", &format!("/containers/{kid}"), None)
            .await
            .status,
        204
    );
    assert_eq!(api.get(&format!("/containers/{kid}")).await.status, 404);
}

#[tokio::test]
async fn global_tags_and_check_templates() {
    let (api, _, _) = setup("tags").await;
    let t = api
        .ok(
            "/global-tags",
            json!({"type": "global", "name": "finance", "color": "#ff0000", "weight_modifier": 3}),
        )
        .await;
    assert_eq!(t["name"], "finance");
    assert_eq!(
        api.post("/global-tags", json!({"name": "finance"}))
            .await
            .status,
        409
    );
    assert_eq!(
        api.post("/global-tags", json!({"name": "x", "weight_modifier": 11}))
            .await
            .status,
        422
    );
    let list = api.get("/global-tags?page=1&size=10").await.body;
    assert_eq!(list["total"], 1);
    assert_eq!(
        api.get("/global-tags/finance").await.body["weight_modifier"],
        3
    );
    assert_eq!(
        api.call("DELETE", "/global-tags/finance", None)
            .await
            .status,
        204
    );
    assert_eq!(api.get("/global-tags/finance").await.status, 404);
    let tpl = api
        .ok(
            "/quality-check-templates",
            json!({"description": "x", "rule": "between", "coverage": 1.0,
            "properties": {"min": 0, "max": 1}, "tags": [], "template_locked": false,
            "additional_metadata": {"from quality check id": "4"}}),
        )
        .await;
    assert!(tpl["id"].is_i64());
    assert_eq!(
        api.post("/quality-check-templates", json!({"rule": "isValidEmail"}))
            .await
            .status,
        422
    );
}

/// A computed join of two tables on one database, read by a profile, and every container materialized into the
/// enrichment datastore; a datastore without enrichment cannot materialize; computed_file is refused with why.
#[tokio::test]
async fn computed_joins_and_materialize() {
    let (api, ds, db) = setup("joinmat").await;
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(
        "CREATE TYPE sales.mood AS ENUM ('ok', 'sad');
         ALTER TABLE sales.customers ADD COLUMN mood sales.mood DEFAULT 'ok';
         ALTER TABLE sales.orders ADD COLUMN customer_id int;
         UPDATE sales.orders SET customer_id = 1 + id % 20;",
    )
    .await
    .unwrap();
    assert_eq!(api.sync(ds, json!({})).await["result"], "success");
    let listing = api
        .get(&format!("/containers/listing?datastore={ds}"))
        .await
        .body;
    let id_of = |n: &str| {
        listing
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (orders, customers) = (id_of("orders"), id_of("customers"));
    let join = |name: &str, extra: Value| {
        let mut b = json!({"container_type": "computed_join", "name": name,
            "left_container_id": orders, "right_container_id": customers,
            "left_join_field_name": "customer_id", "right_join_field_name": "id",
            "select_clause": "left_id AS order_id, left_total AS total, right_email AS email"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    // a key the container does not have, and a clause with a statement separator, are refused by field
    let bad = api
        .post(
            "/containers",
            join("j", json!({"right_join_field_name": "nope"})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body["detail"].as_str().unwrap().contains("nope"),
        "{}",
        bad.body
    );
    let bad = api
        .post(
            "/containers",
            join(
                "j",
                json!({"where_clause": "true; DROP TABLE sales.orders"}),
            ),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let file = api
        .post(
            "/containers",
            json!({"container_type": "computed_file", "name": "f", "datastore_id": ds,
                   "source_container_id": orders, "select_clause": "*"}),
        )
        .await;
    assert_eq!(file.status, 422);
    assert!(
        file.body["detail"]
            .as_str()
            .unwrap()
            .contains("file container")
    );

    let j = api
        .ok(
            "/containers",
            join("order_emails", json!({"where_clause": "left_total > 50"})),
        )
        .await;
    assert_eq!(j["container_type"], "computed_join", "{j}");
    assert_eq!(j["left_container_id"], orders);
    let jid = j["id"].as_i64().unwrap();
    let fields = api.get(&format!("/containers/{jid}/fields")).await.body;
    let names: Vec<&str> = fields
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, vec!["order_id", "total", "email"]);
    let only = api
        .get(&format!(
            "/containers?datastore={ds}&container_type=computed_join"
        ))
        .await
        .body;
    assert_eq!(only["total"], 1, "{only}");
    // a profile reads the join: 50 orders have total > 50
    let p = run(
        &api,
        json!({"type": "profile", "datastore_id": ds, "container_names": ["order_emails"]}),
    )
    .await;
    assert_eq!(p["result"], "success", "{p}");
    let fp = api
        .get(&format!("/containers/{jid}/field-profiles"))
        .await
        .body;
    let email = fp["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "email")
        .unwrap()
        .clone();
    assert_eq!(email["completeness"], 1.0, "{email}");
    // updating a clause recompiles the join
    let u = api
        .put(
            &format!("/containers/{jid}"),
            json!({"where_clause": "left_total > 90"}),
        )
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    assert_eq!(u.body["where_clause"], "left_total > 90");

    // materialize needs an enrichment datastore
    let m = run(&api, json!({"type": "materialize", "datastore_id": ds})).await;
    assert_eq!(m["result"], "failure");
    assert!(m["message"].as_str().unwrap().contains("enrichment"), "{m}");
    let writer = assay_testkit::unique("mwriter");
    TestPg::shared().create_role(&writer, "writerpw").await;
    su.batch_execute(&format!(
        "GRANT USAGE, CREATE ON SCHEMA enrich TO {writer};"
    ))
    .await
    .unwrap();
    let wc = api
        .ok(
            "/connections",
            Api::conn_body("mat-writer", &writer, "writerpw"),
        )
        .await;
    let enr = api
        .ok(
            "/datastores",
            json!({"name": "mat enr", "connection_id": wc["id"], "database": db,
            "schema": "enrich", "enrichment_only": true, "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = api
        .call(
            "PATCH",
            &format!("/datastores/{ds}/enrichment/{enr}?prefix=shop"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = run(
        &api,
        json!({"type": "materialize", "datastore_id": ds, "container_names": ["customers", "order_emails"]}),
    )
    .await;
    assert_eq!(m["result"], "success", "{m}");
    let count = |t: &str| {
        let su = &su;
        let t = t.to_string();
        async move {
            su.query_one(&format!("SELECT count(*) FROM enrich.{t}"), &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("_shop_mat_customers").await, 20);
    assert_eq!(count("_shop_mat_order_emails").await, 10);
    // the enum column arrives as text, other columns keep their type
    let types: Vec<(String, String)> = su
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = 'enrich' AND table_name = '_shop_mat_customers' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        types,
        vec![
            ("id".into(), "integer".into()),
            ("email".into(), "text".into()),
            ("mood".into(), "text".into())
        ]
    );
    // a second run replaces the snapshot; the row limit applies
    let m = run(
        &api,
        json!({"type": "materialize", "datastore_id": ds, "container_names": ["customers"],
               "max_records_per_partition": 5}),
    )
    .await;
    assert_eq!(m["result"], "success", "{m}");
    assert_eq!(count("_shop_mat_customers").await, 5);
    // a table someone else made under that name is never overwritten
    su.batch_execute("CREATE TABLE enrich._shop_mat_orders (x int);")
        .await
        .unwrap();
    let m = run(
        &api,
        json!({"type": "materialize", "datastore_id": ds, "container_names": ["orders"]}),
    )
    .await;
    assert_eq!(m["result"], "failure", "{m}");
    assert!(
        m["status"]["containers"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did not create"),
        "{m}"
    );
}
