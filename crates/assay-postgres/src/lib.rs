//! The PostgreSQL source connector: connecting (TLS modes, `${key}` secrets), classifying failures into cause and
//! fix, permission preflight with the GRANTs that fix it, and catalog discovery from `pg_catalog`.
//! Every identifier in SQL built here goes through [`ident::quote_ident`]; every value is bound.

pub mod catalog;
pub mod classify;
pub mod connect;
mod error;
pub mod ident;
pub mod idle;
pub mod preflight;
pub mod profile;
pub mod scan;
pub mod sessions;
pub mod tls;

pub use classify::Diagnosis;
pub use connect::{ConnectParams, Endpoint};
pub use error::PgError;
pub use ident::quote_ident;
