//! Connections: where a database server is and how to log in to it, possibly through a secrets manager.

use crate::error::{CoreError, FieldError};
use crate::placeholder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Connector types Assay can talk to.
pub const SUPPORTED_TYPES: &[&str] = &["postgresql"];

/// libpq-style `sslmode` values accepted in `parameters.sslmode`.
pub const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// A port: a number, or a `${key}` reference resolved from the secrets manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Number(u16),
    Reference(String),
}

impl Port {
    /// The port as a string for `${key}` substitution.
    pub fn as_text(&self) -> String {
        match self {
            Port::Number(n) => n.to_string(),
            Port::Reference(s) => s.clone(),
        }
    }
}

/// Vault / OpenBao (or any POST-login + GET-secret service) settings of a connection. Its `Debug` shows
/// whether a credentials payload is set, never the payload.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsManager {
    #[serde(default)]
    pub login_url: Option<String>,
    /// JSON text POSTed to `login_url`. Write-only: never returned by the API.
    #[serde(default)]
    pub credentials_payload: Option<String>,
    #[serde(default = "default_token_jsonpath")]
    pub token_jsonpath: String,
    pub secret_url: String,
    #[serde(default = "default_token_header")]
    pub token_header_name: String,
    #[serde(default = "default_data_jsonpath")]
    pub data_jsonpath: String,
}

fn default_token_jsonpath() -> String {
    DEFAULT_TOKEN_JSONPATH.into()
}
fn default_token_header() -> String {
    DEFAULT_TOKEN_HEADER.into()
}
fn default_data_jsonpath() -> String {
    DEFAULT_DATA_JSONPATH.into()
}

pub const DEFAULT_TOKEN_JSONPATH: &str = "$.auth.client_token";
pub const DEFAULT_TOKEN_HEADER: &str = "X-Vault-Token";
pub const DEFAULT_DATA_JSONPATH: &str = "$.data";

/// A connection as stored (with its secrets in clear, inside the process only). Its `Debug` shows whether a
/// password is set, never the password, and only the names of the driver parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    pub name: String,
    pub connector: String,
    pub host: String,
    pub port: Port,
    pub username: String,
    pub password: Option<String>,
    pub parameters: Map<String, Value>,
    pub max_parallelization: Option<i32>,
    pub jdbc_fetch_size: Option<i32>,
    pub secrets_manager: Option<SecretsManager>,
}

/// How a secret shows in `Debug` output: that it is set, not what it is.
fn redacted(v: &Option<String>) -> Option<&'static str> {
    v.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for SecretsManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManager")
            .field("login_url", &self.login_url)
            .field("credentials_payload", &redacted(&self.credentials_payload))
            .field("token_jsonpath", &self.token_jsonpath)
            .field("secret_url", &self.secret_url)
            .field("token_header_name", &self.token_header_name)
            .field("data_jsonpath", &self.data_jsonpath)
            .finish()
    }
}

impl fmt::Debug for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSpec")
            .field("name", &self.name)
            .field("connector", &self.connector)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("parameters", &self.parameters.keys().collect::<Vec<_>>())
            .field("max_parallelization", &self.max_parallelization)
            .field("jdbc_fetch_size", &self.jdbc_fetch_size)
            .field("secrets_manager", &self.secrets_manager)
            .finish()
    }
}

impl ConnectionSpec {
    /// Checks every field and reports all problems at once.
    pub fn validate(&self) -> Result<(), CoreError> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push(FieldError::new(
                "name",
                "is required: give the connection a unique name",
            ));
        } else if self.name.len() > 255 {
            errors.push(FieldError::new("name", "is longer than 255 characters"));
        }
        if !SUPPORTED_TYPES.contains(&self.connector.as_str()) {
            errors.push(FieldError::new(
                "type",
                format!(
                    "'{}' is not supported; use one of: {}",
                    self.connector,
                    SUPPORTED_TYPES.join(", ")
                ),
            ));
        }
        if self.host.trim().is_empty() {
            errors.push(FieldError::new(
                "host",
                "is required: the server's host name or IP address",
            ));
        }
        match &self.port {
            Port::Number(0) => errors.push(FieldError::new("port", "must be between 1 and 65535")),
            Port::Reference(s) if !placeholder::has_references(s) => errors.push(FieldError::new(
                "port",
                "must be a number between 1 and 65535 or a ${key} reference",
            )),
            _ => {}
        }
        if self.username.trim().is_empty() {
            errors.push(FieldError::new(
                "username",
                "is required: the role to log in as",
            ));
        }
        if let Some(Value::String(mode)) = self.parameters.get("sslmode") {
            if !SSL_MODES.contains(&mode.as_str()) {
                errors.push(FieldError::new(
                    "parameters.sslmode",
                    format!(
                        "'{mode}' is not an sslmode; use one of: {}",
                        SSL_MODES.join(", ")
                    ),
                ));
            }
        } else if self.parameters.get("sslmode").is_some_and(|v| !v.is_null()) {
            errors.push(FieldError::new(
                "parameters.sslmode",
                "must be a string such as \"require\"",
            ));
        }
        if let Some(n) = self.max_parallelization
            && !(1..=100).contains(&n)
        {
            errors.push(FieldError::new(
                "max_parallelization",
                "must be between 1 and 100",
            ));
        }
        if let Some(n) = self.jdbc_fetch_size
            && n < 1
        {
            errors.push(FieldError::new("jdbc_fetch_size", "must be at least 1"));
        }
        let uses_refs = self
            .property_texts()
            .iter()
            .any(|(_, t)| placeholder::has_references(t));
        match &self.secrets_manager {
            Some(sm) => errors.extend(sm.structural_errors()),
            None if uses_refs => errors.push(FieldError::new(
                "secrets_manager",
                "a property contains a ${key} reference but no secrets manager is configured; configure one, \
                 or write $${key} for a literal ${key}",
            )),
            None => {}
        }
        CoreError::check(errors)
    }

    /// Every text property that may hold `${key}` references, with its name.
    pub fn property_texts(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("host".to_string(), self.host.clone()),
            ("port".to_string(), self.port.as_text()),
            ("username".to_string(), self.username.clone()),
        ];
        if let Some(p) = &self.password {
            out.push(("password".to_string(), p.clone()));
        }
        for (k, v) in &self.parameters {
            if let Value::String(s) = v {
                out.push((format!("parameters.{k}"), s.clone()));
            }
        }
        out
    }
}

impl SecretsManager {
    /// Checks required fields, URLs and the credentials payload. JSONPath syntax is checked by the secrets crate.
    pub fn structural_errors(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let url_ok = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if self.secret_url.trim().is_empty() {
            errors.push(FieldError::new(
                "secrets_manager.secret_url",
                "is required: the URL of the secret to read",
            ));
        } else if !url_ok(&self.secret_url) {
            errors.push(FieldError::new(
                "secrets_manager.secret_url",
                "must start with http:// or https://",
            ));
        }
        if let Some(u) = &self.login_url {
            if !url_ok(u) {
                errors.push(FieldError::new(
                    "secrets_manager.login_url",
                    "must start with http:// or https://",
                ));
            }
            match &self.credentials_payload {
                None => errors.push(FieldError::new(
                    "secrets_manager.credentials_payload",
                    "is required with a login URL: the JSON body to log in with, e.g. {\"password\": \"...\"}",
                )),
                Some(p) => match serde_json::from_str::<Value>(p) {
                    Ok(Value::Object(_)) => {}
                    Ok(_) => errors.push(FieldError::new(
                        "secrets_manager.credentials_payload",
                        "must be a JSON object, e.g. {\"role_id\": \"...\", \"secret_id\": \"...\"}",
                    )),
                    Err(e) => errors.push(FieldError::new(
                        "secrets_manager.credentials_payload",
                        format!("is not valid JSON (line {}, column {})", e.line(), e.column()),
                    )),
                },
            }
        }
        if self.token_header_name.trim().is_empty()
            || self.token_header_name.contains([':', ' ', '\n'])
        {
            errors.push(FieldError::new(
                "secrets_manager.token_header_name",
                "must be an HTTP header name such as X-Vault-Token",
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ConnectionSpec {
        ConnectionSpec {
            name: "pg".into(),
            connector: "postgresql".into(),
            host: "127.0.0.1".into(),
            port: Port::Number(5432),
            username: "u".into(),
            password: Some("p".into()),
            parameters: Map::new(),
            max_parallelization: None,
            jdbc_fetch_size: None,
            secrets_manager: None,
        }
    }

    fn vault() -> SecretsManager {
        SecretsManager {
            login_url: Some("http://127.0.0.1:8200/v1/auth/userpass/login/dq".into()),
            credentials_payload: Some("{\"password\":\"x\"}".into()),
            token_jsonpath: DEFAULT_TOKEN_JSONPATH.into(),
            secret_url: "http://127.0.0.1:8200/v1/secret/data/dq/pg".into(),
            token_header_name: DEFAULT_TOKEN_HEADER.into(),
            data_jsonpath: "$.data.data".into(),
        }
    }

    #[test]
    fn valid_spec_passes() {
        spec().validate().unwrap();
    }

    #[test]
    fn reports_every_error_at_once() {
        let mut s = spec();
        s.name = " ".into();
        s.connector = "mysql".into();
        s.host = String::new();
        s.port = Port::Number(0);
        s.parameters
            .insert("sslmode".into(), Value::String("sometimes".into()));
        let CoreError::Invalid(errors) = s.validate().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["name", "type", "host", "port", "parameters.sslmode"]
        );
    }

    #[test]
    fn references_need_a_secrets_manager() {
        let mut s = spec();
        s.password = Some("${password}".into());
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("secrets_manager"), "{err}");
        s.secrets_manager = Some(vault());
        s.validate().unwrap();
        s.secrets_manager = None;
        s.password = Some("$${password}".into());
        s.validate().unwrap();
    }

    #[test]
    fn malformed_payload_is_rejected() {
        let mut s = spec();
        let mut v = vault();
        v.credentials_payload = Some("{not json".into());
        s.secrets_manager = Some(v);
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("credentials_payload: is not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn port_reference_must_be_a_reference() {
        let mut s = spec();
        s.port = Port::Reference("abc".into());
        assert!(s.validate().is_err());
        s.port = Port::Reference("${port}".into());
        s.secrets_manager = Some(vault());
        s.validate().unwrap();
    }

    #[test]
    fn debug_output_names_secrets_without_their_values() {
        let mut parameters = Map::new();
        parameters.insert("sslpassword".into(), Value::String("param-secret-4".into()));
        let spec = ConnectionSpec {
            name: "c".into(),
            connector: "postgresql".into(),
            host: "db".into(),
            port: Port::Number(5432),
            username: "reader".into(),
            password: Some("pw-secret-1".into()),
            parameters,
            max_parallelization: None,
            jdbc_fetch_size: None,
            secrets_manager: Some(SecretsManager {
                login_url: Some("http://vault/login".into()),
                credentials_payload: Some("{\"secret_id\": \"payload-secret-2\"}".into()),
                token_jsonpath: DEFAULT_TOKEN_JSONPATH.into(),
                secret_url: "http://vault/secret".into(),
                token_header_name: DEFAULT_TOKEN_HEADER.into(),
                data_jsonpath: DEFAULT_DATA_JSONPATH.into(),
            }),
        };
        let shown = format!("{spec:?} {spec:#?}");
        for secret in ["pw-secret-1", "payload-secret-2", "param-secret-4"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("<redacted>") && shown.contains("sslpassword"),
            "{shown}"
        );
    }
}
