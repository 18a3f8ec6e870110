//! Oversized and malformed requests on every route of the OpenAPI document that takes a body, and hostile
//! pagination on every list route: each is a 4xx with a JSON `detail` (never a 5xx), page sizes stay within
//! the documented maximum, and the server keeps answering.

use crate::common::Api;
use serde_json::{Value, json};

/// The routes of the served document, with `{param}`s filled with ids that exist.
async fn routes(api: &Api, ids: &Value) -> Vec<(String, String, Value)> {
    let doc = api.get("/openapi.json").await.body;
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let concrete: Vec<String> = path
                .trim_start_matches("/api")
                .split('/')
                .map(
                    |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => ids[name]
                            .as_i64()
                            .map_or_else(|| format!("no-{name}"), |i| i.to_string()),
                        None => seg.to_string(),
                    },
                )
                .collect();
            out.push((method.to_uppercase(), concrete.join("/"), op.clone()));
        }
    }
    assert!(out.len() > 60, "{out:?}");
    out
}

/// Sends raw bytes with a content type; returns (status, body as JSON or text).
async fn raw(
    api: &Api,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = api
        .http
        .request(m, format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn assert_client_error(
    what: &str,
    method: &str,
    path: &str,
    status: u16,
    body: &Value,
    expected: &[u16],
) {
    assert!(
        expected.contains(&status),
        "{what} on {method} {path}: {status}, expected one of {expected:?}: {body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what} on {method} {path}: no JSON detail: {body}"
    );
}

/// A source datastore with a synced table and a check, so the routes' ids exist.
async fn ids(api: &Api) -> Value {
    let (db, reader, writer) = crate::common::shop("malformed").await;
    assay_testkit::TestPg::shared()
        .superuser(&db)
        .await
        .batch_execute("INSERT INTO sales.customers VALUES (1, NULL), (2, 'b@x.io')")
        .await
        .unwrap();
    let c = api
        .ok(
            "/connections",
            Api::conn_body("c-malformed", &reader, "readerpw"),
        )
        .await;
    let ds = api
        .ok(
            "/datastores",
            json!({"name": "malformed", "connection_id": c["id"], "database": db, "schema": "sales", "trigger_sync": false}),
        )
        .await;
    let ds_id = ds["id"].as_i64().unwrap();
    assert_eq!(api.sync(ds_id, json!({})).await["result"], "success");
    let list = api
        .get(&format!("/containers/listing?datastore={ds_id}"))
        .await
        .body;
    let container = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "customers")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let k = api
        .ok(
            "/quality-checks",
            json!({"container_id": container, "rule": "notNull", "fields": ["email"]}),
        )
        .await;
    let scan = crate::common::checks::run(api, ds_id, "scan", json!({})).await;
    let anomaly = api.get("/anomalies?size=1").await.body["items"][0]["id"].clone();
    assert!(
        anomaly.is_i64(),
        "the scan of an empty column found an anomaly: {scan}"
    );
    let team = api.ok("/teams", json!({"name": "malformed team"})).await;
    let enrichment = api
        .ok(
            "/datastores",
            json!({"name": "malformed enrichment", "connection": Api::conn_body("w-malformed", &writer, "writerpw"),
                   "database": db, "schema": "enrich", "enrichment_only": true, "trigger_sync": false}),
        )
        .await;
    let me = api.get("/users/me").await.body;
    let schedule = api
        .ok(
            "/operations/schedule",
            json!({"name": "malformed nightly", "datastore_id": ds_id, "type": "scan", "preset": "daily"}),
        )
        .await;
    let flow = api
        .ok(
            "/flows",
            json!({"name": "malformed flow", "trigger": {"type": "anomaly"}, "active": false,
                   "actions": [{"type": "webhook", "url": "http://127.0.0.1:1/never"}]}),
        )
        .await;
    json!({"datastore_id": ds_id, "enrichment_id": enrichment["id"], "connection_id": c["id"], "container_id": container,
           "check_id": k["id"], "user_id": me["id"], "team_id": team["id"], "anomaly_id": anomaly,
           "operation_id": scan["id"], "schedule_id": schedule["id"], "flow_id": flow["id"]})
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_4xx_with_a_detail_on_every_route() {
    let api = Api::start().await;
    let ids = ids(&api).await;
    let routes = routes(&api, &ids).await;
    let with_body: Vec<_> = routes
        .iter()
        .filter(|(_, _, op)| op.get("requestBody").is_some())
        .collect();
    assert!(
        with_body.len() > 25,
        "every POST/PUT/PATCH documents its body"
    );
    // over the 2 MiB limit
    let big = json!({"name": "x".repeat(3 * 1024 * 1024), "description": "big"})
        .to_string()
        .into_bytes();
    // 10,000 levels of nesting
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let deep_object = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes();
    let invalid_utf8 = b"{\"name\": \"\xff\xfe\xfd\", \"type\": \"postgresql\"}".to_vec();
    let huge_numbers =
        br#"{"datastore_id": 1e400, "container_id": 1e400, "type": "sync"}"#.to_vec();
    let cases: Vec<(&str, &str, Vec<u8>, Vec<u16>)> = vec![
        ("a 3 MiB body", "application/json", big, vec![413]),
        ("10,000 nested arrays", "application/json", deep, vec![422]),
        (
            "10,000 nested objects",
            "application/json",
            deep_object,
            vec![422],
        ),
        ("invalid UTF-8", "application/json", invalid_utf8, vec![422]),
        (
            "a number past f64",
            "application/json",
            huge_numbers,
            vec![422],
        ),
        (
            "text/plain",
            "text/plain",
            br#"{"name": "x"}"#.to_vec(),
            vec![415],
        ),
        (
            "a form",
            "application/x-www-form-urlencoded",
            b"name=x&type=postgresql".to_vec(),
            vec![415],
        ),
        (
            "a NUL character",
            "application/json",
            br#"{"name": "a\u0000b", "rule": "notNull"}"#.to_vec(),
            vec![422],
        ),
    ];
    for (method, path, _) in &with_body {
        for (what, ct, body, expected) in &cases {
            let (status, resp) = raw(&api, method, path, ct, body.clone()).await;
            assert_client_error(what, method, path, status, &resp, expected);
        }
        // the wrong JSON shape: an array where an object is expected, or an object where an array is
        let (status, resp) = raw(
            &api,
            method,
            path,
            "application/json",
            b"[1, 2, 3]".to_vec(),
        )
        .await;
        let (status2, resp2) = raw(
            &api,
            method,
            path,
            "application/json",
            br#"{"id": 1}"#.to_vec(),
        )
        .await;
        let array_routes = matches!(
            (method.as_str(), path.as_str()),
            ("DELETE" | "PATCH", "/anomalies")
                | ("DELETE", "/quality-checks")
                | ("PATCH", "/containers")
        );
        if path.starts_with("/computed-fields/") {
            // no computed field exists: its id is refused before the body's shape is looked at
            assert_client_error(
                "a body for a missing field",
                method,
                path,
                status,
                &resp,
                &[404, 422],
            );
            continue;
        }
        if array_routes {
            assert_client_error(
                "an object for a list",
                method,
                path,
                status2,
                &resp2,
                &[422],
            );
            assert!(
                status < 500,
                "{method} {path} with [1, 2, 3]: {status} {resp}"
            );
        } else {
            assert_client_error("an array", method, path, status, &resp, &[422]);
            assert!(
                status2 < 500,
                "{method} {path} with an object: {status2} {resp2}"
            );
        }
        // no body at all: some routes take that (a token, a link), none fails on it
        let (status, resp) = raw(&api, method, path, "application/json", Vec::new()).await;
        assert!(
            status < 500,
            "{method} {path} with no body: {status} {resp}"
        );
        if status >= 400 {
            assert_client_error("no body", method, path, status, &resp, &[status]);
        }
    }
    // integers past i64 are type errors that name the field
    let past_i64 = br#"{"datastore_id": 99999999999999999999999, "type": "sync"}"#.to_vec();
    let (status, body) = raw(
        &api,
        "POST",
        "/operations/run",
        "application/json",
        past_i64,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("datastore_id"),
        "{body}"
    );
    let r = api
        .post(
            "/operations/run",
            json!({"datastore_id": i64::MAX, "type": "sync"}),
        )
        .await;
    assert!(matches!(r.status, 404 | 422), "{}", r.body);
    // the server still answers
    assert_eq!(api.get("/status").await.status, 200);
    assert_eq!(api.get("/users/me").await.status, 200);
}

#[tokio::test]
async fn hostile_pagination_is_refused_and_sizes_stay_within_the_maximum() {
    let api = Api::start().await;
    let ids = ids(&api).await;
    let routes = routes(&api, &ids).await;
    let doc = api.get("/openapi.json").await.body;
    let lists: Vec<_> = routes
        .iter()
        .filter(|(m, _, op)| {
            m == "GET"
                && op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == "size")
        })
        .collect();
    assert!(lists.len() >= 12, "{lists:?}");
    let max = doc["paths"]["/api/anomalies"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "size")
        .unwrap()["schema"]["maximum"]
        .as_i64()
        .unwrap();
    assert_eq!(max, 1000, "the documented maximum page size");
    for (_, path, _) in &lists {
        let sep = if path.contains('?') { '&' } else { '?' };
        for query in [
            "size=1000000000",
            "size=0",
            "size=-5",
            "page=0",
            "page=-1",
            "page=9223372036854775807",
            "page=9223372036854775807&size=1000",
            "page=99999999999999999999999",
            "size=1e9",
            "page=%00",
            "name=%00&search=%00",
        ] {
            let r = api.get(&format!("{path}{sep}{query}")).await;
            assert_client_error(query, "GET", path, r.status, &r.body, &[422]);
        }
        // the largest size answers, and within the maximum
        let r = api.get(&format!("{path}{sep}size={max}&page=1")).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        let items = r.body["items"].as_array().map_or(0, Vec::len);
        assert!(items as i64 <= max, "GET {path}: {items} items");
        // a page far past the end is an empty page, not an error
        let r = api.get(&format!("{path}{sep}size=10&page=1000000")).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert_eq!(r.body["items"], json!([]), "GET {path}: {}", r.body);
    }
    assert_eq!(api.get("/status").await.status, 200);
}

#[tokio::test]
async fn token_lifetimes_past_the_calendar_are_refused_not_a_crash() {
    let api = Api::start().await;
    for days in [
        json!(36_526),
        json!(i64::MAX / 86_400),
        json!(i64::MAX),
        json!(-1),
    ] {
        let r = api
            .post("/tokens", json!({"name": "long", "days": days}))
            .await;
        assert_eq!(r.status, 422, "days {days}: {}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("days")),
            "days {days}: {}",
            r.body
        );
    }
    // the longest allowed lifetime still works, and the server is unharmed
    let r = api
        .post("/tokens", json!({"name": "century", "days": 36_525}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["expires_at"]
            .as_str()
            .is_some_and(|e| e.starts_with("21"))
    );
    assert_eq!(api.get("/users/me").await.status, 200);
}

// two workers: a handler stuck reading a FIFO would hold one, and the bound below still fires on the other
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_certificate_path_to_a_device_or_a_fifo_is_refused_not_read_forever() {
    let api = Api::start().await;
    let fifo = std::env::temp_dir().join(assay_testkit::unique("assay-fifo"));
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    // the FIFO first: read unbounded, /dev/zero would fill memory rather than hang
    for path in [fifo.display().to_string(), "/dev/zero".to_string()] {
        let mut body = Api::conn_body("cert", "nobody", "pw");
        body["parameters"] = json!({"sslmode": "verify-full", "sslrootcert": path});
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            api.post("/connections/test", body),
        )
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer, the server is still reading it"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["success"], false, "{}", r.body);
        let message = r.body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("sslrootcert") && message.contains("not a regular file"),
            "{path}: {message}"
        );
    }
    let _ = std::fs::remove_file(&fifo);
    assert_eq!(api.get("/status").await.status, 200);
}
