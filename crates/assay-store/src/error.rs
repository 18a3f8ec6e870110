//! The error enum of the metadata store.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata store: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("metadata store: cannot get a connection from the pool: {0}")]
    Pool(String),
    #[error("metadata store migration failed: {0}")]
    Migration(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("secret store: {0}")]
    Crypto(String),
    #[error("embedded PostgreSQL: {0}")]
    Cluster(String),
}

impl StoreError {
    /// Whether the store could not be reached (down, restarting, the connection lost) rather than refusing the
    /// request; such errors pass once the store is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Pool(_) => true,
            StoreError::Db(e) => {
                e.is_closed()
                    || e.code().is_some_and(|c| {
                        let c = c.code();
                        c.starts_with("08") || c.starts_with("57P")
                    })
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
            _ => false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Pool(e.to_string())
    }
}

/// Maps a unique violation to a conflict with `what` as the message; other errors pass through.
pub(crate) fn unique_as_conflict(
    e: tokio_postgres::Error,
    what: impl FnOnce() -> String,
) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what())
    } else {
        StoreError::Db(e)
    }
}
