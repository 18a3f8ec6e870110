//! `assay`: the server (`serve`), the end-to-end demo (`demo`), and a client with the same command groups and
//! flags as the Qualytics CLI. Exit codes: 0 ok, 1 a test or operation failed, 2 usage or configuration
//! error, 3 runtime or API error.

mod client;
mod commands;
mod demo;
mod printer;
mod serve;
mod usage;

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
    /// The key that encrypts stored secrets
    #[command(subcommand)]
    Key(serve::key::KeyCmd),
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
    Containers(commands::containers::ContainersCmd),
    /// Quality checks: authored, or inferred by profiles
    #[command(subcommand)]
    Checks(commands::checks::ChecksCmd),
    /// Anomalies found by scans
    #[command(subcommand)]
    Anomalies(commands::anomalies::AnomaliesCmd),
    /// Operations: sync, profile, scan, materialize, export, list, get, abort
    #[command(subcommand)]
    Operations(commands::operations::OperationsCmd),
    /// Flows: notifications to webhooks, Slack and Teams
    #[command(subcommand)]
    Flows(commands::flows::FlowsCmd),
    /// Schedules: operations that run by themselves
    #[command(subcommand)]
    Schedules(commands::schedules::SchedulesCmd),
    /// Global tags
    #[command(subcommand)]
    Tags(commands::tags::TagsCmd),
    /// Export a datastore's configuration to YAML files, or import it into this server
    #[command(subcommand)]
    Config(commands::config::ConfigCmd),
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
            Command::Key(c) => serve::key::run(c).await,
            Command::Auth(c) => commands::admin::auth(c).await,
            Command::Tokens(c) => commands::admin::tokens(c).await,
            Command::Users(c) => commands::admin::users(c).await,
            Command::Teams(c) => commands::admin::teams(c).await,
            Command::Connections(c) => commands::connections::run(c).await,
            Command::Datastores(c) => commands::datastores::run(c).await,
            Command::Containers(c) => commands::containers::run(c).await,
            Command::Operations(c) => commands::operations::run(c).await,
            Command::Checks(c) => commands::checks::run(c).await,
            Command::Anomalies(c) => commands::anomalies::run(c).await,
            Command::Tags(c) => commands::tags::run(c).await,
            Command::Schedules(c) => commands::schedules::run(c).await,
            Command::Flows(c) => commands::flows::run(c).await,
            Command::Config(c) => commands::config::run(c).await,
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
            if e.downcast_ref::<usage::Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(3)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Commands of the Qualytics CLI that Assay's CLI does not mirror: bulk imports of computed tables from
    /// spreadsheets with their own file format, and check-template files.
    const NOT_MIRRORED: &[&str] = &[
        "containers import",
        "containers preview",
        "checks export-templates",
        "checks import-templates",
    ];

    /// Every `group command --flag` of the official Qualytics CLI (written by `scripts/qualytics-flags`) is
    /// accepted by `assay` too, so commands copied from its documentation work unchanged.
    #[test]
    fn accepts_every_flag_of_the_qualytics_cli() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for line in include_str!("../tests/qualytics-flags.txt").lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [group, command, flag] = parts[..] else {
                panic!("malformed line: {line}");
            };
            if NOT_MIRRORED.contains(&format!("{group} {command}").as_str()) {
                continue;
            }
            let long = flag.trim_start_matches("--");
            let found = cli
                .find_subcommand(group)
                .and_then(|g| g.find_subcommand(command))
                .map(|c| {
                    c.get_arguments().any(|a| {
                        a.get_long() == Some(long)
                            || a.get_all_aliases().is_some_and(|al| al.contains(&long))
                    })
                });
            match found {
                Some(true) => {}
                Some(false) => missing.push(format!("assay {group} {command} {flag}")),
                None => missing.push(format!("assay {group} {command}")),
            }
        }
        missing.dedup();
        assert!(missing.is_empty(), "missing:\n{}", missing.join("\n"));
    }
}
