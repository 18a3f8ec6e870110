//! Datastores through the API: the seed's payloads, reused connections, teams, preflight, enrichment links.

mod common;

use assay_testkit::TestPg;
use common::Api;
use serde_json::json;

/// The seed's "Creating a Source Datastore" payload, verbatim in shape: `enrich_only`, `trigger_catalog`, a
/// nested connection and the port as a string.
#[tokio::test]
async fn seed_payloads_create_source_and_enrichment_datastores() {
    let api = Api::start().await;
    let (db, reader, writer) = common::shop("seedpayload").await;
    let port = TestPg::shared().port().to_string();
    let source = api
        .ok("/datastores", json!({
            "name": "your_datastore_name", "teams": ["Public"], "database": db, "schema": "sales",
            "enrich_only": false, "trigger_catalog": true,
            "connection": {"name": "your_connection_name", "type": "postgresql", "host": "127.0.0.1",
                           "port": port, "username": reader, "password": "readerpw"}}))
        .await;
    assert_eq!(source["enrichment_only"], false);
    assert_eq!(source["teams"][0]["name"], "Public");
    assert!(source["connection_id"].is_i64());
    assert!(
        source.get("connection").is_none(),
        "no partial connection object: {source}"
    );
    assert!(source.get("password").is_none());
    let enrich = api
        .ok("/datastores", json!({
            "name": "enrichment_store", "teams": ["Public"], "database": db, "schema": "enrich",
            "enrich_only": true,
            "connection": {"name": "enrichment_connection", "type": "postgresql", "host": "127.0.0.1",
                           "port": port, "username": writer, "password": "writerpw"}}))
        .await;
    assert_eq!(enrich["enrichment_only"], true);
    // trigger_catalog queued a sync for the source; it finishes with the schema's containers
    let ops = api
        .get(&format!("/operations?datastore={}", source["id"]))
        .await
        .body;
    assert_eq!(ops["total"], 1);
    let op = api.wait(ops["items"][0]["id"].as_i64().unwrap()).await;
    assert_eq!(op["result"], "success", "{op}");
    assert_eq!(op["status"]["containers_analyzed"], 3);
    // trigger_sync defaults to true, except when given false
    assert_eq!(
        api.get(&format!("/operations?datastore={}", enrich["id"]))
            .await
            .body["total"],
        1
    );
    // both test green with their roles
    let t = api
        .post(
            &format!("/datastores/{}/connection", source["id"]),
            json!({}),
        )
        .await
        .body;
    assert_eq!(t["connected"], true, "{t}");
    let t = api
        .call(
            "POST",
            &format!("/datastores/{}/connection", enrich["id"]),
            None,
        )
        .await
        .body;
    assert_eq!(t["connected"], true, "{t}");
    // enrichment_only filter in both spellings
    assert_eq!(
        api.get("/datastores?enrichment_only=True").await.body["total"],
        1
    );
    assert_eq!(
        api.get("/datastores?enrichment_only=false").await.body["total"],
        1
    );
    assert_eq!(api.get("/datastores?name=your_data").await.body["total"], 1);
    assert_eq!(
        api.get("/datastores?datastore_type=postgresql").await.body["total"],
        2
    );
}

#[tokio::test]
async fn reusing_a_connection_allows_only_datastore_fields() {
    let api = Api::start().await;
    let (db, reader, _) = common::shop("reuse").await;
    let c = api
        .ok(
            "/connections",
            Api::conn_body("shared", &reader, "readerpw"),
        )
        .await;
    let a = api
        .ok("/datastores", json!({"name": "A", "connection_id": c["id"], "database": db, "schema": "sales", "trigger_sync": false, "tags": null, "teams": null}))
        .await;
    let b = api
        .ok("/datastores", json!({"name": "B", "connection_id": c["id"], "database": db, "schema": "enrich", "trigger_sync": false}))
        .await;
    assert_eq!(a["connection_id"], b["connection_id"]);
    assert_eq!(
        api.get(&format!("/operations?datastore={}", a["id"]))
            .await
            .body["total"],
        0
    );
    let r = api
        .post("/datastores", json!({"name": "C", "connection_id": c["id"], "database": db, "schema": "sales", "password": "other"}))
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("existing connection"),
        "{}",
        r.body
    );
    let r = api
        .post("/datastores", json!({"name": "C", "connection_id": c["id"], "connection": {"type": "postgresql"}, "database": db, "schema": "sales"}))
        .await;
    assert_eq!(r.status, 422);
    // datastore errors: missing fields, duplicate name, unknown connection, unknown team, system schema
    let r = api
        .post("/datastores", json!({"connection_id": c["id"]}))
        .await;
    assert_eq!(r.status, 422);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"name") && fields.contains(&"database") && fields.contains(&"schema"),
        "{fields:?}"
    );
    let r = api
        .post(
            "/datastores",
            json!({"name": "A", "connection_id": c["id"], "database": db, "schema": "sales"}),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = api
        .post(
            "/datastores",
            json!({"name": "Z", "connection_id": 424242, "database": db, "schema": "sales"}),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = api.post("/datastores", json!({"name": "Z", "connection_id": c["id"], "database": db, "schema": "sales", "teams": ["Nope"]})).await;
    assert_eq!(r.status, 422);
    assert!(r.body["detail"].as_str().unwrap().contains("Nope"));
    let r = api
        .post(
            "/datastores",
            json!({"name": "Z", "connection_id": c["id"], "database": db, "schema": "pg_catalog"}),
        )
        .await;
    assert_eq!(r.status, 422);
    // a nested connection whose datastore fails is not left behind
    let before = api.get("/connections").await.body["total"].clone();
    let r = api.post("/datastores", json!({"name": "A", "database": db, "schema": "sales", "connection": Api::conn_body("orphan", &reader, "x")})).await;
    assert_eq!(r.status, 409);
    assert_eq!(api.get("/connections").await.body["total"], before);
    // PUT takes the GET representation back, ignoring read-only fields
    let mut full = api.get(&format!("/datastores/{}", a["id"])).await.body;
    full["teams"] = json!(["Public"]);
    full["schema"] = json!("enrich");
    full["host"] = json!("ignored.example");
    full["enrichment_remediation_strategy"] = json!("append");
    let r = api.put(&format!("/datastores/{}", a["id"]), full).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["schema"], "enrich");
    assert_eq!(r.body["host"], "127.0.0.1");
    assert_eq!(r.body["enrichment_remediation_strategy"], "append");
    let r = api.put(&format!("/datastores/{}", a["id"]), json!({"enrichment_remediation_strategy": "sometimes", "high_count_rollup_threshold": 0})).await;
    assert_eq!(r.status, 422);
    // the datastore's source-record limit is the scan's: 100000 at most
    let path = format!("/datastores/{}", a["id"]);
    let r = api
        .put(&path, json!({"enrichment_source_record_limit": 100_000}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["enrichment_source_record_limit"], 100_000);
    let r = api
        .put(&path, json!({"enrichment_source_record_limit": 100_001}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["field"],
        "enrichment_source_record_limit"
    );
}

#[tokio::test]
async fn preflight_lists_missing_grants() {
    let api = Api::start().await;
    let (db, reader, _) = common::shop("pre").await;
    let c = api
        .ok("/connections", Api::conn_body("r", &reader, "readerpw"))
        .await;
    // the read-only role as an enrichment store, before saving
    let t = api
        .ok("/datastores/connection", json!({"connection_id": c["id"], "database": db, "schema": "sales", "enrichment_only": true}))
        .await;
    assert_eq!(t["connected"], false, "{t}");
    let grants: Vec<&str> = t["preflight"]["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(
        grants.contains(&format!("GRANT CREATE ON SCHEMA \"sales\" TO \"{reader}\";").as_str()),
        "{grants:?}"
    );
    // as a source it passes
    let t = api
        .ok(
            "/datastores/connection",
            json!({"connection_id": c["id"], "database": db, "schema": "sales"}),
        )
        .await;
    assert_eq!(t["connected"], true, "{t}");
    // a table without SELECT is named with the fix
    TestPg::shared()
        .superuser(&db)
        .await
        .batch_execute(&format!(
            "CREATE TABLE sales.secret (x int); REVOKE ALL ON sales.secret FROM {reader}"
        ))
        .await
        .unwrap();
    let t = api
        .ok(
            "/datastores/connection",
            json!({"connection_id": c["id"], "database": db, "schema": "sales"}),
        )
        .await;
    assert_eq!(t["connected"], false);
    assert_eq!(
        t["preflight"]["missing"][0]["object"],
        "table \"sales\".\"secret\""
    );
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains("GRANT SELECT ON ALL TABLES IN SCHEMA \"sales\"")
    );
    // a missing schema
    let t = api
        .ok(
            "/datastores/connection",
            json!({"connection_id": c["id"], "database": db, "schema": "nope"}),
        )
        .await;
    assert_eq!(t["connected"], false);
    assert!(t["message"].as_str().unwrap().contains("does not exist"));
}

#[tokio::test]
async fn link_and_unlink_enrichment() {
    let api = Api::start().await;
    let (db, reader, writer) = common::shop("link").await;
    let rc = api
        .ok("/connections", Api::conn_body("r", &reader, "readerpw"))
        .await;
    let wc = api
        .ok("/connections", Api::conn_body("w", &writer, "writerpw"))
        .await;
    let src = api.ok("/datastores", json!({"name": "Analytics Bronze", "connection_id": rc["id"], "database": db, "schema": "sales", "trigger_sync": false})).await;
    let other = api.ok("/datastores", json!({"name": "Other", "connection_id": rc["id"], "database": db, "schema": "sales", "trigger_sync": false})).await;
    let enr = api.ok("/datastores", json!({"name": "Enrich", "connection_id": wc["id"], "database": db, "schema": "enrich", "enrichment_only": true, "trigger_sync": false})).await;
    let (s, e, o) = (
        src["id"].as_i64().unwrap(),
        enr["id"].as_i64().unwrap(),
        other["id"].as_i64().unwrap(),
    );
    // a non-enrichment target is refused
    let r = api
        .call("PATCH", &format!("/datastores/{s}/enrichment/{o}"), None)
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    // no body: the prefix is made from the source's name
    let r = api
        .call("PATCH", &format!("/datastores/{s}/enrichment/{e}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["enrichment_prefix"], "_analytics_bronze");
    let link = &r.body["enrich_datastore"];
    assert_eq!(link["id"], e);
    assert_eq!(link["host"], "127.0.0.1");
    assert_eq!(link["database"], db.as_str());
    assert_eq!(link["schema"], "enrich");
    assert_eq!(link["teams"][0], "Public");
    // a given prefix is normalised
    let r = api
        .call(
            "PATCH",
            &format!("/datastores/{s}/enrichment/{e}"),
            Some(json!({"enrichment_prefix": "Shop Data"})),
        )
        .await;
    assert_eq!(r.body["enrichment_prefix"], "_shop_data");
    let r = api
        .call(
            "PATCH",
            &format!("/datastores/{s}/enrichment/{e}"),
            Some(json!({"enrichment_prefix": "!!!"})),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        api.get(&format!("/datastores/{e}")).await.body["linked_datastores"][0]["id"],
        s
    );
    // the enrichment store cannot be deleted while linked
    assert_eq!(
        api.call("DELETE", &format!("/datastores/{e}"), None)
            .await
            .status,
        409
    );
    // unlink: remediation resets to none, the prefix stays
    api.put(
        &format!("/datastores/{s}"),
        json!({"enrichment_remediation_strategy": "overwrite"}),
    )
    .await;
    assert_eq!(
        api.call("DELETE", &format!("/datastores/{s}/enrichment"), None)
            .await
            .status,
        204
    );
    let after = api.get(&format!("/datastores/{s}")).await.body;
    assert!(after["enrich_datastore"].is_null());
    assert_eq!(after["enrichment_remediation_strategy"], "none");
    assert_eq!(after["enrichment_prefix"], "_shop_data");
    // unlinking again is a no-op
    assert_eq!(
        api.call("DELETE", &format!("/datastores/{s}/enrichment"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        api.call("DELETE", &format!("/datastores/{e}"), None)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn teams_decide_who_sees_a_datastore() {
    let api = Api::start().await;
    let (db, reader, _) = common::shop("teams").await;
    let c = api
        .ok("/connections", Api::conn_body("r", &reader, "readerpw"))
        .await;
    let red = api.ok("/teams", json!({"name": "Red"})).await;
    api.ok("/teams", json!({"name": "Blue"})).await;
    let alice = api.ok("/users", json!({"username": "alice", "password": "alice-password", "role": "Member", "teams": ["Red"]})).await;
    let bob = api
        .ok(
            "/users",
            json!({"username": "bob", "password": "bob-password-1"}),
        )
        .await;
    let ds_red = api.ok("/datastores", json!({"name": "red-ds", "connection_id": c["id"], "database": db, "schema": "sales", "teams": ["Red"], "trigger_sync": false})).await;
    api.ok("/datastores", json!({"name": "pub-ds", "connection_id": c["id"], "database": db, "schema": "sales", "trigger_sync": false})).await;
    let login = |u: &'static str, p: &'static str| {
        let api = &api;
        async move {
            api.ok("/auth/login", json!({"username": u, "password": p}))
                .await["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let alice_t = login("alice", "alice-password").await;
    let bob_t = login("bob", "bob-password-1").await;
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(
            &api.call_as(Some(&alice_t), "GET", "/datastores", None)
                .await
                .body
        ),
        ["red-ds", "pub-ds"]
    );
    assert_eq!(
        names(
            &api.call_as(Some(&bob_t), "GET", "/datastores", None)
                .await
                .body
        ),
        ["pub-ds"]
    );
    // another team's datastore answers 404, for reads, writes, tests and operations
    let red_id = ds_red["id"].as_i64().unwrap();
    assert_eq!(
        api.call_as(Some(&bob_t), "GET", &format!("/datastores/{red_id}"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        api.call_as(
            Some(&bob_t),
            "PUT",
            &format!("/datastores/{red_id}"),
            Some(json!({"name": "x"}))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        api.call_as(
            Some(&bob_t),
            "POST",
            &format!("/datastores/{red_id}/connection"),
            None
        )
        .await
        .status,
        404
    );
    let r = api
        .call_as(
            Some(&bob_t),
            "POST",
            "/operations/run",
            Some(json!({"datastore_id": red_id, "type": "sync"})),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        api.call_as(
            Some(&alice_t),
            "GET",
            &format!("/datastores/{red_id}"),
            None
        )
        .await
        .status,
        200
    );
    // a member cannot use a team they are not in, nor create users
    let r = api.call_as(Some(&bob_t), "POST", "/datastores", Some(json!({"name": "b", "connection_id": c["id"], "database": db, "schema": "sales", "teams": ["Red"]}))).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        api.call_as(
            Some(&bob_t),
            "POST",
            "/users",
            Some(json!({"username": "eve"}))
        )
        .await
        .status,
        403
    );
    // admins see everything; users and teams are listed
    assert_eq!(api.get("/datastores").await.body["total"], 2);
    assert_eq!(
        api.get(&format!("/teams/{}", red["id"])).await.body["members"][0]["name"],
        "alice"
    );
    assert_eq!(
        api.get(&format!("/users/{}", alice["id"])).await.body["teams"][0]["name"],
        "Red"
    );
    assert_eq!(api.get("/users").await.body["total"], 3);
    // a full page counts, a short one knows its total from its rows: both agree
    assert_eq!(api.get("/users?size=1").await.body["total"], 3);
    let teams = api.get("/teams?size=100").await.body;
    let n = teams["items"].as_array().unwrap().len();
    assert!(n >= 2, "{teams}");
    assert_eq!(teams["total"], n);
    assert_eq!(api.get("/teams?size=1").await.body["total"], n);
    // adding bob to Red opens the datastore to him
    api.ok(
        &format!("/teams/{}/members", red["id"]),
        json!({"user_id": bob["id"]}),
    )
    .await;
    assert_eq!(
        api.call_as(Some(&bob_t), "GET", &format!("/datastores/{red_id}"), None)
            .await
            .status,
        200
    );
    // bad logins: 401, and after five in a row the user's sign-in pauses (429) even with the right password
    let attempt = |p: &'static str| {
        let api = &api;
        async move {
            api.call_as(
                None,
                "POST",
                "/auth/login",
                Some(json!({"username": "alice", "password": p})),
            )
            .await
        }
    };
    for _ in 0..assay_server::throttle::MAX_FAILURES {
        assert_eq!(attempt("nope").await.status, 401);
    }
    let locked = attempt("alice-password").await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(locked.body["detail"].as_str().unwrap().contains("paused"));
    // other users are not affected
    assert_eq!(
        api.call_as(
            None,
            "POST",
            "/auth/login",
            Some(json!({"username": "bob", "password": "bob-password-1"}))
        )
        .await
        .status,
        200
    );
}
