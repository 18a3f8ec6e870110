//! The error enum of the enrichment crate: each names the table, the cause and the fix.

#[derive(Debug, thiserror::Error)]
pub enum EnrichmentError {
    /// A table with an enrichment name exists but Assay did not create it.
    #[error(
        "table {table} exists but Assay did not create it (it is not in {registry}); rename or drop it, or link \
         with another prefix"
    )]
    Unmanaged { table: String, registry: String },
    /// The tables were made by a newer Assay.
    #[error(
        "table {table} has enrichment schema version {found}, newer than this Assay supports ({supported}); \
         upgrade Assay"
    )]
    Newer {
        table: String,
        found: i32,
        supported: i32,
    },
    /// Someone changed a column Assay relies on.
    #[error(
        "column {column} of {table} is {found}, expected {expected}: the table was altered by hand. Restore the \
         column type, or drop the enrichment tables and let Assay recreate them"
    )]
    Altered {
        table: String,
        column: String,
        expected: String,
        found: String,
    },
    /// The enrichment role lacks a privilege.
    #[error("the enrichment role cannot write: {message}. Run as an owner of the schema: {grant}")]
    Permission { message: String, grant: String },
    /// Reading the source failed while copying it (materialize).
    #[error("reading the source: {0}")]
    Source(String),
    /// Any other database error.
    #[error("enrichment store: {0}")]
    Db(String),
}

impl EnrichmentError {
    /// Maps a database error, turning missing privileges into the GRANT that fixes them.
    pub fn from_db(e: &tokio_postgres::Error, schema: &str, role: &str) -> Self {
        let Some(d) = e.as_db_error() else {
            return EnrichmentError::Db(e.to_string());
        };
        if d.code() == &tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE {
            let s = assay_postgres::ident::quote_ident(schema);
            let r = assay_postgres::ident::quote_ident(role);
            let grant = if d.message().contains("schema") {
                format!("GRANT USAGE, CREATE ON SCHEMA {s} TO {r};")
            } else {
                format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}; \
                     ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r};"
                )
            };
            return EnrichmentError::Permission {
                message: d.message().to_string(),
                grant,
            };
        }
        EnrichmentError::Db(format!("{} (SQLSTATE {})", d.message(), d.code().code()))
    }
}
