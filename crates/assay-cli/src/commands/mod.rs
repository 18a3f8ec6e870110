//! Client commands, one module per command group.

pub mod admin;
pub mod anomalies;
pub mod checks;
pub mod config;
pub mod connections;
pub mod containers;
pub mod datastores;
pub mod flows;
pub mod operations;
pub mod schedules;
pub mod tags;

use crate::client::{Client, Config};

pub fn client() -> anyhow::Result<Client> {
    Client::new(&Config::load()?)
}

/// `--id N` and/or `--ids 1,2,3`, as the Qualytics CLI takes them for bulk commands.
#[derive(clap::Args, Debug)]
pub struct IdArgs {
    /// One id
    #[arg(long)]
    pub id: Option<i64>,
    /// Comma-separated ids. Example: "1,2,3"
    #[arg(long, value_delimiter = ',')]
    pub ids: Vec<i64>,
}

impl IdArgs {
    /// The ids given, in order and without repeats; an error when there are none.
    pub fn all(&self) -> anyhow::Result<Vec<i64>> {
        let mut out: Vec<i64> = Vec::new();
        for id in self.id.iter().chain(&self.ids) {
            if !out.contains(id) {
                out.push(*id);
            }
        }
        if out.is_empty() {
            crate::usage!("give --id N or --ids 1,2,3");
        }
        Ok(out)
    }
}
