//! Compiling checks to SQL: the violation predicate of each rule over alias `t`, with every value a text
//! bind parameter cast to the column's type family, and the guard on user-written SQL fragments.

use super::*;

/// Functions a filter or expression may not call: they wait, cancel other sessions, reach other databases, or
/// change the session's own guards (read-only, statement timeout).
const REFUSED_FUNCTIONS: &[&str] = &[
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "set_config",
    "pg_cancel_backend",
    "pg_terminate_backend",
    "pg_reload_conf",
    "dblink",
    "dblink_exec",
    "dblink_connect",
    "dblink_send_query",
];

fn refused_name(word: &str) -> Result<(), String> {
    if REFUSED_FUNCTIONS.contains(&word) {
        return Err(format!(
            "{word} is not allowed in a filter or expression: checks may only read the row"
        ));
    }
    Ok(())
}

/// Rejects SQL fragments that could end the statement or hide the rest of it, and calls of functions that wait
/// or change the session.
pub fn check_sql_fragment(sql: &str) -> Result<(), String> {
    let mut depth = 0i32;
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    // inside E'...', where a backslash escapes the next character (E'\'' is one quote)
    let mut escapes = false;
    let mut quoted = String::new();
    let mut word = String::new();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if escapes && c == '\\' {
                chars.next();
                continue;
            }
            if c == q {
                if chars.peek() == Some(&q) {
                    chars.next();
                    quoted.push(c);
                } else {
                    quote = None;
                    if q == '"' {
                        refused_name(&quoted)?;
                    }
                }
            } else {
                quoted.push(c);
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        refused_name(&word.to_lowercase())?;
        let before = std::mem::take(&mut word);
        match c {
            '&' if before.eq_ignore_ascii_case("u") && chars.peek() == Some(&'"') => {
                return Err("Unicode-escaped identifiers (U&\"...\") are not allowed".into());
            }
            '\'' | '"' => {
                quote = Some(c);
                escapes = c == '\'' && before.eq_ignore_ascii_case("e");
                quoted.clear();
            }
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
    refused_name(&word.to_lowercase())?;
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
pub(super) struct Binds(pub(super) Vec<String>);

impl Binds {
    pub(super) fn push(&mut self, v: impl Into<String>) -> String {
        self.0.push(v.into());
        format!("${}::text", self.0.len())
    }
    pub(super) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|s| s as &(dyn ToSql + Sync)).collect()
    }
}

pub(super) fn cast_of(col: &ScanColumn) -> &'static str {
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
pub(super) fn cast_for(col: &ScanColumn, values: &[&str]) -> &'static str {
    match col.typname.as_str() {
        "int2" | "int4" | "int8" if values.iter().all(|v| v.trim().parse::<i64>().is_ok()) => {
            "int8"
        }
        "float4" | "float8" => "float8",
        _ => cast_of(col),
    }
}

pub(super) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) const EMAIL_RE: &str = "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}";
pub(super) const URL_RE: &str = "(https?|ftp)://[^[:space:]/$.?#][^[:space:]]*";
pub(super) const SSN_RE: &str = "(^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9]|$)";
pub(super) const CARD_RE: &str = "(^|[^0-9])[0-9]([ -]?[0-9]){12,18}([^0-9]|$)";

/// How one check is evaluated.
pub(super) enum Eval {
    /// A per-row violation predicate (over alias `t`).
    Row(String),
    /// An aggregate expression measured in the main pass, judged afterwards.
    Aggregate(String),
    /// Its own query.
    Own,
    /// Container-level, from the catalog.
    Catalog,
}

pub(super) struct Ctx<'a> {
    pub(super) columns: &'a [ScanColumn],
}

impl Ctx<'_> {
    pub(super) fn col(&self, name: &str) -> Result<&ScanColumn, String> {
        self.columns.iter().find(|c| c.name == name).ok_or_else(|| {
            format!("the field '{name}' no longer exists; run a sync and fix the check")
        })
    }
}

pub(super) fn c(name: &str) -> String {
    format!("t.{}", quote_ident(name))
}

pub(super) fn compile(k: &ScanCheck, ctx: &Ctx<'_>, b: &mut Binds) -> Result<Eval, String> {
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

#[cfg(test)]
mod fragment_tests {
    use super::check_sql_fragment;

    #[test]
    fn waiting_and_session_changing_calls_are_refused_in_any_spelling() {
        for bad in [
            "pg_sleep(1) IS NOT NULL",
            "PG_SLEEP (1) IS NULL",
            "pg_catalog.pg_sleep_for('1 s') IS NULL",
            "\"pg_sleep\"(1) IS NULL",
            "set_config('statement_timeout', '0', false) = '0'",
            "pg_terminate_backend(1)",
            "U&\"\\0070g_sleep\"(1) IS NULL",
            "x = E'\\'' OR true --'",
        ] {
            assert!(check_sql_fragment(bad).is_err(), "{bad}");
        }
        for good in [
            "sleep_minutes > 3",
            "note = 'pg_sleep(1)'",
            "\"my pg_sleep\" > 1",
            "x = E'\\'' AND y = 'a;b'",
            "a & b = 0",
        ] {
            assert_eq!(check_sql_fragment(good), Ok(()), "{good}");
        }
    }
}
