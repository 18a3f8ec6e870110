//! Operations: background jobs (sync, profile, scan, export, materialize, measure), their lifecycle and their
//! typed parameters.

mod params;

pub use params::{
    AI_EFFORTS, EXPORT_ASSETS, ExportParams, MaterializeParams, MeasureParams, OperationParams,
    ProfileParams, ScanParams, SyncParams, effort_level, effort_of_threshold, read_stored,
};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationType {
    Sync,
    Profile,
    Scan,
    Export,
    Materialize,
    Measure,
}

impl OperationType {
    /// Every type, in the order people meet them.
    pub const ALL: [OperationType; 6] = [
        Self::Sync,
        Self::Profile,
        Self::Scan,
        Self::Export,
        Self::Materialize,
        Self::Measure,
    ];

    /// Every type's name, in the order of [`Self::ALL`].
    pub const NAMES: [&'static str; 6] = [
        "sync",
        "profile",
        "scan",
        "export",
        "materialize",
        "measure",
    ];

    /// Parses a type name; `catalog` is the older name of `sync`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sync" | "catalog" => Some(Self::Sync),
            "profile" => Some(Self::Profile),
            "scan" => Some(Self::Scan),
            "export" => Some(Self::Export),
            "materialize" => Some(Self::Materialize),
            "measure" => Some(Self::Measure),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Profile => "profile",
            Self::Scan => "scan",
            Self::Export => "export",
            Self::Materialize => "materialize",
            Self::Measure => "measure",
        }
    }
}

/// Where an operation is in its life. `Queued` and `Running` are unfinished; the rest are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationResult {
    Queued,
    Running,
    Success,
    Failure,
    Aborted,
}

impl OperationResult {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            "aborted" => Some(Self::Aborted),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Aborted => "aborted",
        }
    }
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Success | Self::Failure | Self::Aborted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_an_alias_of_sync() {
        assert_eq!(OperationType::parse("catalog"), Some(OperationType::Sync));
        assert_eq!(OperationType::parse("remediate"), None);
        assert!(OperationResult::Aborted.is_finished());
        assert!(!OperationResult::Queued.is_finished());
    }

    #[test]
    fn names_and_types_agree() {
        assert_eq!(
            OperationType::ALL.map(OperationType::as_str),
            OperationType::NAMES
        );
        for t in OperationType::ALL {
            assert_eq!(OperationType::parse(t.as_str()), Some(t));
        }
    }
}
