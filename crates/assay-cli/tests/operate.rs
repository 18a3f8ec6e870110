//! Running `assay serve` unattended: the metrics an operator scrapes (parsed by Prometheus' own Python parser)
//! move as requests, operations, deliveries and secret lookups happen; JSON logs carry the request and
//! operation ids; readiness follows the metadata store; SIGTERM hands a long run back to the queue; a server
//! killed while it runs a scheduled operation leaves the next instants to the other server, each fired once;
//! key rotation re-encrypts every stored secret.

mod common;

use assay_testkit::{Receiver, TestPg};
use common::api::{Http, datastore, set_slow, sleeping, slow_source, until};
use common::meta::MetaCluster;
use common::{Server, shop, tmp};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const METRICS_TOKEN: &str = "scrape-token-0123456789abcdef";

/// The samples of a scrape as Prometheus' text parser (PyPI `prometheus-client`) reads them, after its strict
/// OpenMetrics parser has accepted the text too: `(name, labels, value)`.
fn parse(text: &str) -> Vec<(String, Value, f64)> {
    let python = assay_testkit::workspace_root().join(".ci/venv/bin/python");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
text = sys.stdin.read()
list(openmetrics(text))
out = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(text) for s in f.samples]
print(json.dumps(out))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test script installs prometheus-client into .ci/venv");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parsers refuse the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, Value, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    rows
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none).
fn sample(samples: &[(String, Value, f64)], name: &str, labels: Value) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| l.get(k) == Some(v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

async fn scrape(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("the metrics listener answers");
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn ready(base: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}/api/health/ready"))
        .await
        .expect("the server answers");
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The JSON log lines the server printed (every line that is not one of its plain start-up lines must parse).
fn json_logs(server: &Server) -> Vec<Value> {
    server
        .lines()
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Whether a log line sits in a span carrying `field` = `value`.
fn in_span(line: &Value, field: &str, value: &Value) -> bool {
    line["spans"]
        .as_array()
        .is_some_and(|spans| spans.iter().any(|s| &s[field] == value))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_logs_carry_ids_and_readiness_follows_the_store() {
    let pg = TestPg::shared();
    let cluster = MetaCluster::with_store_database().await;
    let url = cluster.0.superuser_url("assay");
    let data = tmp("operate-data");
    let server = Server::start(&[
        "--metadata-url",
        &url,
        "--data-dir",
        data.to_str().unwrap(),
        "--log-format",
        "json",
        "--metrics-listen",
        "127.0.0.1:0",
        "--metrics-token",
        METRICS_TOKEN,
    ]);
    let metrics_url = server
        .lines()
        .iter()
        .find_map(|l| l.strip_prefix("Metrics at ").map(str::to_string))
        .expect("the server prints its metrics address");
    let token = server.token.clone().expect("first start prints a token");
    let http = Http::new(&format!("{}/api", server.url), &token);

    let (status, body) = ready(&server.url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["checks"],
        json!({"metadata_store": true, "migrations": true, "runner": true})
    );

    // the main listener's /metrics wants the metrics token or an admin; the separate listener wants nothing
    let main = format!("{}/metrics", server.url);
    assert_eq!(scrape(&main, None).await.0, 401);
    assert_eq!(scrape(&main, Some("not-the-token-000000")).await.0, 401);
    assert_eq!(scrape(&main, Some(METRICS_TOKEN)).await.0, 200);
    assert_eq!(scrape(&main, Some(&token)).await.0, 200);
    let (status, before) = scrape(&metrics_url, None).await;
    assert_eq!(status, 200);
    let before = parse(&before);

    // work of every kind: a datastore and its sync, a flow delivering to a webhook, a request with a client's
    // id, a secret lookup that fails
    let rx = Receiver::start().await;
    let (db, reader, _) = shop(pg).await;
    let ds = datastore(&http, pg, &db, &reader).await;
    http.ok(
        "/flows",
        json!({"name": "syncs", "trigger": {"type": "operation", "operation_types": ["sync"]},
               "actions": [{"type": "webhook", "url": rx.url("/hook")}]}),
    )
    .await;
    let sync = http.queue(ds, "sync").await;
    assert_eq!(http.wait(sync).await["result"], "success");
    until(30, "the webhook receives the sync's end", || async {
        !rx.received().is_empty()
    })
    .await;
    let traced = reqwest::Client::new()
        .get(format!("{}/api/datastores/{ds}", server.url))
        .bearer_auth(&token)
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "trace-me-42");
    let vault = Receiver::start().await;
    vault.set(assay_testkit::receiver::Mode::Fail);
    let (status, test) = http
        .call(
            reqwest::Method::POST,
            "/connections/test",
            Some(json!({"type": "postgresql", "host": "127.0.0.1", "port": pg.port(),
                        "username": reader, "password": "${pw}",
                        "secrets_manager": {"login_url": vault.url("/login"), "credentials_payload": "{}",
                                            "token_jsonpath": "$.auth.client_token",
                                            "secret_url": vault.url("/secret"),
                                            "token_header_name": "X-Vault-Token",
                                            "data_jsonpath": "$.data.data"}})),
        )
        .await;
    assert_eq!(status, 200, "{test}");

    // the delivery is recorded a moment after the receiver has it
    let mut after = Vec::new();
    until(30, "the scrape counts the delivery", || {
        let url = metrics_url.clone();
        async move {
            let s = parse(&scrape(&url, None).await.1);
            sample(
                &s,
                "assay_notification_deliveries_total",
                json!({"action": "webhook", "result": "delivered"}),
            ) >= 1.0
        }
    })
    .await;
    after.extend(parse(&scrape(&metrics_url, None).await.1));
    let moved = |name: &str, labels: Value| {
        sample(&after, name, labels.clone()) - sample(&before, name, labels)
    };
    assert_eq!(
        moved("assay_operations_started_total", json!({"type": "sync"})),
        2.0
    );
    assert_eq!(
        moved(
            "assay_operations_ended_total",
            json!({"type": "sync", "result": "success"})
        ),
        2.0
    );
    assert_eq!(
        moved(
            "assay_operation_duration_seconds_count",
            json!({"type": "sync"})
        ),
        2.0
    );
    assert!(
        moved(
            "assay_http_requests_total",
            json!({"method": "GET", "route": "/api/datastores/{id}", "status": "200"})
        ) >= 1.0
    );
    assert!(
        moved(
            "assay_http_request_duration_seconds_count",
            json!({"method": "POST", "route": "/api/operations/run"})
        ) >= 1.0
    );
    assert!(moved("assay_secrets_requests_total", json!({"result": "error"})) >= 1.0);
    assert_eq!(
        sample(&after, "assay_metadata_up", json!({})),
        1.0,
        "{after:?}"
    );
    assert_eq!(sample(&after, "assay_operations_queued", json!({})), 0.0);
    assert!(
        sample(
            &after,
            "assay_metadata_pool_connections",
            json!({"state": "idle"})
        ) >= 1.0
    );
    // no label carries a path with an id: routes are templates
    assert!(
        after
            .iter()
            .filter_map(|(_, l, _)| l.get("route"))
            .all(|r| !r.as_str().unwrap().contains(&format!("/{ds}"))),
        "{after:?}"
    );

    // JSON logs: every line parses; the request's lines carry the client's id, the operation's its ids
    let logs = json_logs(&server);
    assert!(
        logs.iter().all(|l| l["timestamp"].is_string()
            && l["level"].is_string()
            && l["target"].is_string())
    );
    assert!(
        logs.iter().any(|l| l["message"] == "RequestFinished"
            && in_span(l, "request_id", &json!("trace-me-42"))),
        "no request line with the client's id"
    );
    assert!(
        logs.iter().any(|l| l["message"] == "OperationFinished"
            && in_span(l, "operation_id", &json!(sync))
            && in_span(l, "datastore_id", &json!(ds))),
        "no operation line with its ids"
    );

    // readiness follows the metadata store; the metrics listener still answers and says the store is down
    cluster.down().await;
    let (status, body) = ready(&server.url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["metadata_store"], false);
    let down = parse(&scrape(&metrics_url, None).await.1);
    assert_eq!(sample(&down, "assay_metadata_up", json!({})), 0.0);
    cluster.up().await;
    until(30, "readiness returns with the store", || async {
        ready(&server.url).await.0 == 200
    })
    .await;

    for secret in ["metapw", "readerpw", METRICS_TOKEN] {
        assert!(!server.logged(secret), "a secret in the server's log");
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_hands_a_long_run_back_to_the_queue() {
    let pg = TestPg::shared();
    let meta = pg.create_database("operate_meta").await;
    let url = pg.superuser_url(&meta);
    let data = tmp("operate-handback");
    let args = [
        "--metadata-url",
        url.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
        "--shutdown-grace",
        "1s",
    ];
    let first = Server::start(&args);
    let token = first.token.clone().expect("first start prints a token");
    let http = Http::new(&format!("{}/api", first.url), &token);
    let (db, reader) = slow_source(pg, 5).await;
    let ds = datastore(&http, pg, &db, &reader).await;
    set_slow(pg, &db, true).await;
    let profile = http.queue(ds, "profile").await;
    until(60, "the profile reads the slow view", || async {
        sleeping(pg, &db).await > 0
    })
    .await;
    // SIGTERM: the grace period passes, the run stops at its next step, and the server exits cleanly
    first.stop();
    set_slow(pg, &db, false).await;

    let second = Server::start(&args);
    let http = Http::new(&format!("{}/api", second.url), &token);
    let stopped = http.wait(profile).await;
    assert_eq!(stopped["result"], "aborted", "{stopped}");
    let message = stopped["message"].as_str().unwrap();
    let again: i64 = message
        .split("queued again as operation ")
        .nth(1)
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("the message names the new operation: {message}"));
    assert!(
        message.contains("the server shut down") && message.contains("grace period 1 s"),
        "{message}"
    );
    let rerun = http.wait(again).await;
    assert_eq!(rerun["result"], "success", "{rerun}");
    assert_eq!(rerun["type"], "profile");
    assert_eq!(rerun["triggered_by"], stopped["triggered_by"]);
    second.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_mid_run_leaves_the_next_instant_to_the_other_once() {
    let pg = TestPg::shared();
    let meta = pg.create_database("operate_sched").await;
    let url = pg.superuser_url(&meta);
    let data = tmp("operate-sched");
    // schedules in seconds, looked at five times a second: an operator's settings, used here to keep it short
    let config = data.join("assay.toml");
    std::fs::write(
        &config,
        "[scheduler]\ntick = \"200ms\"\nmin_interval = \"1s\"\n",
    )
    .unwrap();
    let args = [
        "--metadata-url",
        url.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let mut first = Server::start(&args);
    let token = first.token.clone().expect("first start prints a token");
    let http = Http::new(&format!("{}/api", first.url), &token);
    let (db, reader) = slow_source(pg, 5).await;
    let ds = datastore(&http, pg, &db, &reader).await;
    set_slow(pg, &db, true).await;
    let schedule = http
        .ok(
            "/operations/schedule",
            json!({"name": "every 2 s", "datastore_id": ds, "type": "profile", "interval_seconds": 2}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    until(60, "the first server runs a scheduled profile", || async {
        sleeping(pg, &db).await > 0
    })
    .await;
    let second = Server::start(&args);
    first.sigkill();
    set_slow(pg, &db, false).await;
    let http = Http::new(&format!("{}/api", second.url), &token);

    // the killed run is swept once its heartbeat is stale; the instants meanwhile are skipped, and the next
    // one is queued and run by the surviving server
    let instants = || async {
        let (status, body) = http
            .get(&format!(
                "/operations/schedules/{schedule}/instants?size=1000"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let mut done = false;
        for i in instants().await.iter().filter(|i| i["outcome"] == "queued") {
            let (_, op) = http
                .get(&format!("/operations/{}", i["operation_id"]))
                .await;
            done |= op["result"] == "success";
        }
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled run succeeded after the kill"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    http.ok(
        &format!("/operations/schedules/{schedule}/disable"),
        json!({}),
    )
    .await;
    // an instant claimed just before the disable may still be queueing its run
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fired = instants().await;
    assert!(
        fired.iter().any(|i| i["outcome"] == "skipped"),
        "the instants during the killed run are skipped: {fired:?}"
    );
    let times: Vec<&str> = fired
        .iter()
        .map(|i| i["instant"].as_str().unwrap())
        .collect();
    let distinct: BTreeSet<&str> = times.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        times.len(),
        "an instant fired twice: {times:?}"
    );
    // one operation per queued instant, none doubled, and the first (the killed run) ended as interrupted
    let (_, ops) = http
        .get(&format!("/operations?datastore={ds}&size=1000"))
        .await;
    let run: BTreeSet<i64> = ops["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["schedule"]["id"] == schedule)
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    let queued: BTreeSet<i64> = fired
        .iter()
        .filter(|i| i["outcome"] == "queued")
        .map(|i| i["operation_id"].as_i64().unwrap())
        .collect();
    assert_eq!(queued, run);
    assert!(queued.len() >= 2, "{fired:?}");
    let killed = *queued.iter().next().unwrap();
    let (_, first_run) = http.get(&format!("/operations/{killed}")).await;
    assert_eq!(first_run["result"], "failure", "{first_run}");
    second.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_re_encrypts_every_secret_and_the_old_key_reads_none() {
    let pg = TestPg::shared();
    let meta = pg.create_database("operate_rekey").await;
    let url = pg.superuser_url(&meta);
    let data = tmp("operate-rekey");
    let server = Server::start(&["--metadata-url", &url, "--data-dir", data.to_str().unwrap()]);
    let token = server.token.clone().expect("first start prints a token");
    let http = Http::new(&format!("{}/api", server.url), &token);
    let (db, reader, _) = shop(pg).await;
    let ds = datastore(&http, pg, &db, &reader).await;
    let rx = Receiver::start().await;
    http.ok(
        "/flows",
        json!({"name": "signed", "trigger": {"type": "operation", "operation_types": ["sync"]},
               "actions": [{"type": "webhook", "url": rx.url("/signed"), "secret": "flow-signing-secret"}]}),
    )
    .await;
    server.stop();

    let new_key = data.join("rotated.key");
    let rotate = |key: Option<&std::path::Path>, new: &std::path::Path| {
        let mut cmd = Command::new(common::BIN);
        cmd.args(["key", "rotate", "--metadata-url", &url, "--data-dir"])
            .arg(&data)
            .arg("--new-key-file")
            .arg(new);
        if let Some(k) = key {
            cmd.arg("--key-file").arg(k);
        }
        cmd.output().unwrap()
    };
    let out = rotate(None, &new_key);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in ["connection passwords: 1", "flow secrets: 1", "settings: 1"] {
        assert!(text.contains(line), "{text}");
    }
    // the old key reads nothing now: a second rotation with it fails, names the cause and changes nothing
    let out = rotate(None, &data.join("third.key"));
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the current key does not decrypt the stored")
            && err.contains("nothing was changed"),
        "{err}"
    );
    // the same file twice is a usage error
    let out = rotate(Some(&new_key), &new_key);
    assert_eq!(out.status.code(), Some(2));

    // with the new key: the old token is accepted (the signing secret), a sync logs in to the source (the
    // password) and its notification is signed with the flow's secret
    let server = Server::start(&[
        "--metadata-url",
        &url,
        "--data-dir",
        data.to_str().unwrap(),
        "--key-file",
        new_key.to_str().unwrap(),
    ]);
    let http = Http::new(&format!("{}/api", server.url), &token);
    let sync = http.queue(ds, "sync").await;
    assert_eq!(http.wait(sync).await["result"], "success");
    until(30, "the signed webhook arrives", || async {
        !rx.received().is_empty()
    })
    .await;
    let got = &rx.received()[0];
    assert_eq!(
        got.header("x-assay-signature").unwrap(),
        format!(
            "sha256={}",
            assay_ops::flows::sign("flow-signing-secret", &got.body)
        )
    );
    server.stop();
}
