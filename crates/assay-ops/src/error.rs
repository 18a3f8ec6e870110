//! The errors of operation helpers that requests also use (computed containers, joins, source sessions): each
//! says what failed and how to fix it; the server maps them onto HTTP statuses.

use assay_core::FieldError;
use assay_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The metadata store failed or holds no such record.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The datastore's source (or its secrets manager) could not be reached or refused the session.
    #[error("{0}")]
    Source(String),
    /// A definition is invalid; every problem is listed with the field it concerns.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Fields(Vec<FieldError>),
    /// A definition is invalid as a whole.
    #[error("{0}")]
    Invalid(String),
}

impl OpsError {
    pub(crate) fn field(field: &str, message: impl Into<String>) -> OpsError {
        OpsError::Fields(vec![FieldError::new(field, message)])
    }
}
