//! HTML form bodies: decoding (repeated keys for multi-selects), the datastore-and-connection form shared by the
//! Add Datastore and Link Enrichment steps, the API body it becomes, and the API's field errors mapped back onto
//! the form's inputs.

use crate::ApiError;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A decoded `application/x-www-form-urlencoded` body.
pub struct Pairs(pub Vec<(String, String)>);

impl Pairs {
    pub fn parse(body: &str) -> Pairs {
        Pairs(crate::params::form_urlencoded_pairs(body))
    }
    /// The last value of a key, or "".
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn on(&self, key: &str) -> bool {
        matches!(self.get(key), "on" | "true" | "1" | "yes")
    }
}

/// The fields of the datastore form, as typed (re-shown unchanged when a test or a save fails).
#[derive(Debug, Clone, Default)]
pub struct DatastoreForm {
    pub name: String,
    /// `new` or `existing`.
    pub mode: String,
    pub connection_id: String,
    pub connection_name: String,
    pub host: String,
    pub port: String,
    pub username: String,
    /// Kept only in the re-shown form of the same unsaved submission; never read back from the store.
    pub password: String,
    pub database: String,
    pub schema: String,
    pub teams: Vec<String>,
    pub trigger_sync: bool,
    pub sm_enabled: bool,
    pub sm_login_url: String,
    pub sm_credentials_payload: String,
    pub sm_token_jsonpath: String,
    pub sm_secret_url: String,
    pub sm_token_header_name: String,
    pub sm_data_jsonpath: String,
    /// The enrichment prefix (Link Enrichment step).
    pub prefix: String,
}

impl DatastoreForm {
    /// An empty form: a new connection, sync on, the Vault defaults filled in.
    pub fn blank() -> DatastoreForm {
        DatastoreForm {
            mode: "new".into(),
            port: "5432".into(),
            trigger_sync: true,
            sm_token_jsonpath: assay_core::connection::DEFAULT_TOKEN_JSONPATH.into(),
            sm_token_header_name: assay_core::connection::DEFAULT_TOKEN_HEADER.into(),
            sm_data_jsonpath: assay_core::connection::DEFAULT_DATA_JSONPATH.into(),
            ..Default::default()
        }
    }

    pub fn from_pairs(f: &Pairs) -> DatastoreForm {
        let s = |k: &str| f.get(k).to_string();
        DatastoreForm {
            name: s("name"),
            mode: if f.get("mode") == "existing" {
                "existing".into()
            } else {
                "new".into()
            },
            connection_id: s("connection_id"),
            connection_name: s("connection_name"),
            host: s("host"),
            port: s("port"),
            username: s("username"),
            password: s("password"),
            database: s("database"),
            schema: s("schema"),
            teams: f.all("teams"),
            trigger_sync: f.on("trigger_sync"),
            sm_enabled: f.on("sm_enabled"),
            sm_login_url: s("sm_login_url"),
            sm_credentials_payload: s("sm_credentials_payload"),
            sm_token_jsonpath: s("sm_token_jsonpath"),
            sm_secret_url: s("sm_secret_url"),
            sm_token_header_name: s("sm_token_header_name"),
            sm_data_jsonpath: s("sm_data_jsonpath"),
            prefix: s("prefix"),
        }
    }

    pub fn existing(&self) -> bool {
        self.mode == "existing"
    }

    pub fn has_team(&self, team: &str) -> bool {
        self.teams.iter().any(|t| t == team)
    }

    /// The body of `POST /api/datastores` (and of its Test Connection) for this form.
    pub fn api_body(&self, enrichment_only: bool) -> Value {
        let mut body = Map::new();
        body.insert("name".into(), json!(self.name.trim()));
        body.insert("database".into(), json!(self.database.trim()));
        body.insert("schema".into(), json!(self.schema.trim()));
        body.insert("enrichment_only".into(), json!(enrichment_only));
        body.insert(
            "trigger_sync".into(),
            json!(self.trigger_sync && !enrichment_only),
        );
        if !self.teams.is_empty() {
            body.insert("teams".into(), json!(self.teams));
        }
        if self.existing() {
            match self.connection_id.trim().parse::<i64>() {
                Ok(id) => body.insert("connection_id".into(), json!(id)),
                // the API reports a missing connection_id next to the field
                Err(_) => None,
            };
            return Value::Object(body);
        }
        let mut c = Map::new();
        let cname = if self.connection_name.trim().is_empty() {
            self.name.trim()
        } else {
            self.connection_name.trim()
        };
        c.insert("name".into(), json!(cname));
        c.insert("type".into(), json!("postgresql"));
        c.insert("host".into(), json!(self.host.trim()));
        let port = self.port.trim();
        c.insert(
            "port".into(),
            match port.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => json!(port),
            },
        );
        c.insert("username".into(), json!(self.username.trim()));
        if !self.password.is_empty() {
            c.insert("password".into(), json!(self.password));
        }
        if self.sm_enabled {
            c.insert(
                "secrets_manager".into(),
                json!({
                    "login_url": self.sm_login_url.trim(),
                    "credentials_payload": self.sm_credentials_payload.trim(),
                    "token_jsonpath": self.sm_token_jsonpath.trim(),
                    "secret_url": self.sm_secret_url.trim(),
                    "token_header_name": self.sm_token_header_name.trim(),
                    "data_jsonpath": self.sm_data_jsonpath.trim(),
                }),
            );
        }
        body.insert("connection".into(), Value::Object(c));
        Value::Object(body)
    }
}

/// Field errors keyed by the form's input names, plus a message for everything else.
#[derive(Debug, Default)]
pub struct Errors {
    pub fields: BTreeMap<String, String>,
    pub general: Option<String>,
}

impl Errors {
    /// Maps an API error onto the form: `connection.host` → `host`, `secrets_manager.x` → `sm_x`,
    /// `connection.name` → `connection_name`.
    pub fn from_api(e: &ApiError) -> Errors {
        let mut out = Errors::default();
        for fe in &e.errors {
            let f = fe.field.strip_prefix("connection.").unwrap_or(&fe.field);
            let key = if let Some(rest) = f.strip_prefix("secrets_manager.") {
                format!("sm_{rest}")
            } else if fe.field == "connection.name" {
                "connection_name".to_string()
            } else if f == "type" || f == "connection" {
                "mode".to_string()
            } else if f == "enrichment_prefix" {
                "prefix".to_string()
            } else {
                f.to_string()
            };
            out.fields
                .entry(key)
                .and_modify(|m| {
                    m.push_str("; ");
                    m.push_str(&fe.message);
                })
                .or_insert_with(|| fe.message.clone());
        }
        if e.errors.is_empty() {
            // a name already taken belongs next to its field
            if e.detail.starts_with("a connection named") {
                out.fields
                    .insert("connection_name".into(), e.detail.clone());
            } else if e.detail.starts_with("a datastore named") {
                out.fields.insert("name".into(), e.detail.clone());
            } else {
                out.general = Some(e.detail.clone());
            }
        }
        out
    }

    pub fn get(&self, field: &str) -> &str {
        self.fields.get(field).map(String::as_str).unwrap_or("")
    }
}
