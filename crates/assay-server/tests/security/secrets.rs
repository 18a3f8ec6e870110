//! Secrets everywhere: connections with distinctive passwords, a Vault-backed connection (a real OpenBao, a
//! distinctive login password in the credentials payload and a distinctive resolved password), Test Connections
//! that pass and fail, sync, profile, scan, exports, materialize and failing operations, then a search for every
//! secret in every response, the DEBUG logs, the operations, the enrichment tables and every column of the
//! metadata store; and a store opened with another key cannot decrypt what it holds.

use super::{Recorder, is_public, route_table};
use crate::common::{self, Api};
use assay_server::AppState;
use assay_store::Store;
use assay_store::crypto::Cipher;
use assay_testkit::{TestBao, TestPg};
use serde_json::{Value, json};

const PW_DIRECT: &str = "zq-direct-pw-4417";
const PW_WRITER: &str = "zq-writer-pw-5528";
const PW_VAULT: &str = "zq-vault-resolved-6639";
const PW_BAO_LOGIN: &str = "zq-bao-login-7740";
const PW_WRONG: &str = "zq-typed-wrong-8851";
const PW_FAILING_OP: &str = "zq-failing-op-9962";
const PW_BOGUS_LOGIN: &str = "zq-bogus-login-1073";

struct Source {
    db: String,
    reader: String,
    writer: String,
    vault_role: String,
}

/// A source database with a `people` table (some e-mails missing), a reader, a Vault-only reader and an
/// enrichment writer, each with its own distinctive password.
async fn source() -> Source {
    let pg = TestPg::shared();
    let db = pg.create_database("secsrc").await;
    let reader = assay_testkit::unique("secreader");
    let writer = assay_testkit::unique("secwriter");
    let vault_role = assay_testkit::unique("secvault");
    pg.create_role(&reader, PW_DIRECT).await;
    pg.create_role(&writer, PW_WRITER).await;
    pg.create_role(&vault_role, PW_VAULT).await;
    pg.superuser(&db)
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA sales; CREATE SCHEMA enrich;
             CREATE TABLE sales.people (id int PRIMARY KEY, email text, updated_at timestamptz);
             INSERT INTO sales.people SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'p' || i || '@example.com' END,
                    timestamptz '2024-01-01' + i * interval '1 hour' FROM generate_series(1, 100) i;
             GRANT USAGE ON SCHEMA sales TO {reader}, {vault_role};
             GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {reader}, {vault_role};
             GRANT USAGE, CREATE ON SCHEMA enrich TO {writer};
             ANALYZE;"
        ))
        .await
        .unwrap();
    Source {
        db,
        reader,
        writer,
        vault_role,
    }
}

/// A secrets manager that logs in to OpenBao as `user` with `password` and reads `secret/dq/<path>`.
fn manager(bao: &TestBao, user: &str, password: &str, path: &str) -> Value {
    json!({
        "login_url": format!("{}/v1/auth/userpass/login/{user}", bao.addr),
        "credentials_payload": json!({"password": password}).to_string(),
        "token_jsonpath": "$.auth.client_token",
        "secret_url": bao.secret_url(&format!("dq/{path}")),
        "token_header_name": "X-Vault-Token",
        "data_jsonpath": "$.data.data",
    })
}

async fn run(rec: &Recorder<'_>, ds: i64, body: Value) -> Value {
    let mut b = json!({"datastore_id": ds});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    let op = rec.ok("POST", "/operations/run", Some(b)).await;
    rec.api.wait(op["id"].as_i64().unwrap()).await
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

#[tokio::test]
async fn no_secret_appears_in_responses_logs_operations_enrichment_or_the_store() {
    let api = Api::start().await;
    let rec = Recorder::new(&api);
    let pg = TestPg::shared();
    let bao = TestBao::shared();
    let src = source().await;
    let bao_user = assay_testkit::unique("secbao").replace('-', "_");
    bao.root(
        "POST",
        &format!("/v1/auth/userpass/users/{bao_user}"),
        json!({"password": PW_BAO_LOGIN, "token_policies": "dq-read"}),
    )
    .await;
    let path = bao_user.clone();
    bao.put_secret(&format!("dq/{path}"), json!({"password": PW_VAULT}))
        .await;
    let jwt_secret = api
        .state
        .store
        .secret_setting("jwt_secret")
        .await
        .unwrap()
        .unwrap();
    let secrets = [
        PW_DIRECT,
        PW_WRITER,
        PW_VAULT,
        PW_BAO_LOGIN,
        PW_WRONG,
        PW_FAILING_OP,
        PW_BOGUS_LOGIN,
        jwt_secret.as_str(),
    ];

    // connections: direct, enrichment writer, Vault-backed, a wrong password, a Vault login that is refused
    let post = |body: Value| rec.ok("POST", "/connections", Some(body));
    let direct = id(&post(Api::conn_body("zq-direct", &src.reader, PW_DIRECT)).await);
    let writer = id(&post(Api::conn_body("zq-writer", &src.writer, PW_WRITER)).await);
    let mut vault_body = Api::conn_body("zq-vault", &src.vault_role, "${password}");
    vault_body["secrets_manager"] = manager(bao, &bao_user, PW_BAO_LOGIN, &path);
    let vault = id(&post(vault_body).await);
    let wrong = id(&post(Api::conn_body("zq-wrong", &src.reader, PW_FAILING_OP)).await);
    let mut bogus_body = Api::conn_body("zq-bogus", &src.vault_role, "${password}");
    bogus_body["secrets_manager"] = manager(bao, &bao_user, PW_BOGUS_LOGIN, &path);
    let bogus = id(&post(bogus_body).await);

    let ds =
        |name: &str, conn: i64, schema: &str, enrichment: bool| {
            rec.ok(
            "POST",
            "/datastores",
            Some(json!({"name": name, "connection_id": conn, "database": src.db, "schema": schema,
                        "enrichment_only": enrichment, "trigger_sync": false})),
        )
        };
    let s_direct = id(&ds("zq direct", direct, "sales", false).await);
    let s_vault = id(&ds("zq vault", vault, "sales", false).await);
    let enr = id(&ds("zq enrichment", writer, "enrich", true).await);
    let s_wrong = id(&ds("zq wrong", wrong, "sales", false).await);
    let s_bogus = id(&ds("zq bogus", bogus, "sales", false).await);
    for (s, prefix) in [(s_direct, "zqd"), (s_vault, "zqv")] {
        rec.ok(
            "PATCH",
            &format!("/datastores/{s}/enrichment/{enr}?prefix={prefix}"),
            None,
        )
        .await;
    }

    // Test Connection: saved ones pass, wrong passwords (saved, overridden, unsaved) and a refused login fail
    for (c, ok) in [
        (direct, true),
        (writer, true),
        (vault, true),
        (wrong, false),
        (bogus, false),
    ] {
        let t = rec
            .ok(
                "POST",
                &format!("/connections/{c}/test"),
                Some(json!({"database": src.db})),
            )
            .await;
        assert_eq!(t["connected"], ok, "connection {c}: {t}");
    }
    for (d, ok) in [
        (s_direct, true),
        (s_vault, true),
        (enr, true),
        (s_wrong, false),
        (s_bogus, false),
    ] {
        let t = rec
            .ok("POST", &format!("/datastores/{d}/connection"), None)
            .await;
        assert_eq!(t["connected"], ok, "datastore {d}: {t}");
    }
    let t = rec
        .ok(
            "POST",
            &format!("/connections/{direct}/test"),
            Some(json!({"password": PW_WRONG, "database": src.db})),
        )
        .await;
    assert_eq!(t["connected"], false, "{t}");
    let mut unsaved = Api::conn_body("zq-unsaved", &src.reader, PW_WRONG);
    unsaved["database"] = json!(src.db);
    let t = rec
        .ok("POST", "/connections/test", Some(unsaved.clone()))
        .await;
    assert_eq!(t["connected"], false, "{t}");
    assert_eq!(t["diagnosis"]["code"], "28P01", "{t}");
    let t = rec
        .ok(
            "POST",
            "/datastores/connection",
            Some(json!({"name": "zq unsaved", "connection": Api::conn_body("zq-unsaved", &src.reader, PW_WRONG),
                        "database": src.db, "schema": "sales"})),
        )
        .await;
    assert_eq!(t["connected"], false, "{t}");

    // sync, profile, a failing check, scan, exports and materialize on both sources
    let mut containers = Vec::new();
    for s in [s_direct, s_vault] {
        for body in [json!({"type": "sync"}), json!({"type": "profile"})] {
            let op = run(&rec, s, body.clone()).await;
            assert_eq!(op["result"], "success", "{body}: {op}");
        }
        let listing = rec
            .ok("GET", &format!("/containers/listing?datastore={s}"), None)
            .await;
        let people = id(&listing.as_array().unwrap()[0]);
        containers.push(people);
        rec.ok(
            "POST",
            "/quality-checks",
            Some(
                json!({"container_id": people, "rule": "notNull", "fields": ["email"],
                        "description": "e-mails are present", "properties": {}}),
            ),
        )
        .await;
        let op = run(&rec, s, json!({"type": "scan", "incremental": false})).await;
        assert_eq!(op["result"], "success", "{op}");
        assert!(
            op["status"]["anomaly_count"].as_i64().unwrap_or(0) > 0
                || rec
                    .ok("GET", &format!("/anomalies?datastore={s}"), None)
                    .await["total"]
                    .as_i64()
                    .unwrap()
                    > 0,
            "the scan finds the missing e-mails: {op}"
        );
        for asset in ["anomalies", "checks", "profiles"] {
            let op = run(&rec, s, json!({"type": "export", "asset_type": asset})).await;
            assert_eq!(op["result"], "success", "export {asset}: {op}");
        }
        let op = run(
            &rec,
            s,
            json!({"type": "materialize", "container_names": ["people"]}),
        )
        .await;
        assert_eq!(op["result"], "success", "materialize: {op}");
        let op = rec
            .ok(
                "POST",
                &format!("/export/field-profiles?datastore={s}"),
                None,
            )
            .await;
        assert_eq!(rec.api.wait(id(&op)).await["result"], "success");
    }
    let r = rec
        .call(
            "POST",
            &format!("/export/check-templates?enrich_datastore_id={enr}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    // failing operations: a wrong password and a refused Vault login
    for s in [s_wrong, s_bogus] {
        for body in [json!({"type": "sync"}), json!({"type": "scan"})] {
            let op = run(&rec, s, body).await;
            assert_ne!(op["result"], "success", "{op}");
            assert!(!op["message"].as_str().unwrap_or("").is_empty(), "{op}");
        }
    }

    // read back everything a client or a config export can read
    let admin_id = rec.ok("GET", "/users/me", None).await["id"].clone();
    let ops = rec.ok("GET", "/operations?size=500", None).await;
    let op_ids: Vec<i64> = ops["items"].as_array().unwrap().iter().map(id).collect();
    assert!(op_ids.len() >= 20, "{ops}");
    let mut anomaly_ids = Vec::new();
    let mut check_ids = Vec::new();
    for s in [s_direct, s_vault] {
        let a = rec
            .ok("GET", &format!("/anomalies?datastore={s}&size=100"), None)
            .await;
        anomaly_ids.extend(a["items"].as_array().unwrap().iter().map(id));
        let c = rec
            .ok(
                "GET",
                &format!("/quality-checks?datastore={s}&size=100"),
                None,
            )
            .await;
        check_ids.extend(c["items"].as_array().unwrap().iter().map(id));
    }
    assert!(!anomaly_ids.is_empty() && !check_ids.is_empty());
    let datastores = [s_direct, s_vault, enr, s_wrong, s_bogus];
    let values = |param: &str| -> Vec<String> {
        let v: Vec<i64> = match param {
            "connection_id" => vec![direct, writer, vault, wrong, bogus],
            "datastore_id" => datastores.to_vec(),
            "container_id" => containers.clone(),
            "check_id" => check_ids.clone(),
            "anomaly_id" => anomaly_ids.clone(),
            "operation_id" => op_ids.clone(),
            "user_id" => vec![admin_id.as_i64().unwrap()],
            "team_id" => vec![1],
            _ => return vec!["none".into()],
        };
        v.iter().map(i64::to_string).collect()
    };
    let mut reads = 0;
    for (method, template) in route_table(&api).await {
        if method != "GET" || is_public(&method, &template) {
            continue;
        }
        let param = template
            .split('/')
            .find_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
        let paths: Vec<String> = match param {
            Some(p) => values(p)
                .iter()
                .map(|v| template.replace(&format!("{{{p}}}"), v))
                .collect(),
            None => std::iter::once(format!("{template}?size=500"))
                .chain(
                    datastores
                        .iter()
                        .map(|d| format!("{template}?datastore={d}&size=500")),
                )
                .collect(),
        };
        for p in paths {
            let r = rec.call("GET", &p, None).await;
            assert!(r.status < 500, "GET {p}: {} {}", r.status, r.body);
            reads += 1;
            if template.ends_with("/source-records") {
                rec.call("GET", &format!("{p}?source=enrichment"), None)
                    .await;
            }
        }
    }
    assert!(reads > 60, "{reads} reads");

    // 1. no response body holds a secret
    let bodies = rec.bodies();
    for b in &bodies {
        for s in &secrets {
            assert!(!b.contains(s), "a secret leaked into a response: {b}");
        }
    }
    // 2. nor do the operations (messages, details, status) as stored
    let meta = pg.superuser(&api.metadata_db).await;
    let op_rows = meta
        .query(
            "SELECT coalesce(message, '') || ' ' || coalesce(detail, '') || ' ' || status::text || ' ' || params::text FROM operations",
            &[],
        )
        .await
        .unwrap();
    assert!(op_rows.len() >= 20);
    for r in &op_rows {
        let text: String = r.get(0);
        for s in &secrets {
            assert!(!text.contains(s), "a secret in an operation: {text}");
        }
    }
    // 3. nor the enrichment tables the scans and exports wrote
    let su = pg.superuser(&src.db).await;
    let tables = su
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'enrich' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let names: Vec<String> = tables.iter().map(|r| r.get(0)).collect();
    for expected in [
        "_zqd_scan_operations",
        "_zqd_failed_checks",
        "_zqd_source_records",
        "_zqd_export_anomalies",
        "_zqd_export_checks",
        "_zqv_export_anomalies",
        "_zqv_mat_people",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let mut enriched_rows = 0;
    for t in &names {
        let rows = su
            .query(
                &format!(
                    "SELECT to_jsonb(t)::text FROM enrich.{} t",
                    assay_postgres::quote_ident(t)
                ),
                &[],
            )
            .await
            .unwrap();
        for r in rows {
            let text: String = r.get(0);
            enriched_rows += 1;
            for s in &secrets {
                assert!(!text.contains(s), "a secret in enrich.{t}: {text}");
            }
        }
    }
    assert!(enriched_rows > 100, "{enriched_rows} enrichment rows");
    // 4. at rest: every column of every table of the metadata store, bytea as raw bytes
    let columns = meta
        .query(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = 'public' ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let mut cells = 0;
    for col in &columns {
        let (table, column, ty): (String, String, String) = (col.get(0), col.get(1), col.get(2));
        let (t, c) = (
            assay_postgres::quote_ident(&table),
            assay_postgres::quote_ident(&column),
        );
        if ty == "bytea" {
            for r in meta
                .query(&format!("SELECT {c} FROM {t} WHERE {c} IS NOT NULL"), &[])
                .await
                .unwrap()
            {
                let bytes: Vec<u8> = r.get(0);
                cells += 1;
                for s in &secrets {
                    assert!(
                        !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                        "{table}.{column} holds a secret in clear"
                    );
                }
            }
        } else {
            for r in meta
                .query(
                    &format!("SELECT {c}::text FROM {t} WHERE {c} IS NOT NULL"),
                    &[],
                )
                .await
                .unwrap()
            {
                let text: String = r.get(0);
                cells += 1;
                for s in &secrets {
                    assert!(!text.contains(s), "{table}.{column} holds a secret: {text}");
                }
            }
        }
    }
    assert!(cells > 500, "{cells} cells read");
    eprintln!(
        "secrets: {} responses, {enriched_rows} enrichment rows, {cells} metadata cells searched",
        bodies.len()
    );
    let enc = meta
        .query_one(
            "SELECT length(password_enc), (SELECT length(credentials_enc) FROM connections WHERE name = 'zq-vault') \
             FROM connections WHERE name = 'zq-direct'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        enc.get::<_, Option<i32>>(0),
        Some(12 + PW_DIRECT.len() as i32 + 16),
        "nonce, ciphertext and tag"
    );
    assert!(
        enc.get::<_, Option<i32>>(1).is_some(),
        "the payload is stored, encrypted"
    );
    // 5. the DEBUG logs of every server of this binary
    let logs = common::logs();
    assert!(logs.contains("DEBUG"), "DEBUG logs are captured");
    for target in ["tokio_postgres::simple_query", "tokio_postgres::query"] {
        assert!(logs.contains(target), "{target} lines are captured");
    }
    for s in &secrets {
        assert!(!logs.contains(s), "a secret leaked into the logs: {s}");
    }

    // the key file is needed: another key cannot decrypt the password, the payload or the signing secret
    let url = pg.superuser_url(&api.metadata_db);
    let other = Store::open(&url, Cipher::from_key(&common::rand_key()))
        .await
        .unwrap();
    for c in [direct, vault] {
        let err = other.connection(c).await.unwrap_err().to_string();
        assert!(
            err.contains("cannot be decrypted") && err.contains("original key file"),
            "{err}"
        );
        assert!(!secrets.iter().any(|s| err.contains(s)));
    }
    let err = match AppState::new(other).await {
        Ok(_) => panic!("a server with another key must not start"),
        Err(e) => e.detail,
    };
    assert!(err.contains("key file"), "{err}");
    let same = Store::open(&url, Cipher::from_key(&api.key)).await.unwrap();
    let spec = same.connection(direct).await.unwrap().spec;
    assert_eq!(spec.password.as_deref(), Some(PW_DIRECT));
    let spec = same.connection(vault).await.unwrap().spec;
    assert!(
        spec.secrets_manager
            .unwrap()
            .credentials_payload
            .unwrap()
            .contains(PW_BAO_LOGIN)
    );
}
