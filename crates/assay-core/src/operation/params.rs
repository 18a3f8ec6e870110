//! The parameters of each operation type, defined once. The API route reads a request into these types and
//! validates them (every problem at once, each naming its field), the store keeps them as JSON, the runner reads
//! them back with the same defaults, and the CLI builds its requests from them. Absent keys take the defaults
//! below, so parameters stored by an earlier version read the same way.

use crate::FieldError;
use crate::datastore::{MAX_ROLLUP_THRESHOLD, MAX_SOURCE_RECORD_LIMIT, check_limits};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::OperationType;

/// The inference levels of a profile (`ai_effort`), from none to the most checks.
pub const AI_EFFORTS: [&str; 6] = ["off", "low", "medium", "high", "xhigh", "max"];

/// The level (0–5) of an `ai_effort` label, in any case.
pub fn effort_level(effort: &str) -> Option<u8> {
    AI_EFFORTS
        .iter()
        .position(|e| e.eq_ignore_ascii_case(effort))
        .map(|i| i as u8)
}

/// The `ai_effort` label of the older `inference_threshold` (0–5).
pub fn effort_of_threshold(threshold: i64) -> Option<&'static str> {
    AI_EFFORTS.get(usize::try_from(threshold).ok()?).copied()
}

/// `-1` (all rows) or a positive count, as `max_records_*` limits are given.
fn check_row_limit(key: &str, limit: Option<i64>, errors: &mut Vec<FieldError>) {
    if limit.is_some_and(|n| n == 0 || !(-1..=1_000_000_000).contains(&n)) {
        errors.push(FieldError::new(
            key,
            "must be -1 (all rows) or between 1 and 1000000000",
        ));
    }
}

/// A row limit as the readers take it: `None` for all rows.
fn row_limit(limit: Option<i64>) -> Option<u64> {
    limit.filter(|n| *n > 0).map(|n| n as u64)
}

/// Sync: which kinds of relations to catalog, and what to do with the ones that vanished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncParams {
    /// `table` and/or `view`.
    pub include: Vec<String>,
    /// Delete vanished containers and fields instead of marking them.
    pub prune: bool,
    /// Start the catalog over.
    pub recreate: bool,
}

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams {
            include: vec!["table".into(), "view".into()],
            prune: false,
            recreate: false,
        }
    }
}

impl SyncParams {
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        for k in &self.include {
            if k != "table" && k != "view" {
                errors.push(FieldError::new(
                    "include",
                    format!("'{k}' is not table or view"),
                ));
            }
        }
    }

    /// The kinds to catalog: both when the list is empty.
    pub fn kinds(&self) -> Vec<String> {
        if self.include.is_empty() {
            SyncParams::default().include
        } else {
            self.include.clone()
        }
    }
}

/// Profile: which containers, how many checks to infer, and whether an incremental read is allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileParams {
    pub container_names: Vec<String>,
    /// Only containers with any of these tags.
    pub container_tags: Vec<String>,
    /// One of [`AI_EFFORTS`].
    pub ai_effort: String,
    /// Inferred checks are saved as drafts.
    pub infer_as_draft: bool,
    pub max_records_analyzed_per_partition: Option<i64>,
    /// Read only new rows when a stored state allows it (`false`: a full profile).
    pub incremental: bool,
}

impl Default for ProfileParams {
    fn default() -> Self {
        ProfileParams {
            container_names: vec![],
            container_tags: vec![],
            ai_effort: "medium".into(),
            infer_as_draft: false,
            max_records_analyzed_per_partition: None,
            incremental: true,
        }
    }
}

impl ProfileParams {
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        if effort_level(&self.ai_effort).is_none() {
            errors.push(FieldError::new(
                "ai_effort",
                format!(
                    "'{}' is not one of {}",
                    self.ai_effort,
                    AI_EFFORTS.join(", ")
                ),
            ));
        }
        check_row_limit(
            "max_records_analyzed_per_partition",
            self.max_records_analyzed_per_partition,
            errors,
        );
    }

    /// The inference level, 0–5.
    pub fn level(&self) -> u8 {
        effort_level(&self.ai_effort).unwrap_or(2)
    }

    pub fn row_limit(&self) -> Option<u64> {
        row_limit(self.max_records_analyzed_per_partition)
    }
}

/// Scan: which containers and rows, and how failures become anomalies and source records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScanParams {
    pub container_names: Vec<String>,
    /// Only containers with any of these tags.
    pub container_tags: Vec<String>,
    /// Only the rows after each container's checkpoint.
    pub incremental: bool,
    pub max_records_analyzed_per_partition: Option<i64>,
    /// Source records kept per anomaly; the datastore's setting when absent.
    pub enrichment_source_record_limit: Option<i64>,
    /// Record anomalies per check before they roll up; the datastore's setting when absent.
    pub high_count_rollup_threshold: Option<i64>,
    /// Resolve open anomalies that did not come back (full scans only; the default there).
    pub auto_resolve_passed_anomalies: Option<bool>,
    /// A new anomaly that repeats an open one is archived as a duplicate.
    pub archive_duplicate_anomalies: bool,
    /// A finding whose anomaly was resolved reopens that anomaly as recurring instead of opening a new one.
    pub reactivate_recurring_anomalies: bool,
    /// Incremental start instead of the checkpoint (ISO-8601).
    pub greater_than_time: Option<String>,
    /// Incremental start instead of the checkpoint (a number).
    pub greater_than_batch: Option<f64>,
}

impl Default for ScanParams {
    fn default() -> Self {
        ScanParams {
            container_names: vec![],
            container_tags: vec![],
            incremental: false,
            max_records_analyzed_per_partition: None,
            enrichment_source_record_limit: None,
            high_count_rollup_threshold: None,
            auto_resolve_passed_anomalies: None,
            archive_duplicate_anomalies: true,
            reactivate_recurring_anomalies: true,
            greater_than_time: None,
            greater_than_batch: None,
        }
    }
}

impl ScanParams {
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        check_row_limit(
            "max_records_analyzed_per_partition",
            self.max_records_analyzed_per_partition,
            errors,
        );
        check_limits(
            self.enrichment_source_record_limit,
            self.high_count_rollup_threshold,
            errors,
        );
        if let Some(t) = &self.greater_than_time
            && crate::rules::parse_datetime(t).is_none()
        {
            errors.push(FieldError::new(
                "greater_than_time",
                "must be an ISO-8601 date-time such as 2024-01-01T00:00:00Z",
            ));
        }
    }

    pub fn row_limit(&self) -> Option<u64> {
        row_limit(self.max_records_analyzed_per_partition)
    }

    /// Whether open anomalies that did not come back are resolved: never after an incremental scan.
    pub fn auto_resolve(&self) -> bool {
        !self.incremental && self.auto_resolve_passed_anomalies.unwrap_or(true)
    }

    /// The source records kept per anomaly, with the datastore's setting as the default.
    pub fn source_records(&self, datastore_default: i64) -> usize {
        self.enrichment_source_record_limit
            .unwrap_or(datastore_default)
            .clamp(1, MAX_SOURCE_RECORD_LIMIT) as usize
    }

    /// The rollup threshold, with the datastore's setting as the default.
    pub fn rollup(&self, datastore_default: i64) -> usize {
        self.high_count_rollup_threshold
            .unwrap_or(datastore_default)
            .clamp(1, MAX_ROLLUP_THRESHOLD) as usize
    }
}

/// The assets an export writes.
pub const EXPORT_ASSETS: [&str; 4] = ["anomalies", "checks", "profiles", "field_profiles"];

/// Export: one asset type of the datastore into its enrichment datastore.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportParams {
    /// One of [`EXPORT_ASSETS`] (`field_profiles` is `profiles`).
    pub asset_type: String,
    /// Only these containers (all when empty).
    pub container_ids: Vec<i64>,
    pub include_deleted: bool,
}

impl ExportParams {
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.asset_type.is_empty() {
            errors.push(FieldError::new(
                "asset_type",
                "is required: anomalies, checks or profiles",
            ));
        } else if !EXPORT_ASSETS.contains(&self.asset_type.as_str()) {
            errors.push(FieldError::new(
                "asset_type",
                format!("'{}' is not anomalies, checks or profiles", self.asset_type),
            ));
        }
    }
}

/// Materialize: copy containers into the enrichment datastore.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaterializeParams {
    pub container_names: Vec<String>,
    /// Only containers with any of these tags.
    pub container_tags: Vec<String>,
    pub max_records_per_partition: Option<i64>,
}

impl MaterializeParams {
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        check_row_limit(
            "max_records_per_partition",
            self.max_records_per_partition,
            errors,
        );
    }

    pub fn row_limit(&self) -> Option<u64> {
        row_limit(self.max_records_per_partition)
    }
}

/// Measure: row count, size and last change of the datastore's tables, and the automated volume and freshness
/// checks judged on the series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MeasureParams {
    pub container_names: Vec<String>,
}

/// The parameters of one operation, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationParams {
    Sync(SyncParams),
    Profile(ProfileParams),
    Scan(ScanParams),
    Export(ExportParams),
    Materialize(MaterializeParams),
    Measure(MeasureParams),
}

impl OperationParams {
    /// The defaults of a type.
    pub fn default_for(t: OperationType) -> OperationParams {
        match t {
            OperationType::Sync => OperationParams::Sync(SyncParams::default()),
            OperationType::Profile => OperationParams::Profile(ProfileParams::default()),
            OperationType::Scan => OperationParams::Scan(ScanParams::default()),
            OperationType::Export => OperationParams::Export(ExportParams::default()),
            OperationType::Materialize => {
                OperationParams::Materialize(MaterializeParams::default())
            }
            OperationType::Measure => OperationParams::Measure(MeasureParams::default()),
        }
    }

    pub fn op_type(&self) -> OperationType {
        match self {
            OperationParams::Sync(_) => OperationType::Sync,
            OperationParams::Profile(_) => OperationType::Profile,
            OperationParams::Scan(_) => OperationType::Scan,
            OperationParams::Export(_) => OperationType::Export,
            OperationParams::Materialize(_) => OperationType::Materialize,
            OperationParams::Measure(_) => OperationType::Measure,
        }
    }

    /// Every problem of the parameters, each naming its field.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match self {
            OperationParams::Sync(p) => p.validate(&mut errors),
            OperationParams::Profile(p) => p.validate(&mut errors),
            OperationParams::Scan(p) => p.validate(&mut errors),
            OperationParams::Export(p) => p.validate(&mut errors),
            OperationParams::Materialize(p) => p.validate(&mut errors),
            OperationParams::Measure(_) => {}
        }
        errors
    }

    /// The JSON the store keeps.
    pub fn to_json(&self) -> Value {
        let v = match self {
            OperationParams::Sync(p) => serde_json::to_value(p),
            OperationParams::Profile(p) => serde_json::to_value(p),
            OperationParams::Scan(p) => serde_json::to_value(p),
            OperationParams::Export(p) => serde_json::to_value(p),
            OperationParams::Materialize(p) => serde_json::to_value(p),
            OperationParams::Measure(p) => serde_json::to_value(p),
        };
        v.unwrap_or(Value::Null)
    }

    /// Reads stored parameters back (absent keys take the defaults).
    pub fn from_json(t: OperationType, v: &Value) -> Result<OperationParams, String> {
        Ok(match t {
            OperationType::Sync => OperationParams::Sync(read_stored(v)?),
            OperationType::Profile => OperationParams::Profile(read_stored(v)?),
            OperationType::Scan => OperationParams::Scan(read_stored(v)?),
            OperationType::Export => OperationParams::Export(read_stored(v)?),
            OperationType::Materialize => OperationParams::Materialize(read_stored(v)?),
            OperationType::Measure => OperationParams::Measure(read_stored(v)?),
        })
    }
}

/// One type's stored parameters (absent keys, or no parameters at all, take the type's defaults).
pub fn read_stored<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    let v = if v.is_null() {
        Value::Object(Default::default())
    } else {
        v.clone()
    };
    serde_json::from_value(v).map_err(|e| format!("the operation's stored parameters: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_parameters_read_back_with_the_defaults() {
        let p =
            OperationParams::from_json(OperationType::Scan, &json!({"incremental": true})).unwrap();
        let OperationParams::Scan(s) = p else {
            panic!("a scan's parameters")
        };
        assert!(s.incremental);
        assert!(s.archive_duplicate_anomalies);
        assert!(!s.auto_resolve(), "incremental scans never auto-resolve");
        let round = OperationParams::Scan(s.clone()).to_json();
        assert_eq!(
            OperationParams::from_json(OperationType::Scan, &round).unwrap(),
            OperationParams::Scan(s)
        );
        let OperationParams::Profile(p) =
            OperationParams::from_json(OperationType::Profile, &Value::Null).unwrap()
        else {
            panic!("a profile's parameters")
        };
        assert_eq!((p.level(), p.incremental), (2, true));
    }

    #[test]
    fn a_source_record_limit_above_the_one_limit_is_refused() {
        let mut s = ScanParams {
            enrichment_source_record_limit: Some(MAX_SOURCE_RECORD_LIMIT),
            ..Default::default()
        };
        assert!(OperationParams::Scan(s.clone()).validate().is_empty());
        s.enrichment_source_record_limit = Some(MAX_SOURCE_RECORD_LIMIT + 1);
        s.high_count_rollup_threshold = Some(0);
        s.greater_than_time = Some("yesterday".into());
        let fields: Vec<String> = OperationParams::Scan(s)
            .validate()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "enrichment_source_record_limit",
                "high_count_rollup_threshold",
                "greater_than_time"
            ]
        );
    }

    #[test]
    fn efforts_and_thresholds_name_the_same_levels() {
        assert_eq!(effort_level("HIGH"), Some(3));
        assert_eq!(effort_of_threshold(3), Some("high"));
        assert_eq!(effort_of_threshold(6), None);
        let mut errors = vec![];
        ProfileParams {
            ai_effort: "extreme".into(),
            max_records_analyzed_per_partition: Some(0),
            ..Default::default()
        }
        .validate(&mut errors);
        assert_eq!(errors.len(), 2);
    }
}
