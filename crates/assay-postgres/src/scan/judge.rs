//! Judging measured values: comparisons, change against a baseline, and the words of failure messages.

use super::*;

pub(super) fn cmp_ok(comparison: &str, measured: f64, value: f64) -> bool {
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

pub(super) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

pub(super) fn describe_fields(k: &ScanCheck) -> String {
    if k.fields.is_empty() {
        "the container".into()
    } else {
        k.fields.join(", ")
    }
}

pub(super) fn describe_rule(k: &ScanCheck) -> String {
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

pub(super) fn judge_aggregate(k: &ScanCheck, asserted: i64, measured: Option<f64>) -> Outcome {
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
