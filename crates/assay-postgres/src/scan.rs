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

/// Rejects SQL fragments that could end the statement or hide the rest of it.
pub fn check_sql_fragment(sql: &str) -> Result<(), String> {
    let mut depth = 0i32;
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                if chars.peek() == Some(&q) {
                    chars.next();
                } else {
                    quote = None;
                }
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            ';' => return Err("a ';' is not allowed: give one expression, not statements".into()),
            '-' if chars.peek() == Some(&'-') => {
                return Err("SQL comments (--) are not allowed".into());
            }
            '/' if chars.peek() == Some(&'*') => {
                return Err("SQL comments (/* */) are not allowed".into());
            }
            '$' if chars.peek().is_some_and(|n| *n == '$' || n.is_alphabetic()) => {
                return Err("dollar quoting is not allowed; use single quotes".into());
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced parentheses: a ')' closes nothing".into());
                }
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Err("an unterminated quoted string or identifier".into());
    }
    if depth != 0 {
        return Err("unbalanced parentheses: a '(' is never closed".into());
    }
    if sql.trim().is_empty() {
        return Err("the expression is empty".into());
    }
    Ok(())
}

/// Bind parameters, all passed as text.
#[derive(Default)]
struct Binds(Vec<String>);

impl Binds {
    fn push(&mut self, v: impl Into<String>) -> String {
        self.0.push(v.into());
        format!("${}::text", self.0.len())
    }
    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|s| s as &(dyn ToSql + Sync)).collect()
    }
}

fn cast_of(col: &ScanColumn) -> &'static str {
    match col.typname.as_str() {
        "int2" | "int4" | "int8" | "numeric" | "float4" | "float8" | "oid" | "money" => "numeric",
        "date" | "timestamp" => "timestamp",
        "timestamptz" => "timestamptz",
        "bool" => "boolean",
        _ => "text",
    }
}

/// The type a bound value is cast to for comparing with `col`: the column's own family where the values fit
/// (integers stay integers, floats stay floats), so PostgreSQL compares without converting every row.
fn cast_for(col: &ScanColumn, values: &[&str]) -> &'static str {
    match col.typname.as_str() {
        "int2" | "int4" | "int8" if values.iter().all(|v| v.trim().parse::<i64>().is_ok()) => {
            "int8"
        }
        "float4" | "float8" => "float8",
        _ => cast_of(col),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const EMAIL_RE: &str = "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}";
const URL_RE: &str = "(https?|ftp)://[^[:space:]/$.?#][^[:space:]]*";
const SSN_RE: &str = "(^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9]|$)";
const CARD_RE: &str = "(^|[^0-9])[0-9]([ -]?[0-9]){12,18}([^0-9]|$)";

/// How one check is evaluated.
enum Eval {
    /// A per-row violation predicate (over alias `t`).
    Row(String),
    /// An aggregate expression measured in the main pass, judged afterwards.
    Aggregate(String),
    /// Its own query.
    Own,
    /// Container-level, from the catalog.
    Catalog,
}

struct Ctx<'a> {
    columns: &'a [ScanColumn],
}

impl Ctx<'_> {
    fn col(&self, name: &str) -> Result<&ScanColumn, String> {
        self.columns.iter().find(|c| c.name == name).ok_or_else(|| {
            format!("the field '{name}' no longer exists; run a sync and fix the check")
        })
    }
}

fn c(name: &str) -> String {
    format!("t.{}", quote_ident(name))
}

fn compile(k: &ScanCheck, ctx: &Ctx<'_>, b: &mut Binds) -> Result<Eval, String> {
    let p = &k.properties;
    let field = || -> Result<&ScanColumn, String> {
        ctx.col(k.fields.first().ok_or("the check names no field")?)
    };
    let prop = |key: &str| -> Result<String, String> {
        match &p[key] {
            Value::Null => Err(format!("the property '{key}' is missing")),
            v => Ok(text_of(v)),
        }
    };
    let flag = |key: &str, default: bool| p[key].as_bool().unwrap_or(default);
    let rule = k.rule.as_str();
    Ok(match rule {
        "notNull" | "anyNotNull" => {
            let parts: Vec<String> = k
                .fields
                .iter()
                .map(|f| ctx.col(f).map(|col| format!("{} IS NULL", c(&col.name))))
                .collect::<Result<_, _>>()?;
            let joiner = if rule == "notNull" { " OR " } else { " AND " };
            Eval::Row(format!("({})", parts.join(joiner)))
        }
        "notEmpty" => {
            let f = c(&field()?.name);
            Eval::Row(format!("({f} IS NULL OR btrim({f}::text) = '')"))
        }
        "notNegative" => Eval::Row(format!("{} < 0", c(&field()?.name))),
        "positive" => Eval::Row(format!("{} <= 0", c(&field()?.name))),
        "notFuture" => {
            let col = field()?;
            let now = if col.typname == "date" {
                "current_date"
            } else {
                "now()"
            };
            Eval::Row(format!("{} > {now}", c(&col.name)))
        }
        "between" | "betweenTimes" => {
            let col = field()?;
            let (lo, hi) = if rule == "between" {
                (prop("min")?, prop("max")?)
            } else {
                (prop("min_time")?, prop("max_time")?)
            };
            let cast = cast_for(col, &[&lo, &hi]);
            let (lo, hi) = (b.push(lo), b.push(hi));
            let lo_op = if flag("inclusive_min", true) {
                "<"
            } else {
                "<="
            };
            let hi_op = if flag("inclusive_max", true) {
                ">"
            } else {
                ">="
            };
            let f = c(&col.name);
            Eval::Row(format!(
                "({f} {lo_op} {lo}::{cast} OR {f} {hi_op} {hi}::{cast})"
            ))
        }
        "greaterThan" | "lessThan" | "minValue" | "maxValue" | "afterDateTime"
        | "beforeDateTime" => {
            let col = field()?;
            let key = if rule.ends_with("DateTime") {
                "datetime"
            } else {
                "value"
            };
            let raw = prop(key)?;
            let cast = cast_for(col, &[&raw]);
            let v = b.push(raw);
            let inclusive = flag(
                "inclusive",
                matches!(
                    rule,
                    "minValue" | "maxValue" | "afterDateTime" | "beforeDateTime"
                ),
            );
            let op = match (rule, inclusive) {
                ("greaterThan" | "minValue" | "afterDateTime", true) => "<",
                ("greaterThan" | "minValue" | "afterDateTime", false) => "<=",
                (_, true) => ">",
                (_, false) => ">=",
            };
            Eval::Row(format!("{} {op} {v}::{cast}", c(&col.name)))
        }
        "equalTo" => {
            let v = b.push(prop("value")?);
            let parts: Vec<String> = k
                .fields
                .iter()
                .map(|f| {
                    ctx.col(f)
                        .map(|col| format!("{} <> {v}::numeric", c(&col.name)))
                })
                .collect::<Result<_, _>>()?;
            Eval::Row(format!("({})", parts.join(" OR ")))
        }
        "equalToField" | "greaterThanField" | "lessThanField" => {
            let col = field()?;
            let other = ctx.col(&prop("field_name")?)?;
            let inclusive = flag("inclusive", false);
            let op = match (rule, inclusive) {
                ("equalToField", _) => "<>",
                ("greaterThanField", true) => "<",
                ("greaterThanField", false) => "<=",
                (_, true) => ">",
                (_, false) => ">=",
            };
            Eval::Row(format!("{} {op} {}", c(&col.name), c(&other.name)))
        }
        "minLength" | "maxLength" => {
            let v = b.push(prop("value")?);
            let op = if rule == "minLength" { "<" } else { ">" };
            Eval::Row(format!(
                "char_length({}::text) {op} {v}::int",
                c(&field()?.name)
            ))
        }
        "matchesPattern" => {
            let v = b.push(prop("pattern")?);
            Eval::Row(format!("{}::text !~ {v}", c(&field()?.name)))
        }
        "containsEmail" | "containsUrl" | "containsSocialSecurityNumber" | "containsCreditCard" => {
            let re = match rule {
                "containsEmail" => EMAIL_RE,
                "containsUrl" => URL_RE,
                "containsSocialSecurityNumber" => SSN_RE,
                _ => CARD_RE,
            };
            let v = b.push(re);
            Eval::Row(format!("{}::text !~ {v}", c(&field()?.name)))
        }
        "isCreditCard" => {
            let f = c(&field()?.name);
            // digits only (spaces and dashes allowed), 13 to 19 of them, and the Luhn sum divisible by 10
            Eval::Row(format!(
                "NOT (regexp_replace({f}::text, '[ -]', '', 'g') ~ '^[0-9]{{13,19}}$' AND \
                 (SELECT sum(CASE WHEN i % 2 = 0 THEN (2 * d) / 10 + (2 * d) % 10 ELSE d END) % 10 = 0 \
                  FROM (SELECT i, substr(reverse(regexp_replace({f}::text, '[ -]', '', 'g')), i, 1)::int AS d \
                        FROM generate_series(1, char_length(regexp_replace({f}::text, '[ -]', '', 'g'))) AS i) AS z))"
            ))
        }
        "isType" => {
            let f = format!("btrim({}::text)", c(&field()?.name));
            let re = match p["field_type"].as_str().unwrap_or("String") {
                "Integral" => Some("^[+-]?[0-9]+$"),
                "Fractional" => Some("^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"),
                "Boolean" => Some(
                    "^([Tt]([Rr][Uu][Ee])?|[Ff]([Aa][Ll][Ss][Ee])?|[Yy]([Ee][Ss])?|[Nn][Oo]?|0|1)$",
                ),
                "Date" => Some("^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
                "Timestamp" => Some(
                    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$",
                ),
                "Array" => Some("^\\[.*\\]$"),
                "Struct" | "MapType" => Some("^\\{.*\\}$"),
                _ => None,
            };
            match re {
                Some(re) => {
                    let v = b.push(re);
                    Eval::Row(format!("{f} !~ {v}"))
                }
                None => Eval::Row("false".into()),
            }
        }
        "expectedValues" => {
            let col = field()?;
            let list = b.push(p["list"].to_string());
            let cast = cast_of(col);
            Eval::Row(format!(
                "NOT ({}::{cast} IN (SELECT x::{cast} FROM jsonb_array_elements_text({list}::jsonb) AS x))",
                c(&col.name)
            ))
        }
        "satisfiesExpression" => {
            let e = prop("expression")?;
            check_sql_fragment(&e)?;
            Eval::Row(format!("(({e})) IS NOT TRUE"))
        }
        "predictedBy" => {
            let e = prop("expression")?;
            check_sql_fragment(&e)?;
            let tol = b.push(prop("tolerance")?);
            Eval::Row(format!(
                "abs({} - ({e})) > {tol}::numeric",
                c(&field()?.name)
            ))
        }
        "existsIn" | "notExistsIn" => {
            let col = field()?;
            let (schema, table) = k
                .reference
                .as_ref()
                .ok_or("the reference container is not in this database")?;
            let rf = prop("field_name")?;
            let mut sub = format!(
                "SELECT r.{q} FROM {} AS r WHERE r.{q} IS NOT NULL",
                qualified(schema, table),
                q = quote_ident(&rf)
            );
            if let Some(f) = p["ref_filter"].as_str().filter(|s| !s.trim().is_empty()) {
                check_sql_fragment(f)?;
                sub.push_str(&format!(" AND ({f})"));
            }
            let f = c(&col.name);
            if rule == "existsIn" {
                Eval::Row(format!("({f} IS NOT NULL AND NOT ({f} IN ({sub})))"))
            } else {
                Eval::Row(format!("{f} IN ({sub})"))
            }
        }
        "unique" => {
            for f in &k.fields {
                ctx.col(f)?;
            }
            Eval::Own
        }
        "sum" => Eval::Aggregate(format!("sum({})::float8", c(&field()?.name))),
        "distinctCount" => {
            Eval::Aggregate(format!("count(DISTINCT {})::float8", c(&field()?.name)))
        }
        "metric" => Eval::Aggregate(format!("avg({})::float8", c(&field()?.name))),
        "volumetric" => Eval::Aggregate("count(*)::float8".into()),
        "requiredValues"
        | "timeDistributionSize"
        | "isReplicaOf"
        | "aggregationComparison"
        | "freshness" => {
            if matches!(rule, "requiredValues" | "timeDistributionSize") {
                field()?;
            }
            Eval::Own
        }
        "expectedSchema" | "fieldCount" => Eval::Catalog,
        other => return Err(format!("rule '{other}' cannot be evaluated by Assay")),
    })
}

/// Polls the abort flag while a query runs; on abort, cancels it on the server.
async fn guarded<T>(
    client: &Client,
    abort: &AtomicBool,
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<Result<T, tokio_postgres::Error>, PgError> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            r = &mut fut => return Ok(r),
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                if abort.load(Ordering::Relaxed) {
                    let _ = client.cancel_token().cancel_query(tokio_postgres::NoTls).await;
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

fn cmp_ok(comparison: &str, measured: f64, value: f64) -> bool {
    match comparison {
        "lt" | "less than" => measured < value,
        "lte" | "less than or equal to" => measured <= value,
        "gte" | "greater than or equal to" => measured >= value,
        "gt" | "greater than" => measured > value,
        _ => (measured - value).abs() <= 1e-9 * value.abs().max(1.0),
    }
}

/// Judges a measured value against a change comparison (`Absolute Value`, `Absolute Change`,
/// `Percentage Change`) and the check's min/max. Returns the quantity compared.
pub fn change_within(props: &Value, measured: f64, previous: Option<f64>) -> (bool, Option<f64>) {
    let q = match props["comparison"].as_str().unwrap_or("Absolute Value") {
        "Absolute Change" => previous.map(|p| measured - p),
        "Percentage Change" => {
            previous.and_then(|p| (p != 0.0).then(|| (measured - p) / p.abs() * 100.0))
        }
        _ => Some(measured),
    };
    let Some(q) = q else {
        // nothing to compare with yet: the first measurement passes
        return (true, None);
    };
    let num = |k: &str| match &props[k] {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    let ok = num("min").is_none_or(|m| q >= m) && num("max").is_none_or(|m| q <= m);
    (ok, Some(q))
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// Runs the plan on a session of the source. `columns` must be the live columns of the table (from the catalog).
pub async fn scan(
    client: &Client,
    params: &ConnectParams,
    plan: &ScanPlan,
    abort: Arc<AtomicBool>,
) -> Result<ScanResult, PgError> {
    let qe = |e: tokio_postgres::Error| query_error(&e, params);
    client
        .batch_execute(
            "SET default_transaction_read_only = on; SET TimeZone = 'UTC'; SET statement_timeout = '30min'; SET jit = off",
        )
        .await
        .map_err(qe)?;
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
    let row = match guarded(client, &abort, client.query_one(&sql, &all)).await? {
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
                match guarded(client, &abort, client.query_one(&test, &bb.refs())).await? {
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
                o.rows = guarded(client, &abort, client.query(&q, &b2.refs()))
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
        let r = own_check(client, plan, k, f, out.records, &abort).await?;
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

fn describe_fields(k: &ScanCheck) -> String {
    if k.fields.is_empty() {
        "the container".into()
    } else {
        k.fields.join(", ")
    }
}

fn describe_rule(k: &ScanCheck) -> String {
    let p = &k.properties;
    let t = |key: &str| text_of(&p[key]);
    match k.rule.as_str() {
        "between" => format!("between {} and {}", t("min"), t("max")),
        "betweenTimes" => format!("betweenTimes {} and {}", t("min_time"), t("max_time")),
        "minValue" | "maxValue" | "greaterThan" | "lessThan" | "minLength" | "maxLength"
        | "equalTo" => {
            format!("{} {}", k.rule, t("value"))
        }
        "afterDateTime" | "beforeDateTime" => format!("{} {}", k.rule, t("datetime")),
        "matchesPattern" => format!("matchesPattern {}", t("pattern")),
        "satisfiesExpression" => format!("satisfiesExpression {}", t("expression")),
        "expectedValues" => format!("expectedValues {}", p["list"]),
        "isType" => format!("isType {}", t("field_type")),
        other => other.to_string(),
    }
}

fn judge_aggregate(k: &ScanCheck, asserted: i64, measured: Option<f64>) -> Outcome {
    let p = &k.properties;
    let num = |key: &str| match &p[key] {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    let mut o = Outcome {
        check_id: k.id,
        asserted,
        value: measured,
        ..Default::default()
    };
    let (passed, msg) = match k.rule.as_str() {
        "sum" => {
            let want = num("value").unwrap_or(0.0);
            let got = measured.unwrap_or(0.0);
            let ok = (got - want).abs() <= 1e-9 * want.abs().max(1.0);
            (
                ok,
                format!(
                    "The sum of {} is {}, expected {}",
                    describe_fields(k),
                    fmt_num(got),
                    fmt_num(want)
                ),
            )
        }
        "distinctCount" => {
            let want = num("value").unwrap_or(0.0);
            let cmp = p["comparison"].as_str().unwrap_or("eq");
            let got = measured.unwrap_or(0.0);
            (
                cmp_ok(cmp, got, want),
                format!(
                    "{} has {} distinct values, expected {cmp} {}",
                    describe_fields(k),
                    fmt_num(got),
                    fmt_num(want)
                ),
            )
        }
        "metric" | "volumetric" => match measured {
            None => (true, String::new()),
            Some(m) => {
                let (ok, q) = change_within(p, m, k.previous);
                let what = if k.rule == "volumetric" {
                    "the row count".to_string()
                } else {
                    format!("the mean of {}", describe_fields(k))
                };
                (
                    ok,
                    format!(
                        "{} is {}{} ({}: {}), outside [{}, {}]",
                        what,
                        fmt_num(m),
                        match (k.previous, p["window_size"].as_i64()) {
                            (Some(b), Some(d)) =>
                                format!(", against a {d}-day average of {}", fmt_num(b)),
                            (Some(b), None) =>
                                format!(", against {} in the previous scan", fmt_num(b)),
                            _ => String::new(),
                        },
                        p["comparison"].as_str().unwrap_or("Absolute Value"),
                        q.map(fmt_num).unwrap_or_default(),
                        num("min").map(fmt_num).unwrap_or_else(|| "-inf".into()),
                        num("max").map(fmt_num).unwrap_or_else(|| "inf".into())
                    ),
                )
            }
        },
        _ => (true, String::new()),
    };
    o.passed = passed;
    if !passed {
        o.message = Some(msg);
        o.anomalous = 1;
    }
    o
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

/// Whether a valid, non-partial unique index covers exactly `fields` (in any order).
async fn unique_index(
    client: &Client,
    plan: &ScanPlan,
    fields: &[String],
) -> Result<bool, PgError> {
    let mut want: Vec<String> = fields.to_vec();
    want.sort();
    want.dedup();
    let rows = client
        .query(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) \
             WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indisvalid \
               AND i.indpred IS NULL AND i.indexprs IS NULL \
             GROUP BY i.indexrelid",
            &[&plan.schema, &plan.table],
        )
        .await
        .map_err(|e| PgError::Property {
            field: "scan".into(),
            message: db_message(&e),
        })?;
    Ok(rows.iter().any(|r| r.get::<_, Vec<String>>(0) == want))
}

async fn own_check(
    client: &Client,
    plan: &ScanPlan,
    k: &ScanCheck,
    f: Option<String>,
    records: i64,
    abort: &AtomicBool,
) -> Result<Result<Outcome, String>, PgError> {
    let mut b = Binds::default();
    let sc = scope_sql(plan, &mut b);
    let fw = f.unwrap_or_else(|| "true".into());
    let p = &k.properties;
    let mut o = Outcome {
        check_id: k.id,
        asserted: records,
        ..Default::default()
    };
    let run = |sql: String, b: Binds| async move {
        match guarded(client, abort, client.query(&sql, &b.refs())).await? {
            Ok(rows) => Ok(Ok(rows)),
            Err(e) if is_check_error(&e) => Ok(Err(db_message(&e))),
            Err(e) => Err(PgError::Property {
                field: "scan".into(),
                message: db_message(&e),
            }),
        }
    };
    match k.rule.as_str() {
        "unique" if unique_index(client, plan, &k.fields).await? => {
            // a valid unique index on exactly these columns already guarantees it, for every subset of rows
            o.passed = true;
            o.row_level = true;
            o.value = Some(0.0);
        }
        "unique" => {
            let cols: Vec<String> = k.fields.iter().map(|f| c(f)).collect();
            let list = cols.join(", ");
            let not_null = cols
                .iter()
                .map(|x| format!("{x} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let sql = format!(
                "SELECT coalesce(sum(n), 0)::int8, count(*)::int8 FROM (SELECT count(*) AS n FROM {sc} WHERE {fw} AND {not_null} GROUP BY {list} HAVING count(*) > 1) AS d"
            );
            let rows = match run(sql, Binds(b.0.clone())).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let dup_rows: i64 = rows[0].get(0);
            let groups: i64 = rows[0].get(1);
            o.anomalous = dup_rows;
            o.value = Some(groups as f64);
            o.row_level = true;
            let cov = k.coverage.unwrap_or(1.0);
            o.passed = if cov >= 1.0 {
                dup_rows == 0
            } else {
                records == 0 || (records - dup_rows) as f64 / records as f64 >= cov
            };
            if !o.passed {
                o.message = Some(format!(
                    "In {}, {} records share a value with another record ({} duplicated values)",
                    describe_fields(k),
                    dup_rows,
                    groups
                ));
                let mut b2 = Binds(b.0.clone());
                let lim = b2.push(plan.sample.to_string());
                let sql = format!(
                    "SELECT to_jsonb(t)::text FROM {sc} WHERE {fw} AND ({list}) IN (SELECT {list} FROM {sc} WHERE {fw} AND {not_null} GROUP BY {list} HAVING count(*) > 1) LIMIT {lim}::int8"
                );
                match run(sql, b2).await? {
                    Ok(rows) => o.rows = rows.iter().map(|r| r.get(0)).collect(),
                    Err(e) => return Ok(Err(e)),
                }
            }
        }
        "requiredValues" => {
            let col = match plan
                .columns
                .iter()
                .find(|x| Some(&x.name) == k.fields.first())
            {
                Some(c) => c.clone(),
                None => return Ok(Err("the field no longer exists".into())),
            };
            let cast = cast_of(&col);
            let mut b2 = Binds(b.0.clone());
            let list = b2.push(p["list"].to_string());
            let sql = format!(
                "SELECT x FROM jsonb_array_elements_text({list}::jsonb) AS x WHERE NOT EXISTS \
                 (SELECT 1 FROM {sc} WHERE {fw} AND {} = x::{cast})",
                c(&col.name)
            );
            let rows = match run(sql, b2).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let missing: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            o.anomalous = missing.len() as i64;
            o.passed = missing.is_empty();
            if !o.passed {
                o.message = Some(format!(
                    "{} never takes the required values: {}",
                    describe_fields(k),
                    missing.join(", ")
                ));
            }
        }
        "timeDistributionSize" => {
            let unit = match p["interval_name"].as_str().unwrap_or("Daily") {
                "Yearly" => "year",
                "Monthly" => "month",
                "Weekly" => "week",
                "Hourly" => "hour",
                _ => "day",
            };
            let mut b2 = Binds(b.0.clone());
            let u = b2.push(unit);
            let col = c(k.fields.first().map(String::as_str).unwrap_or(""));
            let min = p["min_size"].as_i64().unwrap_or(0).to_string();
            let max = p["max_size"]
                .as_i64()
                .map(|v| v.to_string())
                .unwrap_or_else(|| i64::MAX.to_string());
            let (lo, hi) = (b2.push(min), b2.push(max));
            let sql = format!(
                "SELECT count(*)::int8, count(*) FILTER (WHERE n < {lo}::int8 OR n > {hi}::int8)::int8, \
                 min(b::text) FILTER (WHERE n < {lo}::int8 OR n > {hi}::int8) \
                 FROM (SELECT date_trunc({u}, {col}::timestamp) AS b, count(*) AS n FROM {sc} WHERE {fw} AND {col} IS NOT NULL GROUP BY 1) AS g"
            );
            let rows = match run(sql, b2).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let buckets: i64 = rows[0].get(0);
            let bad: i64 = rows[0].get(1);
            let first: Option<String> = rows[0].get(2);
            o.value = Some(buckets as f64);
            o.anomalous = bad;
            o.passed = bad == 0;
            if !o.passed {
                o.message = Some(format!(
                    "{bad} of {buckets} {} buckets of {} hold fewer than {} or more than {} rows (first: {})",
                    p["interval_name"].as_str().unwrap_or("Daily"),
                    describe_fields(k),
                    p["min_size"],
                    p["max_size"],
                    first.unwrap_or_default()
                ));
            }
        }
        "freshness" => {
            let sql = match &plan.freshness_column {
                Some(col) => format!(
                    "SELECT (extract(epoch FROM now() - max({}::timestamptz)) * 1000)::float8 FROM {sc}",
                    c(col)
                ),
                None => format!(
                    "SELECT (extract(epoch FROM now() - max(pg_xact_commit_timestamp(xmin))) * 1000)::float8 FROM {sc}"
                ),
            };
            let rows = match run(sql, Binds(b.0.clone())).await? {
                Ok(r) => r,
                Err(e) => {
                    return Ok(Err(if plan.freshness_column.is_none() {
                        format!(
                            "freshness needs a timestamp incremental field or track_commit_timestamp = on: {e}"
                        )
                    } else {
                        e
                    }));
                }
            };
            let age: Option<f64> = rows[0].get(0);
            let max = p["value"]
                .as_f64()
                .or_else(|| p["value"].as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0.0);
            o.value = age;
            o.passed = age.is_some_and(|a| a <= max);
            if !o.passed {
                o.anomalous = 1;
                o.message = Some(match age {
                    Some(a) => format!(
                        "the newest row of {} is {} ms old, more than {} ms",
                        plan.table,
                        fmt_num(a),
                        fmt_num(max)
                    ),
                    None => format!(
                        "{} has no rows with a time to judge freshness by",
                        plan.table
                    ),
                });
            }
        }
        "isReplicaOf" => {
            let Some((schema, table)) = &k.reference else {
                return Ok(Err("the reference container is not in this database".into()));
            };
            let list = k
                .fields
                .iter()
                .map(|f| quote_ident(f))
                .collect::<Vec<_>>()
                .join(", ");
            let tlist = k.fields.iter().map(|f| c(f)).collect::<Vec<_>>().join(", ");
            let mut rf = "true".to_string();
            if let Some(f) = p["ref_filter"].as_str().filter(|s| !s.trim().is_empty()) {
                if let Err(e) = check_sql_fragment(f) {
                    return Ok(Err(e));
                }
                rf = format!("({f})");
            }
            let reference = qualified(schema, table);
            let sql = format!(
                "SELECT (SELECT count(*) FROM (SELECT {tlist} FROM {sc} WHERE {fw} EXCEPT ALL SELECT {list} FROM {reference} WHERE {rf}) AS a)::int8, \
                        (SELECT count(*) FROM (SELECT {list} FROM {reference} WHERE {rf} EXCEPT ALL SELECT {tlist} FROM {sc} WHERE {fw}) AS b)::int8"
            );
            let rows = match run(sql, Binds(b.0.clone())).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let extra: i64 = rows[0].get(0);
            let missing: i64 = rows[0].get(1);
            o.anomalous = extra + missing;
            o.passed = o.anomalous == 0;
            if !o.passed {
                o.message = Some(format!(
                    "{} differs from {table}: {extra} rows only here, {missing} rows only in the reference",
                    plan.table
                ));
            }
        }
        "aggregationComparison" => {
            let Some((schema, table)) = &k.reference else {
                return Ok(Err("the reference container is not in this database".into()));
            };
            let (Some(e1), Some(e2)) = (p["expression"].as_str(), p["ref_expression"].as_str())
            else {
                return Ok(Err("expression and ref_expression are required".into()));
            };
            for e in [e1, e2] {
                if let Err(m) = check_sql_fragment(e) {
                    return Ok(Err(m));
                }
            }
            let mut rf = "true".to_string();
            if let Some(f) = p["ref_filter"].as_str().filter(|s| !s.trim().is_empty()) {
                if let Err(e) = check_sql_fragment(f) {
                    return Ok(Err(e));
                }
                rf = format!("({f})");
            }
            let sql = format!(
                "SELECT (SELECT ({e1})::float8 FROM {sc} WHERE {fw}), (SELECT ({e2})::float8 FROM {} WHERE {rf})",
                qualified(schema, table)
            );
            let rows = match run(sql, Binds(b.0.clone())).await? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let (a, r): (Option<f64>, Option<f64>) = (rows[0].get(0), rows[0].get(1));
            let cmp = p["comparison"].as_str().unwrap_or("eq");
            o.value = a;
            o.passed = matches!((a, r), (Some(a), Some(r)) if cmp_ok(cmp, a, r));
            if !o.passed {
                o.anomalous = 1;
                o.message = Some(format!(
                    "{e1} = {} is not {cmp} {e2} = {} of {table}",
                    a.map(fmt_num).unwrap_or_else(|| "null".into()),
                    r.map(fmt_num).unwrap_or_else(|| "null".into())
                ));
            }
        }
        other => return Ok(Err(format!("rule '{other}' has no query"))),
    }
    Ok(Ok(o))
}

/// The live columns of a table, from `pg_catalog` (so a scan sees schema changes made since the last sync).
pub async fn live_columns(
    client: &Client,
    params: &ConnectParams,
    schema: &str,
    table: &str,
) -> Result<Option<Vec<ScanColumn>>, PgError> {
    let rows = client
        .query(
            "SELECT a.attname::text, ty.typname::text, ty.typtype::text, ty.typcategory::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             JOIN pg_type ty ON ty.oid = a.atttypid \
             WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await
        .map_err(|e| query_error(&e, params))?;
    if rows.is_empty() {
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema, &table],
            )
            .await
            .map_err(|e| query_error(&e, params))?;
        if exists.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(
        rows.iter()
            .map(|r| {
                let typname: String = r.get(1);
                let typtype: String = r.get(2);
                let cat: String = r.get(3);
                ScanColumn {
                    name: r.get(0),
                    field_type: assay_core::catalog::FieldType::from_postgres(
                        &typname, &typtype, &cat,
                    )
                    .as_str()
                    .to_string(),
                    typname,
                }
            })
            .collect(),
    ))
}

/// The columns of a relation expression (a computed container's query), as the source's planner describes them:
/// name, `typname`, `typtype`, `typcategory`.
pub async fn relation_columns(
    client: &Client,
    relation: &str,
) -> Result<Vec<(String, String, String, String)>, String> {
    let stmt = client
        .prepare(&format!("SELECT * FROM {relation} AS t LIMIT 0"))
        .await
        .map_err(|e| db_message(&e))?;
    let oids: Vec<u32> = stmt.columns().iter().map(|c| c.type_().oid()).collect();
    let rows = client
        .query(
            "SELECT oid, typname::text, typtype::text, typcategory::text FROM pg_type WHERE oid = ANY($1)",
            &[&oids],
        )
        .await
        .map_err(|e| db_message(&e))?;
    Ok(stmt
        .columns()
        .iter()
        .map(|c| {
            let t = rows.iter().find(|r| r.get::<_, u32>(0) == c.type_().oid());
            (
                c.name().to_string(),
                t.map(|r| r.get::<_, String>(1))
                    .unwrap_or_else(|| "text".into()),
                t.map(|r| r.get::<_, String>(2))
                    .unwrap_or_else(|| "b".into()),
                t.map(|r| r.get::<_, String>(3))
                    .unwrap_or_else(|| "S".into()),
            )
        })
        .collect())
}

/// Checks a filter or expression with the source's planner (`EXPLAIN`, never executed on data).
pub async fn plan_fragment(
    client: &Client,
    relation: &str,
    filter: Option<&str>,
    check: Option<&ScanCheck>,
    columns: &[ScanColumn],
) -> Result<(), String> {
    let rel = relation;
    if let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) {
        check_sql_fragment(f).map_err(|e| format!("filter: {e}"))?;
        client
            .prepare(&format!("EXPLAIN SELECT 1 FROM {rel} AS t WHERE ({f})"))
            .await
            .map_err(|e| format!("filter: {}", db_message(&e)))?;
    }
    let mut b = Binds::default();
    let mut conds = Vec::new();
    if let Some(k) = check {
        match compile(k, &Ctx { columns }, &mut b)? {
            Eval::Row(v) => conds.push(format!("({v})")),
            Eval::Aggregate(_) | Eval::Own | Eval::Catalog => {}
        }
        if k.rule == "matchesPattern" {
            // the source compiles the regular expression
            let mut bb = Binds::default();
            let v = bb.push(text_of(&k.properties["pattern"]));
            client
                .query_one(&format!("SELECT '' ~ {v}"), &bb.refs())
                .await
                .map_err(|e| format!("properties.pattern: {}", db_message(&e)))?;
        }
    }
    if conds.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "EXPLAIN SELECT 1 FROM {rel} AS t WHERE {}",
        conds.join(" AND ")
    );
    let types = vec![tokio_postgres::types::Type::TEXT; b.0.len()];
    let stmt = client
        .prepare_typed(&sql, &types)
        .await
        .map_err(|e| db_message(&e))?;
    client
        .query(&stmt, &b.refs())
        .await
        .map(|_| ())
        .map_err(|e| db_message(&e))
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
