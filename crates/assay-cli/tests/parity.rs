//! The command groups `assay` shares with the Qualytics CLI beyond the seed's flow, end to end against a real
//! server and PostgreSQL: tags, datastore tags, computed containers (query and join), check activation,
//! materialize and export operations, anomaly commands by `--id`, and `config export` imported into a second
//! server.

mod common;

use assay_testkit::TestPg;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn json_of(home: &Path, args: &[&str]) -> Value {
    let out = ok(home, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("assay {args:?}: {e}: {out}"))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["name"].as_str().map(str::to_string))
        .collect()
}

fn id_named(v: &Value, name: &str) -> String {
    v.as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))["id"]
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn qualytics_command_groups_work_as_assay_commands() {
    let pg = TestPg::shared();
    let meta = pg.create_database("paritymeta").await;
    let (db, reader, writer) = shop(pg).await;
    let server = Server::start(&["--metadata-url", &pg.superuser_url(&meta)]);
    let home = tmp("parity-home");
    let port = pg.port().to_string();
    ok(
        &home,
        &[
            "auth",
            "init",
            "--url",
            &server.url,
            "--token",
            server.token.as_ref().unwrap(),
        ],
    );
    for (name, user, pw) in [
        ("src_conn", &reader, "readerpw"),
        ("enr_conn", &writer, "writerpw"),
    ] {
        ok(
            &home,
            &[
                "connections",
                "create",
                "--type",
                "postgresql",
                "--name",
                name,
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--username",
                user,
                "--password",
                pw,
            ],
        );
    }
    // --dry-run prints the body with the password masked and creates nothing
    let out = ok(
        &home,
        &[
            "connections",
            "create",
            "--type",
            "postgresql",
            "--name",
            "dry",
            "--host",
            "h",
            "--username",
            "u",
            "--password",
            "hunter2",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    assert!(
        out.contains("********") && !out.contains("hunter2"),
        "{out}"
    );
    assert!(
        !names(&json_of(
            &home,
            &["connections", "list", "--format", "json"]
        ))
        .contains(&"dry".into())
    );
    // flags of other connectors are refused with the reason
    let out = assay(
        &home,
        &[
            "connections",
            "create",
            "--type",
            "postgresql",
            "--name",
            "x",
            "--uri",
            "s3://b",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PostgreSQL"));

    let src = id_after(
        &ok(
            &home,
            &[
                "datastores",
                "create",
                "--name",
                "shop",
                "--connection-name",
                "src_conn",
                "--database",
                &db,
                "--schema",
                "sales",
                "--no-trigger-sync",
            ],
        ),
        "Datastore ID: ",
    );
    let enr = id_after(
        &ok(
            &home,
            &[
                "datastores",
                "create",
                "--name",
                "shop_enrichment",
                "--connection-name",
                "enr_conn",
                "--database",
                &db,
                "--schema",
                "enrich",
                "--enrichment-only",
                "--no-trigger-sync",
            ],
        ),
        "Datastore ID: ",
    );
    ok(&home, &["operations", "sync", "--datastore-id", &src]);

    // tags, and the datastore list filtered by tag
    ok(
        &home,
        &[
            "tags",
            "create",
            "--name",
            "finance",
            "--color",
            "#FF2000",
            "--weight-modifier",
            "-3",
        ],
    );
    let tags = json_of(&home, &["tags", "list", "--format", "json"]);
    assert!(names(&tags).contains(&"finance".to_string()), "{tags}");
    let t = json_of(
        &home,
        &["tags", "get", "--name", "finance", "--format", "json"],
    );
    assert_eq!(t["weight_modifier"], -3, "{t}");
    ok(
        &home,
        &["datastores", "update", "--id", &src, "--tags", "finance"],
    );
    let tagged = json_of(
        &home,
        &["datastores", "list", "--tag", "finance", "--format", "json"],
    );
    assert_eq!(names(&tagged), vec!["shop"]);
    let sources = json_of(
        &home,
        &[
            "datastores",
            "list",
            "--no-enrichment-only",
            "--format",
            "json",
        ],
    );
    assert_eq!(names(&sources), vec!["shop"]);

    // computed containers: a join and a query; validate reports a bad query with exit code 1
    let containers = json_of(
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
    let (orders, customers) = (
        id_named(&containers, "orders"),
        id_named(&containers, "customers"),
    );
    ok(
        &home,
        &[
            "containers",
            "create",
            "--type",
            "computed_join",
            "--name",
            "order_customer",
            "--left-container-id",
            &orders,
            "--right-container-id",
            &customers,
            "--left-key-field",
            "id",
            "--right-key-field",
            "id",
            "--select-clause",
            "left_id AS id, left_total AS total, right_email AS email",
        ],
    );
    let joins = json_of(
        &home,
        &[
            "containers",
            "list",
            "--datastore-id",
            &src,
            "--type",
            "computed_join",
            "--format",
            "json",
        ],
    );
    assert_eq!(names(&joins), vec!["order_customer"]);
    let bad = assay(
        &home,
        &[
            "containers",
            "validate",
            "--type",
            "computed_table",
            "--datastore-id",
            &src,
            "--query",
            "SELECT nope FROM sales.orders",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("nope"));
    ok(
        &home,
        &[
            "containers",
            "validate",
            "--type",
            "computed_table",
            "--datastore-id",
            &src,
            "--query",
            "SELECT id FROM sales.orders",
        ],
    );
    let out = ok(
        &home,
        &[
            "containers",
            "create",
            "--type",
            "computed_table",
            "--name",
            "scratch",
            "--datastore-id",
            &src,
            "--query",
            "SELECT id FROM sales.orders",
            "--format",
            "json",
        ],
    );
    let scratch: Value = serde_json::from_str(&out).unwrap();
    let scratch = scratch["id"].to_string();
    let updated = json_of(
        &home,
        &[
            "containers",
            "update",
            "--id",
            &scratch,
            "--description",
            "temporary",
            "--tags",
            "finance",
            "--format",
            "json",
        ],
    );
    assert_eq!(updated["description"], "temporary");
    let tagged = json_of(
        &home,
        &[
            "containers",
            "list",
            "--datastore-id",
            &src,
            "--tag",
            "finance",
            "--format",
            "json",
        ],
    );
    assert_eq!(names(&tagged), vec!["scratch"]);
    ok(&home, &["containers", "delete", "--id", &scratch]);
    let left = json_of(
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
    assert!(!names(&left).contains(&"scratch".to_string()));

    // checks: archive by --id, list the archived, activate again
    let file = home.join("check.yaml");
    std::fs::write(&file, "rule_type: between\ncontainer: orders\nfields: [total]\nproperties: {min: 1, max: 10}\ndescription: small totals\n").unwrap();
    let out = ok(
        &home,
        &[
            "checks",
            "create",
            "--datastore-id",
            &src,
            "-f",
            file.to_str().unwrap(),
        ],
    );
    let check = out.split_whitespace().nth(2).unwrap().to_string();
    ok(&home, &["checks", "delete", "--id", &check]);
    let archived = json_of(
        &home,
        &[
            "checks",
            "list",
            "--datastore-id",
            &src,
            "--status",
            "Archived",
            "--format",
            "json",
        ],
    );
    assert_eq!(archived.as_array().unwrap().len(), 1, "{archived}");
    ok(&home, &["checks", "activate", "--id", &check]);
    let k = json_of(
        &home,
        &["checks", "get", "--id", &check, "--format", "json"],
    );
    assert_eq!(k["status"], "Active", "{k}");
    let listed = json_of(
        &home,
        &[
            "checks",
            "list",
            "--datastore-id",
            &src,
            "--containers",
            "orders",
            "--format",
            "json",
        ],
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // enrichment, materialize and export operations
    ok(
        &home,
        &[
            "datastores",
            "enrichment",
            "--id",
            &src,
            "--link",
            &enr,
            "--prefix",
            "cli",
        ],
    );
    ok(
        &home,
        &[
            "operations",
            "materialize",
            "--datastore-id",
            &src,
            "--container-names",
            "customers,order_customer",
        ],
    );
    let su = pg.superuser(&db).await;
    let n: i64 = su
        .query_one("SELECT count(*) FROM enrich._cli_mat_customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 50);
    let n: i64 = su
        .query_one("SELECT count(*) FROM enrich._cli_mat_order_customer", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 50);
    ok(
        &home,
        &[
            "operations",
            "export",
            "--datastore-id",
            &src,
            "--asset-type",
            "checks",
        ],
    );
    let n: i64 = su
        .query_one("SELECT count(*) FROM enrich._cli_export_checks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let ops = json_of(
        &home,
        &[
            "operations",
            "list",
            "--datastore-id",
            &src,
            "--type",
            "materialize",
            "--status",
            "success",
            "--format",
            "json",
        ],
    );
    assert_eq!(ops.as_array().unwrap().len(), 1, "{ops}");

    // anomalies by --id: the scan finds totals above 10
    let scan = assay(
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
    assert!(scan.status.code().is_some());
    let open = json_of(
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
    let a = open[0]["id"].to_string();
    assert!(!open.as_array().unwrap().is_empty(), "{open}");
    ok(
        &home,
        &[
            "anomalies",
            "update",
            "--id",
            &a,
            "--status",
            "Acknowledged",
        ],
    );
    let ack = json_of(
        &home,
        &[
            "anomalies",
            "list",
            "--datastore-id",
            &src,
            "--status",
            "Acknowledged",
            "--format",
            "json",
        ],
    );
    assert_eq!(ack[0]["id"].to_string(), a);
    let none = json_of(
        &home,
        &[
            "anomalies",
            "list",
            "--datastore-id",
            &src,
            "--start-date",
            "2000-01-01",
            "--end-date",
            "2000-01-02",
            "--format",
            "json",
        ],
    );
    assert_eq!(none.as_array().unwrap().len(), 0);
    ok(
        &home,
        &["anomalies", "archive", "--id", &a, "--status", "Invalid"],
    );
    ok(&home, &["anomalies", "delete", "--id", &a]);
    assert!(
        !assay(&home, &["anomalies", "get", "--id", &a])
            .status
            .success()
    );

    // a schedule travels with its datastore
    ok(
        &home,
        &[
            "schedules",
            "create",
            "--name",
            "nightly scan",
            "--datastore-id",
            &src,
            "--type",
            "scan",
            "--cron",
            "15 1 * * *",
            "--container-names",
            "orders",
        ],
    );

    // config export, then import into a second server
    let dir = tmp("parity-export");
    ok(
        &home,
        &[
            "config",
            "export",
            "--datastore-id",
            &src,
            "--datastore-id",
            &enr,
            "-o",
            dir.to_str().unwrap(),
        ],
    );
    let conn = std::fs::read_to_string(dir.join("connections/src_conn.yaml")).unwrap();
    assert!(
        conn.contains("${SRC_CONN_PASSWORD}") && !conn.contains("readerpw"),
        "{conn}"
    );
    let join = std::fs::read_to_string(
        dir.join("datastores/shop/containers/order_customer/_container.yaml"),
    )
    .unwrap();
    assert!(join.contains("left_container_name: orders"), "{join}");
    assert!(dir.join("datastores/shop/checks/orders").is_dir());
    let sched = std::fs::read_to_string(dir.join("datastores/shop/schedules.yaml")).unwrap();
    assert!(
        sched.contains("name: nightly scan")
            && sched.contains("cron: 15 1 * * *")
            && !sched.contains("id:"),
        "{sched}"
    );

    let meta2 = pg.create_database("paritymeta2").await;
    let server2 = Server::start(&["--metadata-url", &pg.superuser_url(&meta2)]);
    let home2 = tmp("parity-home2");
    ok(
        &home2,
        &[
            "auth",
            "init",
            "--url",
            &server2.url,
            "--token",
            server2.token.as_ref().unwrap(),
        ],
    );
    let import = |dry: bool| {
        let mut args = vec!["config", "import", "-i", dir.to_str().unwrap()];
        if dry {
            args.push("--dry-run");
        }
        Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(&args)
            .env("ASSAY_CONFIG_HOME", &home2)
            .env("SRC_CONN_PASSWORD", "readerpw")
            .env("ENR_CONN_PASSWORD", "writerpw")
            .output()
            .unwrap()
    };
    let plan = import(true);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.status.success() && text.contains("datastore 'shop': would create"),
        "{text}"
    );
    assert!(
        json_of(&home2, &["datastores", "list", "--format", "json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let done = import(false);
    let text = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let ds2 = json_of(&home2, &["datastores", "list", "--format", "json"]);
    let mut got = names(&ds2);
    got.sort();
    assert_eq!(got, vec!["shop", "shop_enrichment"]);
    let src2 = id_named(&ds2, "shop");
    let shop2 = json_of(
        &home2,
        &["datastores", "get", "--id", &src2, "--format", "json"],
    );
    assert_eq!(shop2["enrich_datastore"]["name"], "shop_enrichment");
    assert_eq!(names(&shop2["global_tags"]), vec!["finance"]);
    let c2 = json_of(
        &home2,
        &[
            "containers",
            "list",
            "--datastore-id",
            &src2,
            "--type",
            "computed_join",
            "--format",
            "json",
        ],
    );
    assert_eq!(names(&c2), vec!["order_customer"]);
    let k2 = json_of(
        &home2,
        &[
            "checks",
            "list",
            "--datastore-id",
            &src2,
            "--format",
            "json",
        ],
    );
    assert_eq!(k2.as_array().unwrap().len(), 1);
    assert_eq!(k2[0]["rule_type"], "between");
    let s2 = json_of(
        &home2,
        &[
            "schedules",
            "list",
            "--datastore-id",
            &src2,
            "--format",
            "json",
        ],
    );
    assert_eq!(s2.as_array().unwrap().len(), 1, "{s2}");
    assert_eq!(s2[0]["name"], "nightly scan");
    assert_eq!(s2[0]["cron"], "15 1 * * *");
    assert_eq!(s2[0]["container_names"], serde_json::json!(["orders"]));
    // the imported connection works: its password came from the environment
    let conns = json_of(&home2, &["connections", "list", "--format", "json"]);
    let out = ok(
        &home2,
        &["connections", "test", "--id", &id_named(&conns, "src_conn")],
    );
    assert!(out.contains("test passed"), "{out}");
    // a second import updates in place
    let again = import(false);
    assert!(again.status.success());
    assert_eq!(
        json_of(&home2, &["datastores", "list", "--format", "json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // the schedule is updated by name, not duplicated
    let s2 = json_of(
        &home2,
        &[
            "schedules",
            "list",
            "--datastore-id",
            &src2,
            "--format",
            "json",
        ],
    );
    assert_eq!(s2.as_array().unwrap().len(), 1, "{s2}");
}
