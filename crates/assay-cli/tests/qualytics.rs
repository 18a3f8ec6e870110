//! The official `qualytics-cli` (PyPI, installed by `scripts/test` into `.ci/venv`), unmodified, driving `assay
//! serve` with a real PostgreSQL source and enrichment datastore.

mod common;

use assay_testkit::TestPg;
use common::*;
use std::path::Path;
use std::process::Command;

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

/// The list a `--format json` command printed (a bare array or a page's `items`).
fn json_items(what: &str, out: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(out.trim_start_matches(|c| c != '[' && c != '{'))
            .unwrap_or_else(|e| panic!("{what} is JSON ({e}): {out}"));
    v.as_array()
        .or(v["items"].as_array())
        .cloned()
        .unwrap_or_else(|| panic!("{what} is a list: {out}"))
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
    let list = json_items("anomalies list", &out);
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
    let items = json_items("checks list", &out);
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
    // archive, then activate again
    q_ok(&home, &["checks", "delete", "--id", &authored]);
    assert!(q_ok(&home, &["checks", "get", "--id", &authored]).contains("Discarded"));
    q_ok(&home, &["checks", "activate", "--id", &authored]);
    assert!(q_ok(&home, &["checks", "get", "--id", &authored]).contains("Active"));
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
    let op_id = json_items("operations list", &ops)
        .first()
        .unwrap_or_else(|| panic!("an operation: {ops}"))["id"]
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
    // a computed join of the two tables, then materialized into the enrichment datastore
    let listed = q_ok(
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
    let containers = json_items("containers list", &listed);
    let id_of = |n: &str| {
        containers
            .iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {listed}"))["id"]
            .to_string()
    };
    let out = q_ok(
        &home,
        &[
            "containers",
            "create",
            "--type",
            "computed_join",
            "--name",
            "order_customer",
            "--left-container-id",
            &id_of("orders"),
            "--right-container-id",
            &id_of("customers"),
            "--left-key-field",
            "id",
            "--right-key-field",
            "id",
            "--select-clause",
            "left_id AS id, right_email AS email",
        ],
    );
    assert!(out.contains("order_customer"), "{out}");
    let out = q_ok(
        &home,
        &[
            "operations",
            "materialize",
            "--datastore-id",
            &src,
            "--container-names",
            "order_customer",
            "--poll-interval",
            "1",
        ],
    );
    assert!(!out.to_lowercase().contains("fail"), "{out}");
    let su = pg.superuser(&db).await;
    let table: String = su
        .query_one(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'enrich' AND tablename LIKE '%\\_mat\\_order\\_customer'",
            &[],
        )
        .await
        .expect("the join was materialized")
        .get(0);
    let n: i64 = su
        .query_one(&format!("SELECT count(*) FROM enrich.{table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 50, "every joined row was materialized");
    let out = q_ok(
        &home,
        &[
            "operations",
            "export",
            "--datastore-id",
            &src,
            "--asset-type",
            "checks",
            "--poll-interval",
            "1",
        ],
    );
    assert!(!out.to_lowercase().contains("fail"), "{out}");
    let exported: i64 = su
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'enrich' AND tablename LIKE '%\\_export\\_checks'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(exported, 1, "the export table was written");

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
    assert!(q_ok(&home, &["tags", "get", "--name", "finance"]).contains("finance"));
    q_ok(
        &home,
        &["datastores", "update", "--id", &src, "--tags", "finance"],
    );
    assert!(q_ok(&home, &["datastores", "get", "--id", &src]).contains("finance"));
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
    let n_after = json_items("checks list", &after).len();
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
    let n2 = json_items("checks list", &imported).len();
    assert_eq!(
        n2, n_after,
        "every check arrives in the second instance: {imported}"
    );
    drop(second);
    drop(server);
}
