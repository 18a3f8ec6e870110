//! `assay demo`: the main job end to end on an embedded default. It creates a throwaway PostgreSQL cluster with
//! a sample shop database (and the read-only and read-write roles of the setup guide), starts the server on it,
//! adds a source and an enrichment datastore through the API, tests them, links them, syncs, and prints what
//! was found. Everything is removed afterwards unless `--keep` is given.

use crate::client::{Client, Config};
use crate::commands::connections::report_test;
use crate::printer;
use crate::serve::{self, ServeArgs};
use anyhow::{Context, Result, bail};
use assay_store::cluster::{Cluster, ClusterOptions};
use clap::Args;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Args)]
pub struct DemoArgs {
    /// Keep the cluster and the server running until Ctrl-C, and the files afterwards
    #[arg(long)]
    keep: bool,
}

/// The sample data: a shop with customers, orders and order lines, some rows deliberately defective.
const SAMPLE: &str = "
CREATE SCHEMA sales;
CREATE SCHEMA enrichment;
CREATE TABLE sales.customers (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    email      text,
    country    char(2),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sales.orders (
    id          bigserial PRIMARY KEY,
    customer_id integer REFERENCES sales.customers (id),
    status      text NOT NULL,
    total       numeric(12, 2),
    placed_at   timestamptz NOT NULL,
    updated_at  timestamptz
);
CREATE TABLE sales.order_lines (
    order_id bigint REFERENCES sales.orders (id),
    line     integer,
    sku      text,
    quantity integer,
    PRIMARY KEY (order_id, line)
);
CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE total > 500;
INSERT INTO sales.customers (name, email, country, created_at)
SELECT 'Customer ' || g,
       CASE WHEN g % 50 = 0 THEN NULL WHEN g % 77 = 0 THEN 'not-an-email' ELSE 'c' || g || '@example.com' END,
       (ARRAY['DE','FR','US','GB','NL'])[1 + g % 5],
       timestamptz '2026-01-01' + g * interval '1 hour'
FROM generate_series(1, 2000) AS g;
INSERT INTO sales.orders (customer_id, status, total, placed_at, updated_at)
SELECT 1 + g % 2000,
       (ARRAY['placed','paid','shipped','cancelled'])[1 + g % 4],
       CASE WHEN g % 97 = 0 THEN -10 ELSE round((g % 1000)::numeric * 1.37, 2) END,
       timestamptz '2026-02-01' + g * interval '7 minutes',
       timestamptz '2026-02-01' + g * interval '7 minutes' + interval '1 day'
FROM generate_series(1, 20000) AS g;
INSERT INTO sales.order_lines SELECT o.id, l, 'SKU-' || (o.id * l % 300), 1 + (o.id + l) % 5
FROM sales.orders o, generate_series(1, 3) AS l;
ANALYZE;
";

pub async fn run(args: DemoArgs) -> Result<crate::Outcome> {
    let dir = std::env::temp_dir().join(format!("assay-demo-{}", std::process::id()));
    printer::line(format!(
        "1. Creating a throwaway PostgreSQL cluster in {}",
        dir.display()
    ));
    let opts = ClusterOptions {
        dir: dir.join("pg"),
        superuser_password: "demo-superuser".into(),
        hba: None,
        extra_conf: vec!["track_commit_timestamp = on".into(), "fsync = off".into()],
    };
    let cluster = tokio::task::spawn_blocking(move || -> Result<Cluster> {
        let c = Cluster::open_or_init(&opts)?;
        c.start()?;
        Ok(c)
    })
    .await??;
    let result = demo(&args, &cluster, &dir).await;
    let stopper = cluster.clone();
    let _ = tokio::task::spawn_blocking(move || stopper.stop()).await;
    if !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn demo(args: &DemoArgs, cluster: &Cluster, dir: &std::path::Path) -> Result<crate::Outcome> {
    let (su, conn) =
        tokio_postgres::connect(&cluster.superuser_url("postgres"), tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    su.batch_execute("CREATE DATABASE shop").await?;
    su.batch_execute("CREATE DATABASE assay").await?;
    let (shop, conn) =
        tokio_postgres::connect(&cluster.superuser_url("shop"), tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    printer::line(
        "2. Loading the sample shop (customers, orders, order lines, a view) and creating the roles of the setup guide",
    );
    shop.batch_execute(SAMPLE)
        .await
        .context("loading the sample data")?;
    shop.batch_execute(
        "CREATE ROLE qualytics_read_role LOGIN PASSWORD 'demo-read';
         GRANT CONNECT ON DATABASE shop TO qualytics_read_role;
         GRANT USAGE ON SCHEMA sales TO qualytics_read_role;
         GRANT SELECT ON ALL TABLES IN SCHEMA sales TO qualytics_read_role;
         GRANT SELECT ON ALL SEQUENCES IN SCHEMA sales TO qualytics_read_role;
         ALTER DEFAULT PRIVILEGES IN SCHEMA sales GRANT SELECT ON TABLES TO qualytics_read_role;
         CREATE ROLE qualytics_readwrite_role LOGIN PASSWORD 'demo-write';
         GRANT CONNECT ON DATABASE shop TO qualytics_readwrite_role;
         GRANT USAGE, CREATE ON SCHEMA enrichment TO qualytics_readwrite_role;
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA enrichment TO qualytics_readwrite_role;
         ALTER DEFAULT PRIVILEGES IN SCHEMA enrichment GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO qualytics_readwrite_role;",
    )
    .await?;

    printer::line("3. Starting the Assay server");
    let serve_args = ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.join("server")),
        metadata_url: Some(cluster.superuser_url("assay")),
        ..ServeArgs::default()
    };
    let config = serve::Config::resolve(&serve_args).map_err(crate::usage::Usage::from)?;
    let running = serve::start(&config).await?;
    let (admin_password, token) = running
        .first_admin
        .clone()
        .context("a fresh metadata store creates the admin")?;
    let url = format!("http://{}", running.addr);
    printer::line(format!("   API at {url}/api"));
    let c = Client::new(&Config {
        url: format!("{url}/api"),
        token,
        ssl_verify: true,
    })?;
    let outcome = steps(&c, cluster.port, &shop).await;
    if args.keep && outcome.is_ok() {
        printer::line(format!(
            "\nThe server keeps running at {url}; open the web UI there and sign in as admin with password \
             {admin_password}. Press Ctrl-C to stop."
        ));
        let _ = tokio::signal::ctrl_c().await;
    }
    running.shutdown().await?;
    outcome
}

async fn steps(c: &Client, port: u16, shop: &tokio_postgres::Client) -> Result<crate::Outcome> {
    printer::line("4. Creating connections and datastores through the API");
    let reader = c
        .post(
            "/connections",
            &json!({"type": "postgresql", "name": "shop-reader", "host": "127.0.0.1", "port": port,
            "username": "qualytics_read_role", "password": "demo-read"}),
        )
        .await?;
    let source = c
        .post(
            "/datastores",
            &json!({"name": "Shop sales", "connection_id": reader["id"], "database": "shop",
            "schema": "sales", "teams": ["Public"], "trigger_sync": true}),
        )
        .await?;
    printer::line(format!(
        "   source datastore {} '{}' (a sync was queued)",
        source["id"],
        source["name"].as_str().unwrap_or("")
    ));
    let enrich = c
        .post("/datastores", &json!({"name": "Shop enrichment", "database": "shop", "schema": "enrichment",
            "enrichment_only": true, "trigger_sync": false,
            "connection": {"type": "postgresql", "name": "shop-writer", "host": "127.0.0.1", "port": port,
                           "username": "qualytics_readwrite_role", "password": "demo-write"}}))
        .await?;
    printer::line(format!(
        "   enrichment datastore {} '{}'",
        enrich["id"],
        enrich["name"].as_str().unwrap_or("")
    ));

    printer::line("5. Test Connection with the permission preflight");
    let sid = source["id"].as_i64().unwrap_or_default();
    let eid = enrich["id"].as_i64().unwrap_or_default();
    let t = c
        .post(&format!("/datastores/{sid}/connection"), &json!({}))
        .await?;
    report_test("   Source 'Shop sales'", &t);
    let t = c
        .post(&format!("/datastores/{eid}/connection"), &json!({}))
        .await?;
    report_test("   Enrichment 'Shop enrichment'", &t);
    let t = c
        .post(
            "/datastores/connection",
            &json!({"connection_id": reader["id"], "database": "shop", "schema": "enrichment",
            "enrichment_only": true}),
        )
        .await?;
    report_test(
        "   The read-only role as an enrichment store (expected to fail)",
        &t,
    );

    printer::line("6. Linking the enrichment datastore with prefix 'shop'");
    let linked = c
        .patch(
            &format!("/datastores/{sid}/enrichment/{eid}"),
            Some(&json!({"enrichment_prefix": "shop"})),
        )
        .await?;
    printer::line(format!(
        "   linked: prefix {}, enrichment on {} / {} / {}",
        linked["enrichment_prefix"].as_str().unwrap_or("-"),
        linked["enrich_datastore"]["host"].as_str().unwrap_or("-"),
        linked["enrich_datastore"]["database"]
            .as_str()
            .unwrap_or("-"),
        linked["enrich_datastore"]["schema"].as_str().unwrap_or("-"),
    ));

    printer::line("7. Waiting for the sync");
    let ops = c
        .get(
            "/operations",
            &[
                ("datastore", sid.to_string()),
                ("operation_type", "sync".into()),
            ],
        )
        .await?;
    let op_id = ops["items"][0]["id"]
        .as_i64()
        .context("the sync operation")?;
    let op = loop {
        let op = c.get(&format!("/operations/{op_id}"), &[]).await?;
        if !op["end_time"].is_null() {
            break op;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if op["result"] != "success" {
        bail!("the sync failed: {}", op["message"]);
    }
    printer::line(format!(
        "   sync {op_id}: {} containers, {} fields",
        op["status"]["containers_analyzed"], op["status"]["fields_synced"]
    ));

    printer::line("8. What Assay found in shop.sales");
    let containers = c
        .all("/containers", &[("datastore", sid.to_string())])
        .await?;
    for k in &containers {
        let kid = k["id"].as_i64().unwrap_or_default();
        let fields: Value = c.get(&format!("/containers/{kid}/fields"), &[]).await?;
        let cols: Vec<String> = fields
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        format!(
                            "{} {}",
                            f["name"].as_str().unwrap_or(""),
                            f["type"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        printer::line(format!(
            "   {} {} (~{} rows, key [{}], incremental: {})",
            k["table_type"].as_str().unwrap_or(""),
            k["name"].as_str().unwrap_or(""),
            k["row_estimate"]
                .as_i64()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
            k["primary_key"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
            k["incremental_field_name"]
                .as_str()
                .unwrap_or(k["incremental_identifier_type"].as_str().unwrap_or("none")),
        ));
        printer::line(format!("      {}", cols.join(", ")));
    }
    printer::line("9. Profiling every table and inferring checks (ai_effort: high)");
    let op = c
        .post(
            "/operations/run",
            &json!({"datastore_id": sid, "type": "profile", "ai_effort": "high"}),
        )
        .await?;
    let pid = op["id"].as_i64().context("the profile operation")?;
    let op = loop {
        let op = c.get(&format!("/operations/{pid}"), &[]).await?;
        if !op["end_time"].is_null() {
            break op;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if op["result"] != "success" {
        bail!("the profile failed: {}", op["message"]);
    }
    printer::line(format!(
        "   profile {pid}: {} rows read, {} fields profiled, {} checks inferred",
        op["status"]["records_processed"],
        op["status"]["fields_profiled"],
        op["status"]["checks_synchronized"]
    ));
    for name in ["customers", "orders"] {
        let Some(k) = containers.iter().find(|k| k["name"] == name) else {
            continue;
        };
        let kid = k["id"].as_i64().unwrap_or_default();
        let profiles = c
            .get(&format!("/containers/{kid}/field-profiles"), &[])
            .await?;
        printer::line(format!("   {name}:"));
        for f in profiles["items"].as_array().cloned().unwrap_or_default() {
            let mut facts = vec![
                format!(
                    "{:.1}% filled",
                    f["completeness"].as_f64().unwrap_or(0.0) * 100.0
                ),
                format!("~{} distinct", f["approximate_distinct_values"]),
            ];
            if !f["min"].is_null() {
                facts.push(format!("{} .. {}", f["min"], f["max"]));
            }
            if let Some(n) = f["negatives"].as_u64().filter(|n| *n > 0) {
                facts.push(format!("{n} negative"));
            }
            if let Some(e) = f["type_inference"]["email"].as_f64().filter(|e| *e > 0.0) {
                facts.push(format!("{:.1}% look like e-mail addresses", e * 100.0));
            }
            printer::line(format!(
                "      {:<12} {}",
                f["name"].as_str().unwrap_or(""),
                facts.join(", ")
            ));
        }
    }
    let checks = c
        .all("/quality-checks", &[("datastore", sid.to_string())])
        .await?;
    let mut by_rule: std::collections::BTreeMap<String, usize> = Default::default();
    for k in &checks {
        *by_rule
            .entry(k["rule_type"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    let summary: Vec<String> = by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
    printer::line(format!(
        "   inferred checks: {} ({})",
        checks.len(),
        summary.join(", ")
    ));
    let orders = containers
        .iter()
        .find(|k| k["name"] == "orders")
        .and_then(|k| k["id"].as_i64())
        .context("the orders table")?;
    printer::line("10. Adding an authored check: an order is never updated before it was placed");
    let authored = c
        .post(
            "/quality-checks",
            &json!({"container_id": orders, "rule": "satisfiesExpression", "fields": [],
                    "description": "updated_at is not before placed_at",
                    "properties": {"expression": "updated_at >= placed_at"}}),
        )
        .await?;
    printer::line(format!("   check {} created", authored["id"]));
    printer::line("11. A new batch of orders arrives with problems, then a full scan");
    shop.batch_execute(
        "INSERT INTO sales.orders (customer_id, status, total, placed_at, updated_at) VALUES
           (1, 'lost', 25.00, now() - interval '1 hour', now()),
           (2, 'paid', 99999.00, now() - interval '1 hour', now()),
           (NULL, 'paid', 30.00, now() - interval '1 hour', now()),
           (3, 'paid', 40.00, now() + interval '30 days', now() + interval '31 days'),
           (4, 'shipped', 50.00, now() - interval '1 hour', now() - interval '2 days')",
    )
    .await
    .context("adding the sample batch")?;
    let op = c
        .post(
            "/operations/run",
            &json!({"datastore_id": sid, "type": "scan", "incremental": false}),
        )
        .await?;
    let scan_id = op["id"].as_i64().context("the scan operation")?;
    let op = loop {
        let op = c.get(&format!("/operations/{scan_id}"), &[]).await?;
        if !op["end_time"].is_null() {
            break op;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if op["result"] != "success" {
        bail!("the scan failed: {}", op["message"]);
    }
    printer::line(format!(
        "   scan {scan_id}: {} rows scanned, {} anomalies identified",
        op["status"]["records_processed"], op["status"]["anomalies_identified"]
    ));
    let anomalies = c
        .all("/anomalies", &[("datastore", sid.to_string())])
        .await?;
    for a in &anomalies {
        let rules: Vec<&str> = a["failed_checks"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|x| x["quality_check"]["rule_type"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        printer::line(format!(
            "   #{:<4} {:<6} {:<10} [{}] {}",
            a["id"],
            a["type"].as_str().unwrap_or(""),
            a["container"]["name"].as_str().unwrap_or(""),
            rules.join(", "),
            a["message"].as_str().unwrap_or("")
        ));
    }
    printer::line(format!(
        "\nDemo finished: {} containers synced, profiled and scanned; {} checks; {} open anomalies.",
        containers.len(),
        checks.len() + 1,
        anomalies.len()
    ));
    Ok(crate::Outcome::Ok)
}
