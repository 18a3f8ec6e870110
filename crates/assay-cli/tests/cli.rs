//! The `assay` binary end to end: `serve` (external metadata store and the embedded one), then the seed's CLI
//! commands with `assay` in place of `qualytics`, against a real PostgreSQL and OpenBao.

use assay_testkit::{TestBao, TestPg};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_assay");

struct Server {
    child: Child,
    url: String,
    token: Option<String>,
}

impl Server {
    // the child is waited for in Drop, which also runs when a test panics
    #[allow(clippy::zombie_processes)]
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn assay serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut token = None;
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server prints its address");
            if let Some(t) = line.trim().strip_prefix("API token: ") {
                token = Some(t.to_string());
            }
            if let Some(rest) = line.strip_prefix("Assay is listening on ") {
                let url = rest.split_whitespace().next().unwrap().to_string();
                return Server { child, url, token };
            }
        }
    }

    /// Ctrl-C; returns the exit status.
    fn interrupt(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        for _ in 0..300 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("assay serve did not stop on SIGINT");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(assay_testkit::unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `assay ARGS` with the config home `home`.
fn assay(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("ASSAY_CONFIG_HOME", home)
        .env_remove("ASSAY_URL")
        .env_remove("ASSAY_TOKEN")
        .output()
        .expect("run assay")
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = assay(home, args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "assay {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn id_after(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_cli_flow_against_a_server_with_an_external_metadata_store() {
    let pg = TestPg::shared();
    let meta = pg.create_database("climeta").await;
    let (db, reader, writer) = shop(pg).await;
    let data = tmp("cli-data");
    let server = Server::start(&[
        "--metadata-url",
        &pg.superuser_url(&meta),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let token = server.token.clone().expect("first start prints a token");
    assert_eq!(token.split('.').count(), 3, "the token is a JWT");
    let home = tmp("cli-home");
    let port = pg.port().to_string();

    ok(
        &home,
        &["auth", "init", "--url", &server.url, "--token", &token],
    );
    assert!(home.join("config.yaml").exists());

    // Step 1: Create a Connection (the seed's command with assay in place of qualytics)
    let out = ok(
        &home,
        &[
            "connections",
            "create",
            "--type",
            "postgresql",
            "--name",
            "your_connection_name",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            &reader,
            "--password",
            "readerpw",
        ],
    );
    let conn_id = id_after(&out, "Connection ID: ");
    assert!(out.contains("Connection Type: postgresql"));
    // Step 2: Create a Source Datastore
    let out = ok(
        &home,
        &[
            "datastores",
            "create",
            "--name",
            "your_datastore_name",
            "--connection-name",
            "your_connection_name",
            "--database",
            &db,
            "--schema",
            "sales",
        ],
    );
    let src = id_after(&out, "Datastore ID: ");
    // the enrichment datastore, as in the seed
    ok(
        &home,
        &[
            "connections",
            "create",
            "--type",
            "postgresql",
            "--name",
            "enrichment_connection",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            &writer,
            "--password",
            "writerpw",
        ],
    );
    let out = ok(
        &home,
        &[
            "datastores",
            "create",
            "--name",
            "enrichment_store",
            "--connection-name",
            "enrichment_connection",
            "--database",
            &db,
            "--schema",
            "enrich",
            "--enrichment-only",
            "--no-trigger-sync",
        ],
    );
    let enr = id_after(&out, "Datastore ID: ");

    let out = ok(&home, &["datastores", "verify", "--id", &src]);
    assert!(out.contains("test passed successfully"), "{out}");
    let out = ok(&home, &["datastores", "test", "--id", &enr]);
    assert!(out.contains("test passed successfully"), "{out}");
    // a failing test exits 1 and says why
    let out = assay(
        &home,
        &[
            "connections",
            "test",
            "--id",
            &conn_id,
            "--password",
            "wrong",
            "--database",
            &db,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("test failed") && text.contains("28P01"),
        "{text}"
    );

    // a datastore before saving: the read-only role as an enrichment store fails with the GRANTs to run
    let out = assay(
        &home,
        &[
            "datastores",
            "test",
            "--connection-name",
            "your_connection_name",
            "--database",
            &db,
            "--schema",
            "sales",
            "--enrichment-only",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("GRANT CREATE ON SCHEMA \"sales\""), "{text}");
    // Test Connection before saving: good and bad credentials
    let out = ok(
        &home,
        &[
            "connections",
            "test",
            "--type",
            "postgresql",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            &reader,
            "--password",
            "readerpw",
            "--database",
            &db,
        ],
    );
    assert!(
        out.contains("Unsaved connection: test passed successfully"),
        "{out}"
    );
    let out = assay(
        &home,
        &[
            "connections",
            "test",
            "--type",
            "postgresql",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            &reader,
            "--password",
            "nope",
            "--database",
            &db,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("28P01"));
    let out = ok(&home, &["operations", "sync", "--datastore-id", &src]);
    assert!(
        out.contains("Successfully finished sync operation"),
        "{out}"
    );
    let out = ok(&home, &["containers", "list", "--datastore-id", &src]);
    assert!(out.contains("orders") && out.contains("customers"), "{out}");
    let out = ok(
        &home,
        &[
            "operations",
            "profile",
            "--datastore-id",
            &src,
            "--ai-effort",
            "high",
        ],
    );
    assert!(
        out.contains("Successfully finished profile operation") && out.contains("fields profiled"),
        "{out}"
    );
    let out = ok(&home, &["checks", "list", "--datastore-id", &src]);
    assert!(
        out.contains("expectedSchema") && out.contains("notNull"),
        "{out}"
    );

    // authored checks from YAML, a scan, anomalies, and an export/import round trip
    let dir = tmp("checks");
    let file = dir.join("orders.yaml");
    std::fs::write(
        &file,
        "- rule_type: lessThan\n  description: Small orders only\n  container: orders\n  fields: [total]\n  \
         properties: {value: 48}\n  additional_metadata: {_qualytics_check_uid: orders__lessthan__total}\n\
         - rule_type: isAddress\n  container: orders\n  fields: [total]\n",
    )
    .unwrap();
    let out = assay(
        &home,
        &[
            "checks",
            "create",
            "--datastore-id",
            &src,
            "--file",
            file.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one of the two is refused: {text}"
    );
    assert!(text.contains("1 created, 1 failed"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported"));
    let out = ok(
        &home,
        &[
            "operations",
            "scan",
            "--datastore-id",
            &src,
            "--container-names",
            "orders",
        ],
    );
    assert!(
        out.contains("Successfully finished scan operation") && out.contains("50 rows scanned"),
        "{out}"
    );
    let out = ok(&home, &["anomalies", "list", "--datastore-id", &src]);
    assert!(out.contains("record") && out.contains("lessThan"), "{out}");
    let first = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    assert!(first.parse::<i64>().is_ok(), "{out}");
    ok(
        &home,
        &[
            "anomalies",
            "update",
            "--ids",
            &first,
            "--status",
            "Acknowledged",
        ],
    );
    assert!(ok(&home, &["anomalies", "get", "--id", &first]).contains("\"Acknowledged\""));
    ok(
        &home,
        &[
            "anomalies",
            "archive",
            "--ids",
            &first,
            "--status",
            "Invalid",
        ],
    );
    assert!(
        ok(
            &home,
            &[
                "anomalies",
                "list",
                "--datastore-id",
                &src,
                "--status",
                "Invalid"
            ]
        )
        .contains(&first)
    );
    let export = dir.join("export");
    let out = ok(
        &home,
        &[
            "checks",
            "export",
            "--datastore-id",
            &src,
            "--output",
            export.to_str().unwrap(),
        ],
    );
    assert!(out.contains("Exported"), "{out}");
    assert!(export.join("orders").join("lessthan__total.yaml").exists());
    let out = ok(
        &home,
        &[
            "checks",
            "import",
            "--datastore-id",
            &src,
            "--input",
            export.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(
        out.contains("would update orders__lessthan__total"),
        "{out}"
    );
    let before = ok(&home, &["checks", "list", "--datastore-id", &src])
        .lines()
        .count();
    let out = ok(
        &home,
        &[
            "checks",
            "import",
            "--datastore-id",
            &src,
            "--input",
            export.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("0 created") && out.contains("0 failed"),
        "a round trip updates, never duplicates: {out}"
    );
    assert_eq!(
        ok(&home, &["checks", "list", "--datastore-id", &src])
            .lines()
            .count(),
        before
    );
    let out = assay(
        &home,
        &[
            "operations",
            "profile",
            "--datastore-id",
            &src,
            "--ai-effort",
            "extreme",
        ],
    );
    assert_eq!(out.status.code(), Some(3));

    let out = ok(
        &home,
        &[
            "datastores",
            "link-enrichment",
            "--id",
            &src,
            "--enrichment-id",
            &enr,
            "--prefix",
            "Shop",
        ],
    );
    assert!(out.contains("prefix _shop"), "{out}");
    let got = ok(
        &home,
        &["datastores", "get", "--name", "your_datastore_name"],
    );
    let v: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(v["enrich_datastore"]["schema"], "enrich");
    ok(
        &home,
        &["datastores", "enrichment", "--id", &src, "--unlink"],
    );
    ok(
        &home,
        &["datastores", "enrichment", "--id", &src, "--link", &enr],
    );
    ok(&home, &["datastores", "unlink-enrichment", "--id", &src]);

    let out = ok(&home, &["connections", "list"]);
    assert!(out.contains("your_connection_name") && out.contains("enrichment_connection"));
    assert!(!out.contains("readerpw"));
    let out = ok(
        &home,
        &["connections", "get", "--name", "your_connection_name"],
    );
    assert!(!out.contains("readerpw"));
    ok(&home, &["datastores", "list", "--enrichment-only"]);
    ok(&home, &["operations", "list", "--datastore-id", &src]);

    // errors print the server's message and exit non-zero
    let out = assay(&home, &["connections", "delete", "--id", &conn_id]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("your_datastore_name"));
    let out = assay(&home, &["datastores", "get", "--id", "987654"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    // users, teams, tokens
    ok(&home, &["teams", "create", "--name", "Red"]);
    ok(
        &home,
        &[
            "users",
            "create",
            "--username",
            "alice",
            "--password",
            "alice-password",
            "--teams",
            "Red",
        ],
    );
    let out = ok(&home, &["users", "list"]);
    assert!(out.contains("alice") && out.contains("Red"));
    ok(&home, &["teams", "list"]);
    let tok = ok(&home, &["tokens", "create", "--name", "ci"]);
    assert_eq!(tok.trim().split('.').count(), 3);

    // the environment overrides the config file; half of it is a usage error
    let empty = tmp("cli-empty");
    let out = Command::new(BIN)
        .args(["connections", "list"])
        .env("ASSAY_CONFIG_HOME", &empty)
        .env("ASSAY_URL", &server.url)
        .env("ASSAY_TOKEN", tok.trim())
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(BIN)
        .args(["connections", "list"])
        .env("ASSAY_CONFIG_HOME", &empty)
        .env("ASSAY_URL", &server.url)
        .env_remove("ASSAY_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = assay(&empty, &["connections", "list"]);
    assert_eq!(out.status.code(), Some(2));

    // a literal ${key} reaches the server, which resolves it from OpenBao
    let bao = TestBao::shared();
    bao.put_secret("dq/cli", json!({"password": "readerpw"}))
        .await;
    let out = ok(
        &home,
        &[
            "connections",
            "create",
            "--type",
            "postgresql",
            "--name",
            "vaulted",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            &reader,
            "--password",
            "${password}",
            "--vault-login-url",
            &bao.userpass_login_url(),
            "--vault-credentials-payload",
            &json!({"password": assay_testkit::bao::USER_PASSWORD}).to_string(),
            "--vault-secret-url",
            &bao.secret_url("dq/cli"),
            "--vault-data-jsonpath",
            "$.data.data",
        ],
    );
    let vid = id_after(&out, "Connection ID: ");
    let out = ok(
        &home,
        &["connections", "test", "--id", &vid, "--database", &db],
    );
    assert!(out.contains("test passed successfully"), "{out}");

    assert!(server.interrupt().success(), "Ctrl-C shuts down cleanly");
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_metadata_store_survives_a_restart() {
    let data = tmp("embedded");
    let server = Server::start(&["--data-dir", data.to_str().unwrap()]);
    let token = server.token.clone().expect("first start prints a token");
    let home = tmp("emb-home");
    ok(
        &home,
        &["auth", "init", "--url", &server.url, "--token", &token],
    );
    ok(
        &home,
        &[
            "connections",
            "create",
            "--type",
            "postgresql",
            "--name",
            "kept",
            "--host",
            "db.example",
            "--port",
            "5432",
            "--username",
            "u",
            "--password",
            "p",
        ],
    );
    assert!(server.interrupt().success());
    assert!(data.join("pg/data/PG_VERSION").exists());
    assert!(data.join("secret.key").exists());
    // the cluster was stopped with the server
    assert!(
        !data.join("pg/data/postmaster.pid").exists(),
        "the embedded cluster stops with the server"
    );
    let again = Server::start(&["--data-dir", data.to_str().unwrap()]);
    assert!(again.token.is_none(), "the admin is created once");
    let home2 = tmp("emb-home2");
    ok(
        &home2,
        &["auth", "init", "--url", &again.url, "--token", &token],
    );
    let out = ok(&home2, &["connections", "list"]);
    assert!(out.contains("kept"), "{out}");
    assert!(again.interrupt().success());
    let _ = std::fs::remove_dir_all(data);
}

async fn shop(pg: &TestPg) -> (String, String, String) {
    let db = pg.create_database("clishop").await;
    let reader = assay_testkit::unique("clireader");
    let writer = assay_testkit::unique("cliwriter");
    pg.create_role(&reader, "readerpw").await;
    pg.create_role(&writer, "writerpw").await;
    pg.superuser(&db)
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA sales; CREATE SCHEMA enrich;
             CREATE TABLE sales.orders (id bigserial PRIMARY KEY, total numeric);
             CREATE TABLE sales.customers (id int PRIMARY KEY, email text);
             INSERT INTO sales.orders (total) SELECT g FROM generate_series(1, 50) g;
             INSERT INTO sales.customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 50) g;
             GRANT USAGE ON SCHEMA sales TO {reader};
             GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {reader};
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA sales TO {reader};
             ALTER DEFAULT PRIVILEGES IN SCHEMA sales GRANT SELECT ON TABLES TO {reader};
             GRANT USAGE, CREATE ON SCHEMA enrich TO {writer};
             ALTER DEFAULT PRIVILEGES IN SCHEMA enrich GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {writer};"
        ))
        .await
        .unwrap();
    (db, reader, writer)
}

/// The official `qualytics-cli` (installed by `scripts/test` into `.ci/venv`).
const QUALYTICS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/venv/bin/qualytics");

fn qualytics(home: &Path, args: &[&str]) -> (bool, String) {
    assert!(
        Path::new(QUALYTICS).exists(),
        "qualytics-cli is missing: run ./scripts/test, which installs qualytics-cli==1.2.2 into .ci/venv"
    );
    let out = Command::new(QUALYTICS)
        .args(args)
        .env("QUALYTICS_CONFIG_HOME", home)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "200")
        .env_remove("QUALYTICS_URL")
        .env_remove("QUALYTICS_TOKEN")
        .output()
        .expect("run qualytics");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn q_ok(home: &Path, args: &[&str]) -> String {
    let (ok, text) = qualytics(home, args);
    assert!(ok, "qualytics {args:?} failed: {text}");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_qualytics_cli_drives_assay_unmodified() {
    let pg = TestPg::shared();
    let meta = pg.create_database("qmeta").await;
    let (db, reader, writer) = shop(pg).await;
    let data = tmp("q-data");
    let server = Server::start(&[
        "--metadata-url",
        &pg.superuser_url(&meta),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let token = server.token.clone().unwrap();
    let home = tmp("q-home");
    let port = pg.port().to_string();
    q_ok(
        &home,
        &["auth", "init", "--url", &server.url, "--token", &token],
    );
    let out = q_ok(&home, &["doctor"]);
    assert!(
        out.contains("55 required method/path operations supported"),
        "{out}"
    );
    assert!(out.contains("All checks passed!"), "{out}");

    // the seed's commands, verbatim but for the values
    let out = q_ok(
        &home,
        &[
            "connections",
            "create",
            "--type",
            "postgresql",
            "--name",
            "your_connection_name",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            &reader,
            "--password",
            "readerpw",
        ],
    );
    assert!(out.contains("Connection created successfully!"), "{out}");
    assert!(
        !out.contains("readerpw"),
        "the password is never printed back"
    );
    let out = q_ok(
        &home,
        &[
            "datastores",
            "create",
            "--name",
            "your_datastore_name",
            "--connection-name",
            "your_connection_name",
            "--database",
            &db,
            "--schema",
            "sales",
        ],
    );
    let src = id_after(&out, "Datastore ID: ");
    q_ok(
        &home,
        &[
            "connections",
            "create",
            "--type",
            "postgresql",
            "--name",
            "rw",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            &writer,
            "--password",
            "writerpw",
        ],
    );
    let out = q_ok(
        &home,
        &[
            "datastores",
            "create",
            "--name",
            "enrichment",
            "--connection-name",
            "rw",
            "--database",
            &db,
            "--schema",
            "enrich",
            "--enrichment-only",
        ],
    );
    let enr = id_after(&out, "Datastore ID: ");
    q_ok(
        &home,
        &["datastores", "enrichment", "--id", &src, "--link", &enr],
    );
    let out = q_ok(&home, &["connections", "list"]);
    assert!(
        out.contains("your_connection_name") && out.contains("rw"),
        "{out}"
    );
    q_ok(&home, &["datastores", "get", "--id", &src]);

    // operations, waiting with the CLI's own polling
    for op in ["sync", "profile", "scan"] {
        let out = q_ok(
            &home,
            &[
                "operations",
                op,
                "--datastore-id",
                &src,
                "--poll-interval",
                "1",
            ],
        );
        assert!(out.contains("Successfully Finished"), "{op}: {out}");
    }
    let out = q_ok(&home, &["containers", "list", "--datastore-id", &src]);
    assert!(out.contains("orders") && out.contains("customers"), "{out}");
    let out = q_ok(
        &home,
        &["checks", "list", "--datastore-id", &src, "--format", "json"],
    );
    assert!(out.contains("notNull"), "{out}");

    // a bad row, then a scan that finds it; anomalies through the CLI
    pg.superuser(&db)
        .await
        .batch_execute("INSERT INTO sales.orders (total) VALUES (-5)")
        .await
        .unwrap();
    let out = q_ok(
        &home,
        &[
            "operations",
            "scan",
            "--datastore-id",
            &src,
            "--poll-interval",
            "1",
        ],
    );
    assert!(out.contains("Successfully Finished"), "{out}");
    let out = q_ok(
        &home,
        &[
            "anomalies",
            "list",
            "--datastore-id",
            &src,
            "--format",
            "json",
        ],
    );
    let anomalies: serde_json::Value =
        serde_json::from_str(out.trim_start_matches(|c| c != '[' && c != '{'))
            .unwrap_or_else(|e| panic!("anomalies list is JSON ({e}): {out}"));
    let list = anomalies
        .as_array()
        .or(anomalies["items"].as_array())
        .cloned()
        .unwrap_or_default();
    let first = list.first().unwrap_or_else(|| panic!("an anomaly: {out}"))["id"].to_string();
    q_ok(
        &home,
        &[
            "anomalies",
            "update",
            "--id",
            &first,
            "--status",
            "Acknowledged",
        ],
    );
    q_ok(
        &home,
        &[
            "anomalies",
            "archive",
            "--id",
            &first,
            "--status",
            "Resolved",
        ],
    );
    let out = q_ok(&home, &["anomalies", "get", "--id", &first]);
    assert!(out.contains("Resolved"), "{out}");
    q_ok(&home, &["anomalies", "delete", "--id", &first]);
    assert!(
        !qualytics(&home, &["anomalies", "get", "--id", &first])
            .1
            .contains("Resolved")
    );

    // checks: export then import into the same datastore updates, never duplicates
    let exp = tmp("q-checks");
    q_ok(
        &home,
        &[
            "checks",
            "export",
            "--datastore-id",
            &src,
            "--output",
            exp.to_str().unwrap(),
        ],
    );
    let out = q_ok(
        &home,
        &[
            "checks",
            "import",
            "--datastore-id",
            &src,
            "--input",
            exp.to_str().unwrap(),
        ],
    );
    let row = out
        .lines()
        .find(|l| l.contains(&format!("│ {src} ")))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let cells: Vec<&str> = row
        .split('│')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells[1], "0", "nothing created: {out}");
    assert_eq!(cells[3], "0", "nothing failed: {out}");

    // checks one by one from YAML
    let file = exp.join("authored.yaml");
    std::fs::write(
        &file,
        "rule_type: between\ndescription: Totals in range\ncontainer: orders\nfields: [total]\n\
         properties: {min: 0, max: 100000, inclusive_min: true, inclusive_max: true}\n\
         additional_metadata: {_qualytics_check_uid: orders__between__total__authored}\n",
    )
    .unwrap();
    q_ok(
        &home,
        &[
            "checks",
            "create",
            "--datastore-id",
            &src,
            "--file",
            file.to_str().unwrap(),
        ],
    );
    let out = q_ok(
        &home,
        &["checks", "list", "--datastore-id", &src, "--format", "json"],
    );
    let checks: serde_json::Value =
        serde_json::from_str(out.trim_start_matches(|c| c != '[' && c != '{'))
            .unwrap_or_else(|e| panic!("checks list is JSON ({e}): {out}"));
    let items = checks
        .as_array()
        .or(checks["items"].as_array())
        .cloned()
        .unwrap_or_default();
    let authored = items
        .iter()
        .find(|k| {
            k["additional_metadata"]["_qualytics_check_uid"] == "orders__between__total__authored"
        })
        .unwrap_or_else(|| panic!("the authored check is listed: {out}"))["id"]
        .to_string();
    assert!(q_ok(&home, &["checks", "get", "--id", &authored]).contains("Totals in range"));
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("Totals in range", "Totals stay in range"),
    )
    .unwrap();
    q_ok(
        &home,
        &[
            "checks",
            "update",
            "--id",
            &authored,
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert!(q_ok(&home, &["checks", "get", "--id", &authored]).contains("Totals stay in range"));
    q_ok(
        &home,
        &["checks", "delete", "--id", &authored, "--no-archive"],
    );
    assert!(
        !qualytics(&home, &["checks", "get", "--id", &authored])
            .1
            .contains("Totals stay in range")
    );

    // connections, datastores, operations and containers, one by one
    let out = q_ok(
        &home,
        &["connections", "get", "--name", "your_connection_name"],
    );
    assert!(out.contains(&reader) && !out.contains("readerpw"), "{out}");
    let out = q_ok(
        &home,
        &[
            "connections",
            "create",
            "--type",
            "postgresql",
            "--name",
            "spare",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            &reader,
            "--password",
            "readerpw",
        ],
    );
    let spare = id_after(&out, "Connection ID: ");
    q_ok(
        &home,
        &["connections", "update", "--id", &spare, "--name", "spare2"],
    );
    let (_, out) = qualytics(&home, &["connections", "test", "--id", &spare]);
    assert!(out.to_lowercase().contains("success"), "{out}");
    q_ok(&home, &["connections", "delete", "--id", &spare]);
    assert!(!q_ok(&home, &["connections", "list"]).contains("spare2"));
    assert!(q_ok(&home, &["datastores", "list"]).contains("your_datastore_name"));
    let out = q_ok(&home, &["datastores", "verify", "--id", &src]);
    assert!(
        out.to_lowercase().contains("success") || out.contains("true"),
        "{out}"
    );
    let out = q_ok(&home, &["operations", "list", "--datastore-id", &src]);
    assert!(out.contains("scan") && out.contains("profile"), "{out}");
    let out = q_ok(
        &home,
        &[
            "containers",
            "list",
            "--datastore-id",
            &src,
            "--format",
            "json",
        ],
    );
    assert!(out.contains("orders"), "{out}");
    let ops = q_ok(
        &home,
        &[
            "operations",
            "list",
            "--datastore-id",
            &src,
            "--format",
            "json",
        ],
    );
    let ops: serde_json::Value =
        serde_json::from_str(ops.trim_start_matches(|c| c != '[' && c != '{'))
            .unwrap_or_else(|e| panic!("operations list is JSON ({e}): {ops}"));
    let op_id = ops
        .as_array()
        .or(ops["items"].as_array())
        .and_then(|a| a.first())
        .unwrap()["id"]
        .to_string();
    assert!(q_ok(&home, &["operations", "get", "--id", &op_id]).contains("success"));
    q_ok(&home, &["operations", "abort", "--id", &op_id]);
    let out = q_ok(
        &home,
        &[
            "containers",
            "create",
            "--type",
            "computed_table",
            "--name",
            "big_totals",
            "--datastore-id",
            &src,
            "--query",
            "SELECT id, total FROM sales.orders WHERE total > 40",
        ],
    );
    let computed = id_after(
        &out.replace("Container ID:", "\nContainer ID:"),
        "Container ID: ",
    );
    let out = q_ok(&home, &["containers", "get", "--id", &computed]);
    assert!(
        out.contains("computed_table") && out.contains("big_totals"),
        "{out}"
    );
    q_ok(&home, &["containers", "delete", "--id", &computed]);

    // tags, teams, users
    q_ok(
        &home,
        &[
            "tags",
            "create",
            "--name",
            "finance",
            "--weight-modifier",
            "2",
        ],
    );
    assert!(q_ok(&home, &["tags", "list"]).contains("finance"));
    q_ok(&home, &["tags", "delete", "--name", "finance"]);
    assert!(q_ok(&home, &["teams", "list"]).contains("Public"));
    assert!(q_ok(&home, &["users", "list"]).contains("admin"));

    // config export, and an import dry run that plans without writing
    let cfg = tmp("q-config");
    q_ok(
        &home,
        &[
            "config",
            "export",
            "--datastore-id",
            &src,
            "--output",
            cfg.to_str().unwrap(),
        ],
    );
    assert!(cfg.join("connections").exists() && cfg.join("datastores").exists());
    let out = q_ok(
        &home,
        &[
            "config",
            "import",
            "--input",
            cfg.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(out.to_lowercase().contains("dry"), "{out}");
    // importing into the same instance updates what exists (connections, datastore, checks) and syncs
    let out = q_ok(
        &home,
        &["config", "import", "--input", cfg.to_str().unwrap()],
    );
    assert!(!out.contains("Traceback"), "{out}");
    let after = q_ok(
        &home,
        &["checks", "list", "--datastore-id", &src, "--format", "json"],
    );
    let n_after = serde_json::from_str::<serde_json::Value>(
        after.trim_start_matches(|c| c != '[' && c != '{'),
    )
    .ok()
    .and_then(|v| {
        v.as_array()
            .map(Vec::len)
            .or(v["items"].as_array().map(Vec::len))
    })
    .unwrap_or(0);
    assert_eq!(
        n_after,
        items.len() - 1,
        "config import duplicated checks: {out}"
    );
    q_ok(
        &home,
        &["datastores", "enrichment", "--id", &src, "--unlink"],
    );

    // the same export imported into a second Assay instance reproduces the connection (its secret from the
    // environment, as the CLI substitutes it), the datastore, a sync, and the checks
    let meta2 = pg.create_database("qmeta2").await;
    let data2 = tmp("q-data2");
    let second = Server::start(&[
        "--metadata-url",
        &pg.superuser_url(&meta2),
        "--data-dir",
        data2.to_str().unwrap(),
    ]);
    let home2 = tmp("q-home2");
    q_ok(
        &home2,
        &[
            "auth",
            "init",
            "--url",
            &second.url,
            "--token",
            second.token.as_ref().unwrap(),
        ],
    );
    let out = Command::new(QUALYTICS)
        .args(["config", "import", "--input", cfg.to_str().unwrap()])
        .env("QUALYTICS_CONFIG_HOME", &home2)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "200")
        .env("YOUR_CONNECTION_NAME_PASSWORD", "readerpw")
        .env("RW_PASSWORD", "writerpw")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("Traceback"),
        "{text}"
    );
    let out = q_ok(&home2, &["datastores", "list"]);
    assert!(out.contains("your_datastore_name"), "{out}");
    let out = q_ok(&home2, &["connections", "test", "--id", "1"]);
    assert!(
        out.to_lowercase().contains("success"),
        "the imported connection works: {out}"
    );
    // a fresh store: the imported datastore is the first (the enrichment datastore is not exported)
    let ds2_id = "1";
    assert!(q_ok(&home2, &["datastores", "get", "--id", ds2_id]).contains("your_datastore_name"));
    let imported = q_ok(
        &home2,
        &[
            "checks",
            "list",
            "--datastore-id",
            ds2_id,
            "--format",
            "json",
        ],
    );
    let n2 = serde_json::from_str::<serde_json::Value>(
        imported.trim_start_matches(|c| c != '[' && c != '{'),
    )
    .ok()
    .and_then(|v| {
        v.as_array()
            .map(Vec::len)
            .or(v["items"].as_array().map(Vec::len))
    })
    .unwrap_or(0);
    assert_eq!(
        n2, n_after,
        "every check arrives in the second instance: {imported}"
    );
    drop(second);
    drop(server);
}
