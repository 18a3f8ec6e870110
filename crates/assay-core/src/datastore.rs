//! Datastores: a database and schema reached through a connection, used as a source or as an enrichment store.

use crate::error::{CoreError, FieldError};
use serde::{Deserialize, Serialize};

pub const MAX_PREFIX_LEN: usize = 60;
pub const DEFAULT_SOURCE_RECORD_LIMIT: i64 = 10;
pub const DEFAULT_ROLLUP_THRESHOLD: i64 = 10;
/// The most source records Assay keeps per anomaly (a scan holds them in memory and writes them to the enrichment
/// datastore): the one limit of `enrichment_source_record_limit`, on a datastore and on a scan alike.
pub const MAX_SOURCE_RECORD_LIMIT: i64 = 100_000;
/// The most record anomalies a check yields before they roll up into one shape anomaly.
pub const MAX_ROLLUP_THRESHOLD: i64 = 1000;

/// The errors of a source-record limit and a rollup threshold, where either is given.
pub fn check_limits(
    source_records: Option<i64>,
    rollup: Option<i64>,
    errors: &mut Vec<FieldError>,
) {
    if source_records.is_some_and(|n| !(1..=MAX_SOURCE_RECORD_LIMIT).contains(&n)) {
        errors.push(FieldError::new(
            "enrichment_source_record_limit",
            format!(
                "must be between 1 and {MAX_SOURCE_RECORD_LIMIT}: the source records kept per anomaly are held in \
                 memory and written to the enrichment datastore"
            ),
        ));
    }
    if rollup.is_some_and(|n| !(1..=MAX_ROLLUP_THRESHOLD).contains(&n)) {
        errors.push(FieldError::new(
            "high_count_rollup_threshold",
            format!("must be between 1 and {MAX_ROLLUP_THRESHOLD}"),
        ));
    }
}
pub const PUBLIC_TEAM: &str = "Public";

/// What a scan does with failing rows in the enrichment store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RemediationStrategy {
    #[default]
    None,
    Append,
    Overwrite,
}

impl RemediationStrategy {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "append" => Some(Self::Append),
            "overwrite" => Some(Self::Overwrite),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Append => "append",
            Self::Overwrite => "overwrite",
        }
    }
}

/// Normalises an enrichment prefix: lower case, every run of other characters than letters and digits becomes
/// `_`, and the result starts with one `_` ("Analytics Bronze" → `_analytics_bronze`).
pub fn normalize_prefix(raw: &str) -> Result<String, FieldError> {
    let mut body = String::new();
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            body.push(c);
        } else if !body.ends_with('_') {
            body.push('_');
        }
    }
    let body = body.trim_matches('_');
    if body.is_empty() {
        return Err(FieldError::new(
            "enrichment_prefix",
            "must contain at least one letter or digit (ASCII), e.g. \"analytics\"",
        ));
    }
    let prefix = format!("_{body}");
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(FieldError::new(
            "enrichment_prefix",
            format!(
                "is {} characters once normalised ({prefix}); the limit is {MAX_PREFIX_LEN}",
                prefix.len()
            ),
        ));
    }
    Ok(prefix)
}

/// The writable settings of a datastore, after defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastoreSpec {
    pub name: String,
    pub database: String,
    pub schema: String,
    pub enrichment_only: bool,
    pub enrichment_prefix: Option<String>,
    pub enrichment_source_record_limit: i64,
    pub high_count_rollup_threshold: i64,
    pub enrichment_remediation_strategy: RemediationStrategy,
    pub description: Option<String>,
}

impl DatastoreSpec {
    pub fn validate(&self) -> Result<(), CoreError> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push(FieldError::new(
                "name",
                "is required: the name shown on the datastore card",
            ));
        } else if self.name.len() > 255 {
            errors.push(FieldError::new("name", "is longer than 255 characters"));
        }
        if self.database.trim().is_empty() {
            errors.push(FieldError::new(
                "database",
                "is required: the database to connect to",
            ));
        }
        if self.schema.trim().is_empty() {
            errors.push(FieldError::new(
                "schema",
                "is required: the schema whose tables Assay reads",
            ));
        }
        check_limits(
            Some(self.enrichment_source_record_limit),
            Some(self.high_count_rollup_threshold),
            &mut errors,
        );
        if self.description.as_ref().is_some_and(|d| d.len() > 8000) {
            errors.push(FieldError::new(
                "description",
                "is longer than 8000 characters",
            ));
        }
        CoreError::check(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(
            normalize_prefix("Analytics Bronze").unwrap(),
            "_analytics_bronze"
        );
        assert_eq!(normalize_prefix("_qx").unwrap(), "_qx");
        assert_eq!(normalize_prefix("  A--b__C ").unwrap(), "_a_b_c");
        assert_eq!(normalize_prefix("qualytics").unwrap(), "_qualytics");
        assert!(normalize_prefix("__").is_err());
        assert!(normalize_prefix("üï").is_err());
        assert_eq!(normalize_prefix("ünï").unwrap(), "_n");
        assert!(normalize_prefix(&"a".repeat(60)).is_err());
        assert_eq!(normalize_prefix(&"a".repeat(59)).unwrap().len(), 60);
    }

    #[test]
    fn datastore_ranges_are_checked() {
        let mut d = DatastoreSpec {
            name: "ds".into(),
            database: "db".into(),
            schema: "public".into(),
            enrichment_only: false,
            enrichment_prefix: None,
            enrichment_source_record_limit: DEFAULT_SOURCE_RECORD_LIMIT,
            high_count_rollup_threshold: DEFAULT_ROLLUP_THRESHOLD,
            enrichment_remediation_strategy: RemediationStrategy::None,
            description: None,
        };
        d.validate().unwrap();
        d.enrichment_source_record_limit = 0;
        d.high_count_rollup_threshold = 1001;
        d.schema = String::new();
        let CoreError::Invalid(errs) = d.validate().unwrap_err();
        assert_eq!(errs.len(), 3);
    }

    #[test]
    fn remediation_parses_case_insensitively() {
        assert_eq!(
            RemediationStrategy::parse("Append"),
            Some(RemediationStrategy::Append)
        );
        assert_eq!(RemediationStrategy::parse("sometimes"), None);
    }
}
