//! `assay-bench`: the profiling benchmark. It makes a deterministic 16-column `orders` table, then measures,
//! interleaved in the same run, PostgreSQL's own limit (`COPY ... TO STDOUT (FORMAT binary)` over the same
//! number of connections and page ranges Assay uses) and Assay's full profile; then an incremental profile
//! after appending 1 % of rows; the accuracy of distinct counts and quantiles against exact SQL; and the
//! process's peak RSS. `once` profiles one table once, for external harnesses. `scan` and `scan-once` do the
//! same for the scan engine (see `scan.rs`). `detect` measures inferred checks against planted defects and clean
//! growth (see `detect.rs`).

mod detect;
mod fold;
mod load;
mod notify;
mod scan;

use anyhow::{Context, Result};
use assay_engine::profile::finalize;
use assay_postgres::ConnectParams;
use assay_postgres::profile::{Column, Progress, ReadPlan, Rows};
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate (unless present), then measure COPY binary vs Assay's profile
    Profile {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long, default_value_t = 2)]
        parallel: usize,
        /// An existing server (postgresql://...); default: a throwaway cluster
        #[arg(long)]
        url: Option<String>,
        /// Keep the throwaway cluster's directory
        #[arg(long)]
        keep: bool,
    },
    /// Generate (unless present), then measure COPY binary vs Assay's scan with ten checks, and an
    /// incremental scan after appending 1 % of rows
    Scan {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        keep: bool,
    },
    /// Scan the reference benchmark's `orders` table once with the ten checks and print the elapsed seconds
    ScanOnce {
        #[arg(long)]
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        db: String,
        #[arg(long, default_value = "postgres")]
        user: String,
        #[arg(long, env = "PGPASSWORD", default_value = "")]
        password: String,
    },
    /// Replay a recorded COPY-binary stream of the generator's `orders` through the profile states (client
    /// CPU only, no PostgreSQL)
    Fold {
        #[arg(long)]
        file: String,
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Concurrent API clients against an in-process server while scans run, then a large catalog's list pages
    Load {
        #[arg(long, default_value_t = 50)]
        clients: usize,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        /// Datastores of the large catalog (0: skip it)
        #[arg(long, default_value_t = 200)]
        datastores: usize,
        #[arg(long, default_value_t = 50)]
        tables: usize,
        /// Timed requests per list page
        #[arg(long, default_value_t = 50)]
        page_reps: usize,
        /// Pause of each client between requests (0: back to back)
        #[arg(long, default_value_t = 0)]
        think_ms: u64,
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        keep: bool,
    },
    /// Inferred checks against planted defects and clean growth: recall per defect kind, false anomalies per
    /// clean round
    Detect {
        /// Rows of each table when it is profiled (each clean round appends a tenth of that)
        #[arg(long, default_value_t = 20_000)]
        rows: i64,
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// An existing server (postgresql://...); default: a throwaway cluster
        #[arg(long)]
        url: Option<String>,
        /// Keep the throwaway cluster's directory
        #[arg(long)]
        keep: bool,
    },
    /// The flows dispatcher's throughput: operations ended at once, a signed webhook each, to a local receiver
    Notify {
        #[arg(long, default_value_t = 1000)]
        deliveries: usize,
        /// An existing server (postgresql://...); default: a throwaway cluster
        #[arg(long)]
        url: Option<String>,
        /// Keep the throwaway cluster's directory
        #[arg(long)]
        keep: bool,
    },
    /// Profile one table once and print the elapsed seconds (for external harnesses)
    Once {
        #[arg(long)]
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        db: String,
        #[arg(long, default_value = "postgres")]
        user: String,
        #[arg(long, env = "PGPASSWORD", default_value = "")]
        password: String,
        #[arg(long, default_value = "public")]
        schema: String,
        #[arg(long, default_value = "orders")]
        table: String,
        #[arg(long, default_value_t = 2)]
        parallel: usize,
    },
}

/// The generator: deterministic (no random(): hashes of the row number), 16 mixed columns with nulls,
/// negatives, ~1 % malformed e-mail addresses, a 6-value status, booleans, UUIDs and JSON text. `created_at`,
/// the incremental field, is indexed as such fields usually are.
fn generator(table: &str) -> String {
    format!(
        "DROP TABLE IF EXISTS {table};
CREATE TABLE {table} (
  id bigint NOT NULL, customer_id integer, status text, created_at timestamp NOT NULL, updated_at timestamptz,
  ship_date date, quantity integer, unit_price double precision, discount_pct numeric(5,2), amount numeric(12,2),
  email text, country text, is_gift boolean, order_uuid uuid, note text, attributes text);
INSERT INTO {table}
SELECT i,
  CASE WHEN h1 % 50 = 0 THEN NULL ELSE 1 + (h2 % 500000)::int END,
  (ARRAY['pending','paid','shipped','delivered','cancelled','returned'])[1 + (h3 % 6)::int],
  timestamp '2021-01-01' + i * interval '15 seconds',
  CASE WHEN h4 % 10 = 0 THEN NULL ELSE timestamptz '2021-01-01' + i * interval '15 seconds' + (h4 % 86400) * interval '1 second' END,
  CASE WHEN h5 % 20 = 0 THEN NULL ELSE date '2021-01-02' + (i / 5760)::int END,
  CASE WHEN h6 % 100 = 0 THEN NULL WHEN h6 % 1000 = 1 THEN -1 ELSE 1 + (h6 % 9)::int END,
  3 + (h7 % 39700) / 100.0,
  CASE WHEN h8 % 10 < 6 THEN 0 ELSE round((h8 % 4000) / 100.0, 2) END,
  CASE WHEN h9 % 33 = 0 THEN NULL WHEN h9 % 200 = 1 THEN -round((h9 % 50000) / 100.0, 2) ELSE round((h9 % 50000) / 100.0, 2) END,
  CASE WHEN h10 % 100 = 0 THEN 'user' || i || 'example.com' ELSE 'user' || (h2 % 500000) || '@example.com' END,
  (ARRAY['US','DE','FR','GB','NL','ES','IT','PL','SE','CA','BR','JP','IN','AU'])[1 + (h11 % 14)::int],
  CASE WHEN h12 % 20 = 0 THEN NULL ELSE h12 % 10 = 1 END,
  md5(i::text)::uuid,
  CASE WHEN h13 % 5 < 2 THEN NULL ELSE repeat('note ', 1 + (h13 % 40)::int) END,
  '{{\"channel\":\"' || (ARRAY['web','ios','android','store','phone'])[1 + (h14 % 5)::int] || '\",\"items\":' || (h14 % 9) || '}}'
FROM (SELECT i, h, h % 1000003 AS h1, (h / 7) % 1000003 AS h2, (h / 11) % 1000003 AS h3, (h / 13) % 1000003 AS h4,
             (h / 17) % 1000003 AS h5, (h / 19) % 1000003 AS h6, (h / 23) % 1000003 AS h7, (h / 29) % 1000003 AS h8,
             (h / 31) % 1000003 AS h9, (h / 37) % 1000003 AS h10, (h / 41) % 1000003 AS h11, (h / 43) % 1000003 AS h12,
             (h / 47) % 1000003 AS h13, (h / 53) % 1000003 AS h14
      FROM (SELECT i, abs(hashint8(i))::int8 AS h FROM generate_series(1, $1::int8) i) s) t;
ALTER TABLE {table} ADD PRIMARY KEY (id);
CREATE INDEX ON {table} (created_at);
ANALYZE {table};"
    )
}

async fn client(url: &str) -> Result<tokio_postgres::Client> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(c)
}

fn params_of(url: &str) -> Result<ConnectParams> {
    let cfg: tokio_postgres::Config = url.parse()?;
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    Ok(ConnectParams {
        host,
        port: cfg.get_ports().first().copied().unwrap_or(5432),
        user: cfg.get_user().unwrap_or("postgres").to_string(),
        password: cfg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        database: cfg.get_dbname().unwrap_or("postgres").to_string(),
        sslmode: "disable".into(),
        sslrootcert: None,
        connect_timeout: Duration::from_secs(10),
        application_name: "assay-bench".into(),
    })
}

async fn columns(c: &tokio_postgres::Client, schema: &str, table: &str) -> Result<Vec<Column>> {
    let rows = c
        .query(
            "SELECT a.attname::text, t.typname::text, t.typcategory::text FROM pg_attribute a \
             JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            typname: r.get(1),
            typcategory: r.get(2),
        })
        .collect())
}

fn plan(schema: &str, table: &str, cols: Vec<Column>, parallel: usize, rows: Rows) -> ReadPlan {
    let incremental = rows != Rows::All;
    ReadPlan {
        schema: schema.into(),
        table: table.into(),
        columns: cols,
        rows,
        parallelism: if incremental { 1 } else { parallel },
        limit_per_partition: None,
        has_ctid: !incremental,
        relation: None,
        holdout: false,
    }
}

/// PostgreSQL's limit: the same page ranges, COPY binary, bytes counted and dropped.
async fn copy_limit(params: &ConnectParams, p: &ReadPlan) -> Result<(f64, u64)> {
    let c0 = params.connect().await?;
    let pages: i64 = c0
        .query_one(
            "SELECT pg_relation_size($1::text::regclass) / current_setting('block_size')::int8",
            &[&assay_postgres::ident::qualified(&p.schema, &p.table)],
        )
        .await?
        .get(0);
    let parts = p.parallelism.max(1).min(pages.max(1) as usize);
    let step = (pages as u64).div_ceil(parts as u64);
    let mut clients = vec![c0];
    while clients.len() < parts {
        clients.push(params.connect().await?);
    }
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let from = i as u64 * step;
        let range = if parts == 1 {
            None
        } else {
            Some((
                from,
                if i + 1 == parts {
                    None
                } else {
                    Some(from + step)
                },
            ))
        };
        let sql = assay_postgres::profile::copy_sql(p, range);
        tasks.push(tokio::spawn(async move {
            let stream = c.copy_out(sql.as_str()).await?;
            futures_util::pin_mut!(stream);
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                n += chunk?.len() as u64;
            }
            Ok::<u64, tokio_postgres::Error>(n)
        }));
    }
    let mut bytes = 0;
    for t in tasks {
        bytes += t.await??;
    }
    Ok((t0.elapsed().as_secs_f64(), bytes))
}

async fn assay_profile(
    params: &ConnectParams,
    p: &ReadPlan,
) -> Result<(f64, assay_postgres::profile::ReadResult)> {
    let t0 = Instant::now();
    let read = assay_postgres::profile::read(params, p, Arc::new(Progress::default())).await?;
    for ((c, st), cast) in p.columns.iter().zip(&read.states).zip(&read.casts) {
        let _ = finalize(&c.name, &c.typname, st, cast.as_deref());
    }
    Ok((t0.elapsed().as_secs_f64(), read))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// CPU seconds (user + system, all threads) this process has used, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // the fields after the parenthesised command name; utime and stime are the 14th and 15th
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let ticks = rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Makes `public.orders` with `n` rows unless it is there already.
async fn ensure_orders(su: &tokio_postgres::Client, n: i64) -> Result<()> {
    let exists: bool = su
        .query_one("SELECT to_regclass('public.orders') IS NOT NULL", &[])
        .await?
        .get(0);
    let have: i64 = if exists {
        su.query_one("SELECT count(*) FROM public.orders", &[])
            .await?
            .get(0)
    } else {
        -1
    };
    if have != n {
        eprintln!("generating public.orders with {n} rows");
        let t0 = Instant::now();
        su.batch_execute(&generator("public.orders").replace("$1::int8", &n.to_string()))
            .await?;
        eprintln!("generated in {:.1} s", t0.elapsed().as_secs_f64());
    }
    Ok(())
}

async fn bench(url: &str, n: i64, reps: usize, parallel: usize) -> Result<()> {
    let su = client(url).await?;
    ensure_orders(&su, n).await?;
    su.batch_execute("VACUUM ANALYZE public.orders").await?;
    let params = params_of(url)?;
    let cols = columns(&su, "public", "orders").await?;
    let full = plan("public", "orders", cols.clone(), parallel, Rows::All);
    // warm the cache once
    copy_limit(&params, &full).await?;
    let (mut copy_t, mut prof_t) = (Vec::new(), Vec::new());
    let (mut copy_cpu, mut prof_cpu) = (Vec::new(), Vec::new());
    let mut last = None;
    let mut copy_bytes = 0;
    for _ in 0..reps {
        let c0 = cpu_seconds();
        let (t, b) = copy_limit(&params, &full).await?;
        copy_t.push(t);
        copy_cpu.push(cpu_seconds() - c0);
        copy_bytes = b;
        let c0 = cpu_seconds();
        let (t, r) = assay_profile(&params, &full).await?;
        prof_t.push(t);
        prof_cpu.push(cpu_seconds() - c0);
        last = Some(r);
    }
    let read = last.context("at least one repetition")?;
    let (copy_med, prof_med) = (median(copy_t.clone()), median(prof_t.clone()));

    // accuracy against exact SQL
    let mut distinct_err: Vec<(String, f64)> = Vec::new();
    let mut rank_err: Vec<(String, f64)> = Vec::new();
    for (c, st) in cols.iter().zip(&read.states) {
        let q = assay_postgres::ident::quote_ident(&c.name);
        let exact: i64 = su
            .query_one(
                &format!("SELECT count(DISTINCT {q}) FROM public.orders"),
                &[],
            )
            .await?
            .get(0);
        if exact > 0 {
            distinct_err.push((
                c.name.clone(),
                (st.distinct_estimate() - exact as f64).abs() / exact as f64,
            ));
        }
        if matches!(c.typname.as_str(), "int4" | "int8" | "float8" | "numeric") {
            let mut worst: f64 = 0.0;
            for p in [0.01, 0.25, 0.5, 0.75, 0.99] {
                if let Some(v) = st.quantile(p) {
                    // with ties a value covers a range of ranks: [share below it, share at or below it]
                    let row = su
                        .query_one(
                            &format!(
                                "SELECT (count(*) FILTER (WHERE {q}::float8 < $1))::float8 / count({q}), \
                                        (count(*) FILTER (WHERE {q}::float8 <= $1))::float8 / count({q}) FROM public.orders"
                            ),
                            &[&v],
                        )
                        .await?;
                    let (lo, hi): (f64, f64) = (row.get(0), row.get(1));
                    let err = if p < lo {
                        lo - p
                    } else if p > hi {
                        p - hi
                    } else {
                        0.0
                    };
                    worst = worst.max(err);
                }
            }
            rank_err.push((c.name.clone(), worst));
        }
    }

    // incremental: append 1 % and read only the new rows
    let wm: String = su
        .query_one("SELECT max(created_at)::text FROM public.orders", &[])
        .await?
        .get(0);
    let add = (n / 100).max(1);
    su.batch_execute(&format!(
        "INSERT INTO public.orders SELECT id + {n}, customer_id, status, created_at + interval '5 years', updated_at, ship_date, \
         quantity, unit_price, discount_pct, amount, email, country, is_gift, order_uuid, note, attributes \
         FROM public.orders WHERE id <= {add}"
    ))
    .await?;
    let inc = plan(
        "public",
        "orders",
        cols.clone(),
        parallel,
        Rows::After {
            column: "created_at".into(),
            sql_type: "timestamp without time zone".into(),
            watermark: wm,
        },
    );
    let t0 = Instant::now();
    let inc_read =
        assay_postgres::profile::read(&params, &inc, Arc::new(Progress::default())).await?;
    let mut merged: Vec<_> = read
        .states
        .iter()
        .map(|s| assay_engine::state::FieldState::from_bytes(&s.to_bytes()))
        .collect::<std::result::Result<_, _>>()?;
    for (a, b) in merged.iter_mut().zip(&inc_read.states) {
        a.merge(b);
    }
    let inc_t = t0.elapsed().as_secs_f64();
    su.batch_execute(&format!("DELETE FROM public.orders WHERE id > {n}"))
        .await?;
    su.batch_execute("VACUUM public.orders").await?;

    let report = json!({
        "rows": n,
        "parallel_connections": parallel,
        "reps": reps,
        "copy_binary_s": copy_t,
        "assay_profile_s": prof_t,
        "copy_binary_median_s": copy_med,
        "assay_profile_median_s": prof_med,
        "ratio_profile_to_copy": prof_med / copy_med,
        // the client's own CPU seconds per repetition (PostgreSQL's backends are not counted)
        "copy_client_cpu_s": copy_cpu,
        "assay_client_cpu_s": prof_cpu,
        "copy_bytes": copy_bytes,
        "incremental_rows": inc_read.rows,
        "incremental_s": inc_t,
        "ratio_incremental_to_full": inc_t / prof_med,
        "distinct_relative_error": distinct_err,
        "max_distinct_relative_error": distinct_err.iter().map(|x| x.1).fold(0.0, f64::max),
        "quantile_rank_error": rank_err,
        "max_quantile_rank_error": rank_err.iter().map(|x| x.1).fold(0.0, f64::max),
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

const STATUSES: [&str; 6] = [
    "pending",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "returned",
];

async fn scan_bench(url: &str, n: i64, reps: usize) -> Result<()> {
    let su = client(url).await?;
    ensure_orders(&su, n).await?;
    su.batch_execute("VACUUM ANALYZE public.orders").await?;
    let params = params_of(url)?;
    let cols = columns(&su, "public", "orders").await?;
    let copy1 = plan("public", "orders", cols.clone(), 1, Rows::All);
    let copy2 = plan("public", "orders", cols, 2, Rows::All);
    let scols = scan::columns(&su, "public", "orders").await?;
    let full = scan::plan(
        "public",
        "orders",
        scols.clone(),
        scan::ten_checks(&STATUSES),
        Rows::All,
    );
    copy_limit(&params, &copy1).await?;
    let (mut c1, mut c2, mut st) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..reps {
        c1.push(copy_limit(&params, &copy1).await?.0);
        c2.push(copy_limit(&params, &copy2).await?.0);
        let (t, r) = scan::scan_once(&params, &full).await?;
        st.push(t);
        last = Some(r);
    }
    let result = last.context("at least one repetition")?;
    // what writing the scan's enrichment rows adds (tables created beforehand, as after a first scan)
    su.batch_execute("CREATE SCHEMA IF NOT EXISTS bench_enrich")
        .await?;
    let mut ec = params.connect().await?;
    assay_enrichment::write::write(
        &mut ec,
        "bench_enrich",
        "_bench",
        &params.user,
        &scan::enrichment_rows(&result, 0),
    )
    .await?;
    let t0 = Instant::now();
    let written = assay_enrichment::write::write(
        &mut ec,
        "bench_enrich",
        "_bench",
        &params.user,
        &scan::enrichment_rows(&result, 1),
    )
    .await?;
    let enrich_t = t0.elapsed().as_secs_f64();
    let anomalous_rows: i64 = result
        .outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.anomalous)
        .sum();
    let wm = result
        .checkpoint
        .clone()
        .context("the scan reports the incremental maximum")?;
    let add = (n / 100).max(1);
    su.batch_execute(&format!(
        "INSERT INTO public.orders SELECT id + {n}, customer_id, status, created_at + interval '5 years', updated_at, ship_date, \
         quantity, unit_price, discount_pct, amount, email, country, is_gift, order_uuid, note, attributes \
         FROM public.orders WHERE id <= {add}; ANALYZE public.orders"
    ))
    .await?;
    let inc = scan::plan(
        "public",
        "orders",
        scols,
        scan::ten_checks(&STATUSES),
        Rows::After {
            column: "created_at".into(),
            sql_type: "timestamp".into(),
            watermark: wm,
        },
    );
    let (inc_t, inc_r) = scan::scan_once(&params, &inc).await?;
    su.batch_execute(&format!("DELETE FROM public.orders WHERE id > {n}"))
        .await?;
    su.batch_execute("VACUUM ANALYZE public.orders").await?;
    let (m1, m2, ms) = (median(c1.clone()), median(c2.clone()), median(st.clone()));
    let report = json!({
        "rows": n,
        "reps": reps,
        "copy_binary_1conn_s": c1,
        "copy_binary_2conn_s": c2,
        "assay_scan_s": st,
        "copy_binary_1conn_median_s": m1,
        "copy_binary_2conn_median_s": m2,
        "assay_scan_median_s": ms,
        "ratio_scan_to_copy_1conn": ms / m1,
        "ratio_scan_to_copy_2conn": ms / m2,
        "full_scan": scan::summary(&result),
        "anomalous_rows": anomalous_rows,
        "enrichment_write_s": enrich_t,
        "enrichment_rows_written": written.metrics + written.failed_checks + written.source_records + 1,
        "ratio_enrichment_to_scan": enrich_t / ms,
        "incremental_rows": inc_r.records,
        "incremental_s": inc_t,
        "ratio_incremental_to_full": inc_t / ms,
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn throwaway<F, Fut>(keep: bool, f: F) -> Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let dir = std::env::temp_dir().join(format!("assay-bench-{}", std::process::id()));
    let opts = assay_store::cluster::ClusterOptions {
        dir: dir.clone(),
        superuser_password: "bench".into(),
        hba: None,
        extra_conf: vec![
            "fsync = off".into(),
            "synchronous_commit = off".into(),
            "shared_buffers = '1GB'".into(),
            "max_wal_size = '8GB'".into(),
            "full_page_writes = off".into(),
        ],
    };
    let cluster = tokio::task::spawn_blocking(move || {
        let c = assay_store::cluster::Cluster::open_or_init(&opts)?;
        c.start()?;
        Ok::<_, assay_store::StoreError>(c)
    })
    .await??;
    let result = f(cluster.superuser_url("postgres")).await;
    let _ = cluster.stop();
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

#[tokio::main]
async fn main() -> Result<()> {
    assay_secrets::install_crypto_provider();
    match Cli::parse().cmd {
        Cmd::Fold { file, reps } => fold::run(&file, reps),
        Cmd::Profile {
            rows,
            reps,
            parallel,
            url,
            keep,
        } => match url {
            Some(u) => bench(&u, rows, reps, parallel).await,
            None => {
                throwaway(
                    keep,
                    |u| async move { bench(&u, rows, reps, parallel).await },
                )
                .await
            }
        },
        Cmd::Scan {
            rows,
            reps,
            url,
            keep,
        } => match url {
            Some(u) => scan_bench(&u, rows, reps).await,
            None => throwaway(keep, |u| async move { scan_bench(&u, rows, reps).await }).await,
        },
        Cmd::Load {
            clients,
            seconds,
            rows,
            datastores,
            tables,
            page_reps,
            think_ms,
            url,
            keep,
        } => {
            let o = load::Opts {
                clients,
                seconds,
                rows,
                datastores,
                tables,
                page_reps,
                think_ms,
            };
            match url {
                Some(u) => load::run(&u, &o).await,
                None => throwaway(keep, |u| async move { load::run(&u, &o).await }).await,
            }
        }
        Cmd::Detect {
            rows,
            rounds,
            url,
            keep,
        } => match url {
            Some(u) => detect::run(&u, rows, rounds).await,
            None => throwaway(keep, |u| async move { detect::run(&u, rows, rounds).await }).await,
        },
        Cmd::Notify {
            deliveries,
            url,
            keep,
        } => match url {
            Some(u) => notify::run(&u, deliveries).await,
            None => throwaway(keep, |u| async move { notify::run(&u, deliveries).await }).await,
        },
        Cmd::ScanOnce {
            host,
            port,
            db,
            user,
            password,
        } => {
            let params = ConnectParams {
                host,
                port,
                user,
                password: (!password.is_empty()).then_some(password),
                database: db,
                sslmode: "prefer".into(),
                sslrootcert: None,
                connect_timeout: Duration::from_secs(10),
                application_name: "assay-bench".into(),
            };
            let t0 = Instant::now();
            let c = params.connect_read_only().await?;
            let cols = scan::columns(&c, "public", "orders").await?;
            let statuses = [
                "delivered",
                "shipped",
                "pending",
                "cancelled",
                "returned",
                "on_hold",
            ];
            let p = scan::plan(
                "public",
                "orders",
                cols,
                scan::ten_checks(&statuses),
                Rows::All,
            );
            let r = assay_postgres::scan::scan(
                &c,
                &params,
                &p,
                Arc::new(std::sync::atomic::AtomicBool::new(false)),
            )
            .await?;
            println!(
                "{{\"seconds\": {:.3}, \"scan\": {}}}",
                t0.elapsed().as_secs_f64(),
                scan::summary(&r)
            );
            Ok(())
        }
        Cmd::Once {
            host,
            port,
            db,
            user,
            password,
            schema,
            table,
            parallel,
        } => {
            let params = ConnectParams {
                host,
                port,
                user,
                password: (!password.is_empty()).then_some(password),
                database: db,
                sslmode: "prefer".into(),
                sslrootcert: None,
                connect_timeout: Duration::from_secs(10),
                application_name: "assay-bench".into(),
            };
            let c = params.connect().await?;
            let cols = columns(&c, &schema, &table).await?;
            let (t, read) =
                assay_profile(&params, &plan(&schema, &table, cols, parallel, Rows::All)).await?;
            println!("{{\"seconds\": {t:.3}, \"rows\": {}}}", read.rows);
            Ok(())
        }
    }
}
