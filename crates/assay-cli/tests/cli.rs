//! The `assay` binary end to end: `serve` (external metadata store and the embedded one), then the seed's CLI
//! commands with `assay` in place of `qualytics`, against a real PostgreSQL and OpenBao.

mod common;
#[path = "cli/monitoring.rs"]
mod monitoring;

use assay_testkit::{TestBao, TestPg};
use common::*;
use serde_json::json;
use std::process::Command;

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
    assert_eq!(linked_enrichment(&home), Some(enr.clone()));
    let out = ok(
        &home,
        &["datastores", "enrichment", "--id", &src, "--unlink"],
    );
    assert_eq!(
        out.trim(),
        format!("Enrichment unlinked from datastore {src}.")
    );
    assert_eq!(linked_enrichment(&home), None);
    let out = ok(
        &home,
        &["datastores", "enrichment", "--id", &src, "--link", &enr],
    );
    assert!(
        out.starts_with(&format!(
            "Enrichment datastore {enr} linked to datastore {src} with prefix _"
        )),
        "{out}"
    );
    assert_eq!(linked_enrichment(&home), Some(enr.clone()));
    let out = ok(&home, &["datastores", "unlink-enrichment", "--id", &src]);
    assert_eq!(
        out.trim(),
        format!("Enrichment unlinked from datastore {src}.")
    );
    assert_eq!(linked_enrichment(&home), None);

    let out = ok(&home, &["connections", "list"]);
    assert!(out.contains("your_connection_name") && out.contains("enrichment_connection"));
    assert!(!out.contains("readerpw"));
    let out = ok(
        &home,
        &["connections", "get", "--name", "your_connection_name"],
    );
    assert!(!out.contains("readerpw"));
    // the enrichment-only listing has the enrichment store and no source datastore
    let out = ok(&home, &["datastores", "list", "--enrichment-only"]);
    let listed = table_rows(
        &out,
        "ID  NAME  TYPE  HOST  DATABASE  SCHEMA  ENRICHMENT_ONLY",
    );
    assert!(
        listed
            .iter()
            .any(|r| r[0] == enr && r[1] == "enrichment_store"),
        "{out}"
    );
    assert!(listed.iter().all(|r| r[6] == "true"), "{out}");
    monitoring::schedules_and_flows(&home, &src).await;

    // the source's operations, each of them, and no other datastore's
    let out = ok(&home, &["operations", "list", "--datastore-id", &src]);
    let ops = table_rows(&out, "ID  TYPE  DATASTORE  RESULT");
    assert!(ops.iter().all(|r| r[2] == "your_datastore_name"), "{out}");
    for kind in ["sync", "profile", "scan"] {
        assert!(
            ops.iter().any(|r| r[1] == kind && r[3] == "success"),
            "no successful {kind} in {out}"
        );
    }
    let as_json: serde_json::Value = serde_json::from_str(&ok(
        &home,
        &[
            "operations",
            "list",
            "--datastore-id",
            &src,
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let ids: Vec<String> = as_json
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].to_string())
        .collect();
    assert_eq!(
        ops.iter().map(|r| r[0].to_string()).collect::<Vec<_>>(),
        ids,
        "{out}"
    );

    // errors print the server's message and exit non-zero
    let out = assay(&home, &["connections", "delete", "--id", &conn_id]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("your_datastore_name"));
    let out = assay(&home, &["datastores", "get", "--id", "987654"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    // a usage error is known by its type: code 2, and the server is not asked
    let out = assay(
        &home,
        &["tags", "create", "--name", "t", "--weight-modifier", "99"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("from -10 to 10"));

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
    let out = ok(&home, &["teams", "list"]);
    let teams = table_rows(&out, "ID  NAME  MEMBERS");
    assert!(
        teams.iter().any(|r| r[1] == "Red" && r[2] == "alice"),
        "{out}"
    );
    assert!(teams.iter().any(|r| r[1] == "Public"), "{out}");
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

/// The rows of a printed table whose header starts with the given columns (as printed, two spaces apart once
/// the columns are padded), each split on whitespace: the leading cells, which hold no spaces, come first.
fn table_rows<'a>(out: &'a str, header: &str) -> Vec<Vec<&'a str>> {
    let mut lines = out.lines();
    let head: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let want: Vec<&str> = header.split_whitespace().collect();
    assert!(head.starts_with(&want), "header {head:?} in {out}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.len() >= want.len()),
        "{out}"
    );
    rows
}

/// The id of the enrichment datastore linked to the seed's source datastore, as `datastores get` shows it.
fn linked_enrichment(home: &std::path::Path) -> Option<String> {
    let got = ok(
        home,
        &["datastores", "get", "--name", "your_datastore_name"],
    );
    let v: serde_json::Value = serde_json::from_str(&got).unwrap();
    match &v["enrich_datastore"] {
        serde_json::Value::Null => None,
        e => Some(e["id"].to_string()),
    }
}
