//! Client commands, one module per command group.

pub mod admin;
pub mod anomalies;
pub mod checks;
pub mod connections;
pub mod datastores;
pub mod operations;

use crate::client::{Client, Config};

pub fn client() -> anyhow::Result<Client> {
    Client::new(&Config::load()?)
}
