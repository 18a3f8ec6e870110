//! `operations sync|list|get|abort` (sync waits with a progress display) and `containers list|get|fields`.

use super::client;
use crate::client::Client;
use crate::{Outcome, printer};
use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum OperationsCmd {
    /// Discover the tables, views and fields of one or more datastores
    Sync {
        /// One id, or a comma-separated list (one operation each)
        #[arg(long, value_delimiter = ',', required = true)]
        datastore_id: Vec<i64>,
        /// table, view (default both)
        #[arg(long, value_delimiter = ',')]
        include: Vec<String>,
        /// Delete containers that no longer exist (instead of marking them missing)
        #[arg(long)]
        prune: bool,
        /// Drop every container and discover them again (new ids)
        #[arg(long)]
        recreate: bool,
        /// Return at once instead of waiting
        #[arg(long)]
        background: bool,
        #[arg(long, default_value_t = 1)]
        poll_interval: u64,
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    List {
        #[arg(long)]
        datastore_id: Option<i64>,
        #[arg(long)]
        operation_type: Option<String>,
        #[arg(long)]
        result: Option<String>,
    },
    Get {
        #[arg(long)]
        id: i64,
    },
    Abort {
        #[arg(long)]
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum ContainersCmd {
    List {
        #[arg(long)]
        datastore_id: i64,
    },
    Get {
        #[arg(long)]
        id: i64,
    },
    Fields {
        #[arg(long)]
        id: i64,
    },
}

pub async fn run(cmd: OperationsCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        OperationsCmd::Sync {
            datastore_id,
            include,
            prune,
            recreate,
            background,
            poll_interval,
            timeout,
        } => {
            let mut outcome = Outcome::Ok;
            for ds in datastore_id {
                let mut body = json!({"datastore_id": ds, "type": "sync", "prune": prune, "recreate": recreate});
                if !include.is_empty() {
                    body["include"] = json!(include);
                }
                let op = c.post("/operations/run", &body).await?;
                let id = op["id"].as_i64().unwrap_or_default();
                printer::line(format!("Started sync operation {id} for datastore {ds}"));
                if background {
                    continue;
                }
                let done = wait(
                    &c,
                    id,
                    Duration::from_secs(poll_interval.max(1)),
                    Duration::from_secs(timeout),
                )
                .await?;
                if !report(&done) {
                    outcome = Outcome::Failed;
                }
            }
            Ok(outcome)
        }
        OperationsCmd::List {
            datastore_id,
            operation_type,
            result,
        } => {
            let mut q = Vec::new();
            if let Some(d) = datastore_id {
                q.push(("datastore", d.to_string()));
            }
            if let Some(t) = operation_type {
                q.push(("operation_type", t));
            }
            if let Some(r) = result {
                q.push(("result", r));
            }
            let all = c.all("/operations", &q).await?;
            printer::table(
                &all,
                &[
                    "id",
                    "type",
                    "datastore",
                    "result",
                    "created",
                    "end_time",
                    "message",
                ],
            );
            Ok(Outcome::Ok)
        }
        OperationsCmd::Get { id } => {
            printer::json(&c.get(&format!("/operations/{id}"), &[]).await?);
            Ok(Outcome::Ok)
        }
        OperationsCmd::Abort { id } => {
            let op = c
                .request(
                    reqwest::Method::PUT,
                    &format!("/operations/abort/{id}"),
                    &[],
                    None,
                )
                .await?;
            match op["result"].as_str().unwrap_or_default() {
                "aborted" => printer::line(format!("Operation {id} aborted.")),
                r @ ("success" | "failure") => {
                    printer::line(format!("Operation {id} already finished with result: {r}"))
                }
                r => printer::line(format!("Abort requested for operation {id} (result: {r})")),
            }
            Ok(Outcome::Ok)
        }
    }
}

/// Polls until `end_time` is set, showing progress.
async fn wait(c: &Client, id: i64, every: Duration, timeout: Duration) -> Result<Value> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} containers",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    loop {
        let op = c.get(&format!("/operations/{id}"), &[]).await?;
        bar.set_length(op["status"]["total_containers"].as_u64().unwrap_or(0));
        bar.set_position(op["status"]["containers_analyzed"].as_u64().unwrap_or(0));
        bar.set_message(format!(
            "{} {id}: {}",
            op["type"].as_str().unwrap_or("operation"),
            op["result"].as_str().unwrap_or("?")
        ));
        if !op["end_time"].is_null() {
            bar.finish_and_clear();
            return Ok(op);
        }
        if start.elapsed() > timeout {
            bar.finish_and_clear();
            anyhow::bail!(
                "operation {id} did not finish within {} s; it goes on in the background",
                timeout.as_secs()
            );
        }
        bar.tick();
        tokio::time::sleep(every).await;
    }
}

/// Prints how an operation ended; true on success.
fn report(op: &Value) -> bool {
    let id = &op["id"];
    let ds = op["datastore"]["name"].as_str().unwrap_or_default();
    let status = &op["status"];
    match (op["result"].as_str(), op["message"].as_str()) {
        (Some("success"), None) => {
            printer::line(format!(
                "Successfully finished sync operation {id} for datastore: {ds} ({} containers: {} added, {} updated, {} missing)",
                status["containers_analyzed"],
                status["containers_added"],
                status["containers_updated"],
                status["containers_missing"]
            ));
            true
        }
        (Some("success"), Some(m)) => {
            printer::line(format!(
                "Warning for sync operation {id} on datastore {ds}: {m}"
            ));
            true
        }
        (r, m) => {
            printer::line(format!(
                "Failed sync operation {id} for datastore: {ds} ({}): {}",
                r.unwrap_or("?"),
                m.unwrap_or("")
            ));
            false
        }
    }
}

pub async fn containers(cmd: ContainersCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        ContainersCmd::List { datastore_id } => {
            let all = c
                .all("/containers", &[("datastore", datastore_id.to_string())])
                .await?;
            printer::table(
                &all,
                &[
                    "id",
                    "name",
                    "container_type",
                    "table_type",
                    "row_estimate",
                    "incremental_field_name",
                    "primary_key",
                ],
            );
        }
        ContainersCmd::Get { id } => {
            printer::json(&c.get(&format!("/containers/{id}"), &[]).await?)
        }
        ContainersCmd::Fields { id } => {
            let v = c.get(&format!("/containers/{id}/fields"), &[]).await?;
            printer::table(
                v.as_array().map(Vec::as_slice).unwrap_or(&[]),
                &[
                    "id",
                    "name",
                    "type",
                    "native_type",
                    "nullable",
                    "primary_key",
                    "status",
                ],
            );
        }
    }
    Ok(Outcome::Ok)
}
