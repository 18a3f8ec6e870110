//! Property-based fuzzing of the whole API with schemathesis, driven by the server's own
//! `/api/openapi.json`: every route, path and query parameters and request bodies, valid and invalid, with the
//! admin's token. Two checks hold on every answer: no 500 and no 5xx but 502/503/504, which name a failing
//! upstream (`no_internal_error`: a generated edit may point a seeded datastore at a database that does not
//! exist), and every 4xx or upstream 5xx is JSON with a `detail` (`detail_on_4xx`, both in
//! `tests/fuzz/hooks.py`). The hooks file also keeps every connection the server
//! makes on loopback (generated hosts and secrets-manager URLs are rewritten before each call).
//!
//! Nothing is excluded: destructive routes (DELETE of datastores, connections, checks and anomalies,
//! `POST /api/tokens`) run like the others. Only `DELETE /api/datastores/{id}` of the two seeded datastores is
//! sent to a missing id instead (the hooks' `ASSAY_FUZZ_KEEP_DATASTORES`), because it cascades to every
//! container, check and anomaly and would leave the rest of the run with 404s.

mod common;

use common::checks::{container_id, create, run, setup};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const ITEMS: &str = "
CREATE TABLE sales.items (id int PRIMARY KEY, code text, qty int, at timestamptz);
INSERT INTO sales.items SELECT g, 'c' || g, g % 7 - 1, '2024-01-01'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 200) g;
";

/// The schemathesis of `.ci/venv`, which `scripts/test` installs.
fn schemathesis() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = root.join(".ci/venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "schemathesis is missing at {}: run scripts/test, which installs it, or \
         `python3 -m venv .ci/venv && .ci/venv/bin/pip install schemathesis==4.32.5` in the workspace",
        bin.display()
    );
    bin
}

/// The number of generated cases from schemathesis' summary (`Test cases:` then `4175 generated, 4175 passed`).
fn generated_cases(stdout: &str) -> Option<u64> {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Test cases:"));
    let first = lines.next()?;
    let rest = first.trim_start().trim_start_matches("Test cases:").trim();
    let text = if rest.is_empty() {
        lines.next()?.trim()
    } else {
        rest
    };
    text.split_whitespace().next()?.parse().ok()
}

/// `(tests, failures + errors)` from the `<testsuites ...>` element of a JUnit report.
fn junit_counts(xml: &str) -> (u64, u64) {
    let head = xml
        .split("<testsuites")
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap_or_else(|| panic!("no <testsuites> in the JUnit report:\n{xml}"));
    let attr = |name: &str| -> u64 {
        head.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in <testsuites{head}>"))
    };
    (attr("tests"), attr("failures") + attr("errors"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_every_4xx_has_a_detail() {
    let bin = schemathesis();
    let (api, ds, db) = setup("fuzz", ITEMS).await;
    // records for the generated ids to find: checks, a profile, a scan with anomalies, an enrichment datastore
    let items = container_id(&api, ds, "items").await;
    create(&api, items, "notNull", &["code"], json!({})).await;
    create(&api, items, "notNegative", &["qty"], json!({})).await;
    create(
        &api,
        items,
        "between",
        &["qty"],
        json!({"min": 0, "max": 3}),
    )
    .await;
    assert_eq!(
        run(&api, ds, "profile", json!({})).await["result"],
        "success"
    );
    let scan = run(&api, ds, "scan", json!({})).await;
    assert_eq!(scan["result"], "success", "{scan}");
    let writer = assay_testkit::unique("fuzzw");
    let pg = assay_testkit::TestPg::shared();
    pg.create_role(&writer, "writerpw").await;
    pg.superuser(&db)
        .await
        .batch_execute(&format!("GRANT USAGE, CREATE ON SCHEMA enrich TO {writer}"))
        .await
        .unwrap();
    let enrich = api
        .ok(
            "/datastores",
            json!({"name": "fuzz-enrich", "connection": common::Api::conn_body("fuzz-ew", &writer, "writerpw"),
                   "database": db, "schema": "enrich", "enrichment_only": true, "trigger_sync": false}),
        )
        .await;
    let linked = api
        .call(
            "PATCH",
            &format!("/datastores/{ds}/enrichment/{}", enrich["id"]),
            None,
        )
        .await;
    assert_eq!(linked.status, 200, "{}", linked.body);

    let origin = api.base.trim_end_matches("/api").to_string();
    let dir = tempdir();
    // the ids that exist, drawn for id parameters most of the time so cases get past the 404
    let dictionaries = [
        ("datastores", ids(&api, "/datastores?size=100").await),
        (
            "containers",
            ids(&api, &format!("/containers/listing?datastore={ds}")).await,
        ),
        ("checks", ids(&api, "/quality-checks?size=100").await),
        ("anomalies", ids(&api, "/anomalies?size=100").await),
        ("operations", ids(&api, "/operations?size=100").await),
        ("connections", ids(&api, "/connections?size=100").await),
        ("users", ids(&api, "/users?size=100").await),
        ("teams", ids(&api, "/teams?size=100").await),
    ];
    for (name, values) in &dictionaries {
        assert!(!values.is_empty(), "no {name} to fuzz with");
    }
    let bindings = [
        ("path.datastore_id", "datastores"),
        ("path.enrichment_id", "datastores"),
        ("query.datastore", "datastores"),
        ("query.enrich_datastore_id", "datastores"),
        ("body.datastore_id", "datastores"),
        ("path.container_id", "containers"),
        ("query.container", "containers"),
        ("body.container_id", "containers"),
        ("path.check_id", "checks"),
        ("query.quality_check", "checks"),
        ("path.anomaly_id", "anomalies"),
        ("path.operation_id", "operations"),
        ("path.connection_id", "connections"),
        ("body.connection_id", "connections"),
        ("path.user_id", "users"),
        ("path.team_id", "teams"),
    ];
    let mut config = String::new();
    for (name, values) in &dictionaries {
        config += &format!("[dictionaries.{name}]\nvalues = {values:?}\n\n");
    }
    config += "[parameters]\n";
    for (key, dict) in bindings {
        config += &format!("\"{key}\" = {{ dictionary = \"{dict}\", probability = 0.8 }}\n");
    }
    let config_file = dir.join("schemathesis.toml");
    std::fs::write(&config_file, config).unwrap();
    let junit = dir.join("junit.xml");
    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/hooks.py");
    let seed = std::env::var("ASSAY_FUZZ_SEED").unwrap_or_else(|_| "20261201".into());
    let args: Vec<String> = vec![
        "--no-color".into(),
        "--config-file".into(),
        config_file.display().to_string(),
        "run".into(),
        format!("{origin}/api/openapi.json"),
        "--url".into(),
        origin.clone(),
        "-H".into(),
        format!("Authorization: Bearer {}", api.token),
        "--checks".into(),
        "no_internal_error,detail_on_4xx".into(),
        "--phases".into(),
        "examples,coverage,fuzzing".into(),
        "--max-examples".into(),
        "25".into(),
        "--max-time".into(),
        "75".into(),
        // one worker: hypothesis describes strategies with `ast.parse`, which CPython 3.11 before 3.11.8 can
        // fail from several threads at once ("AST constructor recursion depth mismatch")
        "--workers".into(),
        "1".into(),
        "--seed".into(),
        seed,
        "--request-timeout".into(),
        "30".into(),
        "--suppress-health-check".into(),
        "all".into(),
        "--generation-database".into(),
        "none".into(),
        "--continue-on-failure".into(),
        "--report".into(),
        "junit".into(),
        "--report-junit-path".into(),
        junit.display().to_string(),
    ];
    // the seeded datastores stay: deleting one would turn every later case about its records into a 404
    let keep = format!("{ds},{}", enrich["id"]);
    let cwd = dir.clone();
    let logged_before = common::logs().len();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(&args)
            .env("SCHEMATHESIS_HOOKS", hooks)
            .env("ASSAY_FUZZ_KEEP_DATASTORES", keep)
            .current_dir(cwd)
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    let xml = std::fs::read_to_string(&junit)
        .unwrap_or_else(|e| panic!("no JUnit report ({e}):\n{stdout}\n{stderr}"));
    let (operations, failures) = junit_counts(&xml);
    let cases = generated_cases(&stdout);
    println!(
        "schemathesis: {} test cases over {operations} operations, {failures} failing operations",
        cases.map_or("?".to_string(), |c| c.to_string())
    );
    assert!(
        operations >= 70,
        "schemathesis tested {operations} operations; the document lists more:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        failures, 0,
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    assert!(
        out.status.success(),
        "schemathesis exited with {}:\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        cases.is_some_and(|c| c > 500),
        "too few test cases:\n{stdout}"
    );
    // the server still answers, and nothing it logged was an internal error
    let r = api.get("/status").await;
    assert_eq!(r.status, 200);
    tokio::time::timeout(Duration::from_secs(5), api.get("/users/me"))
        .await
        .expect("the server answers after the run");
    let logged = common::logs()[logged_before..].to_string();
    assert!(
        logged.contains("RequestFinished"),
        "the server logged no request during the run"
    );
    let internal = internal_errors(&logged);
    assert!(
        internal.is_empty(),
        "internal errors logged during the run:\n{}",
        internal.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lines of `log` at ERROR level, except those of answers that name a failing upstream (502, 503, 504),
/// which the fuzzer may provoke by pointing a datastore at a database that does not exist: the handler's
/// "request failed status=50x" and the HTTP trace's "response failed ... Status code: 50x".
fn internal_errors(log: &str) -> Vec<&str> {
    let upstream = |l: &str| {
        (l.contains("request failed")
            && ["status=502 ", "status=503 ", "status=504 "]
                .iter()
                .any(|s| l.contains(s)))
            || (l.contains("response failed")
                && [
                    "Status code: 502 ",
                    "Status code: 503 ",
                    "Status code: 504 ",
                ]
                .iter()
                .any(|s| l.contains(s)))
    };
    log.lines()
        .filter(|l| l.contains(" ERROR ") && !upstream(l))
        .collect()
}

#[test]
fn only_upstream_failures_are_not_internal_errors() {
    let log = "\
2026-01-01T00:00:00.000001Z DEBUG tower_http::trace::on_request: started processing request
2026-01-01T00:00:00.000002Z ERROR assay_server::error: request failed status=503 Service Unavailable detail=x
2026-01-01T00:00:00.000003Z ERROR tower_http::trace::on_failure: response failed classification=Status code: 503 Service Unavailable latency=1 ms
2026-01-01T00:00:00.000004Z ERROR assay_server::error: request failed status=500 Internal Server Error detail=y
2026-01-01T00:00:00.000005Z ERROR tower_http::trace::on_failure: response failed classification=Status code: 500 Internal Server Error latency=1 ms
2026-01-01T00:00:00.000006Z ERROR assay_server::runner: cannot record the end of an operation";
    let found = internal_errors(log);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("status=500") && found[1].contains("Status code: 500"));
    assert!(found[2].contains("cannot record the end"));
}

/// The ids of a listing (an envelope's items or a bare array).
async fn ids(api: &common::Api, path: &str) -> Vec<i64> {
    let v = api.get(path).await.body;
    let items = v["items"].as_array().or(v.as_array()).cloned();
    items
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i["id"].as_i64())
        .collect()
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(assay_testkit::unique("assay-fuzz"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
