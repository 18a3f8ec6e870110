//! `assay-bench detect`: whether inferred checks catch real defects and stay quiet on healthy growth.
//!
//! Twin `orders` tables (a dense integer key, a unique `PR-000000000` reference without a constraint, e-mail
//! addresses that repeat, five statuses, quantities 1–20, log-normal amounts, an insertion timestamp, optional
//! notes of varying length) are generated deterministically, synced and profiled once at the default inference
//! level. Then every table grows through `rounds` clean rounds (10 % more rows, and updates that ship pending
//! orders), each followed by a full scan: every anomaly there is a false alarm. Last, each defect table gets one
//! more clean batch in which a few rows carry its planted defect, and a scan: the defect is detected when the
//! check of the expected rule on the expected field fails. It prints recall per defect kind and false anomalies
//! per clean round. Volume and freshness defects (missing, half or doubled loads, a table that stops changing)
//! need the observability series and are not planted here.

use super::load::{Http, conninfo, start_server};
use anyhow::{Context, Result, bail};
use assay_postgres::ident::{qualified, quote_ident};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A planted defect: its name, the statement that plants it into rows with ids above `$1` (the table named by
/// `{t}`), and the rule and field expected to catch it.
struct Defect {
    name: &'static str,
    plant: &'static str,
    rule: &'static str,
    field: &'static str,
}

const DEFECTS: &[Defect] = &[
    Defect {
        name: "nulls in a complete column",
        plant: "UPDATE {t} SET customer_email = NULL WHERE id IN (SELECT id FROM {t} WHERE id > $1 ORDER BY id LIMIT 3)",
        rule: "notNull",
        field: "customer_email",
    },
    Defect {
        name: "negative amounts",
        plant: "UPDATE {t} SET amount = -amount WHERE id IN (SELECT id FROM {t} WHERE id > $1 ORDER BY id LIMIT 3)",
        rule: "notNegative",
        field: "amount",
    },
    Defect {
        name: "quantity out of range",
        plant: "UPDATE {t} SET quantity = 500 WHERE id IN (SELECT id FROM {t} WHERE id > $1 ORDER BY id LIMIT 2)",
        rule: "between",
        field: "quantity",
    },
    Defect {
        name: "outlier amount",
        plant: "UPDATE {t} SET amount = 9999999.99 WHERE id = (SELECT min(id) FROM {t} WHERE id > $1)",
        rule: "between",
        field: "amount",
    },
    Defect {
        name: "malformed reference",
        plant: "UPDATE {t} SET order_ref = 'PR-' || id || 'X' WHERE id IN (SELECT id FROM {t} WHERE id > $1 ORDER BY id LIMIT 2)",
        rule: "matchesPattern",
        field: "order_ref",
    },
    Defect {
        name: "unknown status",
        plant: "UPDATE {t} SET status = 'lost' WHERE id IN (SELECT id FROM {t} WHERE id > $1 ORDER BY id LIMIT 2)",
        rule: "expectedValues",
        field: "status",
    },
    Defect {
        name: "duplicate natural key",
        plant: "UPDATE {t} SET order_ref = (SELECT order_ref FROM {t} WHERE id = 1) WHERE id = (SELECT min(id) FROM {t} WHERE id > $1)",
        rule: "unique",
        field: "order_ref",
    },
    Defect {
        name: "future dates",
        plant: "UPDATE {t} SET created_at = now() + interval '30 days' WHERE id = (SELECT max(id) FROM {t} WHERE id > $1)",
        rule: "notFuture",
        field: "created_at",
    },
    Defect {
        name: "note too long",
        plant: "UPDATE {t} SET note = repeat('z', 400) WHERE id = (SELECT min(id) FROM {t} WHERE id > $1)",
        rule: "maxLength",
        field: "note",
    },
];

/// Trials of each defect (a table each, with its own seed).
const TRIALS: usize = 2;

/// Appends rows `from..=to` of `table` (seeded by `salt`): deterministic, from hashes of the row number.
async fn append(
    db: &tokio_postgres::Client,
    table: &str,
    salt: &str,
    start: &str,
    from: i64,
    to: i64,
) -> Result<()> {
    let t = qualified("shop", table);
    let h = |tag: &str| format!("abs(hashtext(i::text || $3 || '{tag}'))");
    let sql = format!(
        "INSERT INTO {t} (id, order_ref, customer_email, status, quantity, amount, created_at, note) \
         SELECT i, 'PR-' || lpad(((i * 7919) % 1000000000)::text, 9, '0'), \
                'c' || ({e} % 5000) || '@example.com', \
                (ARRAY['pending','paid','shipped','delivered','returned'])[1 + {s} % 5], \
                1 + {q} % 20, \
                round(exp(3 + 0.8 * sqrt(-2 * ln(({u}::float8 + 1) / 2147483649.0)) \
                                   * cos(2 * pi() * {v}::float8 / 2147483648.0))::numeric, 2), \
                $4::text::timestamptz + i * interval '1 minute', \
                CASE WHEN {n} % 10 = 0 THEN NULL ELSE 'note ' || repeat('ab', {l} % 28) END \
         FROM generate_series($1::int8, $2::int8) i",
        e = h("e"),
        s = h("s"),
        q = h("q"),
        u = h("u"),
        v = h("v"),
        n = h("n"),
        l = h("l"),
    );
    db.execute(&sql, &[&from, &to, &salt, &start]).await?;
    Ok(())
}

/// Runs an operation over the datastore and waits for its end; returns it.
async fn operation(http: &Http, body: Value) -> Result<Value> {
    let op = http.post("/api/operations/run", body).await?;
    let id = op["id"].as_i64().context("operation id")?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let op = http.get_ok(&format!("/api/operations/{id}")).await?;
        if !op["end_time"].is_null() {
            if op["result"] != "success" {
                bail!("operation {id} ended {}: {}", op["result"], op["message"]);
            }
            return Ok(op);
        }
        if Instant::now() > deadline {
            bail!("operation {id} did not end in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The failing checks of a container (rule and field).
async fn failing(http: &Http, container: i64) -> Result<Vec<(String, String)>> {
    let list = http
        .get_ok(&format!(
            "/api/quality-checks?container={container}&size=500"
        ))
        .await?;
    Ok(list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|c| c["is_passing"] == false)
        .map(|c| {
            (
                c["rule_type"].as_str().unwrap_or_default().to_string(),
                c["fields"][0]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect())
}

pub async fn run(url: &str, base: i64, rounds: usize) -> Result<()> {
    let su = super::client(url).await?;
    let (meta, src) = (
        format!("assay_detect_meta_{}", std::process::id()),
        format!("assay_detect_src_{}", std::process::id()),
    );
    for db in [&meta, &src] {
        su.batch_execute(&format!("CREATE DATABASE {}", quote_ident(db)))
            .await?;
    }
    let result = measure(url, &meta, &src, base, rounds).await;
    for db in [&meta, &src] {
        let _ = su
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(db)
            ))
            .await;
    }
    println!("{}", serde_json::to_string_pretty(&result?)?);
    Ok(())
}

async fn measure(url: &str, meta: &str, src: &str, base: i64, rounds: usize) -> Result<Value> {
    let db = super::client(&conninfo(url, src)?).await?;
    db.batch_execute("CREATE SCHEMA shop").await?;
    // every table's rows are one minute apart from this start, so the last round's rows are still in the past
    let total = base + base / 10 * (rounds as i64 + 1);
    let start: String = db
        .query_one(
            "SELECT (now() - $1::int8 * interval '1 minute' - interval '1 day')::text",
            &[&total],
        )
        .await?
        .get(0);
    let mut tables: Vec<(String, Option<&Defect>)> = vec![("orders_clean".into(), None)];
    for d in DEFECTS {
        for t in 0..TRIALS {
            let slug: String = d
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            tables.push((format!("orders_{slug}_{t}"), Some(d)));
        }
    }
    for (t, _) in &tables {
        db.batch_execute(&format!(
            "CREATE TABLE {} (id int8 PRIMARY KEY, order_ref text NOT NULL, customer_email text, \
             status text NOT NULL, quantity int4 NOT NULL, amount numeric(12,2) NOT NULL, \
             created_at timestamptz NOT NULL, note text)",
            qualified("shop", t)
        ))
        .await?;
        append(&db, t, t, &start, 1, base).await?;
    }
    db.batch_execute("ANALYZE").await?;

    let server = start_server(&conninfo(url, meta)?).await?;
    let http = &server.http;
    let p = super::params_of(url)?;
    let conn = http
        .post(
            "/api/connections",
            json!({"type": "postgresql", "name": "detect", "host": p.host, "port": p.port,
                   "username": p.user, "password": p.password}),
        )
        .await?;
    let ds = http
        .post(
            "/api/datastores",
            json!({"name": "detect", "connection_id": conn["id"], "database": src, "schema": "shop",
                   "trigger_sync": false}),
        )
        .await?;
    let ds = ds["id"].as_i64().context("datastore id")?;
    operation(http, json!({"datastore_id": ds, "type": "sync"})).await?;
    let profile = operation(http, json!({"datastore_id": ds, "type": "profile"})).await?;
    let listing = http
        .get_ok(&format!("/api/containers/listing?datastore={ds}"))
        .await?;
    let id_of = |name: &str| -> Result<i64> {
        listing
            .as_array()
            .and_then(|l| l.iter().find(|c| c["name"] == name))
            .and_then(|c| c["id"].as_i64())
            .with_context(|| format!("container {name}"))
    };
    let checks = http
        .get_ok(&format!(
            "/api/quality-checks?container={}&size=500",
            id_of("orders_clean")?
        ))
        .await?;
    let inferred: Vec<String> = checks["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            format!(
                "{}({})",
                c["rule_type"].as_str().unwrap_or_default(),
                c["fields"]
                    .as_array()
                    .map(|f| {
                        f.iter()
                            .filter_map(|x| x["name"].as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            )
        })
        .collect();

    // clean rounds: every table grows; every anomaly is a false alarm
    let step = base / 10;
    let mut next = base + 1;
    let mut false_per_round = Vec::new();
    let mut false_checks: Vec<String> = Vec::new();
    for round in 0..rounds {
        for (t, _) in &tables {
            append(&db, t, t, &start, next, next + step - 1).await?;
            db.execute(
                &format!(
                    "UPDATE {} SET status = 'shipped' WHERE status = 'pending' AND id % 10 = $1",
                    qualified("shop", t)
                ),
                &[&(round as i64 % 10)],
            )
            .await?;
        }
        next += step;
        let scan = operation(http, json!({"datastore_id": ds, "type": "scan"})).await?;
        false_per_round.push(scan["status"]["anomalies_identified"].as_i64().unwrap_or(0));
        for (t, _) in &tables {
            for (rule, field) in failing(http, id_of(t)?).await? {
                let what = format!("round {}: {t}: {rule}({field})", round + 1);
                if !false_checks.contains(&what) {
                    false_checks.push(what);
                }
            }
        }
    }

    // the planted defects, each in one more batch of clean rows
    for (t, d) in &tables {
        append(&db, t, t, &start, next, next + step - 1).await?;
        if let Some(d) = d {
            db.execute(
                &d.plant.replace("{t}", &qualified("shop", t)),
                &[&(next - 1)],
            )
            .await?;
        }
    }
    operation(http, json!({"datastore_id": ds, "type": "scan"})).await?;
    let mut kinds = Vec::new();
    for d in DEFECTS {
        let mut detected = 0;
        for (t, _) in tables
            .iter()
            .filter(|(_, x)| x.is_some_and(|x| x.name == d.name))
        {
            let fails = failing(http, id_of(t)?).await?;
            if fails.iter().any(|(r, f)| r == d.rule && f == d.field) {
                detected += 1;
            }
        }
        kinds.push(json!({
            "defect": d.name, "caught_by": format!("{}({})", d.rule, d.field),
            "trials": TRIALS, "detected": detected,
            "recall": format!("{:.0} %", 100.0 * detected as f64 / TRIALS as f64),
        }));
    }
    let clean_after = failing(http, id_of("orders_clean")?).await?;
    Ok(json!({
        "tables": tables.len(),
        "rows_at_profile": base,
        "rows_appended_per_round": step,
        "profile_dropped_candidates": profile["status"]["containers"]
            .as_array()
            .map(|cs| cs.iter().map(|c| c["checks_dropped"].as_array().map_or(0, Vec::len)).sum::<usize>()),
        "inferred_checks_per_table": inferred,
        "clean_rounds": rounds,
        "false_anomalies_per_clean_round": false_per_round,
        "checks_failing_on_clean_data": false_checks,
        "clean_twin_after_the_defect_round": clean_after.iter().map(|(r, f)| format!("{r}({f})")).collect::<Vec<_>>(),
        "recall": kinds,
    }))
}
