//! Quality checks, scans and anomalies against a real PostgreSQL with the seed's read-only role: every supported
//! rule type passing and failing on known data, validation of definitions (catalogue, fields, planner), planted
//! defects found after a profile, record vs shape anomalies, duplicates and auto-resolve on rescans, invalid
//! checks, incremental scans and the expected-schema stop.

mod common;

use assay_testkit::TestPg;
use common::Api;
use serde_json::{Value, json};

async fn setup(prefix: &str, ddl: &str) -> (Api, i64, String) {
    let api = Api::start().await;
    let (db, reader, _) = common::shop(prefix).await;
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(ddl).await.unwrap();
    su.batch_execute(&format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {reader}; ANALYZE"
    ))
    .await
    .unwrap();
    let c = api
        .ok(
            "/connections",
            Api::conn_body(&format!("c-{prefix}"), &reader, "readerpw"),
        )
        .await;
    let ds = api
        .ok("/datastores", json!({"name": prefix, "connection_id": c["id"], "database": db, "schema": "sales", "trigger_sync": false}))
        .await;
    let id = ds["id"].as_i64().unwrap();
    assert_eq!(api.sync(id, json!({})).await["result"], "success");
    (api, id, db)
}

async fn run(api: &Api, ds: i64, kind: &str, extra: Value) -> Value {
    let mut body = json!({"datastore_id": ds, "type": kind});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let op = api.ok("/operations/run", body).await;
    api.wait(op["id"].as_i64().unwrap()).await
}

async fn container_id(api: &Api, ds: i64, name: &str) -> i64 {
    let list = api
        .get(&format!("/containers/listing?datastore={ds}"))
        .await
        .body;
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn create(api: &Api, container: i64, rule: &str, fields: &[&str], props: Value) -> i64 {
    let r = api
        .post(
            "/quality-checks",
            json!({"container_id": container, "rule": rule, "fields": fields,
            "description": format!("{rule} on {fields:?}"), "properties": props}),
        )
        .await;
    assert_eq!(r.status, 200, "{rule} {fields:?}: {}", r.body);
    assert_eq!(r.body["rule_type"], rule);
    r.body["id"].as_i64().unwrap()
}

async fn anomalies(api: &Api, container: i64, extra: &str) -> Vec<Value> {
    let v = api
        .get(&format!(
            "/anomalies?container={container}&size=1000{extra}"
        ))
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    v.body["items"].as_array().unwrap().clone()
}

const ITEMS: &str = "
CREATE TABLE sales.items (id int, code text, qty int, price numeric, ship date, at timestamptz, email text,
                          note text, cust int, gone text);
INSERT INTO sales.items VALUES
 (1, 'A', 1, 10.0, '2024-01-01', '2024-01-01 10:00+00', 'a@x.io', 'https://x.io/p', 1, NULL),
 (2, 'B', 2, 20.0, '2024-01-02', '2024-01-02 10:00+00', 'b@x.io', '123-45-6789', 2, NULL),
 (3, 'C', 3, 30.0, '2024-01-03', '2024-01-03 10:00+00', 'c@x.io', '4111 1111 1111 1111', 3, NULL),
 (4, 'D', 4, 40.0, '2024-01-04', '2024-01-04 10:00+00', 'd@x.io', '42', 3, NULL),
 (5, 'E', 5, 50.0, '2024-01-05', '2024-01-05 10:00+00', 'e@x.io', '3.5', 1, NULL);
CREATE TABLE sales.custs (id int PRIMARY KEY, name text);
INSERT INTO sales.custs VALUES (1, 'x'), (2, 'y'), (3, 'z');
CREATE TABLE sales.items_copy AS SELECT * FROM sales.items;
";

#[tokio::test]
async fn every_rule_passes_and_fails_on_known_data() {
    let (api, ds, _) = setup("rules", ITEMS).await;
    let items = container_id(&api, ds, "items").await;
    let custs = container_id(&api, ds, "custs").await;
    let copy = container_id(&api, ds, "items_copy").await;
    let ms_10y = 10_i64 * 365 * 86_400_000;
    // (rule, fields, properties, expected to pass)
    let cases: Vec<(&str, Vec<&str>, Value, bool)> = vec![
        ("notNull", vec!["id", "code"], json!({}), true),
        ("notNull", vec!["gone"], json!({}), false),
        ("anyNotNull", vec!["gone", "id"], json!({}), true),
        ("anyNotNull", vec!["gone"], json!({}), false),
        ("notEmpty", vec!["code"], json!({}), true),
        ("notNegative", vec!["qty"], json!({}), true),
        ("positive", vec!["qty"], json!({}), true),
        ("greaterThan", vec!["qty"], json!({"value": 0}), true),
        ("greaterThan", vec!["qty"], json!({"value": 1}), false),
        (
            "greaterThan",
            vec!["qty"],
            json!({"value": 1, "inclusive": true}),
            true,
        ),
        ("lessThan", vec!["qty"], json!({"value": 3}), false),
        (
            "between",
            vec!["price"],
            json!({"min": 10, "max": 50}),
            true,
        ),
        (
            "between",
            vec!["price"],
            json!({"min": 10, "max": 50, "inclusive_max": false}),
            false,
        ),
        (
            "between",
            vec!["price"],
            json!({"min": 10, "max": 40}),
            false,
        ),
        ("minValue", vec!["qty"], json!({"value": 1}), true),
        ("maxValue", vec!["qty"], json!({"value": 4}), false),
        ("equalTo", vec!["qty"], json!({"value": 3}), false),
        ("minLength", vec!["code"], json!({"value": 1}), true),
        ("maxLength", vec!["note"], json!({"value": 5}), false),
        (
            "matchesPattern",
            vec!["code"],
            json!({"pattern": "^[A-E]$"}),
            true,
        ),
        (
            "matchesPattern",
            vec!["code"],
            json!({"pattern": "^[A-C]$"}),
            false,
        ),
        ("containsEmail", vec!["email"], json!({}), true),
        ("containsUrl", vec!["note"], json!({}), false),
        (
            "containsSocialSecurityNumber",
            vec!["note"],
            json!({}),
            false,
        ),
        ("containsCreditCard", vec!["note"], json!({}), false),
        ("isCreditCard", vec!["note"], json!({}), false),
        (
            "isType",
            vec!["code"],
            json!({"field_type": "String"}),
            true,
        ),
        (
            "isType",
            vec!["note"],
            json!({"field_type": "Fractional"}),
            false,
        ),
        (
            "expectedValues",
            vec!["code"],
            json!({"list": ["A", "B", "C", "D", "E"]}),
            true,
        ),
        (
            "expectedValues",
            vec!["qty"],
            json!({"list": [1, 2, 3, 4, 5]}),
            true,
        ),
        (
            "expectedValues",
            vec!["code"],
            json!({"list": ["A", "B"]}),
            false,
        ),
        (
            "requiredValues",
            vec!["code"],
            json!({"list": ["A", "E"]}),
            true,
        ),
        (
            "requiredValues",
            vec!["code"],
            json!({"list": ["A", "Z"]}),
            false,
        ),
        (
            "afterDateTime",
            vec!["at"],
            json!({"datetime": "2023-12-31T00:00:00Z"}),
            true,
        ),
        (
            "beforeDateTime",
            vec!["at"],
            json!({"datetime": "2024-01-03T00:00:00Z"}),
            false,
        ),
        (
            "betweenTimes",
            vec!["ship"],
            json!({"min_time": "2024-01-01", "max_time": "2024-01-05"}),
            true,
        ),
        (
            "betweenTimes",
            vec!["ship"],
            json!({"min_time": "2024-01-02", "max_time": "2024-01-05"}),
            false,
        ),
        ("notFuture", vec!["at"], json!({}), true),
        (
            "satisfiesExpression",
            vec![],
            json!({"expression": "price = qty * 10"}),
            true,
        ),
        (
            "satisfiesExpression",
            vec![],
            json!({"expression": "qty < 3"}),
            false,
        ),
        (
            "greaterThanField",
            vec!["price"],
            json!({"field_name": "qty"}),
            true,
        ),
        (
            "lessThanField",
            vec!["price"],
            json!({"field_name": "qty"}),
            false,
        ),
        (
            "equalToField",
            vec!["qty"],
            json!({"field_name": "id"}),
            true,
        ),
        (
            "predictedBy",
            vec!["price"],
            json!({"expression": "qty * 10", "tolerance": 0.001}),
            true,
        ),
        (
            "existsIn",
            vec!["cust"],
            json!({"field_name": "id", "ref_container_id": custs}),
            true,
        ),
        (
            "notExistsIn",
            vec!["cust"],
            json!({"field_name": "id", "ref_container_id": custs}),
            false,
        ),
        ("unique", vec!["id"], json!({}), true),
        ("unique", vec!["cust"], json!({}), false),
        ("unique", vec!["cust", "id"], json!({}), true),
        ("sum", vec!["qty"], json!({"value": 15}), true),
        ("sum", vec!["qty"], json!({"value": 16}), false),
        (
            "distinctCount",
            vec!["cust"],
            json!({"value": 3, "comparison": "eq"}),
            true,
        ),
        (
            "distinctCount",
            vec!["cust"],
            json!({"value": 3, "comparison": "greater than"}),
            false,
        ),
        ("fieldCount", vec![], json!({"value": 10}), true),
        ("fieldCount", vec![], json!({"value": 9}), false),
        (
            "expectedSchema",
            vec![],
            json!({"list": ["id", "code"], "allow_other_fields": true}),
            true,
        ),
        (
            "volumetric",
            vec![],
            json!({"comparison": "Absolute Value", "min": 5, "max": 5}),
            true,
        ),
        (
            "volumetric",
            vec![],
            json!({"comparison": "Absolute Value", "min": 6}),
            false,
        ),
        (
            "metric",
            vec!["qty"],
            json!({"comparison": "Absolute Value", "min": 3, "max": 3}),
            true,
        ),
        (
            "metric",
            vec!["qty"],
            json!({"comparison": "Absolute Value", "max": 2}),
            false,
        ),
        ("freshness", vec![], json!({"value": ms_10y}), true),
        ("freshness", vec![], json!({"value": 1000}), false),
        (
            "timeDistributionSize",
            vec!["ship"],
            json!({"interval_name": "Daily", "min_size": 1, "max_size": 1}),
            true,
        ),
        (
            "timeDistributionSize",
            vec!["ship"],
            json!({"interval_name": "Monthly", "max_size": 3}),
            false,
        ),
        (
            "isReplicaOf",
            vec!["id", "code"],
            json!({"ref_container_id": copy}),
            true,
        ),
        (
            "isReplicaOf",
            vec!["id", "code"],
            json!({"ref_container_id": copy, "ref_filter": "id < 5"}),
            false,
        ),
        (
            "aggregationComparison",
            vec![],
            json!({"expression": "sum(qty)", "comparison": "eq",
            "ref_expression": "sum(qty)", "ref_container_id": copy}),
            true,
        ),
        (
            "aggregationComparison",
            vec![],
            json!({"expression": "count(*)", "comparison": "gt",
            "ref_expression": "count(*)", "ref_container_id": copy}),
            false,
        ),
    ];
    let mut ids = Vec::new();
    for (rule, fields, props, pass) in &cases {
        ids.push((
            create(&api, items, rule, fields, props.clone()).await,
            *rule,
            *pass,
        ));
    }
    // filters and coverage
    let filtered = api
        .ok(
            "/quality-checks",
            json!({"container_id": items, "rule": "maxValue", "fields": ["qty"],
            "properties": {"value": 4}, "filter": "qty < 5", "description": "filtered"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    ids.push((filtered, "maxValue (filtered)", true));
    let cov_ok = api
        .ok(
            "/quality-checks",
            json!({"container_id": items, "rule": "lessThan", "fields": ["qty"],
            "properties": {"value": 5}, "coverage": 0.8, "description": "80 %"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    ids.push((cov_ok, "lessThan (coverage 0.8)", true));
    let cov_bad = api
        .ok(
            "/quality-checks",
            json!({"container_id": items, "rule": "lessThan", "fields": ["qty"],
            "properties": {"value": 5}, "coverage": 0.9, "description": "90 %"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    ids.push((cov_bad, "lessThan (coverage 0.9)", false));

    let op = run(
        &api,
        ds,
        "scan",
        json!({"container_names": ["items"], "incremental": false}),
    )
    .await;
    assert_eq!(op["result"], "success", "{op}");
    assert_eq!(
        op["status"]["containers"][0]["records_processed"], 5,
        "{op}"
    );
    for (id, rule, pass) in &ids {
        let k = api.get(&format!("/quality-checks/{id}")).await.body;
        assert_eq!(k["status"], "Active", "{rule}: {k}");
        assert_eq!(
            k["is_passing"],
            json!(pass),
            "{rule} should {} : {k}",
            if *pass { "pass" } else { "fail" }
        );
        let m = api.get(&format!("/quality-checks/{id}/metrics")).await.body;
        assert_eq!(m["total"], 1, "{rule}: one measurement per scan");
    }
    // shape anomaly for the coverage failure, with the failing share in words
    let all = anomalies(&api, items, "").await;
    let shape = all
        .iter()
        .find(|a| a["failed_checks"][0]["quality_check"]["id"] == cov_bad)
        .expect("coverage failure reported");
    assert_eq!(shape["type"], "shape");
    assert_eq!(shape["anomalous_records_count"], 1);
    assert!(
        shape["message"]
            .as_str()
            .unwrap()
            .contains("20.00% of 5 filtered records (1)"),
        "{shape}"
    );
    // a row failing several checks is one record anomaly listing each
    let mut row5 = None;
    for a in all.iter().filter(|a| a["type"] == "record") {
        let src = api
            .get(&format!("/anomalies/{}/source-records", a["id"]))
            .await
            .body;
        if src["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == 5)
        {
            row5 = Some((a.clone(), src));
            break;
        }
    }
    let (row5, src) = row5.expect("row 5 fails several checks");
    assert!(
        row5["failed_checks"].as_array().unwrap().len() >= 3,
        "{row5}"
    );
    assert_eq!(src["items"][0]["code"], "E", "{src}");
    // record anomalies never mention a passing check
    let passing: Vec<i64> = ids.iter().filter(|x| x.2).map(|x| x.0).collect();
    for a in &all {
        for f in a["failed_checks"].as_array().unwrap() {
            let id = f["quality_check"]["id"].as_i64().unwrap();
            assert!(!passing.contains(&id), "passing check {id} in {a}");
        }
    }
}

#[tokio::test]
async fn definitions_are_validated_before_saving() {
    let (api, ds, _) = setup("checkval", ITEMS).await;
    let items = container_id(&api, ds, "items").await;
    let bad = |rule: &str, fields: Value, props: Value, filter: Value| {
        json!({"container_id": items, "rule": rule, "fields": fields, "properties": props, "filter": filter,
               "description": "x"})
    };
    let cases = [
        (
            bad("isUnique", json!(["id"]), json!({}), Value::Null),
            "rule",
            "did you mean 'unique'",
        ),
        (
            bad("isAddress", json!(["note"]), json!({}), Value::Null),
            "rule",
            "not supported",
        ),
        (
            bad(
                "between",
                json!(["code"]),
                json!({"min": 1, "max": 2}),
                Value::Null,
            ),
            "fields[0]",
            "Integral or Fractional",
        ),
        (
            bad("notNull", json!(["nope"]), json!({}), Value::Null),
            "fields[0]",
            "no field 'nope'",
        ),
        (
            bad("between", json!(["qty"]), json!({"min": 1}), Value::Null),
            "properties.max",
            "needs the property",
        ),
        (
            bad(
                "matchesPattern",
                json!(["code"]),
                json!({"pattern": "(["}),
                Value::Null,
            ),
            "properties.pattern",
            "source rejects",
        ),
        (
            bad(
                "notNull",
                json!(["id"]),
                json!({}),
                json!("no_such_column > 1"),
            ),
            "filter",
            "no_such_column",
        ),
        (
            bad(
                "notNull",
                json!(["id"]),
                json!({}),
                json!("true; DROP TABLE sales.custs"),
            ),
            "filter",
            "';' is not allowed",
        ),
        (
            bad(
                "satisfiesExpression",
                json!([]),
                json!({"expression": "qty > 'abc'"}),
                Value::Null,
            ),
            "definition",
            "source rejects",
        ),
        (
            bad(
                "existsIn",
                json!(["cust"]),
                json!({"field_name": "id", "ref_container_id": 999999}),
                Value::Null,
            ),
            "properties.ref_container_id",
            "no container",
        ),
    ];
    for (body, field, text) in cases {
        let r = api.post("/quality-checks", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        let errs = r.body["errors"].as_array().unwrap();
        assert!(
            errs.iter()
                .any(|e| e["field"] == field && e["message"].as_str().unwrap().contains(text)),
            "{body} should fail on {field} with '{text}': {}",
            r.body
        );
    }
    let r = api
        .post("/quality-checks", json!({"rule": "notNull"}))
        .await;
    assert_eq!(r.status, 422);
    // the canary table survived every attempt
    let v = api
        .get(&format!("/containers/listing?datastore={ds}"))
        .await
        .body;
    assert!(v.as_array().unwrap().iter().any(|c| c["name"] == "custs"));

    // lifecycle: create, update (authored stays authored), archive, list filters, hard delete
    let id = create(
        &api,
        items,
        "between",
        &["qty"],
        json!({"min": 0, "max": 10}),
    )
    .await;
    let k = api.get(&format!("/quality-checks/{id}")).await.body;
    assert_eq!(k["fields"], json!([{"name": "qty"}]));
    assert_eq!(
        k["properties"]["inclusive_min"], true,
        "defaults filled in: {k}"
    );
    assert_eq!(k["inferred"], false);
    let r = api
        .put(&format!("/quality-checks/{id}"), json!({"description": "qty range", "fields": ["qty"], "coverage": null,
            "filter": null, "properties": {"min": 1, "max": 5}, "tags": ["t1"],
            "additional_metadata": {"_qualytics_check_uid": "items__between__qty"}, "status": "Draft"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "Draft");
    assert_eq!(
        r.body["additional_metadata"]["_qualytics_check_uid"],
        "items__between__qty"
    );
    let r = api
        .put(
            &format!("/quality-checks/{id}"),
            json!({"properties": {"min": 9, "max": 1}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = api
        .call(
            "DELETE",
            &format!("/quality-checks/{id}?archive=true&status=Discarded"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let listed = api
        .get(&format!("/quality-checks?datastore={ds}"))
        .await
        .body;
    assert!(
        !listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id)
    );
    let archived = api
        .get(&format!("/quality-checks?datastore={ds}&archived=only"))
        .await
        .body;
    let k = archived["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(k["status"], "Discarded");
    assert!(!k["deleted_at"].is_null());
    let r = api
        .call(
            "DELETE",
            "/quality-checks",
            Some(json!([{"id": id, "archive": false}])),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(api.get(&format!("/quality-checks/{id}")).await.status, 404);
    let spec = api.get("/quality-checks/spec").await.body;
    assert_eq!(spec.as_array().unwrap().len(), 49);
}

const ORDERS: &str = "
CREATE TABLE sales.shop (id int PRIMARY KEY, order_ref text, customer_id int NOT NULL, amount numeric NOT NULL,
                         email text NOT NULL, status text NOT NULL, placed_at timestamptz NOT NULL);
INSERT INTO sales.shop
SELECT i, 'R' || i, 1 + i % 50, (i % 200) + 0.5, 'user' || i || '@example.com',
       (ARRAY['new', 'paid', 'shipped', 'done'])[1 + i % 4], timestamptz '2024-01-01' + i * interval '1 hour'
FROM generate_series(1, 400) AS i;
";

#[tokio::test]
async fn planted_defects_are_found_and_a_clean_table_has_none() {
    let (api, ds, db) = setup("defects", ORDERS).await;
    let shop = container_id(&api, ds, "shop").await;
    let prof = run(&api, ds, "profile", json!({"container_names": ["shop"]})).await;
    assert_eq!(prof["result"], "success", "{prof}");
    let unique_ref = create(&api, shop, "unique", &["order_ref"], json!({})).await;
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    assert_eq!(op["result"], "success", "{op}");
    assert!(
        anomalies(&api, shop, "").await.is_empty(),
        "a clean table has no anomalies"
    );

    // plant one defect of each kind (the role that writes is the superuser; the scan reads as the reader)
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(
        "ALTER TABLE sales.shop ALTER COLUMN customer_id DROP NOT NULL;
         INSERT INTO sales.shop VALUES
          (1001, 'R1001', NULL, 10.5, 'x1@example.com', 'paid', '2024-02-01'),
          (1002, 'R1002', 3, 999999, 'x2@example.com', 'teleported', '2024-02-01'),
          (1003, 'R1003', 3, 10.5, 'not-an-email', 'paid', '2024-02-01'),
          (1004, 'R1', 3, 10.5, 'x4@example.com', 'paid', '2024-02-01'),
          (1005, 'R1005', 3, 10.5, 'x5@example.com', 'paid', now() + interval '30 days');",
    )
    .await
    .unwrap();
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    assert_eq!(op["result"], "success", "{op}");
    let found = anomalies(&api, shop, "").await;
    let rules_of = |a: &Value| -> Vec<String> {
        a["failed_checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f["quality_check"]["rule_type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let all_rules: Vec<String> = found.iter().flat_map(rules_of).collect();
    for want in [
        "notNull",
        "between",
        "expectedValues",
        "containsEmail",
        "notFuture",
        "unique",
    ] {
        assert!(
            all_rules.iter().any(|r| r == want),
            "{want} not reported: {all_rules:?}"
        );
    }
    // row 1002 fails both the range and the value set: one record anomaly with both checks
    let mut both = false;
    for a in found.iter().filter(|a| a["type"] == "record") {
        let r = rules_of(a);
        if r.contains(&"between".to_string()) && r.contains(&"expectedValues".to_string()) {
            both = true;
        }
    }
    assert!(
        both,
        "one anomaly per row, listing every failed check: {found:?}"
    );
    let dup = found
        .iter()
        .find(|a| rules_of(a).contains(&"unique".to_string()))
        .unwrap();
    assert!(
        dup["failed_checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["quality_check"]["id"] == unique_ref),
        "{dup}"
    );

    // recall and false positives: every planted row is reported, and only planted rows (and the original row
    // that the planted duplicate key repeats) are
    let mut reported = std::collections::BTreeSet::new();
    for a in &found {
        assert_eq!(
            a["type"], "record",
            "five defects, each below the rollup threshold: {a}"
        );
        let src = api
            .get(&format!("/anomalies/{}/source-records", a["id"]))
            .await
            .body;
        for r in src["items"].as_array().unwrap() {
            reported.insert(r["id"].as_i64().unwrap());
        }
    }
    let planted: std::collections::BTreeSet<i64> = [1, 1001, 1002, 1003, 1004, 1005].into();
    assert_eq!(reported, planted, "recall 100 %, no false positives");
    // a rescan finds the same rows: duplicates, archived, pointing at the open ones
    let open_before = found.len();
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    assert_eq!(op["result"], "success");
    assert_eq!(
        anomalies(&api, shop, "").await.len(),
        open_before,
        "repeats do not pile up"
    );
    let dups = anomalies(&api, shop, "&status=Duplicate").await;
    assert_eq!(dups.len(), open_before, "{dups:?}");
    assert!(
        dups.iter()
            .all(|d| d["fingerprint_source"].is_i64() && d["archived"] == true)
    );

    // anomaly status changes
    let first = found[0]["id"].as_i64().unwrap();
    let r = api
        .put(
            &format!("/anomalies/{first}"),
            json!({"status": "Acknowledged", "tags": ["seen"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "Acknowledged");
    let r = api
        .put(
            &format!("/anomalies/{first}"),
            json!({"status": "Resolved"}),
        )
        .await;
    assert_eq!(r.status, 422, "archiving goes through DELETE: {}", r.body);

    // the defects are fixed: a clean full scan resolves the open anomalies
    su.batch_execute("DELETE FROM sales.shop WHERE id > 1000")
        .await
        .unwrap();
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    assert_eq!(op["result"], "success");
    assert_eq!(
        op["status"]["containers"][0]["resolved"],
        json!(open_before),
        "{op}"
    );
    assert!(anomalies(&api, shop, "").await.is_empty());
    let resolved = anomalies(&api, shop, "&status=Resolved").await;
    assert_eq!(resolved.len(), open_before);

    // archive and hard-delete through the API
    let r = api
        .call(
            "DELETE",
            &format!("/anomalies/{first}?archive=false&status=Resolved"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(api.get(&format!("/anomalies/{first}")).await.status, 404);

    // a volume drop fails the inferred volumetric check
    su.batch_execute("DELETE FROM sales.shop WHERE id > 100")
        .await
        .unwrap();
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    assert_eq!(op["result"], "success");
    let found = anomalies(&api, shop, "").await;
    let vol = found
        .iter()
        .find(|a| rules_of(a).contains(&"volumetric".to_string()));
    assert!(vol.is_some_and(|v| v["type"] == "shape"), "{found:?}");
}

#[tokio::test]
async fn rollup_invalid_checks_incremental_and_schema_stop() {
    let (api, ds, db) = setup("scanmore", ORDERS).await;
    let shop = container_id(&api, ds, "shop").await;
    // many offending rows: one shape anomaly with the exact count and a bounded sample
    let many = create(&api, shop, "lessThan", &["amount"], json!({"value": 100})).await;
    let gone = create(
        &api,
        shop,
        "satisfiesExpression",
        &[],
        json!({"expression": "status <> 'void'"}),
    )
    .await;
    let fine = create(&api, shop, "notNull", &["email"], json!({})).await;
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": true, "enrichment_source_record_limit": 3}),
    )
    .await;
    assert_eq!(op["result"], "success", "{op}");
    let c = op["status"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["container"]["name"] == "shop")
        .unwrap()
        .clone();
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("first incremental scan"),
        "{c}"
    );
    assert_eq!(c["records_processed"], 400);
    let found = anomalies(&api, shop, "").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let a = &found[0];
    assert_eq!(a["type"], "shape");
    assert_eq!(a["failed_checks"][0]["quality_check"]["id"], many);
    let expected: i64 = (1..=400)
        .filter(|i| (i % 200) as f64 + 0.5 >= 100.0)
        .count() as i64;
    assert_eq!(a["anomalous_records_count"], expected);
    let src = api
        .get(&format!("/anomalies/{}/source-records", a["id"]))
        .await
        .body;
    assert_eq!(
        src["items"].as_array().unwrap().len(),
        3,
        "capped at the source record limit"
    );

    // appended rows only: the incremental scan reads just them
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(
        "INSERT INTO sales.shop SELECT i, 'R' || i, 1, 5.5, 'n' || i || '@example.com', 'new', \
         timestamptz '2025-01-01' + i * interval '1 minute' FROM generate_series(401, 410) AS i",
    )
    .await
    .unwrap();
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": true, "container_names": ["shop"]}),
    )
    .await;
    assert_eq!(op["result"], "success", "{op}");
    assert_eq!(
        op["status"]["containers"][0]["records_processed"], 10,
        "{op}"
    );
    assert_eq!(op["status"]["containers"][0]["incremental"], true);

    // a column the check relies on disappears: that check becomes Invalid, the others still run
    su.batch_execute("ALTER TABLE sales.shop RENAME COLUMN status TO state")
        .await
        .unwrap();
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    assert_eq!(op["result"], "success", "{op}");
    let k = api.get(&format!("/quality-checks/{gone}")).await.body;
    assert_eq!(k["status"], "Invalid", "{k}");
    assert!(
        k["status_message"].as_str().unwrap().contains("status"),
        "{k}"
    );
    let k = api.get(&format!("/quality-checks/{fine}")).await.body;
    assert_eq!(k["is_passing"], true, "{k}");
    let m = api
        .get(&format!("/quality-checks/{fine}/metrics"))
        .await
        .body;
    assert_eq!(m["total"], 3);

    // expectedSchema runs first; when it fails the container's other checks do not run
    let schema = create(&api, shop, "expectedSchema", &[],
        json!({"list": ["id", "order_ref", "customer_id", "amount", "email", "state", "placed_at"]})).await;
    su.batch_execute("ALTER TABLE sales.shop ADD COLUMN extra int")
        .await
        .unwrap();
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    assert_eq!(op["result"], "success");
    let c = &op["status"]["containers"][0];
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("schema check anomalies"),
        "{c}"
    );
    assert_eq!(c["checks_run"], 1, "{c}");
    let k = api.get(&format!("/quality-checks/{schema}")).await.body;
    assert_eq!(k["is_passing"], false);
    let m = api
        .get(&format!("/quality-checks/{fine}/metrics"))
        .await
        .body;
    assert_eq!(m["total"], 3, "no new measurement after the schema stop");

    // a scan of a container that vanished fails that container only
    su.batch_execute("DROP VIEW sales.big").await.unwrap();
    let op = run(&api, ds, "scan", json!({"incremental": false})).await;
    assert_eq!(op["result"], "success", "{op}");
    assert!(op["message"].as_str().unwrap().contains("big"), "{op}");
    let r = api
        .post(
            "/operations/run",
            json!({"datastore_id": ds, "type": "scan", "high_count_rollup_threshold": 0}),
        )
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn volume_changes_are_judged_against_history() {
    let (api, ds, db) = setup("volume", ORDERS).await;
    let shop = container_id(&api, ds, "shop").await;
    let step = create(
        &api,
        shop,
        "volumetric",
        &[],
        json!({"comparison": "Percentage Change", "min": -20, "max": 50}),
    )
    .await;
    let window = create(
        &api,
        shop,
        "volumetric",
        &[],
        json!({"comparison": "Absolute Change", "window_size": 7, "min": -150}),
    )
    .await;
    let scan = || {
        run(
            &api,
            ds,
            "scan",
            json!({"incremental": false, "container_names": ["shop"]}),
        )
    };
    assert_eq!(scan().await["result"], "success");
    let passing = |id: i64| {
        let api = &api;
        async move { api.get(&format!("/quality-checks/{id}")).await.body["is_passing"].clone() }
    };
    assert_eq!(
        passing(step).await,
        true,
        "the first measurement has nothing to compare with"
    );
    let su = TestPg::shared().superuser(&db).await;
    // 400 → 300 rows: -25 % against the previous scan, -100 against the 7-day average of 400
    su.batch_execute("DELETE FROM sales.shop WHERE id > 300")
        .await
        .unwrap();
    assert_eq!(scan().await["result"], "success");
    assert_eq!(passing(step).await, false);
    assert_eq!(passing(window).await, true);
    // 300 → 240: -20 % passes the step check; the average of 400 and 300 is 350, so -110 still passes
    su.batch_execute("DELETE FROM sales.shop WHERE id > 240")
        .await
        .unwrap();
    assert_eq!(scan().await["result"], "success");
    assert_eq!(passing(step).await, true);
    assert_eq!(passing(window).await, true);
    // 240 → 150: -90 against 240 fails the step (-37.5 %); against the average 313.3 it is -163
    su.batch_execute("DELETE FROM sales.shop WHERE id > 150")
        .await
        .unwrap();
    assert_eq!(scan().await["result"], "success");
    assert_eq!(passing(step).await, false);
    assert_eq!(passing(window).await, false);
    let found = anomalies(&api, shop, "").await;
    let msg = found
        .iter()
        .find(|a| a["failed_checks"][0]["quality_check"]["id"] == window)
        .map(|a| a["message"].as_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(msg.contains("7-day average of 313.333"), "{msg}");
}

#[tokio::test]
async fn abort_and_killed_backends_leave_nothing_half_written() {
    let (api, ds, db) = setup("scanfault", ORDERS).await;
    let shop = container_id(&api, ds, "shop").await;
    // every row takes a while: the scan runs for seconds
    let slow = create(
        &api,
        shop,
        "satisfiesExpression",
        &[],
        json!({"expression": "pg_sleep(0.05) IS NOT NULL AND amount < 100"}),
    )
    .await;
    let limited = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"],
        "max_records_analyzed_per_partition": 20}),
    )
    .await;
    assert_eq!(limited["result"], "success", "{limited}");
    assert_eq!(limited["status"]["containers"][0]["records_processed"], 20);
    let before = api
        .get(&format!("/quality-checks/{slow}/metrics"))
        .await
        .body["total"]
        .clone();

    // abort while the pass runs: the operation ends aborted within seconds and writes nothing for the container
    let op = api
        .ok(
            "/operations/run",
            json!({"datastore_id": ds, "type": "scan", "incremental": false,
        "container_names": ["shop"]}),
        )
        .await;
    let id = op["id"].as_i64().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let t0 = std::time::Instant::now();
    api.call("PUT", &format!("/operations/abort/{id}"), None)
        .await;
    let done = api.wait(id).await;
    assert_eq!(done["result"], "aborted", "{done}");
    assert!(t0.elapsed().as_secs() < 10, "abort took {:?}", t0.elapsed());
    let after = api
        .get(&format!("/quality-checks/{slow}/metrics"))
        .await
        .body["total"]
        .clone();
    assert_eq!(before, after, "no metrics from the aborted scan");
    assert!(
        anomalies(&api, shop, &format!("&operation={id}"))
            .await
            .is_empty()
    );
    let su = TestPg::shared().superuser(&db).await;
    let running: i64 = su
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.05)%' AND pid <> pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        running, 0,
        "the abort cancelled the statement on the server"
    );

    // a killed backend fails the container with a message; the next scan works
    let op = api
        .ok(
            "/operations/run",
            json!({"datastore_id": ds, "type": "scan", "incremental": false,
        "container_names": ["shop"]}),
        )
        .await;
    let id = op["id"].as_i64().unwrap();
    let mut killed = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let n: i64 = su
            .query_one("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                        WHERE query LIKE '%pg_sleep(0.05)%' AND pid <> pg_backend_pid() AND backend_type = 'client backend'", &[])
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            killed = true;
            break;
        }
    }
    assert!(killed, "the scan's backend was found");
    let done = api.wait(id).await;
    assert_eq!(done["result"], "failure", "{done}");
    assert!(done["message"].as_str().unwrap().contains("shop"), "{done}");
    assert!(
        anomalies(&api, shop, &format!("&operation={id}"))
            .await
            .is_empty()
    );
    let scans = api.get(&format!("/containers/{shop}/scans")).await.body;
    assert_eq!(scans["items"][0]["result"], "failure", "{scans}");
    let again = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"],
        "max_records_analyzed_per_partition": 10}),
    )
    .await;
    assert_eq!(again["result"], "success", "{again}");
}
