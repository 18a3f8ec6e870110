//! `connections create|list|get|update|delete|test`. Values are sent as given: `${key}` in a property reaches
//! the server verbatim and is resolved there from the secrets manager (single-quote it in the shell).

use super::client;
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

/// Keys of `--parameters` that are connection fields rather than driver parameters.
const TOP_LEVEL: &[&str] = &[
    "name",
    "type",
    "secrets_manager",
    "host",
    "port",
    "username",
    "password",
    "passphrase",
    "uri",
    "access_key",
    "secret_key",
    "catalog",
    "catalog_type",
    "jdbc_fetch_size",
    "max_parallelization",
];

#[derive(Args, Default)]
pub struct VaultArgs {
    /// Secrets manager: URL to log in at (POST)
    #[arg(long)]
    vault_login_url: Option<String>,
    /// Secrets manager: JSON body to log in with
    #[arg(long)]
    vault_credentials_payload: Option<String>,
    /// Secrets manager: JSONPath of the token in the login answer (default $.auth.client_token)
    #[arg(long)]
    vault_token_jsonpath: Option<String>,
    /// Secrets manager: URL of the secret (GET)
    #[arg(long)]
    vault_secret_url: Option<String>,
    /// Secrets manager: header carrying the token (default X-Vault-Token)
    #[arg(long)]
    vault_token_header_name: Option<String>,
    /// Secrets manager: JSONPath of the key/value map in the secret (default $.data)
    #[arg(long)]
    vault_data_jsonpath: Option<String>,
    /// Secrets manager settings as a JSON file (the API's secrets_manager object)
    #[arg(long)]
    secrets_manager_file: Option<std::path::PathBuf>,
}

impl VaultArgs {
    fn object(&self) -> Result<Option<Value>> {
        if let Some(path) = &self.secrets_manager_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            return Ok(Some(v));
        }
        if self.vault_secret_url.is_none() && self.vault_login_url.is_none() {
            return Ok(None);
        }
        let mut m = Map::new();
        for (k, v) in [
            ("login_url", &self.vault_login_url),
            ("credentials_payload", &self.vault_credentials_payload),
            ("token_jsonpath", &self.vault_token_jsonpath),
            ("secret_url", &self.vault_secret_url),
            ("token_header_name", &self.vault_token_header_name),
            ("data_jsonpath", &self.vault_data_jsonpath),
        ] {
            if let Some(v) = v {
                m.insert(k.to_string(), json!(v));
            }
        }
        Ok(Some(Value::Object(m)))
    }
}

/// Flags the Qualytics CLI has for other connectors (object stores, warehouses). Accepted so that copied
/// commands parse, and refused with the reason: Assay connects to PostgreSQL.
#[derive(Args, Default)]
pub struct OtherConnectorArgs {
    #[arg(long, hide = true)]
    uri: Option<String>,
    #[arg(long, hide = true)]
    access_key: Option<String>,
    #[arg(long, hide = true)]
    secret_key: Option<String>,
    #[arg(long, hide = true)]
    catalog: Option<String>,
    #[arg(long, hide = true)]
    authentication_type: Option<String>,
    #[arg(long, hide = true)]
    role_arn: Option<String>,
    #[arg(long, hide = true)]
    external_id: Option<String>,
}

impl OtherConnectorArgs {
    fn refuse(&self) -> Result<()> {
        for (flag, given) in [
            ("--uri", self.uri.is_some()),
            ("--access-key", self.access_key.is_some()),
            ("--secret-key", self.secret_key.is_some()),
            ("--catalog", self.catalog.is_some()),
            ("--authentication-type", self.authentication_type.is_some()),
            ("--role-arn", self.role_arn.is_some()),
            ("--external-id", self.external_id.is_some()),
        ] {
            if given {
                crate::usage!(
                    "{flag} is for file-store and warehouse connectors; Assay connects to PostgreSQL, which takes \
                     --host, --port, --username, --password and --parameters"
                );
            }
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct Props {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    host: Option<String>,
    /// A number, or a '${key}' reference
    #[arg(long)]
    port: Option<String>,
    #[arg(long)]
    username: Option<String>,
    #[arg(long)]
    password: Option<String>,
    /// Driver parameters as JSON, e.g. '{"sslmode": "require"}'
    #[arg(long)]
    parameters: Option<String>,
    #[arg(long)]
    max_parallelization: Option<i64>,
    #[command(flatten)]
    vault: VaultArgs,
    #[command(flatten)]
    other: OtherConnectorArgs,
    /// Output format of the saved connection: yaml or json
    #[arg(long, short = 'f', value_enum)]
    format: Option<Format>,
}

impl Props {
    fn body(&self, body: &mut Map<String, Value>) -> Result<()> {
        self.other.refuse()?;
        for (k, v) in [
            ("name", &self.name),
            ("host", &self.host),
            ("username", &self.username),
            ("password", &self.password),
        ] {
            if let Some(v) = v {
                body.insert(k.into(), json!(v));
            }
        }
        if let Some(p) = &self.port {
            body.insert(
                "port".into(),
                p.parse::<u16>()
                    .map(|n| json!(n))
                    .unwrap_or_else(|_| json!(p)),
            );
        }
        if let Some(n) = self.max_parallelization {
            body.insert("max_parallelization".into(), json!(n));
        }
        if let Some(text) = &self.parameters {
            let parsed: Value =
                serde_json::from_str(text).context("--parameters is not valid JSON")?;
            let Value::Object(obj) = parsed else {
                crate::usage!("--parameters must be a JSON object")
            };
            let mut params = Map::new();
            for (k, v) in obj {
                if k == "parameters" {
                    if let Value::Object(inner) = v {
                        params.extend(inner);
                    }
                } else if TOP_LEVEL.contains(&k.as_str()) {
                    body.insert(k, v);
                } else {
                    params.insert(k, v);
                }
            }
            if !params.is_empty() {
                body.insert("parameters".into(), Value::Object(params));
            }
        }
        if let Some(sm) = self.vault.object()? {
            body.insert("secrets_manager".into(), sm);
        }
        Ok(())
    }
}

#[derive(Subcommand)]
pub enum ConnectionsCmd {
    /// Create a connection
    Create {
        #[arg(long = "type")]
        connection_type: String,
        #[command(flatten)]
        props: Props,
        /// Fetch size (accepted for JDBC connectors; PostgreSQL reads with COPY)
        #[arg(long)]
        jdbc_fetch_size: Option<i64>,
        /// Print the request body (password masked) instead of sending it
        #[arg(long)]
        dry_run: bool,
    },
    List {
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "type")]
        connection_type: Option<String>,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long, required_unless_present = "name")]
        id: Option<i64>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Change a connection (only the flags given)
    Update {
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        props: Props,
    },
    Delete {
        #[arg(long)]
        id: i64,
    },
    /// Test a saved connection (--id; flags override values for this test only), or an unsaved one (--type
    /// and the connection flags)
    Test {
        #[arg(long, required_unless_present = "connection_type")]
        id: Option<i64>,
        #[arg(long = "type")]
        connection_type: Option<String>,
        /// Database to connect to (default: the first datastore's, else postgres)
        #[arg(long)]
        database: Option<String>,
        #[command(flatten)]
        props: Props,
    },
}

/// The body with every secret replaced by a mask, for `--dry-run`.
fn masked(body: &Map<String, Value>) -> Value {
    let mut b = body.clone();
    for k in ["password", "passphrase", "secret_key"] {
        if b.contains_key(k) {
            b.insert(k.into(), json!("********"));
        }
    }
    if let Some(Value::Object(sm)) = b.get_mut("secrets_manager")
        && sm.contains_key("credentials_payload")
    {
        sm.insert("credentials_payload".into(), json!("********"));
    }
    Value::Object(b)
}

pub async fn run(cmd: ConnectionsCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        ConnectionsCmd::Create {
            connection_type,
            props,
            jdbc_fetch_size,
            dry_run,
        } => {
            let mut body = Map::new();
            body.insert("type".into(), json!(connection_type));
            props.body(&mut body)?;
            if let Some(n) = jdbc_fetch_size {
                body.insert("jdbc_fetch_size".into(), json!(n));
            }
            if dry_run {
                printer::object(&masked(&body), props.format);
                return Ok(Outcome::Ok);
            }
            let v = c.post("/connections", &Value::Object(body)).await?;
            if props.format.is_some() {
                printer::object(&v, props.format);
                return Ok(Outcome::Ok);
            }
            printer::line(format!("Connection ID: {}", v["id"]));
            printer::line(format!(
                "Connection Name: {}",
                v["name"].as_str().unwrap_or_default()
            ));
            printer::line(format!(
                "Connection Type: {}",
                v["type"].as_str().unwrap_or_default()
            ));
        }
        ConnectionsCmd::List {
            name,
            connection_type,
            format,
        } => {
            let mut q = Vec::new();
            if let Some(n) = name {
                q.push(("name", n));
            }
            if let Some(t) = connection_type {
                q.push(("type", t));
            }
            let all = c.all("/connections", &q).await?;
            printer::list(
                &all,
                &[
                    "id",
                    "name",
                    "type",
                    "host",
                    "port",
                    "username",
                    "datastores",
                ],
                format,
            );
        }
        ConnectionsCmd::Get { id, name, format } => {
            let id = match (id, name) {
                (Some(id), _) => id,
                (None, Some(n)) => c.connection_id(&n).await?,
                (None, None) => crate::usage!("give --id or --name"),
            };
            printer::object(&c.get(&format!("/connections/{id}"), &[]).await?, format);
        }
        ConnectionsCmd::Update { id, props } => {
            let mut body = Map::new();
            props.body(&mut body)?;
            printer::object(
                &c.put(&format!("/connections/{id}"), &Value::Object(body))
                    .await?,
                props.format,
            );
        }
        ConnectionsCmd::Delete { id } => {
            c.delete(&format!("/connections/{id}")).await?;
            printer::line(format!("Connection {id} deleted."));
        }
        ConnectionsCmd::Test {
            id,
            connection_type,
            database,
            props,
        } => {
            let mut body = Map::new();
            props.body(&mut body)?;
            if let Some(d) = database {
                body.insert("database".into(), json!(d));
            }
            let (path, what) = match (id, connection_type) {
                (Some(id), _) => (
                    format!("/connections/{id}/test"),
                    format!("Connection {id}"),
                ),
                (None, Some(t)) => {
                    body.insert("type".into(), json!(t));
                    (
                        "/connections/test".to_string(),
                        "Unsaved connection".to_string(),
                    )
                }
                (None, None) => crate::usage!("give --id, or --type and the connection flags"),
            };
            let v = c.post(&path, &Value::Object(body)).await?;
            if props.format.is_some() {
                printer::object(&v, props.format);
                return Ok(if v["connected"].as_bool().unwrap_or(false) {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                });
            }
            return Ok(report_test(&what, &v));
        }
    }
    Ok(Outcome::Ok)
}

/// Prints a test result; a failure is exit code 1.
pub fn report_test(what: &str, v: &Value) -> Outcome {
    let message = v["message"].as_str().unwrap_or_default();
    if v["connected"].as_bool().unwrap_or(false) {
        printer::line(format!("{what}: test passed successfully. {message}"));
        if let Some(grants) = v["preflight"]["grants"]
            .as_array()
            .filter(|g| !g.is_empty())
        {
            printer::line("Suggested (warnings):");
            for g in grants {
                printer::line(format!("  {}", g.as_str().unwrap_or_default()));
            }
        }
        Outcome::Ok
    } else {
        printer::line(format!("{what}: test failed — {message}"));
        if let Some(grants) = v["preflight"]["grants"]
            .as_array()
            .filter(|g| !g.is_empty())
        {
            printer::line("Run as the schema owner or a superuser:");
            for g in grants {
                printer::line(format!("  {}", g.as_str().unwrap_or_default()));
            }
        }
        Outcome::Failed
    }
}
