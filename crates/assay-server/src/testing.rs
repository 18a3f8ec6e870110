//! Test Connection: connect (resolving secrets), run a probe query, and for a datastore run the permission
//! preflight for its role. Failures are classified; nothing is saved.

use assay_core::connection::ConnectionSpec;
use assay_postgres::preflight::{self, Report, Role};
use assay_postgres::{Diagnosis, Endpoint, PgError};
use assay_secrets::Resolver;
use serde_json::{Value, json};

pub struct Outcome {
    pub connected: bool,
    pub message: Option<String>,
    pub diagnosis: Option<Diagnosis>,
    pub preflight: Option<Report>,
}

impl Outcome {
    fn failed(e: PgError) -> Self {
        Outcome {
            connected: false,
            message: Some(e.to_string()),
            diagnosis: e.diagnosis().cloned(),
            preflight: None,
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "connected": self.connected,
            "success": self.connected,
            "message": self.message,
            "diagnosis": self.diagnosis,
            "preflight": self.preflight.as_ref().map(|r| json!({
                "passed": r.passed(),
                "role": r.role,
                "database": r.database,
                "schema": r.schema,
                "missing": r.missing,
                "grants": r.grants,
            })),
        })
    }
}

/// Resolves secrets and connects.
async fn open(
    resolver: &Resolver,
    spec: &ConnectionSpec,
    database: &str,
) -> Result<(assay_postgres::ConnectParams, tokio_postgres::Client), PgError> {
    let params = Endpoint {
        connection: spec,
        database,
    }
    .resolve(resolver)
    .await?;
    let client = params.connect().await?;
    Ok((params, client))
}

/// Tests a connection against `database`.
pub async fn connection(resolver: &Resolver, spec: &ConnectionSpec, database: &str) -> Outcome {
    let (params, client) = match open(resolver, spec, database).await {
        Ok(pc) => pc,
        Err(e) => return Outcome::failed(e),
    };
    match client
        .query_one("SELECT current_setting('server_version')", &[])
        .await
    {
        Ok(row) => {
            let version: String = row.get(0);
            Outcome {
                connected: true,
                message: Some(format!(
                    "connected to PostgreSQL {version} at {}:{} as \"{}\", database \"{}\"",
                    params.host, params.port, params.user, params.database
                )),
                diagnosis: None,
                preflight: None,
            }
        }
        Err(e) => Outcome::failed(assay_postgres::connect::query_error(&e, &params)),
    }
}

/// Tests a datastore: connection plus the permission preflight for a source or an enrichment store.
pub async fn datastore(
    resolver: &Resolver,
    spec: &ConnectionSpec,
    database: &str,
    schema: &str,
    enrichment: bool,
) -> Outcome {
    let (params, client) = match open(resolver, spec, database).await {
        Ok(pc) => pc,
        Err(e) => return Outcome::failed(e),
    };
    let role = if enrichment {
        Role::Enrichment
    } else {
        Role::Source
    };
    match preflight::run(&client, &params, schema, role).await {
        Ok(report) => {
            let passed = report.passed();
            let what = if enrichment {
                "an enrichment datastore"
            } else {
                "a source datastore"
            };
            let message = if passed && report.missing.is_empty() {
                format!("connection verified: {} as {what}", report.summary())
            } else if passed {
                format!(
                    "connection verified as {what}, with warnings: {}",
                    report.summary()
                )
            } else {
                format!(
                    "connected, but the role cannot be used as {what}: {}",
                    report.summary()
                )
            };
            Outcome {
                connected: passed,
                message: Some(message),
                diagnosis: None,
                preflight: Some(report),
            }
        }
        Err(e) => Outcome::failed(e),
    }
}
