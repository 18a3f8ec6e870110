//! Flows: what Assay tells people, when and where. A flow has a trigger (an operation ended, a scan detected
//! anomalies, an anomaly's status changed), filters that narrow it (datastores, tables, tags, rule types, a
//! minimum anomaly weight, only anomalies not seen before) and actions that deliver one message each (a signed
//! JSON webhook, a Slack or Microsoft Teams incoming webhook). Validation reports every problem at once, each
//! named by its field. Action URLs and signing secrets are secrets: `Action::secrets` splits them off so they are
//! stored encrypted and never shown.

use crate::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// When a flow runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// An operation ended; empty lists mean any type and any result (`success`, `warning`, `failure`,
    /// `aborted`; a warning is a success with a message).
    Operation {
        #[serde(default)]
        operation_types: Vec<String>,
        #[serde(default)]
        results: Vec<String>,
    },
    /// A scan ended with anomalies that pass the filters.
    Anomaly,
    /// Anomalies changed status (to one of `statuses`, or any when empty).
    AnomalyStatus {
        #[serde(default)]
        statuses: Vec<String>,
    },
}

/// What narrows a flow's trigger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filters {
    /// Datastore ids (any when empty).
    pub datastores: Vec<i64>,
    /// Table names (any when empty).
    pub containers: Vec<String>,
    /// Anomalies or datastores carrying any of these tags.
    pub tags: Vec<String>,
    /// Anomalies of checks of these rule types.
    pub rule_types: Vec<String>,
    /// Anomalies at least this heavy.
    pub min_weight: Option<i64>,
    /// Only anomalies whose fingerprint was not reported before (duplicates do not notify again).
    pub only_new: bool,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// A JSON POST of the versioned payload, signed with HMAC-SHA256 when `secret` is set.
    Webhook {
        #[serde(default)]
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// A Slack incoming webhook (Block Kit message).
    Slack {
        #[serde(default)]
        url: String,
    },
    /// A Microsoft Teams incoming webhook (adaptive card).
    Teams {
        #[serde(default)]
        url: String,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Webhook { .. } => "webhook",
            Action::Slack { .. } => "slack",
            Action::Teams { .. } => "teams",
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Action::Webhook { url, .. } | Action::Slack { url } | Action::Teams { url } => url,
        }
    }

    /// The action without its secrets (what is stored in clear and shown), and the secrets alone.
    pub fn secrets(&self) -> (Value, Value) {
        match self {
            Action::Webhook { url, secret } => (
                json!({"type": "webhook", "signed": secret.is_some()}),
                json!({"url": url, "secret": secret}),
            ),
            other => (json!({"type": other.kind()}), json!({"url": other.url()})),
        }
    }

    /// Joins an action's clear part with its secrets again.
    pub fn join(clear: &Value, secrets: &Value) -> Option<Action> {
        let mut v = clear.clone();
        v["url"] = secrets["url"].clone();
        if clear["type"] == "webhook" {
            v["secret"] = secrets["secret"].clone();
        }
        if let Some(m) = v.as_object_mut() {
            m.remove("signed");
        }
        serde_json::from_value(v).ok()
    }
}

/// A flow as written by a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub trigger: Trigger,
    #[serde(default)]
    pub filters: Filters,
    pub actions: Vec<Action>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

const OPERATION_TYPES: [&str; 5] = ["sync", "profile", "scan", "export", "materialize"];
const RESULTS: [&str; 4] = ["success", "warning", "failure", "aborted"];
const STATUSES: [&str; 6] = [
    "Active",
    "Acknowledged",
    "Resolved",
    "Invalid",
    "Duplicate",
    "Discarded",
];

impl FlowSpec {
    /// Every problem, each named by its field (`actions[0].url`, `trigger.results`, ...).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push(FieldError::new("name", "is required: name the flow"));
        } else if self.name.len() > 255 {
            errors.push(FieldError::new("name", "is longer than 255 characters"));
        }
        let unknown =
            |field: &str, values: &[String], allowed: &[&str], errors: &mut Vec<FieldError>| {
                for v in values {
                    if !allowed.contains(&v.as_str()) {
                        errors.push(FieldError::new(
                            field,
                            format!("'{v}' is not one of {}", allowed.join(", ")),
                        ));
                    }
                }
            };
        match &self.trigger {
            Trigger::Operation {
                operation_types,
                results,
            } => {
                unknown(
                    "trigger.operation_types",
                    operation_types,
                    &OPERATION_TYPES,
                    &mut errors,
                );
                unknown("trigger.results", results, &RESULTS, &mut errors);
            }
            Trigger::AnomalyStatus { statuses } => {
                unknown("trigger.statuses", statuses, &STATUSES, &mut errors)
            }
            Trigger::Anomaly => {}
        }
        if self.filters.min_weight.is_some_and(|w| w < 0) {
            errors.push(FieldError::new("filters.min_weight", "must be 0 or more"));
        }
        if self.actions.is_empty() {
            errors.push(FieldError::new(
                "actions",
                "is required: at least one action (webhook, slack or teams) to deliver the message",
            ));
        }
        for (i, a) in self.actions.iter().enumerate() {
            let url = a.url().trim();
            let reference = url.contains("${");
            if !(url.starts_with("https://") || url.starts_with("http://") || reference) {
                errors.push(FieldError::new(
                    format!("actions[{i}].url"),
                    "must be an http:// or https:// URL (the incoming webhook's address)",
                ));
            }
            if let Action::Webhook {
                secret: Some(s), ..
            } = a
                && s.len() < 16
            {
                errors.push(FieldError::new(
                    format!("actions[{i}].secret"),
                    "must be at least 16 characters: it signs every message",
                ));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_reads_from_json_and_names_every_problem() {
        let f: FlowSpec = serde_json::from_value(json!({
            "name": "", "trigger": {"type": "operation", "results": ["failure", "exploded"]},
            "filters": {"min_weight": -1},
            "actions": [{"type": "webhook", "url": "ftp://x", "secret": "short"}, {"type": "slack", "url": "https://hooks.example/x"}]
        }))
        .unwrap();
        assert!(f.active, "a flow is active unless told otherwise");
        let fields: Vec<String> = f.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "trigger.results",
                "filters.min_weight",
                "actions[0].url",
                "actions[0].secret"
            ]
        );
    }

    #[test]
    fn secrets_split_off_and_join_again() {
        let a = Action::Webhook {
            url: "https://hooks.example/h".into(),
            secret: Some("0123456789abcdef".into()),
        };
        let (clear, secrets) = a.secrets();
        assert!(!clear.to_string().contains("hooks.example"), "{clear}");
        assert!(!clear.to_string().contains("0123456789abcdef"), "{clear}");
        assert_eq!(clear["signed"], true);
        assert_eq!(Action::join(&clear, &secrets), Some(a));
        let t = Action::Teams {
            url: "https://teams.example/w".into(),
        };
        let (clear, secrets) = t.secrets();
        assert_eq!(Action::join(&clear, &secrets), Some(t));
    }
}
