//! Anomalies from scans against a real PostgreSQL with the seed's read-only role: planted defects found after a
//! profile (and none on a clean table), record vs shape anomalies, duplicates, auto-resolve and recurring
//! anomalies on rescans, invalid checks, incremental scans, the expected-schema stop, volume history, abort and
//! killed backends.

mod common;

use assay_testkit::TestPg;
use common::checks::{anomalies, container_id, create, run, setup};
use serde_json::{Value, json};

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

    // a repeat was one anomaly seen twice; the malformed e-mail comes back: its anomaly reopens as recurring,
    // found by this scan, and is seen once more by the next one
    let email = resolved
        .iter()
        .find(|a| rules_of(a).contains(&"containsEmail".to_string()))
        .unwrap()
        .clone();
    assert_eq!(email["times_seen"], 2, "{email}");
    assert_eq!(
        (email["recurrences"].clone(), email["recurring"].clone()),
        (json!(0), json!(false))
    );
    su.batch_execute(
        "INSERT INTO sales.shop VALUES (1003, 'R1003', 3, 10.5, 'not-an-email', 'paid', '2024-02-01')",
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
    assert_eq!(op["status"]["containers"][0]["recurring"], 1, "{op}");
    let open = anomalies(&api, shop, "").await;
    assert_eq!(open.len(), 1, "{open:?}");
    let back = &open[0];
    assert_eq!(back["id"], email["id"], "the same anomaly, not a new one");
    assert_eq!(back["status"], "Active");
    assert_eq!(back["operation_id"], op["id"]);
    assert_eq!(
        (
            back["recurrences"].clone(),
            back["recurring"].clone(),
            back["times_seen"].clone()
        ),
        (json!(1), json!(true), json!(3))
    );
    let op = run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    let again = api.get(&format!("/anomalies/{}", email["id"])).await.body;
    assert_eq!(again["times_seen"], 4, "{again}");
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(at(&again["last_seen"]) > at(&back["last_seen"]), "{again}");
    assert_eq!(op["status"]["containers"][0]["recurring"], 0);
    // with reactivation off, a finding that comes back after resolving opens a new anomaly
    su.batch_execute("DELETE FROM sales.shop WHERE id > 1000")
        .await
        .unwrap();
    run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    su.batch_execute(
        "INSERT INTO sales.shop VALUES (1003, 'R1003', 3, 10.5, 'not-an-email', 'paid', '2024-02-01')",
    )
    .await
    .unwrap();
    run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"], "reactivate_recurring_anomalies": false}),
    )
    .await;
    let open = anomalies(&api, shop, "").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_ne!(open[0]["id"], email["id"]);
    assert_eq!(open[0]["recurrences"], 0);
    su.batch_execute("DELETE FROM sales.shop WHERE id > 1000")
        .await
        .unwrap();
    run(
        &api,
        ds,
        "scan",
        json!({"incremental": false, "container_names": ["shop"]}),
    )
    .await;
    assert!(anomalies(&api, shop, "").await.is_empty());

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
    // one limit for the source records a scan keeps, refused above it rather than cut silently
    let r = api
        .post(
            "/operations/run",
            json!({"datastore_id": ds, "type": "scan", "enrichment_source_record_limit": 100_001}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["field"],
        "enrichment_source_record_limit"
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains("100000"),
        "{}",
        r.body
    );
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
    // the reader waits 50 ms for every row of the table it reads (a row-level security policy that sleeps), so
    // a full pass over the 400 rows runs for 20 s
    TestPg::shared()
        .superuser(&db)
        .await
        .batch_execute(
            "ALTER TABLE sales.shop ENABLE ROW LEVEL SECURITY; \
             CREATE POLICY slow_reads ON sales.shop FOR SELECT USING (pg_sleep(0.05) IS NOT NULL)",
        )
        .await
        .unwrap();
    let slow = create(
        &api,
        shop,
        "satisfiesExpression",
        &[],
        json!({"expression": format!("amount < 100 AND email <> '{SLOW_CHECK_MARK}'")}),
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
    let su = TestPg::shared().superuser(&db).await;
    let slow_statements = SlowStatements { su: &su, db: &db };
    slow_statements.until_active().await;
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
    // the abort cancelled the statement on the server, long before its 20 s were over
    slow_statements.until_gone().await;

    // a killed backend fails the container with a message; the next scan works
    let op = api
        .ok(
            "/operations/run",
            json!({"datastore_id": ds, "type": "scan", "incremental": false,
        "container_names": ["shop"]}),
        )
        .await;
    let id = op["id"].as_i64().unwrap();
    slow_statements.until_active().await;
    assert!(
        slow_statements.kill().await > 0,
        "the scan's backend was found"
    );
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

/// A literal in the slow check's expression; its text finds the check's statements in `pg_stat_activity`.
const SLOW_CHECK_MARK: &str = "slow-check-mark";

/// The slow check's statements on the source database, seen from a superuser session.
struct SlowStatements<'a> {
    su: &'a tokio_postgres::Client,
    db: &'a str,
}

impl SlowStatements<'_> {
    const WHERE: &'static str = "datname = $1 AND backend_type = 'client backend' AND state = 'active' \
                                 AND pid <> pg_backend_pid() AND strpos(query, $2) > 0";

    async fn count(&self) -> i64 {
        self.su
            .query_one(
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE {}",
                    Self::WHERE
                ),
                &[&self.db, &SLOW_CHECK_MARK],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Waits (10 s at most) until one is active.
    async fn until_active(&self) {
        for _ in 0..1000 {
            if self.count().await > 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the slow check's statement never became active");
    }

    /// Waits until none is active; panics if one still is after 5 s.
    async fn until_gone(&self) {
        for _ in 0..100 {
            if self.count().await == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the slow check's statement still runs on the server: it was not cancelled");
    }

    /// Terminates their backends; returns how many.
    async fn kill(&self) -> i64 {
        self.su
            .query_one(
                &format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {}",
                    Self::WHERE
                ),
                &[&self.db, &SLOW_CHECK_MARK],
            )
            .await
            .unwrap()
            .get(0)
    }
}
