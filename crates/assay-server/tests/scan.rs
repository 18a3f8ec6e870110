//! Quality checks and scans against a real PostgreSQL with the seed's read-only role: every supported rule type
//! passing and failing on known data, and validation of definitions (catalogue, fields, planner).

mod common;

use assay_testkit::TestPg;
use common::checks::{anomalies, container_id, create, run, setup};
use serde_json::{Value, json};

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

/// An edit that keeps the definition (description, tags) is saved without asking the source, so it works even
/// when the source would now reject the definition; an edit of the definition is checked again.
#[tokio::test]
async fn only_definition_edits_are_checked_with_the_source() {
    let (api, ds, db) = setup("checkedit", ITEMS).await;
    let items = container_id(&api, ds, "items").await;
    let r = api
        .post(
            "/quality-checks",
            json!({"container_id": items, "rule": "between", "fields": ["qty"], "description": "qty range",
                   "properties": {"min": 1, "max": 9}, "filter": "note IS NOT NULL"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    // the column the filter names goes away at the source
    TestPg::shared()
        .superuser(&db)
        .await
        .batch_execute("ALTER TABLE sales.items DROP COLUMN note CASCADE")
        .await
        .unwrap();
    let r = api
        .put(
            &format!("/quality-checks/{id}"),
            json!({"description": "qty range, reviewed", "tags": []}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["description"], "qty range, reviewed");
    assert_eq!(r.body["properties"]["max"], 9);
    let r = api
        .put(
            &format!("/quality-checks/{id}"),
            json!({"properties": {"min": 1, "max": 8}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("note"), "{}", r.body);
    let v = api.get(&format!("/quality-checks/{id}")).await.body;
    assert_eq!(v["properties"]["max"], 9, "a rejected edit changes nothing");
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
