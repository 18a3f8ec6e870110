//! Secrets management against a real OpenBao: `${key}` in host, port, user, password and database resolved at
//! every connect (userpass and AppRole), rotation picked up, and each failure named without leaking a secret.

mod common;

use assay_testkit::{TestBao, TestPg};
use common::Api;
use serde_json::{Value, json};

const SECRET_PW: &str = "vault-held-pw-7731";

/// A role whose password lives only in OpenBao, and a secret holding every connection property.
async fn setup(prefix: &str) -> (String, String) {
    let pg = TestPg::shared();
    let bao = TestBao::shared();
    let (db, _, _) = common::shop(prefix).await;
    let role = assay_testkit::unique("vaultrole");
    pg.create_role(&role, SECRET_PW).await;
    pg.superuser(&db).await.batch_execute(&format!("GRANT USAGE ON SCHEMA sales TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {role}; GRANT SELECT ON ALL SEQUENCES IN SCHEMA sales TO {role}")).await.unwrap();
    let path = format!("dq/{prefix}");
    bao.put_secret(&path, json!({"host": "127.0.0.1", "port": pg.port().to_string(), "username": role, "password": SECRET_PW, "database": db})).await;
    (db, path)
}

fn vault_conn(name: &str, sm: Value) -> Value {
    json!({"type": "postgresql", "name": name, "host": "${host}", "port": "${port}", "username": "${username}",
           "password": "${password}", "secrets_manager": sm})
}

fn assert_no_secret(v: &Value) {
    let text = v.to_string();
    for s in [
        SECRET_PW,
        assay_testkit::bao::USER_PASSWORD,
        &TestBao::shared().secret_id,
    ] {
        assert!(!text.contains(s), "a secret leaked into {text}");
        assert!(!common::logs().contains(s), "a secret leaked into the logs");
    }
}

#[tokio::test]
async fn references_resolve_through_userpass_and_approle_at_every_connect() {
    let api = Api::start().await;
    let bao = TestBao::shared();
    let (_db, path) = setup("vaultok").await;
    let c = api
        .ok(
            "/connections",
            vault_conn("vault-userpass", bao.userpass_manager(&path)),
        )
        .await;
    assert!(
        c["secrets_manager"]["credentials_payload"].is_null(),
        "payload is write-only: {c}"
    );
    assert_eq!(c["secrets_manager"]["token_header_name"], "X-Vault-Token");
    assert_eq!(c["port"], "${port}");
    // the database comes from the secret too
    let ds = api.ok("/datastores", json!({"name": "vaulted", "connection_id": c["id"], "database": "${database}", "schema": "sales", "trigger_sync": false})).await;
    let t = api
        .post(&format!("/datastores/{}/connection", ds["id"]), json!({}))
        .await
        .body;
    assert_eq!(t["connected"], true, "{t}");
    assert_no_secret(&t);
    let op = api.sync(ds["id"].as_i64().unwrap(), json!({})).await;
    assert_eq!(op["result"], "success", "{op}");
    assert_eq!(op["status"]["containers_analyzed"], 3);
    // AppRole login, Bearer header
    let mut sm = bao.approle_manager(&path);
    sm["token_header_name"] = json!("Authorization");
    let c2 = api
        .ok("/connections", vault_conn("vault-approle", sm))
        .await;
    let t = api
        .post(
            &format!("/connections/{}/test", c2["id"]),
            json!({"database": "${database}"}),
        )
        .await
        .body;
    assert_eq!(t["connected"], true, "{t}");
    // rotation: no caching between connects
    bao.put_secret(&path, json!({"host": "127.0.0.1", "port": TestPg::shared().port().to_string(), "username": "dq_ghost", "password": "wrong", "database": "postgres"})).await;
    let t = api
        .post(&format!("/datastores/{}/connection", ds["id"]), json!({}))
        .await
        .body;
    assert_eq!(t["connected"], false);
    assert_eq!(t["diagnosis"]["code"], "28P01", "{t}");
    let r = api.get(&format!("/connections/{}", c["id"])).await.body;
    assert_no_secret(&r);
    // updating other fields keeps the stored payload (the response never shows it)
    let upd = api.put(&format!("/connections/{}", c["id"]), json!({"name": "vault-userpass", "type": "postgresql", "secrets_manager": r["secrets_manager"]})).await;
    assert_eq!(upd.status, 200, "{}", upd.body);
    let stored = api
        .state
        .store
        .connection(c["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert!(
        stored
            .spec
            .secrets_manager
            .unwrap()
            .credentials_payload
            .is_some()
    );
}

async fn failing_test(api: &Api, name: &str, sm: Value, password: &str) -> String {
    let mut body = vault_conn(name, sm);
    body["password"] = json!(password);
    let c = api.ok("/connections", body).await;
    let t = api
        .post(
            &format!("/connections/{}/test", c["id"]),
            json!({"database": "postgres"}),
        )
        .await
        .body;
    assert_eq!(t["connected"], false, "{name}: {t}");
    assert_no_secret(&t);
    t["message"].as_str().unwrap().to_string()
}

/// A server that answers every request with 200 and a body that is not JSON.
async fn not_json_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\n<html>hi",
                )
                .await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn each_vault_failure_is_named_without_secrets() {
    let api = Api::start().await;
    let bao = TestBao::shared();
    let (_db, path) = setup("vaultfail").await;
    let ok = bao.userpass_manager(&path);

    let mut sm = ok.clone();
    sm["login_url"] = json!(format!(
        "http://127.0.0.1:{}/v1/auth/userpass/login/dq",
        assay_testkit::free_port().unwrap()
    ));
    let m = failing_test(&api, "unreachable", sm, "${password}").await;
    assert!(m.contains("unreachable") && m.contains("logging in"), "{m}");

    let mut sm = ok.clone();
    sm["credentials_payload"] = json!("{\"password\": \"not-the-password\"}");
    let m = failing_test(&api, "rejected", sm, "${password}").await;
    assert!(
        m.contains("rejected the login")
            && m.contains("HTTP 400")
            && m.contains("invalid username or password"),
        "{m}"
    );
    assert!(!m.contains("not-the-password"));

    let mut sm = ok.clone();
    sm["token_jsonpath"] = json!("$.auth.nothing_here");
    let m = failing_test(&api, "tokenpath", sm, "${password}").await;
    assert!(
        m.contains("$.auth.nothing_here") && m.contains("matched no string"),
        "{m}"
    );

    let mut sm = ok.clone();
    sm["secret_url"] = json!(bao.secret_url("dq/does-not-exist"));
    let m = failing_test(&api, "notfound", sm, "${password}").await;
    assert!(m.contains("not found") && m.contains("404"), "{m}");

    bao.put_secret("elsewhere/x", json!({"password": "p"}))
        .await;
    let mut sm = ok.clone();
    sm["secret_url"] = json!(bao.secret_url("elsewhere/x"));
    let m = failing_test(&api, "forbidden", sm, "${password}").await;
    assert!(
        m.contains("refused") && m.contains("403") && m.contains("permission denied"),
        "{m}"
    );

    let mut sm = ok.clone();
    sm["data_jsonpath"] = json!("$.data.nope");
    let m = failing_test(&api, "datapath", sm, "${password}").await;
    assert!(m.contains("$.data.nope"), "{m}");

    let m = failing_test(&api, "missingkey", ok.clone(), "${not_a_key}").await;
    assert!(
        m.contains("'not_a_key'") && m.contains("password"),
        "names the key and the keys present: {m}"
    );

    let mut sm = ok.clone();
    sm["secret_url"] = json!(format!("{}/v1/secret/data/x", not_json_server().await));
    let m = failing_test(&api, "notjson", sm, "${password}").await;
    assert!(m.contains("not JSON"), "{m}");

    // rejected when saved: malformed JSONPath, malformed payload, missing secret URL, references without a manager
    for (sm_patch, field) in [
        (
            json!({"token_jsonpath": "auth.client_token"}),
            "secrets_manager.token_jsonpath",
        ),
        (
            json!({"data_jsonpath": "$.data["}),
            "secrets_manager.data_jsonpath",
        ),
        (
            json!({"credentials_payload": "{oops"}),
            "secrets_manager.credentials_payload",
        ),
        (json!({"secret_url": ""}), "secrets_manager.secret_url"),
        (json!({"login_url": "ftp://x"}), "secrets_manager.login_url"),
    ] {
        let mut sm = ok.clone();
        for (k, v) in sm_patch.as_object().unwrap() {
            sm[k] = v.clone();
        }
        let r = api
            .post("/connections", vault_conn(&format!("bad-{field}"), sm))
            .await;
        assert_eq!(r.status, 422, "{field}: {}", r.body);
        assert!(
            r.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{field}: {}",
            r.body
        );
        assert_no_secret(&r.body);
    }
    let r = api.post("/connections", json!({"type": "postgresql", "name": "noman", "host": "h", "username": "u", "password": "${password}"})).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["detail"].as_str().unwrap().contains("$${key}"),
        "{}",
        r.body
    );
    // $${key} is a literal ${key} without a manager
    let r = api.post("/connections", json!({"type": "postgresql", "name": "literal", "host": "h", "username": "u", "password": "a$${b}"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
}
