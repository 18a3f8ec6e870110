//! `assay`: the server (`serve`), the end-to-end demo (`demo`), and a client with the same command groups and
//! flags as the Qualytics CLI. Exit codes: 0 ok, 1 a test or operation failed, 2 usage or configuration
//! error, 3 runtime or API error.

mod client;
mod commands;
mod demo;
mod printer;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "assay", version, about = "Data quality for PostgreSQL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the web UI at /, the API under /api and the operation runner
    Serve(serve::ServeArgs),
    /// Run the whole flow on a throwaway sample database and print what Assay found
    Demo(demo::DemoArgs),
    /// Save the server URL and token the client uses
    #[command(subcommand)]
    Auth(commands::admin::AuthCmd),
    /// API tokens
    #[command(subcommand)]
    Tokens(commands::admin::TokensCmd),
    /// Users (admin)
    #[command(subcommand)]
    Users(commands::admin::UsersCmd),
    /// Teams (admin)
    #[command(subcommand)]
    Teams(commands::admin::TeamsCmd),
    /// Connections: where a PostgreSQL server is and how to log in
    #[command(subcommand)]
    Connections(commands::connections::ConnectionsCmd),
    /// Datastores: a database and schema, as a source or an enrichment store
    #[command(subcommand)]
    Datastores(commands::datastores::DatastoresCmd),
    /// Containers (tables and views) found by sync
    #[command(subcommand)]
    Containers(commands::operations::ContainersCmd),
    /// Quality checks: authored, or inferred by profiles
    #[command(subcommand)]
    Checks(commands::checks::ChecksCmd),
    /// Anomalies found by scans
    #[command(subcommand)]
    Anomalies(commands::anomalies::AnomaliesCmd),
    /// Operations: sync, profile, scan, list, get, abort
    #[command(subcommand)]
    Operations(commands::operations::OperationsCmd),
}

/// An outcome that maps to an exit code.
pub enum Outcome {
    Ok,
    /// A test or an operation ran and failed.
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer::error(format!("cannot start the async runtime: {e}"));
            return ExitCode::from(3);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Demo(a) => demo::run(a).await,
            Command::Auth(c) => commands::admin::auth(c).await,
            Command::Tokens(c) => commands::admin::tokens(c).await,
            Command::Users(c) => commands::admin::users(c).await,
            Command::Teams(c) => commands::admin::teams(c).await,
            Command::Connections(c) => commands::connections::run(c).await,
            Command::Datastores(c) => commands::datastores::run(c).await,
            Command::Containers(c) => commands::operations::containers(c).await,
            Command::Operations(c) => commands::operations::run(c).await,
            Command::Checks(c) => commands::checks::run(c).await,
            Command::Anomalies(c) => commands::anomalies::run(c).await,
        }
    });
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            if let Some(api) = e.downcast_ref::<client::ApiFailure>() {
                printer::error(&api.detail);
                return ExitCode::from(3);
            }
            printer::error(format!("{e:#}"));
            if e.to_string().contains("no configuration") || e.to_string().contains("ASSAY_URL") {
                ExitCode::from(2)
            } else {
                ExitCode::from(3)
            }
        }
    }
}
