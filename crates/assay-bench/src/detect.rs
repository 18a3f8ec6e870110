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
//! are judged on generated daily histories with the functions the `measure` operation runs
//! ([`series_evaluation`]): 56 days a table, so weeks of history need no waiting.

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
        "volume_and_freshness": series_evaluation(200),
    }))
}

/// A day's load from the day's index and its usual load.
type Load = dyn Fn(i64, i64) -> i64;

/// A deterministic generator (an LCG; the evaluation must print the same figures on every run).
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Volume and freshness judgement over generated daily histories (the same functions the `measure` operation
/// runs): `trials` tables of 56 days, each with its own size, ±15 % daily noise, a slow trend, and for half of
/// them quiet weekends. Every day after the first week of each clean history is judged (false alarms); then the
/// last day of each is replaced by a missing, half or doubled load, or the loads stop for three days (recall).
pub fn series_evaluation(trials: u64) -> Value {
    use assay_core::observability::{self as judge, Measurement, Verdict};
    use chrono::{TimeDelta, TimeZone, Utc};
    let start = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
    let history = |seed: u64, last: &Load| -> Vec<Measurement> {
        let mut r = Lcg(seed.wrapping_mul(7919) + 1);
        let base = 500.0 + r.unit() * 4500.0;
        let weekends = seed.is_multiple_of(2);
        let mut count = 100_000i64;
        let mut changed = start;
        (0..56)
            .map(|d| {
                let weekday = d % 7;
                let season = if weekends && weekday >= 5 { 0.2 } else { 1.0 };
                let usual =
                    (base * season * (1.0 + 0.005 * d as f64) * (0.85 + 0.3 * r.unit())) as i64;
                let load = last(d, usual);
                count += load;
                if load > 0 {
                    changed = start + TimeDelta::days(d) + TimeDelta::hours(18);
                }
                Measurement {
                    at: start + TimeDelta::days(d) + TimeDelta::hours(23),
                    row_count: Some(count),
                    last_modified: Some(changed),
                }
            })
            .collect()
    };
    let anomalous = |v: &Verdict| matches!(v, Verdict::Anomalous(_));
    let (mut clean_days, mut false_volume, mut false_freshness) = (0u64, 0u64, 0u64);
    for t in 0..trials {
        let s = history(t, &|_, usual| usual);
        for end in 8..s.len() {
            let seen = &s[..end];
            let today = seen[end - 1].at.date_naive() + TimeDelta::days(1);
            clean_days += 1;
            false_volume += u64::from(anomalous(&judge::judge_volume(seen, today).0));
            false_freshness +=
                u64::from(anomalous(&judge::judge_freshness(seen, seen[end - 1].at).0));
        }
    }
    let kinds: [(&str, &Load); 4] = [
        ("missing daily load", &|d, u| if d == 55 { 0 } else { u }),
        ("half daily load", &|d, u| if d == 55 { u / 2 } else { u }),
        ("doubled daily load", &|d, u| {
            if d == 55 { u * 2 } else { u }
        }),
        ("table stops changing", &|d, u| if d >= 53 { 0 } else { u }),
    ];
    let recall: Vec<Value> = kinds
        .iter()
        .map(|(name, f)| {
            let mut detected = 0u64;
            for t in 0..trials {
                let s = history(t, f);
                let last = s[s.len() - 1].at;
                let hit = if name.contains("stops") {
                    anomalous(&judge::judge_freshness(&s, last).0)
                } else {
                    anomalous(&judge::judge_volume(&s, last.date_naive() + TimeDelta::days(1)).0)
                };
                detected += u64::from(hit);
            }
            json!({"defect": name, "trials": trials, "detected": detected,
                   "recall": format!("{:.1} %", 100.0 * detected as f64 / trials as f64)})
        })
        .collect();
    json!({
        "histories": trials,
        "clean_days_judged": clean_days,
        "false_volume_anomalies": false_volume,
        "false_freshness_anomalies": false_freshness,
        "recall": recall,
    })
}
