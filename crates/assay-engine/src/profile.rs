//! Finalised field profiles: the metrics a user reads, computed from a [`FieldState`]. A metric that does not
//! apply to a field's type is absent and listed in `not_applicable`, never zero.

use crate::kind::{Family, Kind, PG_EPOCH_MICROS};
use crate::state::{FieldState, HLL_LG_K, Top};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldProfile {
    pub name: String,
    pub field_type: String,
    pub type_declared: bool,
    pub records: u64,
    pub nulls: u64,
    pub completeness: f64,
    pub approximate_distinct_values: Option<f64>,
    /// One standard error of the distinct estimate, relative.
    pub distinct_relative_error: Option<f64>,
    pub unique_distinct_ratio: Option<f64>,
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub mean: Option<f64>,
    pub std_dev: Option<f64>,
    pub sum: Option<f64>,
    pub skewness: Option<f64>,
    pub kurtosis: Option<f64>,
    pub quantiles: Option<Value>,
    pub median: Option<Value>,
    pub q1: Option<Value>,
    pub q3: Option<Value>,
    pub histogram_buckets: Option<Vec<Value>>,
    pub top_values: Option<Vec<Value>>,
    pub entropy: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub mean_length: Option<f64>,
    pub type_inference: Option<Value>,
    pub negatives: Option<u64>,
    pub zeros: Option<u64>,
    pub true_count: Option<u64>,
    pub non_finite: u64,
    pub not_applicable: Vec<String>,
    pub notes: Vec<String>,
    /// Numbers and instants: the share of adjacent values (in the table's physical order) that did not
    /// decrease; near 1 for a field that grows as rows are inserted.
    #[serde(default)]
    pub ascending_ratio: Option<f64>,
    /// Text: the one shape every value has, when it is a code (digits or punctuation besides letters).
    #[serde(default)]
    pub shape: Option<crate::shape::Skeleton>,
}

pub(crate) fn iso(us: f64) -> Value {
    let us = us as i64;
    match chrono::DateTime::from_timestamp_micros(us) {
        Some(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => Value::Null,
    }
}

/// `field_type` is Assay's type name (Integral, String, ...); `cast_note` says when values were read as text.
pub fn finalize(
    name: &str,
    field_type: &str,
    st: &FieldState,
    cast_note: Option<&str>,
) -> FieldProfile {
    let family = st.family();
    let values = st.values();
    let finite = values - st.non_finite - st.invalid;
    let mut na: Vec<&str> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    if let Some(n) = cast_note {
        notes.push(n.to_string());
    }
    if st.non_finite > 0 {
        notes.push(format!(
            "{} NaN or infinite values are left out of the statistics",
            st.non_finite
        ));
    }
    if st.invalid > 0 {
        notes.push(format!("{} values could not be decoded", st.invalid));
    }
    let numeric = family == Family::Number;
    let temporal = family == Family::Temporal;
    let ordered = numeric || temporal;
    let text = family == Family::Text;
    let show = |x: f64| if temporal { iso(x) } else { json!(x) };
    let distinct = (values > 0).then(|| st.distinct_estimate().round().min(values as f64));
    let q = |p: f64| {
        if ordered && finite > 0 {
            st.quantile(p).map(show)
        } else {
            None
        }
    };
    let quantiles = (ordered && finite > 0).then(
        || json!({"p01": q(0.01), "p25": q(0.25), "p50": q(0.5), "p75": q(0.75), "p99": q(0.99)}),
    );
    if !ordered {
        na.extend([
            "min",
            "max",
            "mean",
            "std_dev",
            "sum",
            "skewness",
            "kurtosis",
            "quantiles",
            "histogram_buckets",
        ]);
    }
    if !numeric {
        na.extend(["negatives", "zeros"]);
    }
    if temporal {
        na.extend(["sum", "skewness", "kurtosis"]);
    }
    if !text {
        na.extend(["min_length", "max_length", "mean_length", "type_inference"]);
    }
    if family != Family::Boolean {
        na.push("true_count");
    }
    let top = st.top.as_ref().map(|t| top_values(t, st, values));
    let entropy = st.top.as_ref().filter(|t| !t.is_empty()).map(|t| {
        let n: u64 = t.bits.values().chain(t.text.values()).sum();
        t.bits
            .values()
            .chain(t.text.values())
            .map(|c| *c as f64 / n as f64)
            .map(|p| -p * p.log2())
            .sum::<f64>()
    });
    if top.is_none() {
        na.push("top_values");
        na.push("entropy");
    }
    let std = st.moments.variance().map(f64::sqrt);
    FieldProfile {
        name: name.to_string(),
        field_type: field_type.to_string(),
        type_declared: cast_note.is_none() || st.kind != Kind::Text,
        records: st.count,
        nulls: st.nulls,
        completeness: if st.count == 0 {
            1.0
        } else {
            values as f64 / st.count as f64
        },
        approximate_distinct_values: distinct,
        distinct_relative_error: distinct.map(|_| 1.04 / f64::from(1u32 << HLL_LG_K).sqrt()),
        unique_distinct_ratio: distinct.map(|d| {
            if values == 0 {
                0.0
            } else {
                (d / values as f64).min(1.0)
            }
        }),
        min: if ordered { st.min.map(show) } else { None },
        max: if ordered { st.max.map(show) } else { None },
        mean: if ordered {
            (finite > 0)
                .then_some(st.moments.mean)
                .filter(|_| numeric || temporal)
        } else {
            None
        },
        std_dev: if ordered { std } else { None },
        sum: if numeric { Some(st.sum) } else { None },
        skewness: if numeric { st.moments.skewness() } else { None },
        kurtosis: if numeric { st.moments.kurtosis() } else { None },
        median: q(0.5),
        q1: q(0.25),
        q3: q(0.75),
        quantiles,
        histogram_buckets: if ordered {
            histogram(st, temporal)
        } else {
            None
        },
        top_values: top,
        entropy,
        min_length: if text { st.len_min } else { None },
        max_length: if text { st.len_max } else { None },
        mean_length: if text && values > 0 {
            Some(st.len_sum as f64 / values as f64)
        } else {
            None
        },
        type_inference: if text {
            Some(Value::Object(
                st.text_kind_shares()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect(),
            ))
        } else {
            None
        },
        negatives: numeric.then_some(st.negatives),
        zeros: numeric.then_some(st.zeros),
        true_count: (family == Family::Boolean).then_some(st.trues),
        non_finite: st.non_finite,
        not_applicable: na.into_iter().map(str::to_string).collect(),
        notes,
        ascending_ratio: if ordered { st.ascending_ratio() } else { None },
        shape: if text {
            st.all_shapes().single().filter(|k| k.is_code()).cloned()
        } else {
            None
        },
    }
    .with_temporal_mean(temporal)
}

impl FieldProfile {
    fn with_temporal_mean(mut self, temporal: bool) -> Self {
        if temporal {
            // a mean instant is shown as an instant
            self.std_dev = self.std_dev.map(|us| us / 1e6);
            if let Some(m) = self.mean {
                self.notes.push(format!("mean instant {}", iso(m)));
            }
            self.mean = None;
            self.not_applicable.push("mean".into());
        }
        self
    }
}

fn top_values(t: &Top, st: &FieldState, values: u64) -> Vec<Value> {
    let temporal = st.family() == Family::Temporal;
    let mut out: Vec<(Value, u64)> = Vec::new();
    for (bits, c) in &t.bits {
        let v = match st.family() {
            Family::Boolean => json!(*bits == 1),
            Family::Temporal => iso((*bits as i64) as f64),
            _ => json!(f64::from_bits(*bits)),
        };
        out.push((v, *c));
    }
    for (s, c) in &t.text {
        out.push((json!(s.as_ref()), *c));
    }
    let _ = temporal;
    out.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
    });
    out.into_iter()
        .map(|(v, c)| json!({"value": v, "count": c, "ratio": if values == 0 { 0.0 } else { c as f64 / values as f64 }}))
        .collect()
}

/// Ten equal-width buckets between min and max, counted from the quantile sketch.
fn histogram(st: &FieldState, temporal: bool) -> Option<Vec<Value>> {
    let (lo, hi) = (st.min?, st.max?);
    let n = st.moments.n as u64;
    if n == 0 {
        return None;
    }
    if lo == hi {
        return Some(vec![
            json!({"low": lo, "high": hi, "count": n, "ratio": 1.0}),
        ]);
    }
    const BUCKETS: usize = 10;
    let width = (hi - lo) / BUCKETS as f64;
    let splits: Vec<f64> = (1..BUCKETS).map(|i| lo + width * i as f64).collect();
    let cdf = st.cdf(&splits)?;
    let mut prev = 0.0;
    let mut out = Vec::with_capacity(BUCKETS);
    for (i, c) in cdf.iter().enumerate().take(BUCKETS) {
        let share = (c - prev).max(0.0);
        prev = *c;
        let (a, b) = (
            lo + width * i as f64,
            if i + 1 == BUCKETS {
                hi
            } else {
                lo + width * (i + 1) as f64
            },
        );
        let fmt = |x: f64| if temporal { iso(x) } else { json!(x) };
        out.push(json!({"low": fmt(a), "high": fmt(b), "count": (share * n as f64).round() as u64, "ratio": share}));
    }
    Some(out)
}

/// Microseconds since the Unix epoch of a PostgreSQL-epoch value (for callers that read raw instants).
pub fn unix_micros(pg_micros: i64) -> i64 {
    pg_micros + PG_EPOCH_MICROS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_applicable_metrics_are_absent_not_zero() {
        let mut st = FieldState::new(Kind::Text);
        for s in ["a@example.com", "b@example.com", "oops", "a@example.com"] {
            st.add(Some(s.as_bytes()));
        }
        st.add(None);
        let p = finalize("email", "String", &st, None);
        assert_eq!(p.completeness, 0.8);
        assert!(p.mean.is_none() && p.not_applicable.contains(&"mean".to_string()));
        assert_eq!(p.min_length, Some(4));
        assert_eq!(p.approximate_distinct_values, Some(3.0));
        assert_eq!(p.type_inference.as_ref().unwrap()["email"], 0.75);
        assert_eq!(p.top_values.as_ref().unwrap()[0]["value"], "a@example.com");
    }

    #[test]
    fn numbers_get_quantiles_and_histograms() {
        let mut st = FieldState::new(Kind::Int4);
        for i in -10..990i32 {
            st.add(Some(&i.to_be_bytes()));
        }
        let p = finalize("n", "Integral", &st, None);
        assert_eq!(p.negatives, Some(10));
        assert_eq!(p.zeros, Some(1));
        assert_eq!(p.min, Some(json!(-10.0)));
        let median = p.median.unwrap().as_f64().unwrap();
        assert!((median - 489.5).abs() < 15.0, "{median}");
        let h = p.histogram_buckets.unwrap();
        assert_eq!(h.len(), 10);
        let total: u64 = h.iter().map(|b| b["count"].as_u64().unwrap()).sum();
        assert!((990..=1010).contains(&total), "{total}");
        assert!(p.top_values.is_none() && p.not_applicable.contains(&"top_values".to_string()));
    }
}
