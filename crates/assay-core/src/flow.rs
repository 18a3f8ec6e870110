//! Flows: what Assay tells people, when and where. A flow has a trigger (an operation ended, a scan detected
//! anomalies, an anomaly's status changed), filters that narrow it (datastores, tables, tags, rule types, a
//! minimum anomaly weight, only anomalies not seen before) and actions that deliver one message each (a signed
//! JSON webhook, a Slack or Microsoft Teams incoming webhook). Validation reports every problem at once, each
//! named by its field. Action URLs and signing secrets are secrets: `Action::secrets` splits them off so they are
//! stored encrypted and never shown.

use crate::FieldError;
use crate::connection::SecretsManager;
use crate::placeholder;
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
    /// An e-mail (plain text and HTML) through an SMTP server.
    Email {
        #[serde(default)]
        to: Vec<String>,
        #[serde(default)]
        smtp: Smtp,
    },
}

/// The SMTP server an e-mail action sends through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    /// `starttls` (the default: the server must offer STARTTLS), `tls` (TLS from the start) or `none`.
    pub security: String,
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The sender address.
    pub from: String,
    /// A CA certificate (PEM) the server's certificate may chain to, besides the public roots.
    pub ca_certificate: Option<String>,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: String::new(),
            port: 587,
            security: "starttls".into(),
            username: None,
            password: None,
            from: String::new(),
            ca_certificate: None,
        }
    }
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Webhook { .. } => "webhook",
            Action::Slack { .. } => "slack",
            Action::Teams { .. } => "teams",
            Action::Email { .. } => "email",
        }
    }

    /// The URL an HTTP action posts to (`None` for e-mail).
    pub fn url(&self) -> Option<&str> {
        match self {
            Action::Webhook { url, .. } | Action::Slack { url } | Action::Teams { url } => {
                Some(url)
            }
            Action::Email { .. } => None,
        }
    }

    /// The host a message leaves for: the URL's, or the SMTP server's.
    pub fn host(&self) -> &str {
        match self {
            Action::Email { smtp, .. } => &smtp.host,
            other => {
                let url = other.url().unwrap_or_default();
                let rest = url.split("://").nth(1).unwrap_or("");
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                let host = authority.rsplit('@').next().unwrap_or("");
                host.rsplit_once(':').map_or(host, |(h, _)| h)
            }
        }
    }

    /// The action without its secrets (what is stored in clear and shown), and the secrets alone.
    pub fn secrets(&self) -> (Value, Value) {
        match self {
            Action::Webhook { url, secret } => (
                json!({"type": "webhook", "signed": secret.is_some()}),
                json!({"url": url, "secret": secret}),
            ),
            Action::Email { to, smtp } => {
                let mut shown = smtp.clone();
                shown.password = None;
                (
                    json!({"type": "email", "to": to, "smtp": shown, "password_set": smtp.password.is_some()}),
                    json!({"password": smtp.password}),
                )
            }
            other => (json!({"type": other.kind()}), json!({"url": other.url()})),
        }
    }

    /// The texts of the action that may hold `${key}` references: its URL, signing secret, SMTP user and password.
    fn secret_texts(&self) -> Vec<&str> {
        match self {
            Action::Webhook { url, secret } => [Some(url.as_str()), secret.as_deref()]
                .into_iter()
                .flatten()
                .collect(),
            Action::Slack { url } | Action::Teams { url } => vec![url],
            Action::Email { smtp, .. } => [smtp.username.as_deref(), smtp.password.as_deref()]
                .into_iter()
                .flatten()
                .collect(),
        }
    }

    /// Whether the action holds `${key}` references.
    pub fn has_references(&self) -> bool {
        self.secret_texts()
            .iter()
            .any(|t| placeholder::has_references(t))
    }

    /// The action with its `${key}` references replaced (`Err` names the first missing key, never a value).
    pub fn resolve(
        &self,
        values: &std::collections::BTreeMap<String, String>,
    ) -> Result<Action, String> {
        let sub = |t: &str| placeholder::substitute(t, values);
        let opt = |t: &Option<String>| t.as_deref().map(sub).transpose();
        Ok(match self {
            Action::Webhook { url, secret } => Action::Webhook {
                url: sub(url)?,
                secret: opt(secret)?,
            },
            Action::Slack { url } => Action::Slack { url: sub(url)? },
            Action::Teams { url } => Action::Teams { url: sub(url)? },
            Action::Email { to, smtp } => {
                let mut smtp = smtp.clone();
                smtp.username = opt(&smtp.username)?;
                smtp.password = opt(&smtp.password)?;
                Action::Email {
                    to: to.clone(),
                    smtp,
                }
            }
        })
    }

    /// Joins an action's clear part with its secrets again.
    pub fn join(clear: &Value, secrets: &Value) -> Option<Action> {
        let mut v = clear.clone();
        if clear["type"] == "email" {
            v["smtp"]["password"] = secrets["password"].clone();
        } else {
            v["url"] = secrets["url"].clone();
        }
        if clear["type"] == "webhook" {
            v["secret"] = secrets["secret"].clone();
        }
        if let Some(m) = v.as_object_mut() {
            m.remove("signed");
            m.remove("password_set");
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
    /// Where `${key}` references in action URLs and secrets are resolved, at every delivery (as for
    /// connections: Vault, OpenBao or any POST-login + GET-secret service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<SecretsManager>,
}

fn yes() -> bool {
    true
}

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
                    &crate::operation::OperationType::NAMES,
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
            if a.has_references() && self.secrets_manager.is_none() {
                errors.push(FieldError::new(
                    format!("actions[{i}]"),
                    "uses ${key} references: give the flow a secrets_manager that resolves them",
                ));
            }
            if let Action::Email { to, smtp } = a {
                email_errors(i, to, smtp, &mut errors);
                continue;
            }
            let url = a.url().unwrap_or_default().trim();
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
                && !placeholder::has_references(s)
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

/// What is wrong with an e-mail action.
fn email_errors(i: usize, to: &[String], smtp: &Smtp, errors: &mut Vec<FieldError>) {
    let address = |a: &str| {
        let (local, domain) = a.trim().rsplit_once('@').unwrap_or(("", ""));
        !local.is_empty() && domain.contains('.') || domain == "localhost"
    };
    if to.is_empty() {
        errors.push(FieldError::new(
            format!("actions[{i}].to"),
            "is required: the addresses that receive the e-mail",
        ));
    }
    for a in to.iter().filter(|a| !address(a)) {
        errors.push(FieldError::new(
            format!("actions[{i}].to"),
            format!("'{a}' is not an e-mail address"),
        ));
    }
    if smtp.host.trim().is_empty() {
        errors.push(FieldError::new(
            format!("actions[{i}].smtp.host"),
            "is required: the SMTP server that sends the e-mail",
        ));
    }
    if !address(&smtp.from) {
        errors.push(FieldError::new(
            format!("actions[{i}].smtp.from"),
            "must be the sender's e-mail address",
        ));
    }
    if !["starttls", "tls", "none"].contains(&smtp.security.as_str()) {
        errors.push(FieldError::new(
            format!("actions[{i}].smtp.security"),
            format!("'{}' is not starttls, tls or none", smtp.security),
        ));
    }
    if smtp.password.is_some() && smtp.username.is_none() {
        errors.push(FieldError::new(
            format!("actions[{i}].smtp.username"),
            "is required with a password",
        ));
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
        let e = Action::Email {
            to: vec!["dq@example.com".into()],
            smtp: Smtp {
                host: "smtp.example.com".into(),
                username: Some("mailer".into()),
                password: Some("smtp-pass-9".into()),
                from: "assay@example.com".into(),
                ..Smtp::default()
            },
        };
        let (clear, secrets) = e.secrets();
        assert!(!clear.to_string().contains("smtp-pass-9"), "{clear}");
        assert_eq!(clear["password_set"], true);
        assert_eq!(Action::join(&clear, &secrets), Some(e));
    }

    #[test]
    fn e_mail_actions_name_what_is_missing() {
        let f: FlowSpec = serde_json::from_value(json!({
            "name": "mail", "trigger": {"type": "anomaly"},
            "actions": [{"type": "email", "to": ["nobody"], "smtp": {"security": "ssl3", "password": "p"}}]
        }))
        .unwrap();
        let fields: Vec<String> = f.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "actions[0].to",
                "actions[0].smtp.host",
                "actions[0].smtp.from",
                "actions[0].smtp.security",
                "actions[0].smtp.username"
            ]
        );
    }
}
