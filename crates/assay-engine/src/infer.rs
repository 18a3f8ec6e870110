//! Check inference from field profiles. Each inference level includes the lower ones:
//! low (1): notNull, notNegative, notFuture, expectedValues, expectedSchema, isType (text that holds one type);
//! medium (2): between / betweenTimes, minLength / maxLength, matchesPattern / containsEmail, unique, volumetric;
//! high (3): minValue / maxValue, afterDateTime / beforeDateTime;
//! max (5): shape variants with coverage below 100 % for notNull, containsEmail / matchesPattern.
//!
//! Every threshold is one the profiled data passes, and the checks are meant to keep passing while a healthy
//! table grows with rows like its existing ones:
//! - **Growing fields** (sequence keys, incremental fields, dense integer keys, numbers whose values ascend in
//!   the table's physical order, and instants all in the past, which `notFuture` bounds above) get lower
//!   bounds only: tomorrow's rows do not fail today's maximum.
//! - **Bounds elsewhere are widened** by the distribution's own spread instead of sitting on the observed
//!   extremes: 1.5 interquartile ranges, or twice the distance from the 1st/99th percentile to the extreme when
//!   the tail is longer (a heavy tail's next maximum lands further out); for a positive right-skewed field the
//!   upper tail is extended on the log scale, since its next maximum is a multiple of this one. Lengths that
//!   vary get a quarter of their range on each side; fixed lengths stay exact.
//! - **Uniqueness** is inferred for the single-column primary key and for fields the caller confirmed unique
//!   with an exact count on the source (a distinct estimate alone cannot prove it).
//! - **Formats**: a text field whose values all share one code shape (`PR-000123456`) gets `matchesPattern`.
//!
//! [`validate`] then holds each candidate against a profile of rows it was not inferred from (the newest
//! pages), and says why it fails there.

use crate::profile::FieldProfile;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    /// Stable identity across profiles: rule and fields.
    pub key: String,
    pub rule: &'static str,
    pub fields: Vec<String>,
    pub coverage: Option<f64>,
    pub properties: Value,
    pub description: String,
}

/// What the caller knows about the table besides its field profiles.
#[derive(Debug, Clone, Default)]
pub struct Hints<'a> {
    /// Rows profiled.
    pub rows: u64,
    /// The inference level, 0–5.
    pub level: u8,
    /// The current instant, RFC 3339 (for notFuture).
    pub now_iso: &'a str,
    /// A sample was profiled: rules that need every row (unique) are left out.
    pub sampled: bool,
    /// The single-column primary key.
    pub key: Option<&'a str>,
    /// Fields known to grow as rows arrive (sequence-backed keys, incremental fields).
    pub growing: &'a [&'a str],
    /// Fields confirmed unique by an exact count on the source.
    pub unique: &'a [&'a str],
}

fn check(
    rule: &'static str,
    field: &str,
    properties: Value,
    coverage: Option<f64>,
    description: String,
) -> Inferred {
    Inferred {
        key: format!("{rule}:{field}"),
        rule,
        fields: vec![field.to_string()],
        coverage,
        properties,
        description,
    }
}

/// Coverage below 1, rounded down to a percent, so that the data passes.
fn floor_cov(x: f64) -> f64 {
    (x * 100.0).floor() / 100.0
}

const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// A profile's number or instant (microseconds) as a number.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_micros() as f64),
        _ => None,
    }
}

/// The profile's quantile `key` (`p01`, `p25`, ...) as a number.
fn quantile(p: &FieldProfile, key: &str) -> Option<f64> {
    p.quantiles.as_ref().and_then(|q| number(&q[key]))
}

/// Share of ascending adjacent pairs above which a number grows with the table: one step back per thousand
/// (a value that cycles, like `i % 200`, steps back once per cycle and stays below).
const ASCENDING: f64 = 0.999;

/// Why the field needs no upper bound, if it needs none: it is named by the caller as growing, it is a dense
/// integer key (distinct, filling its range), a number ascending in the table's physical order (and not a
/// handful of repeated values), or an instant whose values are all in the past (`notFuture` bounds it above:
/// a timestamp's newest rows are its latest, whatever the order they were written in).
fn unbounded_above(p: &FieldProfile, hints: &Hints) -> Option<&'static str> {
    let values = (p.records - p.nulls) as f64;
    let distinct = p.approximate_distinct_values.unwrap_or(0.0);
    let (min, max) = (
        p.min.as_ref().and_then(number),
        p.max.as_ref().and_then(number),
    );
    let dense_key = p.field_type == "Integral"
        && p.nulls == 0
        && p.unique_distinct_ratio.is_some_and(|r| r >= 0.97)
        && matches!((min, max), (Some(lo), Some(hi)) if hi - lo + 1.0 <= 1.5 * values);
    let ascending = p.ascending_ratio.is_some_and(|r| r >= ASCENDING) && distinct >= 0.1 * values;
    let temporal = matches!(p.field_type.as_str(), "Date" | "Timestamp");
    let now = number(&Value::String(hints.now_iso.to_string()));
    let past = temporal && matches!((max, now), (Some(m), Some(n)) if m <= n);
    if hints.growing.contains(&p.name.as_str()) {
        Some("it grows as rows arrive")
    } else if dense_key {
        Some("a dense key, it grows as rows arrive")
    } else if ascending {
        Some("its values ascend in the order rows were written, so it grows as rows arrive")
    } else if past {
        Some("every value is in the past, and notFuture bounds it above")
    } else {
        None
    }
}

/// The range new values may take: the observed extremes widened by the spread (see the module header), never
/// below zero for a field that has no negatives, and whole for integers.
fn widened(p: &FieldProfile, min: f64, max: f64) -> (f64, f64) {
    let q = |k| quantile(p, k);
    let iqr = match (q("p25"), q("p75")) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let tail_hi = q("p99").map_or(0.0, |p99| max - p99);
    let tail_lo = q("p01").map_or(0.0, |p01| p01 - min);
    let mut lo = min - (1.5 * iqr).max(2.0 * tail_lo);
    let mut hi = max + (1.5 * iqr).max(2.0 * tail_hi);
    // a positive, right-skewed field (amounts, durations) has a multiplicative tail: its next maximum is a
    // multiple of this one, so the tail is extended on the log scale
    if min > 0.0
        && p.skewness.is_some_and(|k| k > 1.0)
        && let Some(p99) = q("p99").filter(|v| *v > 0.0)
    {
        let (l99, lmax) = (p99.ln(), max.ln());
        hi = hi.max((lmax + 2.0 * (lmax - l99)).exp());
    }
    if min >= 0.0 {
        lo = lo.max(0.0);
    }
    if p.field_type == "Integral" {
        (lo, hi) = (lo.floor(), hi.ceil());
    }
    (lo.min(min), hi.max(max))
}

/// Length bounds: exact when every value has one length, else a quarter of the range wider on each side (a
/// minimum of 0 says nothing and is left out).
fn length_bounds(lo: u64, hi: u64) -> (Option<u64>, u64) {
    if lo == hi {
        return (Some(lo), hi);
    }
    let m = (hi - lo).div_ceil(4).max(1);
    let min = lo.saturating_sub(m).max(1);
    ((lo > 0).then_some(min), hi + m)
}

/// Infers checks for one container from its field profiles (in column order).
pub fn infer(profiles: &[FieldProfile], hints: &Hints) -> Vec<Inferred> {
    let mut out = Vec::new();
    if hints.level == 0 || hints.rows == 0 {
        return out;
    }
    let names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
    out.push(Inferred {
        key: "expectedSchema".into(),
        rule: "expectedSchema",
        fields: Vec::new(),
        coverage: None,
        properties: json!({"list": names, "allow_other_fields": false}),
        description: "The table keeps these fields".into(),
    });
    if hints.level >= 2 {
        out.push(Inferred {
            key: "volumetric".into(),
            rule: "volumetric",
            fields: Vec::new(),
            coverage: None,
            properties: json!({"comparison": "Percentage Change", "min": -50, "max": 75}),
            description:
                "The rows scanned change by less than half down or three quarters up from one scan to the next"
                    .into(),
        });
    }
    for p in profiles {
        low(p, hints, &mut out);
        if hints.level >= 2 && p.records > p.nulls {
            bounds(p, hints, &mut out);
            text(p, hints, &mut out);
            unique(p, hints, &mut out);
        }
    }
    out
}

/// Level 1: completeness, signs, the future, known values, types held in text.
fn low(p: &FieldProfile, hints: &Hints, out: &mut Vec<Inferred>) {
    let f = p.name.as_str();
    let values = p.records - p.nulls;
    let numeric = matches!(p.field_type.as_str(), "Integral" | "Fractional");
    let temporal = matches!(p.field_type.as_str(), "Date" | "Timestamp");
    if p.nulls == 0 {
        out.push(check(
            "notNull",
            f,
            json!({}),
            None,
            format!("{f} is never null"),
        ));
    } else if hints.level >= 5 && p.completeness >= 0.5 {
        let cov = floor_cov(p.completeness);
        out.push(check(
            "notNull",
            f,
            json!({}),
            Some(cov),
            format!("{f} is filled in at least {:.0}% of rows", cov * 100.0),
        ));
    }
    if values == 0 {
        return;
    }
    if numeric && p.negatives == Some(0) && p.non_finite == 0 {
        out.push(check(
            "notNegative",
            f,
            json!({}),
            None,
            format!("{f} is never negative"),
        ));
    }
    if temporal
        && let Some(Value::String(max)) = &p.max
        && max.as_str() <= hints.now_iso
    {
        out.push(check(
            "notFuture",
            f,
            json!({}),
            None,
            format!("{f} is never in the future"),
        ));
    }
    if let Some(top) = &p.top_values {
        let distinct = top.len();
        if distinct > 0
            && distinct <= 20
            && values >= 10 * distinct as u64
            && p.field_type != "Boolean"
        {
            let list: Vec<Value> = top.iter().map(|t| t["value"].clone()).collect();
            out.push(check(
                "expectedValues",
                f,
                json!({"list": list}),
                None,
                format!("{f} takes one of {distinct} known values"),
            ));
        }
    }
    if let Some(Value::Object(shares)) = &p.type_inference {
        let single = shares
            .iter()
            .find(|(_, v)| v.as_f64().is_some_and(|v| v >= 1.0))
            .map(|(k, _)| k.as_str());
        let ft = match single {
            Some("integral") => Some("Integral"),
            Some("fractional") => Some("Fractional"),
            Some("boolean") => Some("Boolean"),
            Some("date") => Some("Date"),
            Some("timestamp") => Some("Timestamp"),
            _ => None,
        };
        if let Some(ft) = ft {
            out.push(check(
                "isType",
                f,
                json!({"field_type": ft}),
                None,
                format!("{f} holds {ft} values"),
            ));
        }
    }
}

/// Levels 2 and 3: value ranges, lower bounds only for growing fields.
fn bounds(p: &FieldProfile, hints: &Hints, out: &mut Vec<Inferred>) {
    let f = p.name.as_str();
    let numeric = matches!(p.field_type.as_str(), "Integral" | "Fractional");
    let temporal = matches!(p.field_type.as_str(), "Date" | "Timestamp");
    if !(numeric || temporal) {
        return;
    }
    let (Some(min_v), Some(max_v)) = (&p.min, &p.max) else {
        return;
    };
    let (Some(min), Some(max)) = (number(min_v), number(max_v)) else {
        return;
    };
    let show = |x: f64| {
        if temporal {
            crate::profile::iso(x)
        } else {
            json!(x)
        }
    };
    if let Some(reason) = unbounded_above(p, hints) {
        let why = format!("{reason}: a lower bound only");
        out.push(if numeric {
            check(
                "minValue",
                f,
                json!({"value": min, "inclusive": true}),
                None,
                format!("{f} is at least {min} ({why})"),
            )
        } else {
            check(
                "afterDateTime",
                f,
                json!({"datetime": min_v}),
                None,
                format!(
                    "{f} is not before {} ({why})",
                    min_v.as_str().unwrap_or_default()
                ),
            )
        });
        return;
    }
    let (lo, hi) = widened(p, min, max);
    let (lo_v, hi_v) = (show(lo), show(hi));
    let observed = format!(
        "observed {} to {}, widened by the spread of its values",
        text_of(min_v),
        text_of(max_v)
    );
    out.push(if numeric {
        check(
            "between",
            f,
            json!({"min": lo, "inclusive_min": true, "max": hi, "inclusive_max": true}),
            None,
            format!("{f} lies between {lo} and {hi} ({observed})"),
        )
    } else {
        check(
            "betweenTimes",
            f,
            json!({"min_time": lo_v, "max_time": hi_v}),
            None,
            format!(
                "{f} lies between {} and {} ({observed})",
                text_of(&lo_v),
                text_of(&hi_v)
            ),
        )
    });
    if hints.level < 3 {
        return;
    }
    if numeric {
        out.push(check(
            "minValue",
            f,
            json!({"value": lo, "inclusive": true}),
            None,
            format!("{f} is at least {lo}"),
        ));
        out.push(check(
            "maxValue",
            f,
            json!({"value": hi, "inclusive": true}),
            None,
            format!("{f} is at most {hi}"),
        ));
    } else {
        out.push(check(
            "afterDateTime",
            f,
            json!({"datetime": lo_v}),
            None,
            format!("{f} is not before {}", text_of(&lo_v)),
        ));
        out.push(check(
            "beforeDateTime",
            f,
            json!({"datetime": hi_v}),
            None,
            format!("{f} is not after {}", text_of(&hi_v)),
        ));
    }
}

/// A profile value as people read it: text unquoted, whole numbers without a fraction.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Level 2 for text: lengths, e-mails, UUIDs and code shapes.
fn text(p: &FieldProfile, hints: &Hints, out: &mut Vec<Inferred>) {
    let f = p.name.as_str();
    let (Some(lo), Some(hi)) = (p.min_length, p.max_length) else {
        return;
    };
    let (min, max) = length_bounds(lo, hi);
    if let Some(min) = min {
        out.push(check(
            "minLength",
            f,
            json!({"value": min}),
            None,
            format!("{f} has at least {min} characters (observed {lo})"),
        ));
    }
    out.push(check(
        "maxLength",
        f,
        json!({"value": max}),
        None,
        format!("{f} has at most {max} characters (observed {hi})"),
    ));
    let share = |k: &str| match &p.type_inference {
        Some(Value::Object(m)) => m.get(k).and_then(Value::as_f64).unwrap_or(0.0),
        _ => 0.0,
    };
    let (email, uuid) = (share("email"), share("uuid"));
    if email >= 1.0 || (hints.level >= 5 && email >= 0.9) {
        let cov = (email < 1.0).then(|| floor_cov(email));
        out.push(check(
            "containsEmail",
            f,
            json!({}),
            cov,
            format!("{f} holds e-mail addresses"),
        ));
    }
    if uuid >= 1.0 || (hints.level >= 5 && uuid >= 0.9) {
        let cov = (uuid < 1.0).then(|| floor_cov(uuid));
        out.push(check(
            "matchesPattern",
            f,
            json!({"pattern": UUID_PATTERN}),
            cov,
            format!("{f} holds UUIDs"),
        ));
    } else if let Some(shape) = &p.shape
        && email < 0.9
        && p.approximate_distinct_values.is_some_and(|d| d > 20.0)
    {
        let pattern = shape.pattern();
        out.push(check(
            "matchesPattern",
            f,
            json!({"pattern": pattern}),
            None,
            format!("{f} has one shape in every row: {pattern}"),
        ));
    }
}

/// Level 2: uniqueness of the key and of the fields confirmed unique on the source.
fn unique(p: &FieldProfile, hints: &Hints, out: &mut Vec<Inferred>) {
    let f = p.name.as_str();
    if hints.sampled {
        return;
    }
    let key =
        hints.key == Some(f) && p.nulls == 0 && p.unique_distinct_ratio.is_some_and(|r| r >= 0.97);
    if key || hints.unique.contains(&f) {
        let why = if key {
            "the primary key"
        } else {
            "confirmed by an exact count of its distinct values"
        };
        out.push(check(
            "unique",
            f,
            json!({}),
            None,
            format!("{f} is unique ({why})"),
        ));
    }
}

/// Whether a candidate inferred from `trained` holds on `held`, the profile of rows it was not inferred from;
/// `Err` says why not.
pub fn validate(
    c: &Inferred,
    trained: &FieldProfile,
    held: &FieldProfile,
    now_iso: &str,
) -> Result<(), String> {
    let values = held.records - held.nulls;
    let p = &c.properties;
    let fail = |why: String| Err(format!("the newest rows do not pass it: {why}"));
    let below = |bound: &Value, inclusive: bool| -> Option<bool> {
        let (b, m) = (number(bound)?, number(held.min.as_ref()?)?);
        Some(if inclusive { m < b } else { m <= b })
    };
    let above = |bound: &Value, inclusive: bool| -> Option<bool> {
        let (b, m) = (number(bound)?, number(held.max.as_ref()?)?);
        Some(if inclusive { m > b } else { m >= b })
    };
    let held_min = || held.min.as_ref().map(text_of).unwrap_or_default();
    let held_max = || held.max.as_ref().map(text_of).unwrap_or_default();
    match c.rule {
        "notNull" => {
            let need = c.coverage.unwrap_or(1.0);
            if held.completeness < need {
                return fail(format!("{} of {} are null", held.nulls, held.records));
            }
        }
        _ if values == 0 => {}
        "notNegative" if held.negatives.is_some_and(|n| n > 0) => {
            return fail(format!("{} negative values", held.negatives.unwrap_or(0)));
        }
        "notFuture"
            if held
                .max
                .as_ref()
                .and_then(Value::as_str)
                .is_some_and(|m| m > now_iso) =>
        {
            return fail(format!("a value in the future, {}", held_max()));
        }
        "expectedValues" => {
            let list = p["list"].as_array().cloned().unwrap_or_default();
            match &held.top_values {
                None => return fail("more distinct values than the list holds".into()),
                Some(top) => {
                    if let Some(v) = top.iter().map(|t| &t["value"]).find(|v| !list.contains(v)) {
                        return fail(format!("the value {} is not in the list", text_of(v)));
                    }
                }
            }
        }
        "between" => {
            let lo = below(&p["min"], true).unwrap_or(false);
            let hi = above(&p["max"], true).unwrap_or(false);
            if lo || hi {
                return fail(format!("values from {} to {}", held_min(), held_max()));
            }
        }
        "betweenTimes" => {
            let lo = below(&p["min_time"], true).unwrap_or(false);
            let hi = above(&p["max_time"], true).unwrap_or(false);
            if lo || hi {
                return fail(format!("values from {} to {}", held_min(), held_max()));
            }
        }
        "minValue" if below(&p["value"], true).unwrap_or(false) => {
            return fail(format!("a value of {}", held_min()));
        }
        "maxValue" if above(&p["value"], true).unwrap_or(false) => {
            return fail(format!("a value of {}", held_max()));
        }
        "afterDateTime" if below(&p["datetime"], true).unwrap_or(false) => {
            return fail(format!("a value of {}", held_min()));
        }
        "beforeDateTime" if above(&p["datetime"], true).unwrap_or(false) => {
            return fail(format!("a value of {}", held_max()));
        }
        "minLength"
            if held
                .min_length
                .is_some_and(|l| p["value"].as_u64().is_some_and(|v| l < v)) =>
        {
            return fail(format!(
                "a value of {} characters",
                held.min_length.unwrap_or(0)
            ));
        }
        "maxLength"
            if held
                .max_length
                .is_some_and(|l| p["value"].as_u64().is_some_and(|v| l > v)) =>
        {
            return fail(format!(
                "a value of {} characters",
                held.max_length.unwrap_or(0)
            ));
        }
        "matchesPattern" if p["pattern"] != UUID_PATTERN => {
            let admitted = match (&trained.shape, &held.shape) {
                (Some(t), Some(h)) => t.admits(h),
                _ => false,
            };
            if !admitted {
                return fail(format!(
                    "values of other shapes than {}",
                    p["pattern"].as_str().unwrap_or_default()
                ));
            }
        }
        "containsEmail" | "matchesPattern" => {
            let kind = if c.rule == "containsEmail" {
                "email"
            } else {
                "uuid"
            };
            let share = match &held.type_inference {
                Some(Value::Object(m)) => m.get(kind).and_then(Value::as_f64).unwrap_or(0.0),
                _ => 0.0,
            };
            if share < c.coverage.unwrap_or(1.0) {
                return fail(format!("{:.1}% of values are of that kind", share * 100.0));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;
    use crate::profile::finalize;
    use crate::state::FieldState;

    const NOW: &str = "2026-11-25T00:00:00Z";

    fn profile(kind: Kind, ft: &str, name: &str, vals: &[Option<Vec<u8>>]) -> FieldProfile {
        let mut s = FieldState::new(kind);
        for v in vals {
            s.add(v.as_deref());
        }
        finalize(name, ft, &s, None)
    }

    fn ints(name: &str, xs: impl IntoIterator<Item = i64>) -> FieldProfile {
        let vals: Vec<Option<Vec<u8>>> = xs
            .into_iter()
            .map(|i| Some(i.to_be_bytes().to_vec()))
            .collect();
        profile(Kind::Int8, "Integral", name, &vals)
    }

    fn texts(name: &str, xs: impl IntoIterator<Item = String>) -> FieldProfile {
        let vals: Vec<Option<Vec<u8>>> = xs.into_iter().map(|s| Some(s.into_bytes())).collect();
        profile(Kind::Text, "String", name, &vals)
    }

    /// A deterministic shuffle of 0..n (a step prime to n).
    fn shuffled(n: i64) -> Vec<i64> {
        (0..n).map(|i| (i * 7919 + 13) % n).collect()
    }

    fn hints<'a>(rows: u64, level: u8) -> Hints<'a> {
        Hints {
            rows,
            level,
            now_iso: NOW,
            ..Hints::default()
        }
    }

    fn keys(out: &[Inferred]) -> Vec<String> {
        out.iter().map(|c| c.key.clone()).collect()
    }

    #[test]
    fn levels_add_rules() {
        let status: Vec<String> = (0..100)
            .map(|i| ["a", "b", "c"][i % 3].to_string())
            .collect();
        let emails: Vec<String> = (0..100).map(|i| format!("u{i}@example.com")).collect();
        let ps = vec![
            ints("amount", shuffled(100).into_iter().map(|x| x % 50 + 1)),
            texts("status", status),
            texts("email", emails),
        ];
        assert!(infer(&ps, &hints(100, 0)).is_empty());
        let low = keys(&infer(&ps, &hints(100, 1)));
        for k in [
            "expectedSchema",
            "notNull:amount",
            "notNegative:amount",
            "expectedValues:status",
        ] {
            assert!(low.contains(&k.to_string()), "{k} in {low:?}");
        }
        assert!(!low.iter().any(|k| k.starts_with("between")), "{low:?}");
        let medium = keys(&infer(&ps, &hints(100, 2)));
        for k in [
            "between:amount",
            "maxLength:status",
            "containsEmail:email",
            "volumetric",
        ] {
            assert!(medium.contains(&k.to_string()), "{k} in {medium:?}");
        }
        assert!(!medium.contains(&"maxValue:amount".to_string()));
        let high = keys(&infer(&ps, &hints(100, 3)));
        assert!(high.contains(&"maxValue:amount".to_string()), "{high:?}");
    }

    #[test]
    fn the_volumetric_check_follows_change_not_a_fixed_count() {
        let ps = vec![ints("amount", shuffled(100))];
        let v = infer(&ps, &hints(100, 2))
            .into_iter()
            .find(|c| c.rule == "volumetric")
            .unwrap();
        assert_eq!(v.properties["comparison"], "Percentage Change");
        assert_eq!(
            (v.properties["min"].as_i64(), v.properties["max"].as_i64()),
            (Some(-50), Some(75))
        );
    }

    #[test]
    fn named_growing_fields_get_lower_bounds_only() {
        let ps = vec![ints("n", shuffled(1000).into_iter().map(|x| x * 3))];
        let named = Hints {
            growing: &["n"],
            ..hints(1000, 5)
        };
        let k = keys(&infer(&ps, &named));
        assert!(k.contains(&"minValue:n".to_string()), "{k:?}");
        assert!(
            !k.iter().any(|k| k == "between:n" || k == "maxValue:n"),
            "{k:?}"
        );
        // not named, not ascending, not dense: bounded above
        let k = keys(&infer(&ps, &hints(1000, 5)));
        assert!(k.contains(&"between:n".to_string()), "{k:?}");
    }

    #[test]
    fn values_ascending_in_physical_order_grow() {
        // sparse (not a dense key) but written in increasing order, with one out of place
        let xs: Vec<i64> = (0..2000)
            .map(|i| if i == 1000 { 7 } else { i * 5 })
            .collect();
        let p = ints("seq", xs);
        assert!(
            p.ascending_ratio.unwrap() > 0.999,
            "{:?}",
            p.ascending_ratio
        );
        let k = keys(&infer(&[p], &hints(2000, 2)));
        assert!(k.contains(&"minValue:seq".to_string()), "{k:?}");
        assert!(!k.contains(&"between:seq".to_string()), "{k:?}");
        // a value that cycles steps back once a cycle: bounded
        let cycling = ints("amount", (0..2000).map(|i| i % 200));
        assert!(cycling.ascending_ratio.unwrap() > 0.99);
        let k = keys(&infer(&[cycling], &hints(2000, 2)));
        assert!(k.contains(&"between:amount".to_string()), "{k:?}");
        // a handful of repeated values in order is a sorted category, not growth
        let sorted_category = ints("tier", (0..1000).map(|i| i / 400));
        let k = keys(&infer(&[sorted_category], &hints(1000, 2)));
        assert!(k.contains(&"between:tier".to_string()), "{k:?}");
    }

    #[test]
    fn instants_all_in_the_past_get_a_lower_bound_and_not_future() {
        let stamp = |us: i64| Some((us - crate::kind::PG_EPOCH_MICROS).to_be_bytes().to_vec());
        let day = 86_400_000_000i64;
        let base = 1_767_225_600_000_000i64; // 2026-01-01
        // written in no order at all
        let past: Vec<Option<Vec<u8>>> = (0..500)
            .map(|i| stamp(base + (i * 7919 % 500) * day / 10))
            .collect();
        let p = profile(Kind::Timestamp, "Timestamp", "paid_at", &past);
        let k = keys(&infer(&[p], &hints(500, 3)));
        for want in ["notFuture:paid_at", "afterDateTime:paid_at"] {
            assert!(k.contains(&want.to_string()), "{want} in {k:?}");
        }
        assert!(
            !k.iter()
                .any(|k| k == "betweenTimes:paid_at" || k == "beforeDateTime:paid_at"),
            "{k:?}"
        );
        // instants reaching past now (due dates) keep a widened range
        let due: Vec<Option<Vec<u8>>> = (0..500)
            .map(|i| stamp(base + (i * 7919 % 500) * day))
            .collect();
        let p = profile(Kind::Timestamp, "Timestamp", "due", &due);
        let k = keys(&infer(&[p], &hints(500, 2)));
        assert!(k.contains(&"betweenTimes:due".to_string()), "{k:?}");
        assert!(!k.contains(&"notFuture:due".to_string()), "{k:?}");
    }

    #[test]
    fn dense_integer_keys_grow_whatever_their_order() {
        let p = ints("id", shuffled(1000).into_iter().map(|x| x + 1));
        assert!(p.ascending_ratio.unwrap() < 0.9);
        let k = keys(&infer(&[p], &hints(1000, 2)));
        assert!(k.contains(&"minValue:id".to_string()), "{k:?}");
        assert!(!k.contains(&"between:id".to_string()), "{k:?}");
    }

    #[test]
    fn bounds_are_widened_by_the_spread_and_stay_whole_and_non_negative() {
        // 1..=100 three times, shuffled: IQR about 50, so 75 each side; the lower bound stops at 0
        let p = ints("qty", shuffled(300).into_iter().map(|x| x % 100 + 1));
        let b = infer(&[p], &hints(300, 2))
            .into_iter()
            .find(|c| c.rule == "between")
            .unwrap();
        let (lo, hi) = (
            b.properties["min"].as_f64().unwrap(),
            b.properties["max"].as_f64().unwrap(),
        );
        assert_eq!(lo, 0.0);
        assert!((170.0..=180.0).contains(&hi), "{hi}");
        assert_eq!(hi.fract(), 0.0);
        assert!(
            b.description.contains("observed 1 to 100"),
            "{}",
            b.description
        );
        // a heavy tail widens by twice its last percent
        let mut xs: Vec<i64> = shuffled(1000).into_iter().map(|x| x % 10).collect();
        xs.extend([500, 1000]);
        let b = infer(&[ints("amount", xs)], &hints(1002, 2))
            .into_iter()
            .find(|c| c.rule == "between")
            .unwrap();
        assert!(
            b.properties["max"].as_f64().unwrap() >= 1000.0 + 2.0 * (1000.0 - 9.0) - 1.0,
            "{b:?}"
        );
    }

    #[test]
    fn a_positive_right_skewed_tail_is_extended_on_the_log_scale() {
        // amounts growing by a factor: e^(k/100), in no order, skewed right
        let xs: Vec<i64> = shuffled(1000)
            .into_iter()
            .map(|k| ((k as f64 / 150.0).exp() * 10.0).round() as i64)
            .collect();
        let p = ints("amount", xs);
        assert!(p.skewness.unwrap() > 1.0, "{:?}", p.skewness);
        let (max, p99) = (
            number(p.max.as_ref().unwrap()).unwrap(),
            quantile(&p, "p99").unwrap(),
        );
        let b = infer(std::slice::from_ref(&p), &hints(1000, 2))
            .into_iter()
            .find(|c| c.rule == "between")
            .unwrap();
        let hi = b.properties["max"].as_f64().unwrap();
        let log_extended = (max.ln() + 2.0 * (max.ln() - p99.ln())).exp();
        assert!(hi >= log_extended.floor(), "{hi} < {log_extended}");
        assert!(
            hi > max + 2.0 * (max - p99),
            "the log scale reaches further: {hi}"
        );
    }

    #[test]
    fn lengths_that_vary_get_a_margin_and_fixed_lengths_stay_exact() {
        assert_eq!(length_bounds(12, 12), (Some(12), 12));
        assert_eq!(length_bounds(3, 20), (Some(1), 25));
        assert_eq!(length_bounds(0, 8), (None, 10));
        let names: Vec<String> = (0..100).map(|i| "x".repeat(3 + i % 18)).collect();
        let k = infer(&[texts("name", names)], &hints(100, 2));
        let max = k.iter().find(|c| c.rule == "maxLength").unwrap();
        assert_eq!(max.properties["value"], 25);
    }

    #[test]
    fn codes_of_one_shape_get_a_pattern_and_free_text_does_not() {
        let codes: Vec<String> = (0..200).map(|i| format!("PR-{:09}", i * 7)).collect();
        let out = infer(&[texts("ref", codes)], &hints(200, 2));
        let m = out.iter().find(|c| c.rule == "matchesPattern").unwrap();
        assert_eq!(m.properties["pattern"], r"^[A-Z]{2}\-[0-9]{9}$");
        let words: Vec<String> = (0..200)
            .map(|i| format!("note {} of {}", i, "z".repeat(i % 7)))
            .collect();
        assert!(
            !infer(&[texts("note", words)], &hints(200, 2))
                .iter()
                .any(|c| c.rule == "matchesPattern")
        );
        // a category of a few codes is a list, not a pattern
        let few: Vec<String> = (0..200).map(|i| format!("T-{}", i % 3)).collect();
        assert!(
            !infer(&[texts("t", few)], &hints(200, 2))
                .iter()
                .any(|c| c.rule == "matchesPattern")
        );
    }

    #[test]
    fn unique_needs_the_key_or_an_exact_confirmation_and_every_row() {
        let ps = vec![
            ints("id", shuffled(100)),
            texts("ref", (0..100).map(|i| format!("R{i}"))),
        ];
        let k = keys(&infer(&ps, &hints(100, 2)));
        assert!(!k.iter().any(|k| k.starts_with("unique")), "{k:?}");
        let confirmed = Hints {
            unique: &["ref"],
            key: Some("id"),
            ..hints(100, 2)
        };
        let k = keys(&infer(&ps, &confirmed));
        assert!(
            k.contains(&"unique:ref".to_string()) && k.contains(&"unique:id".to_string()),
            "{k:?}"
        );
        let sampled = Hints {
            sampled: true,
            ..confirmed
        };
        assert!(
            !keys(&infer(&ps, &sampled))
                .iter()
                .any(|k| k.starts_with("unique"))
        );
    }

    #[test]
    fn validation_keeps_what_the_newest_rows_pass_and_says_why_the_rest_fails() {
        let trained = ints("qty", shuffled(300).into_iter().map(|x| x % 100 + 1));
        let cands = infer(std::slice::from_ref(&trained), &hints(300, 3));
        let between = cands.iter().find(|c| c.rule == "between").unwrap();
        // within the margin: kept
        let near = ints("qty", [5, 101, 120]);
        assert!(validate(between, &trained, &near, NOW).is_ok());
        // far outside: dropped, naming the values
        let far = ints("qty", [5, 900]);
        let why = validate(between, &trained, &far, NOW).unwrap_err();
        assert!(why.contains("900"), "{why}");
        // a value outside a list
        let status = texts("s", (0..100).map(|i| ["a", "b"][i % 2].to_string()));
        let list = infer(std::slice::from_ref(&status), &hints(100, 1))
            .into_iter()
            .find(|c| c.rule == "expectedValues")
            .unwrap();
        let newer = texts("s", ["a".to_string(), "c".to_string()]);
        assert!(
            validate(&list, &status, &newer, NOW)
                .unwrap_err()
                .contains("the value c")
        );
        // a pattern whose newest values have another shape
        let codes = texts("r", (0..100).map(|i| format!("AB-{:04}", i)));
        let pat = infer(std::slice::from_ref(&codes), &hints(100, 2))
            .into_iter()
            .find(|c| c.rule == "matchesPattern")
            .unwrap();
        assert!(validate(&pat, &codes, &texts("r", ["AB-0101".to_string()]), NOW).is_ok());
        assert!(validate(&pat, &codes, &texts("r", ["AB-01010".to_string()]), NOW).is_err());
        // nulls in a column that had none
        let nn = cands.iter().find(|c| c.rule == "notNull").unwrap();
        let with_null = profile(
            Kind::Int8,
            "Integral",
            "qty",
            &[None, Some(1i64.to_be_bytes().to_vec())],
        );
        assert!(validate(nn, &trained, &with_null, NOW).is_err());
    }
}
