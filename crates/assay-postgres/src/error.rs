//! The error enum of the PostgreSQL connector.

use crate::classify::Diagnosis;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// Connecting failed; the diagnosis says cause and fix.
    #[error("{0}")]
    Connect(Box<Diagnosis>),
    /// Resolving `${key}` references failed.
    #[error("{0}")]
    Secrets(#[from] assay_secrets::SecretsError),
    /// A connection property is unusable once resolved (e.g. a port that is not a number).
    #[error("{field}: {message}")]
    Property { field: String, message: String },
    /// The datastore's schema does not exist in its database.
    #[error(
        "schema \"{schema}\" does not exist in database \"{database}\" (or the role cannot see it). Check the \
             schema name; names are case-sensitive"
    )]
    SchemaMissing { database: String, schema: String },
    /// The datastore points at a system schema, which Assay never reads.
    #[error("schema \"{0}\" is a system schema; choose a schema that holds your own tables")]
    SystemSchema(String),
    /// The operation was aborted; the server-side query was cancelled.
    #[error("aborted")]
    Aborted,
    /// A catalog or preflight query failed after connecting.
    #[error("{0}")]
    Query(Box<Diagnosis>),
}

impl PgError {
    pub fn diagnosis(&self) -> Option<&Diagnosis> {
        match self {
            PgError::Connect(d) | PgError::Query(d) => Some(d),
            _ => None,
        }
    }
}
