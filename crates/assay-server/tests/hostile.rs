//! Bad input and hostile names against a real PostgreSQL read with the seed's read-only role: schemas, tables
//! and columns named with quotes, spaces, semicolons, comment markers, unicode, reserved words and 63 bytes
//! sync, profile, scan, materialize and export with exact results; SQL written into filters and expressions
//! that tries to end, hide or extend the statement is refused before it runs; catastrophic-backtracking
//! regexes end; oversized and malformed requests are 4xx with a JSON `detail` (`hostile/requests.rs`).

mod common;
#[path = "hostile/requests.rs"]
mod requests;

use assay_testkit::TestPg;
use common::Api;
use common::checks::run;
use serde_json::{Value, json};

/// The schema: quotes of both kinds, a semicolon, both comment markers, spaces and unicode.
const SCHEMA: &str = "Sch \"q\" 'x'; -- /* Ünï 表";
/// The main table, with a reserved word, quotes, a semicolon and comment markers.
const TABLE: &str = "order \"o\" 'x'; -- /* t";
/// Its columns: reserved words, quotes with a semicolon and comment markers, unicode, 63 bytes.
const USER: &str = "user";
const SELECT: &str = "select";
const QUOTED: &str = "a \"dq\" 'sq'; -- /* c";
const UNICODE: &str = "Ünïcødé 表";

fn long_name(first: char) -> String {
    let name = format!("{first}{}", "x".repeat(62));
    assert_eq!(name.len(), 63, "PostgreSQL's longest identifier");
    name
}

/// `"..."` with inner quotes doubled (the test's own DDL; the server quotes through `quote_ident`).
fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A source datastore over the hostile schema (read with the seed's read-only role), an enrichment datastore
/// on a hostile schema too, linked. Returns (api, datastore id, database).
async fn hostile_source(prefix: &str) -> (Api, i64, String) {
    let api = Api::start().await;
    let (db, reader, writer) = common::shop(prefix).await;
    let su = TestPg::shared().superuser(&db).await;
    let (s, t, long_col, long_table) =
        (q(SCHEMA), q(TABLE), q(&long_name('c')), q(&long_name('t')));
    let (user, select, quoted, uni) = (q(USER), q(SELECT), q(QUOTED), q(UNICODE));
    su.batch_execute(&format!(
        "CREATE SCHEMA {s};
         CREATE TABLE {s}.{t} ({user} int, {select} numeric, {quoted} text, {uni} text, {long_col} int);
         INSERT INTO {s}.{t} VALUES
           (1, 10, NULL, 'abc', 1), (2, 20, NULL, 'def', 2), (3, 30, 'x', 'ghi', 3), (4, 40, 'x', 'BAD', 4),
           (5, 500, 'x', 'jkl', 5), (6, 60, 'x', 'abc', 6), (7, 70, 'x', 'def', 7), (8, 80, 'x', 'ghi', 8),
           (9, 90, 'x', 'abc', 9), (9, 95, 'x', 'def', 10);
         CREATE TABLE {s}.{select} (id int);
         INSERT INTO {s}.{select} VALUES (1), (2);
         CREATE TABLE {s}.{uni} ({uni} text);
         INSERT INTO {s}.{uni} VALUES ('表'), ('Ü');
         CREATE TABLE {s}.{long_table} ({long_col} int);
         INSERT INTO {s}.{long_table} SELECT g FROM generate_series(1, 7) g;
         CREATE TABLE {s}.canary (id int);
         INSERT INTO {s}.canary VALUES (1), (2), (3);
         GRANT USAGE ON SCHEMA {s} TO {reader};
         GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {reader};
         GRANT SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {reader};
         CREATE SCHEMA {e};
         GRANT USAGE, CREATE ON SCHEMA {e} TO {writer};
         ANALYZE;",
        e = q("enr ÿ \"e\"; --")
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
        .ok(
            "/datastores",
            json!({"name": format!("{prefix} 'ds'; --"), "connection_id": c["id"], "database": db,
                   "schema": SCHEMA, "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let enr = api
        .ok(
            "/datastores",
            json!({"name": format!("{prefix} enrichment"), "connection": Api::conn_body(&format!("w-{prefix}"), &writer, "writerpw"),
                   "database": db, "schema": "enr ÿ \"e\"; --", "enrichment_only": true, "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = api
        .call(
            "PATCH",
            &format!("/datastores/{ds}/enrichment/{enr}?prefix=hostile"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (api, ds, db)
}

async fn containers(api: &Api, ds: i64) -> Vec<Value> {
    let v = api
        .get(&format!("/containers/listing?datastore={ds}"))
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    v.body.as_array().unwrap().clone()
}

fn id_of(list: &[Value], name: &str) -> i64 {
    list.iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name:?} in {list:?}"))["id"]
        .as_i64()
        .unwrap()
}

async fn check(
    api: &Api,
    container: i64,
    rule: &str,
    fields: &[&str],
    props: Value,
    filter: Option<&str>,
) -> i64 {
    let r = api
        .post(
            "/quality-checks",
            json!({"container_id": container, "rule": rule, "fields": fields, "properties": props,
                   "filter": filter, "description": format!("{rule} on {fields:?}")}),
        )
        .await;
    assert_eq!(r.status, 200, "{rule} {fields:?} {filter:?}: {}", r.body);
    r.body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn hostile_names_sync_profile_scan_materialize_and_export_exactly() {
    let (api, ds, db) = hostile_source("hostile").await;
    let sync = api.sync(ds, json!({})).await;
    assert_eq!(sync["result"], "success", "{sync}");
    let list = containers(&api, ds).await;
    let long_table = long_name('t');
    let long_col = long_name('c');
    let mut names: Vec<&str> = list.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort();
    let mut expected = vec![TABLE, SELECT, UNICODE, long_table.as_str(), "canary"];
    expected.sort();
    assert_eq!(names, expected, "every table, named exactly");
    let main = id_of(&list, TABLE);
    let fields = api.get(&format!("/containers/{main}/fields")).await.body;
    let field_names: Vec<&str> = fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        field_names,
        vec![USER, SELECT, QUOTED, UNICODE, long_col.as_str()]
    );

    // profile: every field, with counts that only a correct read gives
    let p = run(&api, ds, "profile", json!({})).await;
    assert_eq!(p["result"], "success", "{p}");
    let fp = api
        .get(&format!("/containers/{main}/field-profiles"))
        .await
        .body;
    let profile = |name: &str| {
        fp["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no profile of {name:?}: {fp}"))
    };
    for name in [USER, SELECT, QUOTED, UNICODE, long_col.as_str()] {
        assert_eq!(profile(name)["records"], 10, "{name}");
    }
    assert_eq!(profile(QUOTED)["nulls"], 2);
    assert_eq!(profile(SELECT)["max"].as_f64(), Some(500.0));
    assert_eq!(
        profile(USER)["approximate_distinct_values"].as_f64(),
        Some(9.0)
    );
    let uni_table = id_of(&list, UNICODE);
    let ufp = api
        .get(&format!("/containers/{uni_table}/field-profiles"))
        .await
        .body;
    assert_eq!(ufp["items"][0]["name"], UNICODE);
    assert_eq!(ufp["items"][0]["records"], 2);

    // scan: rule types on the hostile columns, and filters that name them
    let filter_on_quoted = format!("{} IS NULL", q(QUOTED));
    let cases = [
        (
            check(&api, main, "notNull", &[QUOTED], json!({}), None).await,
            false,
        ),
        (
            check(
                &api,
                main,
                "notNull",
                &[QUOTED],
                json!({}),
                Some("\"user\" > 2"),
            )
            .await,
            true,
        ),
        (
            check(
                &api,
                main,
                "between",
                &[SELECT],
                json!({"min": 0, "max": 100}),
                None,
            )
            .await,
            false,
        ),
        (
            check(
                &api,
                main,
                "between",
                &[SELECT],
                json!({"min": 0, "max": 100}),
                Some(&filter_on_quoted),
            )
            .await,
            true,
        ),
        (
            check(
                &api,
                main,
                "matchesPattern",
                &[UNICODE],
                json!({"pattern": "^[a-z]+$"}),
                None,
            )
            .await,
            false,
        ),
        (
            check(
                &api,
                main,
                "expectedValues",
                &[UNICODE],
                json!({"list": ["abc", "def", "ghi", "jkl"]}),
                None,
            )
            .await,
            false,
        ),
        (
            check(&api, main, "unique", &[USER], json!({}), None).await,
            false,
        ),
        (
            check(&api, main, "unique", &[long_col.as_str()], json!({}), None).await,
            true,
        ),
        (
            check(&api, main, "notNull", &[long_col.as_str()], json!({}), None).await,
            true,
        ),
        (
            check(
                &api,
                main,
                "satisfiesExpression",
                &[],
                json!({"expression": "\"select\" < 100 OR \"user\" = 5"}),
                None,
            )
            .await,
            true,
        ),
    ];
    let s = run(&api, ds, "scan", json!({"incremental": false})).await;
    assert_eq!(s["result"], "success", "{s}");
    for (id, pass) in cases {
        let k = api.get(&format!("/quality-checks/{id}")).await.body;
        assert_eq!(k["is_passing"], json!(pass), "{k}");
    }
    let anomalies = api
        .get(&format!("/anomalies?container={main}&size=100"))
        .await
        .body;
    let records: Vec<&Value> = anomalies["items"].as_array().unwrap().iter().collect();
    // rows 1 and 2 (null), 4 (pattern and expected values), 5 (between), both rows with user 9 (unique)
    assert!(records.iter().all(|a| a["type"] == "record"), "{anomalies}");
    assert_eq!(records.len(), 6, "{anomalies}");
    let mut rows = Vec::new();
    for a in &records {
        let src = api
            .get(&format!("/anomalies/{}/source-records", a["id"]))
            .await
            .body;
        let row = &src["items"][0];
        rows.push((
            row[USER].as_i64().unwrap(),
            a["failed_checks"].as_array().unwrap().len(),
        ));
        if row[USER] == 5 {
            assert_eq!(row[SELECT].as_f64(), Some(500.0), "{row}");
            assert_eq!(row[QUOTED], "x", "{row}");
            assert_eq!(row[long_col.as_str()], 5, "{row}");
        }
    }
    rows.sort();
    assert_eq!(rows, vec![(1, 1), (2, 1), (4, 2), (5, 1), (9, 1), (9, 1)]);

    // materialize and export into the hostile enrichment schema
    let m = run(
        &api,
        ds,
        "materialize",
        json!({"container_names": [TABLE, UNICODE]}),
    )
    .await;
    assert_eq!(m["result"], "success", "{m}");
    let su = TestPg::shared().superuser(&db).await;
    let e = q("enr ÿ \"e\"; --");
    let count = |table: String| {
        let su = &su;
        let e = e.clone();
        async move {
            su.query_one(&format!("SELECT count(*) FROM {e}.{}", q(&table)), &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count(format!("_hostile_materialize_{main}")).await, 10);
    assert_eq!(count(format!("_hostile_materialize_{uni_table}")).await, 2);
    let cols: Vec<String> = su
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2
             ORDER BY ordinal_position",
            &[&"enr ÿ \"e\"; --", &format!("_hostile_materialize_{main}")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(cols, vec![USER, SELECT, QUOTED, UNICODE, long_col.as_str()]);
    let sum: Option<String> = su
        .query_one(
            &format!(
                "SELECT sum({})::text FROM {e}.{}",
                q(SELECT),
                q(&format!("_hostile_materialize_{main}"))
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum.as_deref(), Some("995"));
    let x = run(&api, ds, "export", json!({"asset_type": "profiles"})).await;
    assert_eq!(x["result"], "success", "{x}");
    let exported: Vec<String> = su
        .query(
            &format!("SELECT field_name FROM {e}._hostile_export_field_profiles WHERE container_id = $1 ORDER BY field_name"),
            &[&main],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut want = vec![
        USER.to_string(),
        SELECT.into(),
        QUOTED.into(),
        UNICODE.into(),
        long_col.clone(),
    ];
    want.sort();
    assert_eq!(exported, want);
}

#[tokio::test]
async fn sql_in_filters_and_expressions_is_refused_before_it_runs() {
    let (api, ds, db) = hostile_source("inject").await;
    assert_eq!(api.sync(ds, json!({})).await["result"], "success");
    let main = id_of(&containers(&api, ds).await, TABLE);
    let canary = format!("{}.canary", q(SCHEMA));
    let attempts = [
        (format!("true; DELETE FROM {canary}"), "';' is not allowed"),
        ("\"user\" > 0 -- and the rest".to_string(), "comments"),
        ("\"user\" > 0 /* hidden */".to_string(), "comments"),
        ("$$x$$ = 'x'".to_string(), "dollar quoting"),
        ("$q$x$q$ = 'x'".to_string(), "dollar quoting"),
        ("true) OR (true".to_string(), "unbalanced parentheses"),
        ("(true".to_string(), "unbalanced parentheses"),
        (
            "pg_sleep(30) IS NOT NULL".to_string(),
            "pg_sleep is not allowed",
        ),
        (
            "pg_catalog.\"pg_sleep\"(30) IS NOT NULL".to_string(),
            "pg_sleep is not allowed",
        ),
        (
            "set_config('statement_timeout', '0', false) = '0'".to_string(),
            "set_config is not allowed",
        ),
        ("\"user\" = E'\\'' OR true --'".to_string(), "comments"),
        (
            format!("(WITH d AS (DELETE FROM {canary} RETURNING 1) SELECT count(*) FROM d) = 0"),
            "data-modifying",
        ),
        (
            format!("EXISTS (SELECT 1 FROM (INSERT INTO {canary} VALUES (9) RETURNING 1) x)"),
            "syntax error",
        ),
        (
            format!("(SELECT count(*) FROM {canary} FOR UPDATE) > 0"),
            "FOR UPDATE",
        ),
    ];
    for (sql, why) in &attempts {
        let bodies = [
            (
                "filter",
                json!({"container_id": main, "rule": "notNull", "fields": [USER], "filter": sql}),
            ),
            (
                "expression",
                json!({"container_id": main, "rule": "satisfiesExpression", "properties": {"expression": sql}}),
            ),
        ];
        for (kind, body) in bodies {
            let r = api.post("/quality-checks", body).await;
            assert_eq!(r.status, 422, "{kind} {sql}: {}", r.body);
            let detail = r.body["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains(why),
                "{kind} {sql}: the detail says why ({why}): {detail}"
            );
        }
    }
    // nothing was saved, nothing ran: the canary has its rows, no statement of this test is still running
    let saved = api
        .get(&format!("/quality-checks?container={main}&size=100"))
        .await
        .body;
    assert_eq!(saved["total"], 0, "{saved}");
    let su = TestPg::shared().superuser(&db).await;
    let rows: i64 = su
        .query_one(&format!("SELECT count(*) FROM {canary}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 3, "the canary is unchanged");
    let sleeping: i64 = su
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sleeping, 0, "pg_sleep was never sent to the source");
    // a scan of the untouched table still works
    let ok = check(
        &api,
        main,
        "notNull",
        &[USER],
        json!({}),
        Some("\"user\" < 100"),
    )
    .await;
    let s = run(&api, ds, "scan", json!({"container_names": [TABLE]})).await;
    assert_eq!(s["result"], "success", "{s}");
    assert_eq!(
        api.get(&format!("/quality-checks/{ok}")).await.body["is_passing"],
        true
    );
}

#[tokio::test]
async fn catastrophic_regexes_end_with_correct_results() {
    let api = Api::start().await;
    let (db, reader, _) = common::shop("regex").await;
    let su = TestPg::shared().superuser(&db).await;
    // 40 rows of 20,000 'a's ending in 'X': backtracking engines take exponential time on these patterns
    su.batch_execute(&format!(
        "CREATE TABLE sales.texts (id int, body text);
         INSERT INTO sales.texts SELECT g, repeat('a', 20000) || 'X' FROM generate_series(1, 40) g;
         GRANT SELECT ON sales.texts TO {reader}; ANALYZE;"
    ))
    .await
    .unwrap();
    let c = api
        .ok(
            "/connections",
            Api::conn_body("c-regex", &reader, "readerpw"),
        )
        .await;
    let ds = api
        .ok(
            "/datastores",
            json!({"name": "regex", "connection_id": c["id"], "database": db, "schema": "sales", "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(api.sync(ds, json!({})).await["result"], "success");
    let texts = id_of(&containers(&api, ds).await, "texts");
    let scanned = |s: &Value| {
        s["status"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["container"]["id"] == texts)
            .cloned()
            .unwrap()
    };
    // (pattern, whether every row matches)
    let patterns = [
        ("(a+)+$", false),
        ("(a|aa)+b", false),
        ("(.*a){25}", true),
        ("^(a|a?)+X$", true),
    ];
    let mut saved = Vec::new();
    for (pattern, matches) in patterns {
        let r = api
            .post(
                "/quality-checks",
                json!({"container_id": texts, "rule": "matchesPattern", "fields": ["body"],
                       "properties": {"pattern": pattern}}),
            )
            .await;
        // PostgreSQL may refuse a pattern as too complex: then it is a 422 that says so, never a hang
        match r.status {
            200 => saved.push((r.body["id"].as_i64().unwrap(), pattern, matches)),
            422 => assert!(
                r.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("pattern")),
                "{}",
                r.body
            ),
            other => panic!("{pattern}: {other} {}", r.body),
        }
    }
    assert!(
        saved.len() >= 3,
        "PostgreSQL's regex engine takes these patterns: {saved:?}"
    );
    let s = run(&api, ds, "scan", json!({"incremental": false})).await;
    assert_eq!(s["result"], "success", "{s}");
    assert_eq!(scanned(&s)["records_processed"], 40, "{s}");
    assert_eq!(scanned(&s)["invalid_checks"], 0, "{s}");
    for (id, pattern, matches) in saved {
        let k = api.get(&format!("/quality-checks/{id}")).await.body;
        assert_eq!(k["is_passing"], json!(matches), "{pattern}: {k}");
    }
}
