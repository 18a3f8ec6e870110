//! Scanning a table with its quality checks, pushed down into PostgreSQL. Every row-level check becomes a
//! `count(*) FILTER (WHERE ...)` of one aggregate query, together with the aggregates that set-level checks need
//! (sum, distinct count, mean, row count, incremental maximum): one pass over the table, which PostgreSQL may run
//! with parallel workers. Checks that need grouping or another table (unique, requiredValues,
//! timeDistributionSize, isReplicaOf, aggregationComparison) run their own query. Only the checks that failed
//! fetch their offending rows, bounded by a limit.
//!
//! Identifiers go through `quote_ident`; every value is a bind parameter passed as text and cast in SQL. The
//! user's filters and expressions are SQL by nature: they are checked by `check_sql_fragment` (no statement
//! separators, no comments, balanced parentheses), planned by the source before they are saved, and run in a
//! read-only session.

use crate::connect::{ConnectParams, query_error};
use crate::error::PgError;
use crate::ident::{qualified, quote_ident};
use crate::profile::Rows;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

mod compile;
mod judge;
mod own;
mod source;

pub use compile::check_sql_fragment;
use compile::*;
pub use judge::change_within;
use judge::*;
use own::*;
pub use source::{live_columns, plan_fragment, relation_columns};

/// A column of the scanned table.
#[derive(Debug, Clone)]
pub struct ScanColumn {
    pub name: String,
    pub field_type: String,
    pub typname: String,
}

/// A check to evaluate.
#[derive(Debug, Clone)]
pub struct ScanCheck {
    pub id: i64,
    pub rule: String,
    pub fields: Vec<String>,
    pub coverage: Option<f64>,
    pub filter: Option<String>,
    pub properties: Value,
    /// The reference table (`schema`, `name`) of cross-container rules, in the same database.
    pub reference: Option<(String, String)>,
    /// What change comparisons compare with (volumetric, metric): the previous scan's measurement, or the mean
    /// over the check's `window_size` days.
    pub previous: Option<f64>,
}

/// What to scan.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub schema: String,
    pub table: String,
    pub columns: Vec<ScanColumn>,
    pub checks: Vec<ScanCheck>,
    pub rows: Rows,
    /// Read at most this many rows (after the incremental condition).
    pub limit: Option<u64>,
    /// Fetch at most this many offending rows per failed check.
    pub sample: u64,
    /// The incremental field whose maximum becomes the next checkpoint.
    pub checkpoint_column: Option<String>,
    /// A timestamp column for freshness (the incremental field when it is temporal).
    pub freshness_column: Option<String>,
    /// The relation to read instead of `schema.table`: a parenthesised query for computed containers and
    /// computed fields.
    pub relation: Option<String>,
}

/// The result of one check.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub check_id: i64,
    /// Rows the check looked at (after its filter); for set-level checks, the rows scanned.
    pub asserted: i64,
    /// Offending rows (row-level), or the size of the failure when it has one.
    pub anomalous: i64,
    pub passed: bool,
    /// The measured value, for checks that measure one (sum, distinct count, mean, row count, age...).
    pub value: Option<f64>,
    /// What failed, in words, when it failed.
    pub message: Option<String>,
    /// Whether a failure names rows (record anomalies) rather than the set (shape anomaly).
    pub row_level: bool,
    /// Offending rows as JSON objects, at most `sample`.
    pub rows: Vec<String>,
    /// The check could not run: the error, in words (the check becomes Invalid).
    pub error: Option<String>,
}

/// The result of a container scan.
#[derive(Debug, Clone, Default)]
pub struct ScanResult {
    pub records: i64,
    pub checkpoint: Option<String>,
    pub outcomes: Vec<Outcome>,
    /// expectedSchema failed: the other checks did not run.
    pub schema_failed: bool,
}

/// Polls the abort flag while a query runs; on abort, cancels it on the server.
async fn guarded<T>(
    client: &Client,
    params: &ConnectParams,
    abort: &AtomicBool,
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<Result<T, tokio_postgres::Error>, PgError> {
    abortable(client, params, abort, fut).await
}

/// Runs `fut` (statements on `client`) until it ends or `abort` is set; on abort, cancels the running statement
/// on the server, so one that waits for a lock stops waiting too.
pub async fn abortable<T>(
    client: &Client,
    params: &ConnectParams,
    abort: &AtomicBool,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, PgError> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            r = &mut fut => return Ok(r),
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                if abort.load(Ordering::Relaxed) {
                    params.cancel(&client.cancel_token()).await;
                    return Err(PgError::Aborted);
                }
            }
        }
    }
}

fn scope_sql(plan: &ScanPlan, b: &mut Binds) -> String {
    let rel = plan
        .relation
        .clone()
        .unwrap_or_else(|| qualified(&plan.schema, &plan.table));
    let cond = match &plan.rows {
        Rows::All => None,
        Rows::After {
            column, watermark, ..
        } => {
            let cast = plan
                .columns
                .iter()
                .find(|x| &x.name == column)
                .map(cast_of)
                .unwrap_or("text");
            let w = b.push(watermark.clone());
            Some(format!("{} > {w}::{cast}", quote_ident(column)))
        }
        Rows::CommittedAfter { watermark } => {
            let w = b.push(watermark.clone());
            Some(format!("pg_xact_commit_timestamp(xmin) > {w}::timestamptz"))
        }
    };
    match (cond, plan.limit) {
        (None, None) => format!("{rel} AS t"),
        (cond, limit) => {
            let mut s = format!("(SELECT * FROM {rel}");
            if let Some(c) = cond {
                s.push_str(&format!(" WHERE {c}"));
            }
            if let Some(n) = limit {
                s.push_str(&format!(" LIMIT {n}"));
            }
            s.push_str(") AS t");
            s
        }
    }
}

fn filter_of(k: &ScanCheck) -> Result<Option<String>, String> {
    match k.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        None => Ok(None),
        Some(f) => {
            check_sql_fragment(f)?;
            Ok(Some(format!("({f})")))
        }
    }
}

/// Runs the plan on a read-only session of the source (`ConnectParams::connect_read_only`). `columns` must be the live columns of the table (from the catalog).
pub async fn scan(
    client: &Client,
    params: &ConnectParams,
    plan: &ScanPlan,
    abort: Arc<AtomicBool>,
) -> Result<ScanResult, PgError> {
    let qe = |e: tokio_postgres::Error| query_error(&e, params);
    let mut out = ScanResult::default();
    let ctx = Ctx {
        columns: &plan.columns,
    };

    // container-level checks from the catalog first: a failing expectedSchema stops the container
    for k in &plan.checks {
        let o = match k.rule.as_str() {
            "expectedSchema" => {
                let want: Vec<String> = k.properties["list"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let missing: Vec<&String> = want
                    .iter()
                    .filter(|w| !plan.columns.iter().any(|c| &&c.name == w))
                    .collect();
                let extra: Vec<&String> = if k.properties["allow_other_fields"]
                    .as_bool()
                    .unwrap_or(false)
                {
                    Vec::new()
                } else {
                    plan.columns
                        .iter()
                        .map(|c| &c.name)
                        .filter(|n| !want.contains(n))
                        .collect()
                };
                let mut msg = Vec::new();
                if !missing.is_empty() {
                    msg.push(format!(
                        "missing fields: {}",
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if !extra.is_empty() {
                    msg.push(format!(
                        "unexpected fields: {}",
                        extra
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                let passed = msg.is_empty();
                if !passed {
                    out.schema_failed = true;
                }
                Outcome {
                    check_id: k.id,
                    passed,
                    anomalous: (missing.len() + extra.len()) as i64,
                    value: Some(plan.columns.len() as f64),
                    message: (!passed).then(|| {
                        format!("The schema of {} changed: {}", plan.table, msg.join("; "))
                    }),
                    ..Default::default()
                }
            }
            "fieldCount" => {
                let want = k.properties["value"]
                    .as_f64()
                    .or_else(|| k.properties["value"].as_str().and_then(|s| s.parse().ok()));
                let n = plan.columns.len() as f64;
                let passed = want == Some(n);
                Outcome {
                    check_id: k.id,
                    passed,
                    value: Some(n),
                    message: (!passed).then(|| {
                        format!(
                            "{} has {} fields, expected {}",
                            plan.table,
                            n,
                            want.map(fmt_num).unwrap_or_default()
                        )
                    }),
                    ..Default::default()
                }
            }
            _ => continue,
        };
        out.outcomes.push(o);
    }
    if out.schema_failed {
        return Ok(out);
    }

    // compile the rest
    let mut b = Binds::default();
    let scope = scope_sql(plan, &mut b);
    let scope_binds = b.0.len();
    let mut select = vec!["count(*)".to_string()];
    let mut slots: Vec<(usize, usize, Option<String>, Option<String>)> = Vec::new(); // check idx, first column, filter, row predicate
    let mut own = Vec::new();
    for (i, k) in plan.checks.iter().enumerate() {
        if matches!(k.rule.as_str(), "expectedSchema" | "fieldCount") {
            continue;
        }
        let compiled = filter_of(k).and_then(|f| compile(k, &ctx, &mut b).map(|e| (f, e)));
        match compiled {
            Err(e) => out.outcomes.push(Outcome {
                check_id: k.id,
                error: Some(e),
                ..Default::default()
            }),
            Ok((f, Eval::Row(v))) => {
                let pos = select.len();
                // without a filter the asserted count is count(*), which PostgreSQL computes once
                match &f {
                    Some(fw) => {
                        select.push(format!("count(*) FILTER (WHERE {fw})"));
                        select.push(format!("count(*) FILTER (WHERE {fw} AND ({v}))"));
                    }
                    None => {
                        select.push("count(*)".into());
                        select.push(format!("count(*) FILTER (WHERE {v})"));
                    }
                }
                slots.push((i, pos, f, Some(v)));
            }
            Ok((f, Eval::Aggregate(a))) => {
                let pos = select.len();
                match &f {
                    Some(fw) => {
                        select.push(format!("count(*) FILTER (WHERE {fw})"));
                        select.push(filtered_aggregate(&a, fw));
                    }
                    None => {
                        select.push("count(*)".into());
                        select.push(a);
                    }
                }
                slots.push((i, pos, f, None));
            }
            Ok((f, Eval::Own)) => own.push((i, f)),
            Ok((_, Eval::Catalog)) => {}
        }
    }
    let checkpoint_pos = plan.checkpoint_column.as_ref().map(|col| {
        select.push(format!("max({})::text", c(col)));
        select.len() - 1
    });

    // the one pass
    let sql = format!("SELECT {} FROM {scope}", select.join(", "));
    let all = b.refs();
    let row = match guarded(client, params, &abort, client.query_one(&sql, &all)).await? {
        Ok(r) => Some(r),
        Err(e) if is_check_error(&e) => None,
        Err(e) => return Err(qe(e)),
    };
    let row = match row {
        Some(r) => r,
        None => {
            // some check's SQL fails on the data or the schema: find it by running each alone
            let mut keep = Vec::new();
            for s in &slots {
                let k = &plan.checks[s.0];
                let mut bb = Binds::default();
                let sc = scope_sql(plan, &mut bb);
                let single = filter_of(k).and_then(|f| compile(k, &ctx, &mut bb).map(|e| (f, e)));
                let test = match single {
                    Ok((f, Eval::Row(v))) => format!(
                        "SELECT count(*) FILTER (WHERE {} AND ({v})) FROM {sc}",
                        f.unwrap_or_else(|| "true".into())
                    ),
                    Ok((f, Eval::Aggregate(a))) => format!(
                        "SELECT {} FROM {sc}",
                        filtered_aggregate(&a, &f.unwrap_or_else(|| "true".into()))
                    ),
                    _ => continue,
                };
                match guarded(client, params, &abort, client.query_one(&test, &bb.refs())).await? {
                    Ok(_) => keep.push(s.0),
                    Err(e) if is_check_error(&e) => out.outcomes.push(Outcome {
                        check_id: k.id,
                        error: Some(db_message(&e)),
                        ..Default::default()
                    }),
                    Err(e) => return Err(qe(e)),
                }
            }
            let mut reduced = plan.clone();
            reduced.checks = plan
                .checks
                .iter()
                .enumerate()
                .filter(|(i, k)| {
                    keep.contains(i)
                        || own.iter().any(|(j, _)| j == i)
                        || matches!(k.rule.as_str(), "expectedSchema" | "fieldCount")
                })
                .map(|(_, k)| k.clone())
                .collect();
            if reduced.checks.len() == plan.checks.len() {
                // nothing to blame on one check: report the error as it is
                let e = client.query_one(&sql, &all).await.err();
                return Err(match e {
                    Some(e) => qe(e),
                    None => PgError::Property {
                        field: "scan".into(),
                        message: "the scan query failed and then passed; run it again".into(),
                    },
                });
            }
            let invalid: Vec<Outcome> = out
                .outcomes
                .into_iter()
                .filter(|o| o.error.is_some() && !reduced.checks.iter().any(|k| k.id == o.check_id))
                .collect();
            let mut again = Box::pin(scan(client, params, &reduced, abort.clone())).await?;
            again.outcomes.extend(invalid);
            return Ok(again);
        }
    };
    out.records = row.get::<_, i64>(0);
    if let Some(p) = checkpoint_pos {
        out.checkpoint = row.get::<_, Option<String>>(p);
    }

    for (i, pos, f, pred) in &slots {
        let k = &plan.checks[*i];
        let asserted: i64 = row.get(*pos);
        if let Some(pred) = pred {
            let bad: i64 = row.get(pos + 1);
            let cov = k.coverage.unwrap_or(1.0);
            let passed = if cov >= 1.0 {
                bad == 0
            } else {
                asserted == 0 || (asserted - bad) as f64 / asserted as f64 >= cov
            };
            let mut o = Outcome {
                check_id: k.id,
                asserted,
                anomalous: bad,
                passed,
                row_level: true,
                value: Some(bad as f64),
                ..Default::default()
            };
            if !passed {
                let pct = if asserted > 0 {
                    bad as f64 * 100.0 / asserted as f64
                } else {
                    0.0
                };
                o.message = Some(format!(
                    "In {}, {:.2}% of {} filtered records ({}) fail {}",
                    describe_fields(k),
                    pct,
                    asserted,
                    bad,
                    describe_rule(k)
                ));
                let mut bb = Binds::default();
                let sc = scope_sql(plan, &mut bb);
                // re-bind the predicate's values in the same order
                let mut b2 = Binds(bb.0.clone());
                let pred2 = match compile(k, &ctx, &mut b2) {
                    Ok(Eval::Row(v)) => v,
                    _ => pred.clone(),
                };
                let fw = f.clone().unwrap_or_else(|| "true".into());
                let lim = b2.push(plan.sample.to_string());
                let q = format!(
                    "SELECT to_jsonb(t)::text FROM {sc} WHERE {fw} AND ({pred2}) LIMIT {lim}::int8"
                );
                o.rows = guarded(client, params, &abort, client.query(&q, &b2.refs()))
                    .await?
                    .map_err(qe)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
            }
            out.outcomes.push(o);
        } else {
            let measured: Option<f64> = row.get(pos + 1);
            out.outcomes.push(judge_aggregate(k, asserted, measured));
        }
    }
    let _ = scope_binds;

    for (i, f) in own {
        let k = &plan.checks[i];
        let r = own_check(client, params, plan, k, f, out.records, &abort).await?;
        out.outcomes.push(r.unwrap_or_else(|e| Outcome {
            check_id: k.id,
            error: Some(e),
            ..Default::default()
        }));
    }
    Ok(out)
}

fn filtered_aggregate(a: &str, fw: &str) -> String {
    // `agg(x)::float8` → `agg(x) FILTER (WHERE fw)::float8`
    match a.strip_suffix("::float8") {
        Some(inner) => format!("({inner} FILTER (WHERE {fw}))::float8"),
        None => format!("{a} FILTER (WHERE {fw})"),
    }
}

fn is_check_error(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        let code = d.code().code();
        code.starts_with("42") || code.starts_with("22")
    })
}

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_cannot_end_or_hide_the_statement() {
        assert!(check_sql_fragment("status <> 'void'").is_ok());
        assert!(check_sql_fragment("note = 'a;b -- c'").is_ok());
        assert!(check_sql_fragment("1=1; DROP TABLE x").is_err());
        assert!(check_sql_fragment("1=1 -- x").is_err());
        assert!(check_sql_fragment("1=1 /* x */").is_err());
        assert!(check_sql_fragment("true) OR (true").is_err());
        assert!(check_sql_fragment("(true").is_err());
        assert!(check_sql_fragment("'open").is_err());
        assert!(check_sql_fragment("$$x$$ = 'x'").is_err());
        assert!(check_sql_fragment("  ").is_err());
    }

    #[test]
    fn changes_are_judged_against_the_previous_value() {
        let p = serde_json::json!({"comparison": "Percentage Change", "min": -10, "max": 10});
        assert!(change_within(&p, 95.0, Some(100.0)).0);
        assert!(!change_within(&p, 80.0, Some(100.0)).0);
        assert!(change_within(&p, 80.0, None).0);
        let p = serde_json::json!({"comparison": "Absolute Value", "min": 5});
        assert!(!change_within(&p, 4.0, None).0);
    }
}
