//! Team isolation on every route: team B's datastores, containers, checks, anomalies, profiles, computed
//! tables and fields, enrichment links and operations (made by real sync, profile, scan and export runs) are
//! reached by a member of team A through every route of the OpenAPI route table, with B's ids in paths, query
//! parameters and bodies. Each answers 404 (or an empty list, or 403 for admin-only routes), no body carries
//! anything of B's, and B's records are the same afterwards. A route the table gains later fails the test until
//! it is classified here. The web UI's pages with B's ids are 404s too; a `Public` datastore is visible.

use super::routes::{Expect, Ids, cases};
use super::{Recorder, route_table};
use crate::common::Api;
use assay_testkit::TestPg;
use serde_json::{Value, json};

/// Everything of B's is named with this marker, and nothing else is.
const MARK: &str = "bravo";

/// What an admin reads of B's records: compared before and after A's requests.
async fn snapshot(api: &Api, i: &Ids) -> Vec<String> {
    let mut paths = vec![
        format!("/datastores/{}", i.b_ds),
        format!("/datastores/{}", i.b_enr),
        format!("/connections/{}", i.b_conn),
        format!("/containers?datastore={}&size=500", i.b_ds),
        format!("/containers/{}/fields", i.b_container),
        format!("/containers/{}/field-profiles", i.b_container),
        format!("/containers/{}/profiles", i.b_container),
        format!("/containers/{}/scans", i.b_container),
        format!("/quality-checks?datastore={}&size=500", i.b_ds),
        format!("/quality-checks/{}/metrics", i.b_check),
        format!("/anomalies?datastore={}&size=500", i.b_ds),
        format!("/anomalies/{}/source-records", i.b_anomaly),
        format!("/operations?datastore={}&size=500", i.b_ds),
        format!("/operations?datastore={}&size=500", i.b_enr),
        format!("/datastores/{}/enrichment-tables", i.b_enr),
        format!("/teams/{}", i.team_b),
        "/global-tags?size=500".to_string(),
    ];
    paths.extend([i.b_container, i.b_computed].map(|c| format!("/containers/{c}")));
    let mut out = Vec::new();
    for p in paths {
        let r = api.get(&p).await;
        assert_eq!(r.status, 200, "admin reads {p}: {}", r.body);
        out.push(format!("{p}: {}", r.body));
    }
    // the stored connection, secrets included (compared, never printed)
    let spec = api.state.store.connection(i.b_conn).await.unwrap().spec;
    out.push(format!(
        "{:?}",
        spec.password == Some("bravo-reader-pw".into())
    ));
    out.push(format!(
        "{} {} {}",
        spec.host,
        spec.username,
        spec.port.as_text()
    ));
    out
}

async fn source(prefix: &str, schema: &str, table: &str, pw: &str) -> (String, String, String) {
    let pg = TestPg::shared();
    let db = pg.create_database(prefix).await;
    let reader = assay_testkit::unique(&format!("{prefix}_r"));
    let writer = assay_testkit::unique(&format!("{prefix}_w"));
    pg.create_role(&reader, pw).await;
    pg.create_role(&writer, &format!("{pw}-w")).await;
    pg.superuser(&db)
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE SCHEMA {schema}_enrich;
             CREATE TABLE {schema}.{table} (id int PRIMARY KEY, note text, updated_at timestamptz);
             INSERT INTO {schema}.{table} SELECT i, CASE WHEN i % 5 = 0 THEN NULL ELSE 'n' || i END,
                    timestamptz '2024-01-01' + i * interval '1 hour' FROM generate_series(1, 50) i;
             GRANT USAGE ON SCHEMA {schema} TO {reader}; GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader};
             GRANT USAGE, CREATE ON SCHEMA {schema}_enrich TO {writer}; ANALYZE;"
        ))
        .await
        .unwrap();
    (db, reader, writer)
}

/// An error detail with its numbers blanked, so answers about different ids compare equal.
fn digitless(detail: &Value) -> String {
    let mut out = String::new();
    for ch in detail.as_str().unwrap_or_default().chars() {
        if ch.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(ch);
        }
    }
    out
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

async fn done(api: &Api, ds: i64, body: Value) -> Value {
    let mut b = body;
    b["datastore_id"] = json!(ds);
    let op = api.ok("/operations/run", b).await;
    let op = api.wait(id(&op)).await;
    assert_eq!(op["result"], "success", "{op}");
    op
}

#[tokio::test]
async fn another_teams_records_are_not_found_on_every_route_and_page() {
    let api = Api::start().await;
    let team_b = id(&api.ok("/teams", json!({"name": "TeamB"})).await);
    api.ok("/teams", json!({"name": "TeamA"})).await;
    let alice = id(&api.ok("/users", json!({"username": "alice", "password": "alice-password", "role": "Member", "teams": ["TeamA"]})).await);
    let bob = id(&api.ok("/users", json!({"username": "bob", "password": "bob-password", "role": "Member", "teams": ["TeamB"]})).await);

    // team A: a source, an enrichment datastore, and a Public datastore on the same connection
    let (a_db, a_reader, a_writer) =
        source("alpha", "alpha_sales", "alpha_items", "alpha-reader-pw").await;
    let a_conn = id(&api
        .ok(
            "/connections",
            Api::conn_body("alpha-conn", &a_reader, "alpha-reader-pw"),
        )
        .await);
    let a_wconn = id(&api
        .ok(
            "/connections",
            Api::conn_body("alpha-wconn", &a_writer, "alpha-reader-pw-w"),
        )
        .await);
    let a_ds = id(&api.ok("/datastores", json!({"name": "alpha-src", "connection_id": a_conn, "database": a_db, "schema": "alpha_sales", "teams": ["TeamA"], "trigger_sync": false})).await);
    let a_enr = id(&api.ok("/datastores", json!({"name": "alpha-enr", "connection_id": a_wconn, "database": a_db, "schema": "alpha_sales_enrich", "enrichment_only": true, "teams": ["TeamA"], "trigger_sync": false})).await);
    let pub_ds = id(&api.ok("/datastores", json!({"name": "public-src", "connection_id": a_conn, "database": a_db, "schema": "alpha_sales", "teams": ["Public"], "trigger_sync": false})).await);
    done(&api, a_ds, json!({"type": "sync"})).await;
    let a_container = id(&api
        .get(&format!("/containers/listing?datastore={a_ds}"))
        .await
        .body[0]);

    // team B: synced, profiled, checked, scanned, exported; a computed table and a computed field
    let (b_db, b_reader, b_writer) =
        source("bravo", "bravo_sales", "bravo_orders", "bravo-reader-pw").await;
    let b_conn = id(&api
        .ok(
            "/connections",
            Api::conn_body("bravo-conn", &b_reader, "bravo-reader-pw"),
        )
        .await);
    let b_wconn = id(&api
        .ok(
            "/connections",
            Api::conn_body("bravo-wconn", &b_writer, "bravo-reader-pw-w"),
        )
        .await);
    let b_ds = id(&api.ok("/datastores", json!({"name": "bravo-src", "connection_id": b_conn, "database": b_db, "schema": "bravo_sales", "teams": ["TeamB"], "trigger_sync": false})).await);
    let b_enr = id(&api.ok("/datastores", json!({"name": "bravo-enr", "connection_id": b_wconn, "database": b_db, "schema": "bravo_sales_enrich", "enrichment_only": true, "teams": ["TeamB"], "trigger_sync": false})).await);
    let r = api
        .call(
            "PATCH",
            &format!("/datastores/{b_ds}/enrichment/{b_enr}?prefix=bravo"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    done(&api, b_ds, json!({"type": "sync"})).await;
    let b_container = id(&api
        .get(&format!("/containers/listing?datastore={b_ds}"))
        .await
        .body[0]);
    done(&api, b_ds, json!({"type": "profile"})).await;
    let b_check = id(&api.ok("/quality-checks", json!({"container_id": b_container, "rule": "notNull", "fields": ["note"], "description": "bravo check", "properties": {}})).await);
    let scan = done(&api, b_ds, json!({"type": "scan", "incremental": false})).await;
    done(
        &api,
        b_ds,
        json!({"type": "export", "asset_type": "anomalies"}),
    )
    .await;
    let b_computed = id(&api.ok("/containers", json!({"container_type": "computed_table", "name": "bravo_computed", "datastore_id": b_ds, "query": "SELECT id, note FROM bravo_sales.bravo_orders"})).await);
    let b_computed_field = id(&api.ok("/computed-fields", json!({"container_id": b_container, "name": "bravo_cents", "transformation": "customExpression", "source_fields": ["id"], "properties": {"column_expression": "id * 100"}})).await);
    let anomalies = api.get(&format!("/anomalies?datastore={b_ds}")).await.body;
    let b_anomaly = id(&anomalies["items"][0]);
    let b_schedule = id(&api.ok("/operations/schedule", json!({"name": "bravo nightly", "datastore_id": b_ds, "type": "scan", "preset": "daily"})).await);
    let b_profile = id(&api
        .get(&format!("/containers/{b_container}/profiles"))
        .await
        .body["items"][0]);
    let b_field = id(&api
        .get(&format!("/containers/{b_container}/fields"))
        .await
        .body[0]);
    let ids = Ids {
        a_ds,
        a_enr,
        a_container,
        b_conn,
        b_ds,
        b_enr,
        b_container,
        b_computed,
        b_field,
        b_computed_field,
        b_check,
        b_anomaly,
        b_op: id(&scan),
        b_profile,
        b_schedule,
        team_b,
        alice,
        bob,
    };
    let before = snapshot(&api, &ids).await;
    let alice_t = api
        .ok(
            "/auth/login",
            json!({"username": "alice", "password": "alice-password"}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bob_t = api
        .ok(
            "/auth/login",
            json!({"username": "bob", "password": "bob-password"}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();

    // every route of the table, as alice, with B's ids
    let rec = Recorder::new(&api);
    let mut unclassified = Vec::new();
    let mut calls = 0;
    // the same routes with ids nobody has: B's records must be indistinguishable from missing ones
    let ghost = Ids {
        b_conn: 900_001,
        b_ds: 900_002,
        b_enr: 900_003,
        b_container: 900_004,
        b_computed: 900_005,
        b_field: 900_006,
        b_computed_field: 900_007,
        b_check: 900_008,
        b_anomaly: 900_009,
        b_op: 900_010,
        b_profile: 900_011,
        b_schedule: 900_012,
        ..ids
    };
    for (method, template) in route_table(&api).await {
        let Some(cases) = cases(&method, &template, &ids, &a_db) else {
            unclassified.push(format!("{method} {template}"));
            continue;
        };
        let ghosts = super::routes::cases(&method, &template, &ghost, &a_db).unwrap();
        for (c, g) in cases.into_iter().zip(ghosts) {
            let r = rec
                .call_as(Some(&alice_t), &c.method, &c.path, c.body.clone())
                .await;
            let what = format!(
                "{} {} {}: {} {}",
                c.method,
                c.path,
                c.body.clone().unwrap_or_default(),
                r.status,
                r.body
            );
            calls += 1;
            assert!(
                !r.body.to_string().to_lowercase().contains(MARK),
                "B's data in {what}"
            );
            let detail = || r.body["detail"].as_str().is_some();
            match c.expect {
                Expect::NotFound => assert!(r.status == 404 && detail(), "{what}"),
                Expect::Refused => assert!(matches!(r.status, 404 | 422) && detail(), "{what}"),
                Expect::Forbidden => assert!(r.status == 403 && detail(), "{what}"),
                Expect::Empty => {
                    let empty = r.body.as_array().is_some_and(Vec::is_empty)
                        || (r.body["items"].as_array().is_some_and(Vec::is_empty)
                            && r.body["total"] == 0);
                    assert!((r.status == 200 && empty) || r.status == 404, "{what}");
                }
                Expect::Global => assert!(r.status < 500, "{what}"),
            }
            if matches!(c.expect, Expect::NotFound | Expect::Refused) {
                let r2 = api
                    .call_as(Some(&alice_t), &g.method, &g.path, g.body)
                    .await;
                assert_eq!(
                    (r.status, digitless(&r.body["detail"])),
                    (r2.status, digitless(&r2.body["detail"])),
                    "{what} differs from a missing id's answer: {}",
                    r2.body
                );
            }
            // the ids are real: B's own member reaches what alice cannot read
            if c.expect == Expect::NotFound && c.method == "GET" {
                let r = api.call_as(Some(&bob_t), "GET", &c.path, None).await;
                assert!(
                    r.status != 404 && r.status < 500,
                    "bob reads {}: {} {}",
                    c.path,
                    r.status,
                    r.body
                );
            }
        }
    }
    assert!(
        unclassified.is_empty(),
        "routes without a team-isolation case: {unclassified:?}"
    );
    assert!(calls > 80, "{calls} calls");
    eprintln!("team isolation: {calls} requests as another team's member");

    // the lists alice can read hold nothing of B's; the Public datastore is visible to her
    let lists = api
        .call_as(Some(&alice_t), "GET", "/datastores?size=500", None)
        .await
        .body;
    let names: Vec<&str> = lists["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"public-src") && names.contains(&"alpha-src"),
        "{names:?}"
    );
    assert_eq!(
        api.call_as(
            Some(&alice_t),
            "GET",
            &format!("/datastores/{pub_ds}"),
            None
        )
        .await
        .status,
        200
    );

    // B's records did not change
    let after = snapshot(&api, &ids).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "B's records changed");
    }

    // the web UI: B's pages are 404s for alice's session; her lists do not show B's datastores
    ui_pages(&api, &alice_t, &ids, pub_ds).await;
    let after_ui = snapshot(&api, &ids).await;
    for (b, a) in before.iter().zip(&after_ui) {
        assert_eq!(b, a, "B's records changed through the web UI");
    }
}

async fn ui_pages(api: &Api, token: &str, i: &Ids, pub_ds: i64) {
    let root = api.base.trim_end_matches("/api").to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = format!("assay_session={token}");
    let (d, e) = (i.b_ds, i.b_enr);
    let mut gets: Vec<String> = [
        "",
        "/operations",
        "/activity",
        "/tables",
        "/checks",
        "/checks/new",
        "/schedules/new",
        "/anomalies",
        "/settings",
        "/link",
    ]
    .iter()
    .map(|s| format!("/datastores/{d}{s}"))
    .collect();
    gets.extend([
        format!("/datastores/{e}"),
        format!("/datastores/{e}/tables"),
        format!("/containers/{}", i.b_container),
        format!("/containers/{}", i.b_computed),
        format!("/containers/{}/fields/{}", i.b_container, i.b_field),
        format!("/checks/{}", i.b_check),
        format!("/checks/{}/edit", i.b_check),
        format!("/anomalies/{}", i.b_anomaly),
    ]);
    for p in &gets {
        let r = http
            .get(format!("{root}{p}"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 404, "GET {p}");
        assert!(!body.to_lowercase().contains(MARK), "GET {p}: {body}");
    }
    let posts: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            format!("/datastores/{d}/run"),
            vec![("type", "sync".into())],
        ),
        (format!("/operations/{}/abort", i.b_op), vec![]),
        (
            format!("/datastores/{d}/checks/new"),
            vec![
                ("container_id", i.b_container.to_string()),
                ("rule", "notNull".into()),
                ("fields", "id".into()),
            ],
        ),
        (
            format!("/datastores/{d}/checks/form"),
            vec![("container_id", i.b_container.to_string())],
        ),
        (
            format!("/datastores/{}/checks/new", i.a_ds),
            vec![
                ("container_id", i.b_container.to_string()),
                ("rule", "notNull".into()),
                ("fields", "id".into()),
            ],
        ),
        (
            format!("/checks/{}/edit", i.b_check),
            vec![("description", "alpha".into())],
        ),
        (format!("/checks/{}/archive", i.b_check), vec![]),
        (format!("/schedules/{}/disable", i.b_schedule), vec![]),
        (format!("/schedules/{}/delete", i.b_schedule), vec![]),
        (
            format!("/datastores/{d}/schedules/new"),
            vec![
                ("name", "alpha-made".into()),
                ("type", "scan".into()),
                ("how", "preset".into()),
                ("preset", "daily".into()),
                ("action", "save".into()),
            ],
        ),
        (
            format!("/datastores/{d}/anomalies/bulk"),
            vec![
                ("ids", i.b_anomaly.to_string()),
                ("action", "acknowledge".into()),
            ],
        ),
        (
            format!("/anomalies/{}/status", i.b_anomaly),
            vec![("status", "Acknowledged".into())],
        ),
        (
            format!("/datastores/{d}/settings"),
            vec![("name", "alpha-renamed".into()), ("teams", "TeamA".into())],
        ),
        (format!("/datastores/{d}/unlink"), vec![]),
        (format!("/datastores/{d}/delete"), vec![]),
        (format!("/datastores/{e}/delete"), vec![]),
        (
            format!("/datastores/{d}/link"),
            vec![("enrichment_id", i.a_enr.to_string())],
        ),
        (
            format!("/datastores/{}/link", i.a_ds),
            vec![
                ("choice", "existing".into()),
                ("enrichment_id", e.to_string()),
                ("prefix", "alpha".into()),
            ],
        ),
        (format!("/datastores/{d}/link/test"), vec![]),
    ];
    for (p, form) in &posts {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let r = http
            .post(format!("{root}{p}"))
            .header("Cookie", &cookie)
            .header("Origin", &root)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        // B's id in the path is a 404; B's id only in the form of A's own page is refused as unknown
        let own_page = p.starts_with(&format!("/datastores/{}/", i.a_ds));
        assert!(
            status == 404 || (own_page && status == 422),
            "POST {p}: {status} {}",
            &text[..text.len().min(400)]
        );
        assert!(!text.to_lowercase().contains(MARK), "POST {p}: {text}");
    }
    // her lists and forms (Add Datastore and Link Enrichment offer connections and enrichment datastores)
    for p in [
        "/datastores".to_string(),
        "/enrichment".to_string(),
        "/datastores/new".to_string(),
        format!("/datastores/{}/link", i.a_ds),
    ] {
        let r = http
            .get(format!("{root}{p}"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{p}");
        let body = r.text().await.unwrap();
        assert!(
            !body.to_lowercase().contains(MARK),
            "{p} lists B's datastores or connections"
        );
    }
    let r = http
        .get(format!("{root}/datastores/{pub_ds}"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the Public datastore's page");
}
