//! Check inference from field profiles. Each inference level includes the lower ones:
//! low (1): notNull, notNegative, notFuture, expectedValues, expectedSchema, isType (text that holds one type);
//! medium (2): between / betweenTimes, minLength / maxLength, matchesPattern / containsEmail, unique, volumetric;
//! high (3): minValue / maxValue, afterDateTime / beforeDateTime;
//! max (5): shape variants with coverage below 100 % for notNull, containsEmail / matchesPattern.
//! Every threshold is one the profiled data passes.

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

/// Infers checks for one container from its field profiles (in column order) and its row count.
/// `now_iso` is the current instant (for notFuture); `sampled` suppresses rules that need every row (unique).
/// `key` is the single-column primary key, if any: the one field `unique` is inferred for, since a distinct
/// estimate alone cannot prove uniqueness. `growing` names the fields whose values grow as rows arrive (sequence
/// keys, incremental timestamps): they get lower bounds only, so tomorrow's rows do not fail today's maximum.
pub fn infer(
    profiles: &[FieldProfile],
    rows: u64,
    level: u8,
    now_iso: &str,
    sampled: bool,
    key: Option<&str>,
    growing: &[&str],
) -> Vec<Inferred> {
    let mut out = Vec::new();
    if level == 0 || rows == 0 {
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
    if level >= 2 {
        let (lo, hi) = (
            (rows as f64 * 0.5).floor() as u64,
            (rows as f64 * 1.5).ceil() as u64,
        );
        out.push(Inferred {
            key: "volumetric".into(),
            rule: "volumetric",
            fields: Vec::new(),
            coverage: None,
            properties: json!({"comparison": "Absolute Value", "min": lo, "max": hi}),
            description: format!("Row count stays between {lo} and {hi}"),
        });
    }
    for p in profiles {
        let f = p.name.as_str();
        let values = p.records - p.nulls;
        let numeric = matches!(p.field_type.as_str(), "Integral" | "Fractional");
        let temporal = matches!(p.field_type.as_str(), "Date" | "Timestamp");
        let text = p.min_length.is_some();
        // low
        if p.nulls == 0 {
            out.push(check(
                "notNull",
                f,
                json!({}),
                None,
                format!("{f} is never null"),
            ));
        } else if level >= 5 && p.completeness >= 0.5 {
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
            continue;
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
            && max.as_str() <= now_iso
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
                && !p.field_type.eq("Boolean")
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
            let single: Vec<(&String, f64)> = shares
                .iter()
                .filter_map(|(k, v)| Some((k, v.as_f64()?)))
                .filter(|(_, v)| *v >= 1.0)
                .collect();
            if let Some((kind, _)) = single.first() {
                let ft = match kind.as_str() {
                    "integral" => Some("Integral"),
                    "fractional" => Some("Fractional"),
                    "boolean" => Some("Boolean"),
                    "date" => Some("Date"),
                    "timestamp" => Some("Timestamp"),
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
        if level < 2 {
            continue;
        }
        // medium
        let grows = growing.contains(&f);
        if numeric && grows {
            if let Some(min) = p.min.as_ref().and_then(Value::as_f64) {
                out.push(check(
                    "minValue",
                    f,
                    json!({"value": min, "inclusive": true}),
                    None,
                    format!("{f} is at least {min}"),
                ));
            }
        } else if numeric
            && let (Some(min), Some(max)) = (
                p.min.as_ref().and_then(Value::as_f64),
                p.max.as_ref().and_then(Value::as_f64),
            )
        {
            out.push(check(
                "between",
                f,
                json!({"min": min, "inclusive_min": true, "max": max, "inclusive_max": true}),
                None,
                format!("{f} lies between {min} and {max}"),
            ));
            if level >= 3 {
                out.push(check(
                    "minValue",
                    f,
                    json!({"value": min, "inclusive": true}),
                    None,
                    format!("{f} is at least {min}"),
                ));
                out.push(check(
                    "maxValue",
                    f,
                    json!({"value": max, "inclusive": true}),
                    None,
                    format!("{f} is at most {max}"),
                ));
            }
        }
        if temporal && grows {
            if let Some(min) = &p.min {
                out.push(check(
                    "afterDateTime",
                    f,
                    json!({"datetime": min}),
                    None,
                    format!("{f} is not before {min}"),
                ));
            }
        } else if temporal && let (Some(min), Some(max)) = (&p.min, &p.max) {
            out.push(check(
                "betweenTimes",
                f,
                json!({"min_time": min, "max_time": max}),
                None,
                format!("{f} lies between {min} and {max}"),
            ));
            if level >= 3 {
                out.push(check(
                    "afterDateTime",
                    f,
                    json!({"datetime": min}),
                    None,
                    format!("{f} is not before {min}"),
                ));
                out.push(check(
                    "beforeDateTime",
                    f,
                    json!({"datetime": max}),
                    None,
                    format!("{f} is not after {max}"),
                ));
            }
        }
        if text {
            if let (Some(lo), Some(hi)) = (p.min_length, p.max_length) {
                out.push(check(
                    "minLength",
                    f,
                    json!({"value": lo}),
                    None,
                    format!("{f} has at least {lo} characters"),
                ));
                out.push(check(
                    "maxLength",
                    f,
                    json!({"value": hi}),
                    None,
                    format!("{f} has at most {hi} characters"),
                ));
            }
            if let Some(Value::Object(shares)) = &p.type_inference {
                let email = shares.get("email").and_then(Value::as_f64).unwrap_or(0.0);
                let uuid = shares.get("uuid").and_then(Value::as_f64).unwrap_or(0.0);
                if email >= 1.0 || (level >= 5 && email >= 0.9) {
                    let cov = (email < 1.0).then(|| floor_cov(email));
                    out.push(check(
                        "containsEmail",
                        f,
                        json!({}),
                        cov,
                        format!("{f} holds e-mail addresses"),
                    ));
                }
                if uuid >= 1.0 || (level >= 5 && uuid >= 0.9) {
                    let cov = (uuid < 1.0).then(|| floor_cov(uuid));
                    out.push(check(
                        "matchesPattern",
                        f,
                        json!({"pattern": UUID_PATTERN}),
                        cov,
                        format!("{f} holds UUIDs"),
                    ));
                }
            }
        }
        // the primary key, confirmed by the profile: every row filled and (within the estimate's error) distinct
        if !sampled
            && key == Some(f)
            && p.nulls == 0
            && p.unique_distinct_ratio.is_some_and(|r| r >= 0.97)
        {
            out.push(check(
                "unique",
                f,
                json!({}),
                None,
                format!("{f} is unique"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;
    use crate::profile::finalize;
    use crate::state::FieldState;

    fn profile(kind: Kind, ft: &str, name: &str, vals: &[Option<Vec<u8>>]) -> FieldProfile {
        let mut s = FieldState::new(kind);
        for v in vals {
            s.add(v.as_deref());
        }
        finalize(name, ft, &s, None)
    }

    #[test]
    fn levels_add_rules() {
        let ids: Vec<Option<Vec<u8>>> = (1..=100i64)
            .map(|i| Some(i.to_be_bytes().to_vec()))
            .collect();
        let status: Vec<Option<Vec<u8>>> = (0..100)
            .map(|i| Some(["a", "b", "c"][i % 3].as_bytes().to_vec()))
            .collect();
        let emails: Vec<Option<Vec<u8>>> = (0..100)
            .map(|i| {
                if i == 7 {
                    None
                } else if i == 8 {
                    Some(b"broken".to_vec())
                } else {
                    Some(format!("u{i}@example.com").into_bytes())
                }
            })
            .collect();
        let ps = vec![
            profile(Kind::Int8, "Integral", "id", &ids),
            profile(Kind::Text, "String", "status", &status),
            profile(Kind::Text, "String", "email", &emails),
        ];
        let rules = |lvl: u8| -> Vec<String> {
            infer(
                &ps,
                100,
                lvl,
                "2026-11-25T00:00:00Z",
                false,
                Some("id"),
                &[],
            )
            .iter()
            .map(|c| c.key.clone())
            .collect()
        };
        assert!(rules(0).is_empty());
        let low = rules(1);
        for k in [
            "expectedSchema",
            "notNull:id",
            "notNegative:id",
            "expectedValues:status",
            "notNull:status",
        ] {
            assert!(low.contains(&k.to_string()), "{k} in {low:?}");
        }
        assert!(!low.contains(&"between:id".to_string()));
        let medium = rules(2);
        for k in ["between:id", "unique:id", "minLength:status", "volumetric"] {
            assert!(medium.contains(&k.to_string()), "{k} in {medium:?}");
        }
        assert!(
            !medium.contains(&"containsEmail:email".to_string()),
            "98 of 99 is not all"
        );
        assert!(!medium.contains(&"notNull:email".to_string()));
        let max = infer(&ps, 100, 5, "2026-11-25T00:00:00Z", false, Some("id"), &[]);
        assert!(
            !max.iter()
                .any(|c| c.rule == "unique" && c.fields[0] != "id"),
            "only the key is unique"
        );
        let email = max.iter().find(|c| c.key == "containsEmail:email").unwrap();
        assert_eq!(email.coverage, Some(0.98));
        let nn = max.iter().find(|c| c.key == "notNull:email").unwrap();
        assert_eq!(nn.coverage, Some(0.99));
        let between = max.iter().find(|c| c.key == "between:id").unwrap();
        assert_eq!(between.properties["min"], 1.0);
        assert_eq!(between.properties["max"], 100.0);
        // a sampled profile cannot prove uniqueness
        assert!(
            !infer(&ps, 100, 2, "2026", true, Some("id"), &[])
                .iter()
                .any(|c| c.rule == "unique")
        );
    }

    #[test]
    fn growing_fields_get_lower_bounds_only() {
        let ids: Vec<Option<Vec<u8>>> = (1..=100i64)
            .map(|i| Some(i.to_be_bytes().to_vec()))
            .collect();
        let ps = vec![profile(Kind::Int8, "Integral", "id", &ids)];
        let keys: Vec<String> = infer(&ps, 100, 5, "2026-11-25T00:00:00Z", false, None, &["id"])
            .iter()
            .map(|c| c.key.clone())
            .collect();
        assert!(keys.contains(&"minValue:id".to_string()), "{keys:?}");
        assert!(!keys.contains(&"between:id".to_string()), "{keys:?}");
        assert!(!keys.contains(&"maxValue:id".to_string()), "{keys:?}");
    }
}
