//! The rule catalogue of quality checks: every rule type name of the Qualytics API, which fields and field types
//! it takes, its properties, and whether it accepts a filter and a coverage. `validate` checks a check's
//! definition against a container's fields and reports every problem at once; rules Assay cannot run yet are
//! refused with a message, never accepted silently.

use crate::error::FieldError;
use serde::Serialize;
use serde_json::{Map, Value, json};

mod table;
pub use table::RULES;

/// How a rule uses fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arity {
    /// Exactly one field.
    Single,
    /// One or more fields.
    Multi,
    /// Fields are optional; the rule evaluates an expression.
    Calculated,
    /// A container-level rule: no fields.
    None,
}

/// The kind of value a property takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Number,
    Integer,
    Bool,
    Text,
    DateTime,
    List,
    Id,
    Choice(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Prop {
    pub key: &'static str,
    pub kind: Kind,
    pub required: bool,
}

pub(crate) const fn req(key: &'static str, kind: Kind) -> Prop {
    Prop {
        key,
        kind,
        required: true,
    }
}
pub(crate) const fn opt(key: &'static str, kind: Kind) -> Prop {
    Prop {
        key,
        kind,
        required: false,
    }
}

/// Field-type families a rule accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Types {
    Any,
    Numeric,
    Temporal,
    Text,
    NumericOrTemporal,
}

impl Types {
    /// Whether a field of this type suits the rule.
    pub fn admits(self, field_type: &str) -> bool {
        match self {
            Types::Any => true,
            Types::Numeric => matches!(field_type, "Integral" | "Fractional"),
            Types::Temporal => matches!(field_type, "Date" | "Timestamp"),
            Types::Text => field_type == "String",
            Types::NumericOrTemporal => {
                matches!(field_type, "Integral" | "Fractional" | "Date" | "Timestamp")
            }
        }
    }
    pub fn describe(self) -> &'static str {
        match self {
            Types::Any => "any type",
            Types::Numeric => "Integral or Fractional",
            Types::Temporal => "Date or Timestamp",
            Types::Text => "String",
            Types::NumericOrTemporal => "Integral, Fractional, Date or Timestamp",
        }
    }
}

/// One rule type.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub description: &'static str,
    pub arity: Arity,
    pub types: Types,
    pub filter: bool,
    pub coverage: bool,
    pub props: &'static [Prop],
    /// Why Assay refuses the rule for now, when it does.
    pub unsupported: Option<&'static str>,
}

/// Looks a rule up by its exact camelCase name.
pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// Names people guess that are not rule types, with the one to use instead.
fn suggestion(name: &str) -> Option<&'static str> {
    Some(match name {
        "isUnique" | "distinct" => "unique",
        "dataType" => "isType",
        "requiredFields" => "expectedSchema",
        "isValidEmail" => "containsEmail",
        "notExist" => "notExistsIn",
        "satisfiesEquation" => "satisfiesExpression",
        _ => {
            return RULES
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(name))
                .map(|r| r.name);
        }
    })
}

/// The self-describing catalogue (`GET /api/quality-checks/spec`).
pub fn spec() -> Value {
    Value::Array(
        RULES
            .iter()
            .map(|r| {
                json!({
                    "rule": r.name,
                    "rule_description": r.description,
                    "fields": r.arity,
                    "fields_type_filter": r.types.describe(),
                    "filterable": r.filter,
                    "supports_coverage": r.coverage,
                    "supported": r.unsupported.is_none(),
                    "unsupported_reason": r.unsupported,
                    "properties": r.props.iter().map(|p| json!({"name": p.key, "required": p.required})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// A field of the container a check is written for.
pub struct FieldInfo<'a> {
    pub name: &'a str,
    pub field_type: &'a str,
}

/// A check definition to validate.
pub struct Definition<'a> {
    pub rule: &'a str,
    pub fields: &'a [String],
    pub coverage: Option<f64>,
    pub filter: Option<&'a str>,
    pub properties: &'a Value,
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses an ISO-8601 date or date-time (with or without offset).
pub fn parse_datetime(s: &str) -> Option<chrono::NaiveDateTime> {
    let s = s.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.naive_utc());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
    ] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(d);
        }
        if let Ok(d) = chrono::DateTime::parse_from_str(s, f) {
            return Some(d.naive_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Checks a definition against the rule catalogue and the container's fields. Returns the properties with
/// defaults filled in (`inclusive*` flags, `allow_other_fields`), or every problem found.
pub fn validate(d: &Definition<'_>, fields: &[FieldInfo<'_>]) -> Result<Value, Vec<FieldError>> {
    let mut errs = Vec::new();
    let Some(r) = rule(d.rule) else {
        let hint = suggestion(d.rule)
            .map(|s| format!("; did you mean '{s}'?"))
            .unwrap_or_else(|| "; see GET /api/quality-checks/spec for the list".into());
        return Err(vec![FieldError::new(
            "rule",
            format!("'{}' is not a rule type{hint}", d.rule),
        )]);
    };
    if let Some(why) = r.unsupported {
        return Err(vec![FieldError::new(
            "rule",
            format!("rule '{}' is not supported by Assay: {why}", r.name),
        )]);
    }
    let find = |n: &str| fields.iter().find(|f| f.name == n);
    match (r.arity, d.fields.len()) {
        (Arity::Single, 1) | (Arity::Multi, 1..) | (Arity::Calculated, _) | (Arity::None, 0) => {}
        (Arity::Single, n) => errs.push(FieldError::new(
            "fields",
            format!("rule '{}' takes exactly one field, got {n}", r.name),
        )),
        (Arity::Multi, _) => errs.push(FieldError::new(
            "fields",
            format!("rule '{}' needs at least one field", r.name),
        )),
        (Arity::None, _) => errs.push(FieldError::new(
            "fields",
            format!(
                "rule '{}' applies to the whole container; leave fields empty",
                r.name
            ),
        )),
    }
    for (i, name) in d.fields.iter().enumerate() {
        match find(name) {
            None => errs.push(FieldError::new(
                format!("fields[{i}]"),
                format!("the container has no field '{name}'; run a sync if it was added recently"),
            )),
            Some(f) if r.arity != Arity::Calculated && !r.types.admits(f.field_type) => {
                errs.push(FieldError::new(
                    format!("fields[{i}]"),
                    format!(
                        "rule '{}' needs a {} field; '{name}' is {}",
                        r.name,
                        r.types.describe(),
                        f.field_type
                    ),
                ))
            }
            _ => {}
        }
    }
    if let Some(c) = d.coverage {
        if !(c > 0.0 && c <= 1.0) {
            errs.push(FieldError::new(
                "coverage",
                "coverage is a fraction greater than 0 and at most 1",
            ));
        } else if c < 1.0 && !r.coverage {
            errs.push(FieldError::new(
                "coverage",
                format!(
                    "rule '{}' does not take a coverage; leave it out or set 1",
                    r.name
                ),
            ));
        }
    }
    if d.filter.is_some_and(|f| !f.trim().is_empty()) && !r.filter {
        errs.push(FieldError::new(
            "filter",
            format!("rule '{}' does not take a filter", r.name),
        ));
    }
    let empty = Map::new();
    let given = match d.properties {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            errs.push(FieldError::new(
                "properties",
                "properties must be an object",
            ));
            return Err(errs);
        }
    };
    let mut out = given.clone();
    for p in r.props {
        let path = format!("properties.{}", p.key);
        let v = given.get(p.key).filter(|v| !v.is_null());
        let Some(v) = v else {
            if p.required {
                errs.push(FieldError::new(
                    path,
                    format!("rule '{}' needs the property '{}'", r.name, p.key),
                ));
            }
            continue;
        };
        let ok = match p.kind {
            Kind::Number => number(v).is_some_and(f64::is_finite),
            Kind::Integer | Kind::Id => number(v).is_some_and(|n| n.fract() == 0.0 && n >= 0.0),
            Kind::Bool => v.is_boolean(),
            Kind::Text => v.as_str().is_some_and(|s| !s.trim().is_empty()),
            Kind::DateTime => v.as_str().and_then(parse_datetime).is_some(),
            Kind::List => v.is_array(),
            Kind::Choice(c) => v.as_str().is_some_and(|s| c.contains(&s)),
        };
        if !ok {
            let want = match p.kind {
                Kind::Number => "a number".to_string(),
                Kind::Integer => "a whole number of 0 or more".into(),
                Kind::Id => "an id".into(),
                Kind::Bool => "true or false".into(),
                Kind::Text => "a non-empty string".into(),
                Kind::DateTime => "an ISO-8601 date or date-time, e.g. 2024-01-31T00:00:00Z".into(),
                Kind::List => "a list".into(),
                Kind::Choice(c) => format!("one of {}", c.join(", ")),
            };
            errs.push(FieldError::new(path, format!("must be {want}")));
        }
    }
    let n = |k: &str| given.get(k).and_then(number);
    match r.name {
        "between" => {
            if let (Some(lo), Some(hi)) = (n("min"), n("max"))
                && lo > hi
            {
                errs.push(FieldError::new(
                    "properties.max",
                    format!("max ({hi}) is less than min ({lo})"),
                ));
            }
            for k in ["inclusive_min", "inclusive_max"] {
                out.entry(k).or_insert(json!(true));
            }
        }
        "betweenTimes" => {
            let t = |k: &str| {
                given
                    .get(k)
                    .and_then(Value::as_str)
                    .and_then(parse_datetime)
            };
            if let (Some(lo), Some(hi)) = (t("min_time"), t("max_time"))
                && lo > hi
            {
                errs.push(FieldError::new(
                    "properties.max_time",
                    "max_time is before min_time",
                ));
            }
        }
        "greaterThan" | "lessThan" | "greaterThanField" | "lessThanField" => {
            out.entry("inclusive").or_insert(json!(false));
        }
        "minValue" | "maxValue" => {
            out.entry("inclusive").or_insert(json!(true));
        }
        "expectedSchema" => {
            out.entry("allow_other_fields").or_insert(json!(false));
        }
        "expectedValues" | "requiredValues" => {
            if let Some(Value::Array(a)) = given.get("list") {
                if a.is_empty() {
                    errs.push(FieldError::new("properties.list", "the list is empty"));
                }
                if a.iter().any(|v| v.is_array() || v.is_object()) {
                    errs.push(FieldError::new(
                        "properties.list",
                        "list items must be strings, numbers or booleans",
                    ));
                }
            }
        }
        "volumetric" | "metric" => {
            if n("min").is_none() && n("max").is_none() {
                errs.push(FieldError::new(
                    "properties.min",
                    format!("rule '{}' needs min, max or both", r.name),
                ));
            }
            if let (Some(lo), Some(hi)) = (n("min"), n("max"))
                && lo > hi
            {
                errs.push(FieldError::new(
                    "properties.max",
                    format!("max ({hi}) is less than min ({lo})"),
                ));
            }
        }
        "timeDistributionSize" if n("min_size").is_none() && n("max_size").is_none() => {
            errs.push(FieldError::new(
                "properties.min_size",
                "timeDistributionSize needs min_size, max_size or both",
            ));
        }
        "freshness" if n("value").is_some_and(|v| v <= 0.0) => {
            errs.push(FieldError::new(
                "properties.value",
                "the maximum age is a number of milliseconds greater than 0",
            ));
        }
        _ => {}
    }
    if matches!(
        r.name,
        "equalToField" | "greaterThanField" | "lessThanField"
    ) && let Some(other) = given.get("field_name").and_then(Value::as_str)
        && find(other).is_none()
    {
        errs.push(FieldError::new(
            "properties.field_name",
            format!("the container has no field '{other}'"),
        ));
    }
    if r.name == "expectedSchema"
        && let Some(Value::Array(a)) = given.get("list")
        && a.iter().any(|v| !v.is_string())
    {
        errs.push(FieldError::new(
            "properties.list",
            "list the field names as strings",
        ));
    }
    if errs.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(errs)
    }
}

/// Lower case; every run of other characters than letters and digits becomes `_`; no `_` at either end.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The portable id of a check (`_qualytics_check_uid`): `slug(container)__slug(rule)__slug(sorted fields)`, as
/// the Qualytics CLI computes it on export, so export → import round trips match checks instead of duplicating.
pub fn check_uid(container: &str, rule: &str, fields: &[String]) -> String {
    let mut f = fields.to_vec();
    f.sort();
    format!(
        "{}__{}__{}",
        slug(container),
        slug(rule),
        slug(&f.join("_"))
    )
}

/// Whether the rule is evaluated row by row (so that a violation names the rows), as opposed to a
/// container-level or aggregate rule that yields shape anomalies only.
pub fn is_row_level(rule: &str) -> bool {
    !matches!(
        rule,
        "aggregationComparison"
            | "distinctCount"
            | "expectedSchema"
            | "fieldCount"
            | "freshness"
            | "isReplicaOf"
            | "metric"
            | "requiredValues"
            | "sum"
            | "timeDistributionSize"
            | "volumetric"
    )
}

#[cfg(test)]
mod tests;
