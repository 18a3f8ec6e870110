//! Secrets-manager faults: a sealed and then stopped OpenBao (a private dev server, so other tests are not
//! affected), a server that never answers, 5xx answers, a malformed login answer and a token JSONPath that matches
//! nothing. Each gives Test Connection and an operation an error that names the step, with no password, payload
//! or token in the message, the API response or the logs, and the fault injectors count the requests they got to
//! hold the retries to their bound.

mod common;

use assay_testkit::{TestBao, TestPg};
use common::Api;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The database password held in the private OpenBao.
const DB_PW: &str = "faults-db-pw-8812";
/// The private OpenBao's userpass password, sent in every credentials payload of this file.
const LOGIN_PW: &str = "faults-login-pw-4410";
/// The token the injectors hand out in their login answers.
const TOKEN: &str = "s.INJECTED-token-6634";

fn assert_no_secret(what: &str, v: &Value) {
    let text = v.to_string();
    let logs = common::logs();
    for s in [DB_PW, LOGIN_PW, TOKEN, assay_testkit::bao::USER_PASSWORD] {
        assert!(!text.contains(s), "{what}: a secret leaked into {text}");
        assert!(!logs.contains(s), "{what}: a secret leaked into the logs");
    }
}

fn vault_conn(name: &str, sm: Value) -> Value {
    json!({"type": "postgresql", "name": name, "host": "${host}", "port": "${port}", "username": "${username}",
           "password": "${password}", "secrets_manager": sm})
}

/// A manager logging in at `login_url` (userpass shape) and reading `secret_url`.
fn manager(login_url: &str, secret_url: &str) -> Value {
    json!({
        "login_url": login_url,
        "credentials_payload": json!({"password": LOGIN_PW}).to_string(),
        "token_jsonpath": "$.auth.client_token",
        "secret_url": secret_url,
        "token_header_name": "X-Vault-Token",
        "data_jsonpath": "$.data.data",
    })
}

/// A saved connection and a datastore on it; returns (connection id, datastore id).
async fn saved(api: &Api, name: &str, sm: Value, database: &str) -> (i64, i64) {
    let c = api.ok("/connections", vault_conn(name, sm)).await;
    let ds = api
        .ok(
            "/datastores",
            json!({"name": name, "connection_id": c["id"], "database": database,
                                  "schema": "sales", "trigger_sync": false}),
        )
        .await;
    (c["id"].as_i64().unwrap(), ds["id"].as_i64().unwrap())
}

/// Test Connection of connection `id`; returns the response body.
async fn test_connection(api: &Api, id: i64, database: &str) -> Value {
    let r = api
        .post(
            &format!("/connections/{id}/test"),
            json!({"database": database}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Test Connection must fail; returns its message after checking that no secret is in the answer.
async fn failing_test(api: &Api, what: &str, id: i64) -> String {
    let t = test_connection(api, id, "postgres").await;
    assert_eq!(t["connected"], false, "{what}: {t}");
    assert_no_secret(what, &t);
    t["message"].as_str().unwrap().to_string()
}

/// A sync that must fail; returns its message after checking that no secret is in the operation.
async fn failing_sync(api: &Api, what: &str, ds: i64) -> String {
    let op = api.sync(ds, json!({})).await;
    assert_eq!(op["result"], "failure", "{what}: {op}");
    assert_no_secret(what, &op);
    op["message"].as_str().unwrap().to_string()
}

/// What an injector does with each request.
#[derive(Clone, Copy)]
enum Fault {
    /// Reads the request and never answers (the connection stays open).
    Hang,
    /// Closes the connection as soon as the request is read.
    Drop,
    /// Answers these bytes (a whole HTTP response) and closes.
    Answer(&'static str),
}

/// A TCP listener standing in for a broken secrets endpoint; counts the requests it received.
struct Injector {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl Injector {
    async fn start(fault: Fault) -> Injector {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    // one request per connection: read up to the end of the headers
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    match fault {
                        Fault::Hang => {
                            // hold the socket until the client gives up
                            let _ = s.read(&mut buf).await;
                            std::future::pending::<()>().await;
                        }
                        Fault::Drop => drop(s),
                        Fault::Answer(text) => {
                            let _ = s.write_all(text.as_bytes()).await;
                            let _ = s.shutdown().await;
                        }
                    }
                });
            }
        });
        Injector { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A whole HTTP response with a JSON (or cut-off JSON) body.
fn answer(status: &str, body: &str) -> &'static str {
    let text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    Box::leak(text.into_boxed_str())
}

/// An OpenBao dev server of this test alone (it gets sealed and killed), with a userpass login and a secret.
struct PrivateBao {
    addr: String,
    child: Child,
}

impl PrivateBao {
    async fn start() -> PrivateBao {
        let bin = std::env::var("ASSAY_BAO_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| assay_testkit::workspace_root().join(".ci/venv/bin/bao"));
        let port = assay_testkit::free_port().unwrap();
        let addr = format!("http://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["server", "-dev", "-dev-root-token-id=root"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let bao = PrivateBao { addr, child };
        let http = reqwest::Client::new();
        for i in 0.. {
            let up = http
                .get(format!("{}/v1/sys/health", bao.addr))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                break;
            }
            assert!(i < 300, "the private OpenBao did not start");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        bao.root("POST", "/v1/sys/auth/userpass", json!({"type": "userpass"}))
            .await;
        bao.root(
            "PUT",
            "/v1/sys/policies/acl/faults",
            json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }"}),
        )
        .await;
        bao.root(
            "POST",
            "/v1/auth/userpass/users/faults",
            json!({"password": LOGIN_PW, "token_policies": "faults"}),
        )
        .await;
        bao
    }

    async fn root(&self, method: &str, path: &str, body: Value) -> Value {
        let http = reqwest::Client::new();
        let url = format!("{}{path}", self.addr);
        let req = if method == "PUT" {
            http.put(&url)
        } else {
            http.post(&url)
        };
        let r = req
            .header("X-Vault-Token", "root")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "OpenBao {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

impl Drop for PrivateBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_sealed_then_stopped_openbao_is_named_at_login() {
    let api = Api::start().await;
    let pg = TestPg::shared();
    let (db, _, _) = common::shop("faultsealed").await;
    let role = assay_testkit::unique("faultrole");
    pg.create_role(&role, DB_PW).await;
    let mut bao = PrivateBao::start().await;
    bao.root(
        "POST",
        "/v1/secret/data/pg",
        json!({"data": {"host": "127.0.0.1", "port": pg.port().to_string(),
        "username": role, "password": DB_PW}}),
    )
    .await;
    let sm = manager(
        &format!("{}/v1/auth/userpass/login/faults", bao.addr),
        &format!("{}/v1/secret/data/pg", bao.addr),
    );
    let (conn, ds) = saved(&api, "sealed", sm, &db).await;
    let t = test_connection(&api, conn, &db).await;
    assert_eq!(t["connected"], true, "works before the seal: {t}");

    bao.root("PUT", "/v1/sys/seal", json!({})).await;
    let m = failing_test(&api, "sealed", conn).await;
    assert!(
        m.contains("HTTP 503") && m.contains("logging in") && m.contains("sealed"),
        "{m}"
    );
    assert!(
        m.contains("unseal") && !m.contains("rejected the login"),
        "a seal is not a wrong password: {m}"
    );
    let m = failing_sync(&api, "sealed sync", ds).await;
    assert!(m.contains("logging in") && m.contains("sealed"), "{m}");

    let _ = bao.child.kill();
    let _ = bao.child.wait();
    let m = failing_test(&api, "stopped", conn).await;
    assert!(
        m.contains("unreachable") && m.contains("logging in") && m.contains(&bao.addr),
        "{m}"
    );
    let m = failing_sync(&api, "stopped sync", ds).await;
    assert!(m.contains("unreachable") && m.contains("logging in"), "{m}");
}

#[tokio::test]
async fn a_secrets_manager_that_never_answers_times_out_once_per_connect() {
    let api = Api::start().await;
    let slow = Injector::start(Fault::Hang).await;
    let sm = manager(
        &format!("{}/v1/auth/userpass/login/dq", slow.url),
        &format!("{}/v1/secret/data/x", slow.url),
    );
    let (conn, ds) = saved(&api, "slow", sm, "postgres").await;
    let m = failing_test(&api, "slow", conn).await;
    assert!(
        m.contains("did not answer within") && m.contains("logging in") && m.contains(&slow.url),
        "{m}"
    );
    assert_eq!(
        slow.hits(),
        1,
        "a timeout is not repeated: each try would wait as long again"
    );
    let m = failing_sync(&api, "slow sync", ds).await;
    assert!(m.contains("did not answer within"), "{m}");
    assert_eq!(slow.hits(), 2, "one request per connect");
}

#[tokio::test]
async fn failing_and_malformed_answers_name_the_step_with_bounded_retries() {
    let api = Api::start().await;
    let bao = TestBao::shared();

    // the login works (the shared OpenBao), the secret endpoint fails with 502
    let bad_gateway = Injector::start(Fault::Answer(answer(
        "502 Bad Gateway",
        r#"{"errors":["upstream down"]}"#,
    )))
    .await;
    let mut sm = bao.userpass_manager("dq/none");
    sm["secret_url"] = json!(format!("{}/v1/secret/data/dq/pg", bad_gateway.url));
    let (conn, ds) = saved(&api, "badgateway", sm, "postgres").await;
    let m = failing_test(&api, "502", conn).await;
    assert!(
        m.contains("HTTP 502") && m.contains("reading the secret") && m.contains("upstream down"),
        "{m}"
    );
    let per_connect = bad_gateway.hits();
    assert!(
        (2..=3).contains(&per_connect),
        "5xx answers are retried a bounded number of times, got {per_connect} requests"
    );
    let m = failing_sync(&api, "502 sync", ds).await;
    assert!(m.contains("reading the secret"), "{m}");
    assert_eq!(
        bad_gateway.hits(),
        2 * per_connect,
        "the same bound per connect"
    );

    // a connection closed without an answer
    let dropper = Injector::start(Fault::Drop).await;
    let sm = manager(
        &format!("{}/v1/auth/userpass/login/dq", dropper.url),
        &bao.secret_url("dq/none"),
    );
    let (conn, _) = saved(&api, "dropped", sm, "postgres").await;
    let m = failing_test(&api, "dropped", conn).await;
    assert!(m.contains("unreachable") && m.contains("logging in"), "{m}");
    assert!(
        (1..=3).contains(&dropper.hits()),
        "bounded: {} requests",
        dropper.hits()
    );

    // a login answer cut off in the middle of the token
    let cut = Injector::start(Fault::Answer(answer(
        "200 OK",
        r#"{"auth": {"client_token": "s.INJECTED-token-6634"#,
    )))
    .await;
    let sm = manager(
        &format!("{}/v1/auth/userpass/login/dq", cut.url),
        &bao.secret_url("dq/none"),
    );
    let (conn, ds) = saved(&api, "malformed", sm, "postgres").await;
    let m = failing_test(&api, "malformed", conn).await;
    assert!(m.contains("not JSON") && m.contains("logging in"), "{m}");
    assert_eq!(cut.hits(), 1, "a 200 answer is never repeated");
    let m = failing_sync(&api, "malformed sync", ds).await;
    assert!(m.contains("not JSON") && m.contains("logging in"), "{m}");

    // a token JSONPath that matches nothing in a valid login answer
    let login = Injector::start(Fault::Answer(answer(
        "200 OK",
        r#"{"auth": {"client_token": "s.INJECTED-token-6634", "policies": ["default"]}}"#,
    )))
    .await;
    let mut sm = manager(
        &format!("{}/v1/auth/userpass/login/dq", login.url),
        &bao.secret_url("dq/none"),
    );
    sm["token_jsonpath"] = json!("$.auth.token");
    let (conn, ds) = saved(&api, "tokenpath", sm, "postgres").await;
    let m = failing_test(&api, "token path", conn).await;
    assert!(
        m.contains("token JSONPath $.auth.token")
            && m.contains("login response")
            && m.contains("$.auth.client_token"),
        "names the path, the step and the usual path: {m}"
    );
    assert_eq!(login.hits(), 1);
    let m = failing_sync(&api, "token path sync", ds).await;
    assert!(m.contains("token JSONPath $.auth.token"), "{m}");
    assert_eq!(login.hits(), 2);

    // a failing secret endpoint whose error echoes the request: the token and the payload are masked
    let echo = Injector::start(Fault::Answer(answer(
        "500 Internal Server Error",
        r#"{"errors":["cannot serve token s.INJECTED-token-6634 (login password faults-login-pw-4410)"]}"#,
    )))
    .await;
    let sm = manager(
        &format!("{}/v1/auth/userpass/login/dq", login.url),
        &format!("{}/v1/secret/data/pg", echo.url),
    );
    let (conn, _) = saved(&api, "echo", sm, "postgres").await;
    let m = failing_test(&api, "echo", conn).await;
    assert!(
        m.contains("HTTP 500") && m.contains("reading the secret") && m.contains("[redacted]"),
        "{m}"
    );
}
