//! Connections through the API: CRUD, secrets write-only, conflicts, Test Connection classified, bad input.

mod common;

use common::Api;
use serde_json::json;

#[tokio::test]
async fn connection_crud_keeps_the_password_write_only() {
    let api = Api::start().await;
    let (db, reader, _) = common::shop("crud").await;
    let created = api
        .ok(
            "/connections",
            Api::conn_body("pg-src", &reader, "readerpw"),
        )
        .await;
    let id = created["id"].as_i64().expect("integer id");
    assert_eq!(created["type"], "postgresql");
    assert_eq!(created["connection_type"], "jdbc");
    assert!(created.get("password").is_none(), "{created}");
    // duplicate name
    let dup = api
        .post("/connections", Api::conn_body("pg-src", &reader, "x"))
        .await;
    assert_eq!(dup.status, 409, "{}", dup.body);
    assert!(dup.body["detail"].as_str().unwrap().contains("pg-src"));
    // update without a password keeps it: the test still connects
    let upd = api
        .put(
            &format!("/connections/{id}"),
            json!({"name": "pg-src", "type": "postgresql", "port": api_port()}),
        )
        .await;
    assert_eq!(upd.status, 200, "{}", upd.body);
    let t = api
        .post(&format!("/connections/{id}/test"), json!({"database": db}))
        .await;
    assert_eq!(t.body["connected"], true, "{}", t.body);
    // the password is encrypted at rest
    let stored = assay_testkit::TestPg::shared()
        .superuser(&api.metadata_db)
        .await
        .query_one("SELECT password_enc FROM connections WHERE id = $1", &[&id])
        .await
        .unwrap();
    let bytes: Vec<u8> = stored.get(0);
    assert!(!bytes.windows(8).any(|w| w == b"readerpw"));
    // listing pages exactly
    for i in 0..3 {
        api.ok(
            "/connections",
            Api::conn_body(&format!("extra-{i}"), &reader, "p"),
        )
        .await;
    }
    let p1 = api.get("/connections?page=1&size=3").await.body;
    let p2 = api.get("/connections?page=2&size=3").await.body;
    assert_eq!(p1["total"], 4);
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    // a short last page, a page past the end, an exactly full page and a middle page all know the total
    let total_and_len =
        |b: &serde_json::Value| (b["total"].clone(), b["items"].as_array().unwrap().len());
    assert_eq!(total_and_len(&p2), (json!(4), 1));
    for (query, len) in [
        ("page=3&size=3", 0),
        ("page=1&size=4", 4),
        ("page=2&size=2", 2),
    ] {
        let b = api.get(&format!("/connections?{query}")).await.body;
        assert_eq!(total_and_len(&b), (json!(4), len), "{query}");
    }
    assert_eq!(
        api.get("/connections?type=postgresql&type=mysql&size=100")
            .await
            .body["total"],
        4
    );
    let by_name = api.get("/connections?name=extra").await.body;
    assert_eq!(by_name["total"], 3);
    // delete an unused one
    let extra = p2["items"][0]["id"].as_i64().unwrap();
    assert_eq!(
        api.call("DELETE", &format!("/connections/{extra}"), None)
            .await
            .status,
        204
    );
    assert_eq!(api.get(&format!("/connections/{extra}")).await.status, 404);
}

fn api_port() -> u16 {
    assay_testkit::TestPg::shared().port()
}

#[tokio::test]
async fn a_connection_in_use_cannot_be_deleted() {
    let api = Api::start().await;
    let (db, reader, _) = common::shop("inuse").await;
    let c = api
        .ok(
            "/connections",
            Api::conn_body("shared", &reader, "readerpw"),
        )
        .await;
    let ds = api
        .ok("/datastores", json!({"name": "Sales A", "connection_id": c["id"], "database": db, "schema": "sales", "trigger_sync": false}))
        .await;
    let r = api
        .call("DELETE", &format!("/connections/{}", c["id"]), None)
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.body["detail"].as_str().unwrap().contains("Sales A"),
        "{}",
        r.body
    );
    assert_eq!(
        api.call("DELETE", &format!("/datastores/{}", ds["id"]), None)
            .await
            .status,
        204
    );
    assert_eq!(
        api.call("DELETE", &format!("/connections/{}", c["id"]), None)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn test_connection_reports_cause_and_fix() {
    let api = Api::start().await;
    let (db, reader, _) = common::shop("testconn").await;
    let c = api
        .ok(
            "/connections",
            Api::conn_body("t", &reader, "wrong-password"),
        )
        .await;
    let id = c["id"].as_i64().unwrap();
    // empty body with a JSON content type: tests the saved values
    let r = api
        .call("POST", &format!("/connections/{id}/test"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["connected"], false);
    assert_eq!(r.body["diagnosis"]["code"], "28P01");
    assert!(r.body["message"].as_str().unwrap().contains("Fix:"));
    // overrides are used for the test only
    let r = api
        .post(
            &format!("/connections/{id}/test"),
            json!({"password": "readerpw", "database": db}),
        )
        .await;
    assert_eq!(r.body["connected"], true, "{}", r.body);
    let r = api
        .post(&format!("/connections/{id}/test"), json!({"database": db}))
        .await;
    assert_eq!(r.body["connected"], false, "override must not be saved");
    // an unsaved connection
    let mut body = Api::conn_body("x", "dq_nohba", "nohbapw");
    body["database"] = json!(db);
    let r = api.post("/connections/test", body).await;
    assert_eq!(r.body["diagnosis"]["code"], "28000", "{}", r.body);
    let r = api.post("/connections/test", json!({"type": "postgresql", "host": "127.0.0.1", "port": assay_testkit::free_port().unwrap(), "username": "u", "password": "p"})).await;
    assert_eq!(
        r.body["diagnosis"]["code"], "connection_refused",
        "{}",
        r.body
    );
    assert!(!common::logs().contains("wrong-password"));
    let logs = common::logs();
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains("readerpw")).collect();
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[tokio::test]
async fn bad_input_gets_clear_json_errors() {
    let api = Api::start().await;
    // invalid JSON
    let r = api.call("POST", "/connections", None).await;
    assert_eq!(r.status, 422, "empty body: {}", r.body);
    let resp = api
        .http
        .post(format!("{}/connections", api.base))
        .bearer_auth(&api.token)
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    // wrong content type
    let resp = api
        .http
        .post(format!("{}/connections", api.base))
        .bearer_auth(&api.token)
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    // wrong types and missing fields, all at once
    let r = api.post("/connections", json!({"type": "postgresql", "name": {"a": 1}, "port": "abc", "host": ["x"], "max_parallelization": 500})).await;
    assert_eq!(r.status, 422);
    let fields: Vec<String> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    for f in ["name", "host", "port", "max_parallelization", "username"] {
        assert!(fields.iter().any(|x| x == f), "{f} missing in {fields:?}");
    }
    let r = api
        .post(
            "/connections",
            json!({"type": "oracle", "name": "o", "host": "h", "username": "u"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body["detail"].as_str().unwrap().contains("not supported"));
    // bad sslmode
    let r = api.post("/connections", json!({"type": "postgresql", "name": "s", "host": "h", "username": "u", "parameters": {"sslmode": "sometimes"}})).await;
    assert_eq!(r.status, 422);
    // unknown and malformed ids
    assert_eq!(api.get("/connections/99999").await.status, 404);
    let r = api.get("/connections/abc").await;
    assert_eq!(r.status, 422);
    assert!(r.body["detail"].is_string());
    assert_eq!(api.get("/datastores/99999").await.status, 404);
    assert_eq!(api.get("/operations/99999").await.status, 404);
    assert_eq!(api.get("/containers/99999").await.status, 404);
    // unknown route and wrong method are JSON too
    let r = api.get("/nope").await;
    assert_eq!(r.status, 404);
    assert!(r.body["detail"].is_string());
    assert_eq!(api.call("PATCH", "/connections", None).await.status, 405);
    // bad pagination
    assert_eq!(api.get("/connections?size=0").await.status, 422);
    assert_eq!(api.get("/connections?page=x").await.status, 422);
    assert_eq!(api.get("/connections?size=100").await.status, 200);
    // unknown fields and nulls are accepted
    let r = api
        .post(
            "/connections",
            json!({"type": "postgresql", "name": "n", "host": "h", "username": "u", "password": "p",
        "parameters": null, "secrets_manager": null, "whatever": {"x": 1}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // no token, bad token
    assert_eq!(
        api.call_as(None, "GET", "/connections", None).await.status,
        401
    );
    assert_eq!(
        api.call_as(Some("a.b.c"), "GET", "/connections", None)
            .await
            .status,
        401
    );
    // status is public
    assert_eq!(api.call_as(None, "GET", "/status", None).await.status, 200);
    assert_eq!(api.call_as(None, "GET", "/health", None).await.status, 204);
}

/// The served document passes an OpenAPI 3.1 validator (PyPI `openapi-spec-validator`, installed into
/// `.ci/venv` by the test script), and the validator refuses the same document with one operation broken, so a
/// pass means something.
#[tokio::test]
async fn the_document_is_valid_openapi() {
    let validator = assay_testkit::workspace_root().join(".ci/venv/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run scripts/test, which installs openapi-spec-validator into .ci/venv",
        validator.display()
    );
    let api = Api::start().await;
    let doc = api.call_as(None, "GET", "/openapi.json", None).await.body;
    let dir = std::env::temp_dir().join(format!("assay-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let validate = |doc: &serde_json::Value, name: &str| {
        let file = dir.join(name);
        std::fs::write(&file, doc.to_string()).unwrap();
        std::process::Command::new(&validator)
            .arg(&file)
            .output()
            .unwrap()
    };
    let out = validate(&doc, "openapi.json");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut broken = doc.clone();
    broken["paths"]["/api/connections"]["get"]["responses"] = json!("none");
    assert!(!validate(&broken, "broken.json").status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_documented_route_exists() {
    let api = Api::start().await;
    let doc = api.call_as(None, "GET", "/openapi.json", None).await.body;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 20);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .trim_start_matches("/api")
                .split('/')
                .map(|s| if s.starts_with('{') { "999999" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let r = api.call(&method.to_uppercase(), &concrete, None).await;
            assert_ne!(r.status, 405, "{method} {path}");
            assert!(
                !(r.status == 404 && r.body["detail"] == "Not Found: no such route"),
                "{method} {path} is not routed"
            );
            assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.body);
        }
    }
}
