//! The metadata store: PostgreSQL only, migrated at start; repositories for users, teams, tokens, connections
//! (secrets encrypted at rest), datastores, the synced catalog and the operation queue. Also the manager of the
//! embedded PostgreSQL cluster that `assay serve` runs by default.

pub mod anomalies;
mod cached;
pub mod catalog;
pub mod checks;
pub mod cluster;
pub mod computed;
pub mod connections;
pub mod crypto;
pub mod datastores;
mod db;
mod error;
pub mod flows;
pub mod health;
pub mod observability;
pub mod operations;
pub mod profiles;
mod rekey;
pub mod schedules;
pub mod users;

pub use db::{Store, Viewer};
pub use error::StoreError;
