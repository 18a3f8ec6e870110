//! The table of rule types: names, field arity and types, filter and coverage support, properties, and the
//! reason a rule is refused when Assay cannot run it.

use super::*;

const COMPARISONS: &[&str] = &[
    "lt",
    "lte",
    "eq",
    "gte",
    "gt",
    "less than",
    "less than or equal to",
    "equal to",
    "greater than or equal to",
    "greater than",
];
const CHANGE: &[&str] = &["Absolute Value", "Absolute Change", "Percentage Change"];
const FIELD_TYPES: &[&str] = &[
    "Integral",
    "Fractional",
    "Boolean",
    "String",
    "Date",
    "Timestamp",
    "Array",
    "Struct",
    "MapType",
    "Unknown",
];
const INTERVALS: &[&str] = &["Yearly", "Monthly", "Weekly", "Daily", "Hourly"];

macro_rules! rule {
    ($name:literal, $desc:literal, $arity:ident, $types:ident, $f:literal, $c:literal, [$($p:expr),* $(,)?]) => {
        Rule { name: $name, description: $desc, arity: Arity::$arity, types: Types::$types, filter: $f,
               coverage: $c, props: &[$($p),*], unsupported: None }
    };
    ($name:literal, $desc:literal, $arity:ident, $types:ident, $f:literal, $c:literal, [$($p:expr),* $(,)?], $why:literal) => {
        Rule { name: $name, description: $desc, arity: Arity::$arity, types: Types::$types, filter: $f,
               coverage: $c, props: &[$($p),*], unsupported: Some($why) }
    };
}

/// Every rule type of the API, in alphabetical order.
pub const RULES: &[Rule] = &[
    rule!(
        "afterDateTime",
        "the value is later than a date and time",
        Single,
        Temporal,
        true,
        true,
        [req("datetime", Kind::DateTime)]
    ),
    rule!(
        "aggregationComparison",
        "an aggregate of this container compares to an aggregate of another",
        Calculated,
        Any,
        true,
        false,
        [
            req("expression", Kind::Text),
            req("comparison", Kind::Choice(COMPARISONS)),
            req("ref_expression", Kind::Text),
            req("ref_container_id", Kind::Id),
            opt("ref_datastore_id", Kind::Id),
            opt("ref_filter", Kind::Text)
        ]
    ),
    rule!(
        "anyNotNull",
        "at least one of the fields is filled in",
        Multi,
        Any,
        true,
        true,
        []
    ),
    rule!(
        "beforeDateTime",
        "the value is earlier than a date and time",
        Single,
        Temporal,
        true,
        true,
        [req("datetime", Kind::DateTime)]
    ),
    rule!(
        "between",
        "the value lies within a range",
        Single,
        Numeric,
        true,
        true,
        [
            req("min", Kind::Number),
            opt("inclusive_min", Kind::Bool),
            req("max", Kind::Number),
            opt("inclusive_max", Kind::Bool)
        ]
    ),
    rule!(
        "betweenTimes",
        "the value lies within a time range",
        Single,
        Temporal,
        true,
        true,
        [
            req("min_time", Kind::DateTime),
            req("max_time", Kind::DateTime)
        ]
    ),
    rule!(
        "containsCreditCard",
        "the value contains a credit card number",
        Single,
        Text,
        true,
        true,
        []
    ),
    rule!(
        "containsEmail",
        "the value contains an e-mail address",
        Single,
        Text,
        true,
        true,
        []
    ),
    rule!(
        "containsSocialSecurityNumber",
        "the value contains a US social security number",
        Single,
        Text,
        true,
        true,
        []
    ),
    rule!(
        "containsUrl",
        "the value contains a URL",
        Single,
        Text,
        true,
        true,
        []
    ),
    rule!(
        "dataDiff",
        "the rows equal those of a reference container, matched by identifier fields",
        Multi,
        Any,
        true,
        false,
        [
            req("ref_container_id", Kind::Id),
            opt("ref_datastore_id", Kind::Id),
            req("id_field_names", Kind::List),
            opt("passthrough_field_names", Kind::List),
            opt("numeric_comparator", Kind::List),
            opt("duration_comparator", Kind::List),
            opt("string_comparator", Kind::List),
            opt("diff_change_types", Kind::List),
            opt("ref_filter", Kind::Text)
        ],
        "dataDiff (comparators, change types) is not supported yet; use isReplicaOf for an exact comparison"
    ),
    rule!(
        "distinctCount",
        "the number of distinct values compares to a value",
        Single,
        Any,
        true,
        false,
        [
            req("value", Kind::Integer),
            opt("comparison", Kind::Choice(COMPARISONS))
        ]
    ),
    rule!(
        "entityResolution",
        "similar names share one distinction value",
        Single,
        Text,
        true,
        false,
        [],
        "entityResolution needs a name-similarity model that Assay does not ship yet"
    ),
    rule!(
        "equalTo",
        "the fields equal a value",
        Multi,
        Numeric,
        true,
        true,
        [req("value", Kind::Number), opt("inclusive", Kind::Bool)]
    ),
    rule!(
        "equalToField",
        "the value equals another field of the same row",
        Single,
        NumericOrTemporal,
        true,
        true,
        [req("field_name", Kind::Text), opt("inclusive", Kind::Bool)]
    ),
    rule!(
        "existsIn",
        "the value is found in a field of a reference container",
        Single,
        Any,
        true,
        true,
        [
            req("field_name", Kind::Text),
            req("ref_container_id", Kind::Id),
            opt("ref_datastore_id", Kind::Id),
            opt("ref_filter", Kind::Text)
        ]
    ),
    rule!(
        "expectedSchema",
        "the container has the listed fields",
        None,
        Any,
        false,
        false,
        [
            req("list", Kind::List),
            opt("allow_other_fields", Kind::Bool)
        ]
    ),
    rule!(
        "expectedValues",
        "the value is one of a list",
        Single,
        Any,
        true,
        true,
        [req("list", Kind::List)]
    ),
    rule!(
        "fieldCount",
        "the container has exactly this many fields",
        None,
        Any,
        false,
        false,
        [req("value", Kind::Integer)]
    ),
    rule!(
        "freshness",
        "the newest row is at most this many milliseconds old",
        None,
        Any,
        false,
        false,
        [req("value", Kind::Integer)]
    ),
    rule!(
        "greaterThan",
        "the value is greater than a number",
        Single,
        Numeric,
        true,
        true,
        [req("value", Kind::Number), opt("inclusive", Kind::Bool)]
    ),
    rule!(
        "greaterThanField",
        "the value is greater than another field of the same row",
        Single,
        NumericOrTemporal,
        true,
        true,
        [req("field_name", Kind::Text), opt("inclusive", Kind::Bool)]
    ),
    rule!(
        "isAddress",
        "the value parses as a postal address",
        Single,
        Text,
        true,
        true,
        [opt("required_labels", Kind::List)],
        "isAddress needs an address parser (libpostal) that Assay does not ship"
    ),
    rule!(
        "isCreditCard",
        "the value is a credit card number (Luhn)",
        Single,
        Text,
        true,
        true,
        []
    ),
    rule!(
        "isReplicaOf",
        "the selected fields hold the same rows as a reference container",
        Multi,
        Any,
        true,
        false,
        [
            req("ref_container_id", Kind::Id),
            opt("ref_datastore_id", Kind::Id),
            opt("ref_filter", Kind::Text)
        ]
    ),
    rule!(
        "isType",
        "the text value parses as a type",
        Single,
        Text,
        true,
        true,
        [req("field_type", Kind::Choice(FIELD_TYPES))]
    ),
    rule!(
        "lessThan",
        "the value is less than a number",
        Single,
        Numeric,
        true,
        true,
        [req("value", Kind::Number), opt("inclusive", Kind::Bool)]
    ),
    rule!(
        "lessThanField",
        "the value is less than another field of the same row",
        Single,
        NumericOrTemporal,
        true,
        true,
        [req("field_name", Kind::Text), opt("inclusive", Kind::Bool)]
    ),
    rule!(
        "matchesPattern",
        "the value matches a regular expression",
        Single,
        Text,
        true,
        true,
        [req("pattern", Kind::Text)]
    ),
    rule!(
        "maxLength",
        "the text is at most this long",
        Single,
        Text,
        true,
        true,
        [req("value", Kind::Integer)]
    ),
    rule!(
        "maxPartitionSize",
        "each loaded partition has at most this many rows",
        None,
        Any,
        true,
        false,
        [req("value", Kind::Integer)],
        "maxPartitionSize needs file partitions; PostgreSQL tables have none"
    ),
    rule!(
        "maxValue",
        "the value is at most a number",
        Single,
        Numeric,
        true,
        true,
        [req("value", Kind::Number), opt("inclusive", Kind::Bool)]
    ),
    rule!(
        "metric",
        "the field's mean over the scanned rows stays within limits from scan to scan",
        Single,
        Numeric,
        true,
        false,
        [
            req("comparison", Kind::Choice(CHANGE)),
            opt("min", Kind::Number),
            opt("max", Kind::Number)
        ]
    ),
    rule!(
        "minLength",
        "the text is at least this long",
        Single,
        Text,
        true,
        true,
        [req("value", Kind::Integer)]
    ),
    rule!(
        "minPartitionSize",
        "each loaded partition has at least this many rows",
        None,
        Any,
        true,
        false,
        [req("value", Kind::Integer)],
        "minPartitionSize needs file partitions; PostgreSQL tables have none"
    ),
    rule!(
        "minValue",
        "the value is at least a number",
        Single,
        Numeric,
        true,
        true,
        [req("value", Kind::Number), opt("inclusive", Kind::Bool)]
    ),
    rule!(
        "notEmpty",
        "the text is neither null nor blank",
        Single,
        Text,
        true,
        true,
        []
    ),
    rule!(
        "notExistsIn",
        "the value is not found in a field of a reference container",
        Single,
        Any,
        true,
        true,
        [
            req("field_name", Kind::Text),
            req("ref_container_id", Kind::Id),
            opt("ref_datastore_id", Kind::Id),
            opt("ref_filter", Kind::Text)
        ]
    ),
    rule!(
        "notFuture",
        "the value is not in the future",
        Single,
        Temporal,
        true,
        true,
        []
    ),
    rule!(
        "notNegative",
        "the value is zero or more",
        Single,
        Numeric,
        true,
        true,
        []
    ),
    rule!(
        "notNull",
        "the value is filled in",
        Multi,
        Any,
        true,
        true,
        []
    ),
    rule!(
        "positive",
        "the value is more than zero",
        Single,
        Numeric,
        true,
        true,
        []
    ),
    rule!(
        "predictedBy",
        "the value is close to an expression of other fields",
        Single,
        Numeric,
        true,
        true,
        [
            req("expression", Kind::Text),
            req("tolerance", Kind::Number)
        ]
    ),
    rule!(
        "requiredValues",
        "every listed value appears at least once",
        Single,
        Any,
        true,
        false,
        [req("list", Kind::List)]
    ),
    rule!(
        "satisfiesExpression",
        "each row satisfies a SQL boolean expression",
        Calculated,
        Any,
        true,
        true,
        [req("expression", Kind::Text)]
    ),
    rule!(
        "sum",
        "the sum of the field equals a value",
        Single,
        Numeric,
        true,
        false,
        [req("value", Kind::Number)]
    ),
    rule!(
        "timeDistributionSize",
        "every time bucket has between min and max rows",
        Single,
        Temporal,
        true,
        false,
        [
            req("interval_name", Kind::Choice(INTERVALS)),
            opt("min_size", Kind::Integer),
            opt("max_size", Kind::Integer)
        ]
    ),
    rule!(
        "unique",
        "the value (or combination of values) occurs once",
        Multi,
        Any,
        true,
        true,
        []
    ),
    rule!(
        "volumetric",
        "the row count stays within limits",
        None,
        Any,
        false,
        false,
        [
            req("comparison", Kind::Choice(CHANGE)),
            opt("window_size", Kind::Integer),
            opt("min", Kind::Number),
            opt("max", Kind::Number)
        ]
    ),
];
