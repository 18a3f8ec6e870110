//! Connecting to a source: resolve `${key}` references through the secrets manager (each time `resolve` is
//! called, never cached), then open sessions with the TLS mode the connection asks for.

use crate::classify::{self, Context};
use crate::error::PgError;
use crate::tls::{self, Verify};
use assay_core::connection::{ConnectionSpec, Port};
use assay_core::placeholder;
use assay_secrets::Resolver;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_postgres::config::SslMode;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every source session gets these unless the role or database sets its own (`ALTER ROLE ... SET
/// statement_timeout = ...`): no query runs forever, and a query that waits for a lock another session holds
/// (`ALTER TABLE`, `LOCK TABLE`, `VACUUM FULL`) gives up with SQLSTATE 55P03 instead of hanging.
pub const DEFAULT_STATEMENT_TIMEOUT: &str = "30min";
pub const DEFAULT_LOCK_TIMEOUT: &str = "1min";

/// Everything needed to open a session, with secrets resolved. Lives only as long as one connect.
#[derive(Clone)]
pub struct ConnectParams {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub sslmode: String,
    pub sslrootcert: Option<String>,
    pub connect_timeout: Duration,
    pub application_name: String,
}

impl std::fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectParams")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

/// A connection's stored settings plus the database of a datastore: what to resolve before connecting.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    pub connection: &'a ConnectionSpec,
    pub database: &'a str,
}

impl Endpoint<'_> {
    /// Resolves secrets and parses the properties. With a secrets manager, values are read from it now.
    pub async fn resolve(&self, resolver: &Resolver) -> Result<ConnectParams, PgError> {
        let spec = self.connection;
        let values: Option<BTreeMap<String, String>> = match &spec.secrets_manager {
            Some(sm) => Some(resolver.fetch(sm).await?),
            None => None,
        };
        let sub = |field: &str, text: &str| -> Result<String, PgError> {
            match &values {
                Some(v) => placeholder::substitute(text, v)
                    .map_err(|key| {
                        PgError::Secrets(assay_secrets::SecretsError::MissingKey {
                            key,
                            available: if v.is_empty() {
                                "none".to_string()
                            } else {
                                v.keys().cloned().collect::<Vec<_>>().join(", ")
                            },
                        })
                    })
                    .inspect_err(|_e| {
                        tracing::debug!(field, "a ${{key}} reference could not be resolved");
                    }),
                None => Ok(placeholder::unescape(text)),
            }
        };
        let port_text = sub("port", &spec.port.as_text())?;
        let port = match &spec.port {
            Port::Number(n) => *n,
            Port::Reference(_) => port_text
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| PgError::Property {
                    field: "port".into(),
                    message: "the secret's value for the port is not a number between 1 and 65535"
                        .into(),
                })?,
        };
        let param = |name: &str| -> Result<Option<String>, PgError> {
            match spec.parameters.get(name) {
                Some(Value::String(s)) => Ok(Some(sub(&format!("parameters.{name}"), s)?)),
                Some(Value::Null) | None => Ok(None),
                Some(other) => Ok(Some(other.to_string())),
            }
        };
        let sslmode = param("sslmode")?.unwrap_or_else(|| "prefer".to_string());
        let sslrootcert = match param("sslrootcert")? {
            Some(v) if v.contains("-----BEGIN") => Some(v),
            Some(path) => Some(read_root_certificates(&path)?),
            None => None,
        };
        let connect_timeout = match param("connect_timeout")? {
            Some(s) => {
                Duration::from_secs(s.trim().parse::<u64>().map_err(|_| PgError::Property {
                    field: "parameters.connect_timeout".into(),
                    message: "must be a whole number of seconds".into(),
                })?)
            }
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        Ok(ConnectParams {
            host: sub("host", &spec.host)?,
            port,
            user: sub("username", &spec.username)?,
            password: spec
                .password
                .as_deref()
                .map(|p| sub("password", p))
                .transpose()?,
            database: sub("database", self.database)?,
            sslmode,
            sslrootcert,
            connect_timeout,
            application_name: "assay".to_string(),
        })
    }
}

impl ConnectParams {
    pub fn context(&self) -> Context<'_> {
        Context {
            host: &self.host,
            port: self.port,
            user: &self.user,
            database: &self.database,
        }
    }

    /// Opens a session. The connection task runs on the current runtime until the client is dropped.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, PgError> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout);
        if let Some(p) = &self.password {
            cfg.password(p);
        }
        let (mode, verify) = match self.sslmode.as_str() {
            "disable" => (SslMode::Disable, Verify::None),
            "allow" | "prefer" => (SslMode::Prefer, Verify::None),
            "require" => (
                SslMode::Require,
                if self.sslrootcert.is_some() {
                    Verify::Chain
                } else {
                    Verify::None
                },
            ),
            "verify-ca" => (SslMode::Require, Verify::Chain),
            "verify-full" => (SslMode::Require, Verify::Full),
            other => {
                return Err(PgError::Property {
                    field: "parameters.sslmode".into(),
                    message: format!("'{other}' is not an sslmode"),
                });
            }
        };
        cfg.ssl_mode(mode);
        let fail = |e: tokio_postgres::Error| {
            PgError::Connect(Box::new(classify::classify(&e, &self.context())))
        };
        let attempt =
            async {
                if mode == SslMode::Disable {
                    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.map_err(fail)?;
                    let counted = crate::sessions::Counted::new();
                    tokio::spawn(async move {
                        let _ = conn.await;
                        drop(counted);
                    });
                    Ok::<_, PgError>(client)
                } else {
                    let tls_config = tls::client_config(verify, self.sslrootcert.as_deref())
                        .map_err(|message| PgError::Property {
                            field: "parameters.sslrootcert".into(),
                            message,
                        })?;
                    let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
                    let (client, conn) = cfg.connect(connector).await.map_err(fail)?;
                    let counted = crate::sessions::Counted::new();
                    tokio::spawn(async move {
                        let _ = conn.await;
                        drop(counted);
                    });
                    Ok(client)
                }
            };
        // The connect timeout covers each TCP connect; this bounds the whole handshake as well.
        let client = match tokio::time::timeout(
            self.connect_timeout + Duration::from_secs(5),
            attempt,
        )
        .await
        {
            Ok(r) => r?,
            Err(_) => {
                return Err(PgError::Connect(Box::new(classify::classify_transport(
                    "timed out",
                    &self.context(),
                ))));
            }
        };
        // the one place source sessions get their limits; a role's or database's own setting wins
        client
            .batch_execute(&format!(
                "SELECT CASE WHEN current_setting('statement_timeout') = '0' \
                   THEN set_config('statement_timeout', '{DEFAULT_STATEMENT_TIMEOUT}', false) END, \
                 CASE WHEN current_setting('lock_timeout') = '0' \
                   THEN set_config('lock_timeout', '{DEFAULT_LOCK_TIMEOUT}', false) END"
            ))
            .await
            .map_err(|e| query_error(&e, self))?;
        Ok(client)
    }

    /// Opens a read-only session: writes are refused, instants are rendered in UTC and JIT is off (compiling a
    /// dozen aggregate expressions in every parallel worker costs more than it saves), on top of the limits every
    /// session gets. Profiles, scans, computed containers and materialize read through this one setup.
    pub async fn connect_read_only(&self) -> Result<tokio_postgres::Client, PgError> {
        let client = self.connect().await?;
        client
            .batch_execute(
                "SET default_transaction_read_only = on; SET TimeZone = 'UTC'; SET jit = off",
            )
            .await
            .map_err(|e| query_error(&e, self))?;
        Ok(client)
    }

    /// Cancels the statement running on `token`'s session, on the server. The cancel request goes over TLS when
    /// the session's sslmode demands it.
    pub async fn cancel(&self, token: &tokio_postgres::CancelToken) {
        let verify = match self.sslmode.as_str() {
            "require" if self.sslrootcert.is_some() => Verify::Chain,
            "require" => Verify::None,
            "verify-ca" => Verify::Chain,
            "verify-full" => Verify::Full,
            _ => {
                let _ = token.cancel_query(tokio_postgres::NoTls).await;
                return;
            }
        };
        if let Ok(cfg) = tls::client_config(verify, self.sslrootcert.as_deref()) {
            let _ = token
                .cancel_query(tokio_postgres_rustls::MakeRustlsConnect::new(cfg))
                .await;
        }
    }
}

/// Wraps a query error into a diagnosis for this session's target.
pub fn query_error(e: &tokio_postgres::Error, params: &ConnectParams) -> PgError {
    PgError::Query(Box::new(classify::classify(e, &params.context())))
}

/// The PEM text of a root certificate file: a regular file of at most 1 MiB (a path such as `/dev/zero` or a
/// FIFO would otherwise be read forever).
fn read_root_certificates(path: &str) -> Result<String, PgError> {
    const MAX_BYTES: u64 = 1 << 20;
    let refuse = |message: String| PgError::Property {
        field: "parameters.sslrootcert".into(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(format!("cannot read {path}: {e}")))?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "{path} is not a regular file; give the path of a PEM file or the PEM text itself"
        )));
    }
    if meta.len() > MAX_BYTES {
        return Err(refuse(format!(
            "{path} has {} bytes; a file of root certificates has at most 1 MiB",
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read {path}: {e}")))
}
