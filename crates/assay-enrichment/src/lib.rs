//! The enrichment datastore: the `<prefix>_*` tables Assay writes into the user's own PostgreSQL. `layout`
//! declares the tables and their schema versions and creates or migrates them; `write` puts one container scan
//! into them in one transaction; `export` replaces the `<prefix>_export_*` tables; `materialize` copies a source
//! container into `<prefix>_mat_<name>`.

pub mod error;
pub mod export;
pub mod layout;
pub mod materialize;
pub mod write;

pub use error::EnrichmentError;
