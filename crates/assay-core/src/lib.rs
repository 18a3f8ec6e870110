//! Domain types of Assay as plain data: connections, secrets-manager settings, datastores, catalog objects,
//! operations and their validation rules. No I/O lives here.

pub mod catalog;
pub mod connection;
pub mod datastore;
pub mod error;
pub mod flow;
pub mod observability;
pub mod operation;
pub mod placeholder;
pub mod rules;
pub mod schedule;

pub use error::{CoreError, FieldError};
