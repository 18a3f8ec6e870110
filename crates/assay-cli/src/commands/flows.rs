//! `flows list|get|create|update|delete|activate|deactivate|test|executions`: notifications. A flow is written as
//! a JSON or YAML file (name, trigger, filters, actions), the shape `POST /api/flows` takes; URLs and secrets
//! in it may be `${VAR}` environment references, replaced before sending, so they stay out of shell history.

use super::client;
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum FlowsCmd {
    List {
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Create a flow from a JSON or YAML file
    Create {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Change a flow with the keys of a file (actions without url or secret keep theirs)
    Update {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        file: PathBuf,
    },
    Delete {
        #[arg(long)]
        id: i64,
    },
    Activate {
        #[arg(long)]
        id: i64,
    },
    Deactivate {
        #[arg(long)]
        id: i64,
    },
    /// Send a sample message to every action now; exits 1 when one fails
    Test {
        #[arg(long)]
        id: i64,
    },
    /// The flow's executions and what became of each delivery
    Executions {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
}

/// A flow file, with `${VAR}` replaced from the environment.
fn read(file: &PathBuf) -> Result<Value> {
    let Ok(text) = std::fs::read_to_string(file) else {
        crate::usage!("cannot read {}", file.display());
    };
    let text = super::config::from_env(&text)?;
    let v: Value = match serde_yaml::from_str(&text) {
        Ok(v) => v,
        Err(e) => crate::usage!("{} is not JSON or YAML: {e}", file.display()),
    };
    if !v.is_object() {
        crate::usage!("{} must hold one flow (an object)", file.display());
    }
    Ok(v)
}

pub async fn run(cmd: FlowsCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        FlowsCmd::List { format } => printer::list(
            &c.all("/flows", &[]).await?,
            &["id", "name", "active", "created_by"],
            format,
        ),
        FlowsCmd::Get { id, format } => printer::object(
            &c.get(&format!("/flows/{id}"), &[]).await?,
            format.or(Some(Format::Json)),
        ),
        FlowsCmd::Create { file, format } => {
            let v = c.post("/flows", &read(&file)?).await?;
            match format {
                Some(_) => printer::object(&v, format),
                None => printer::line(format!(
                    "Created flow {} '{}'",
                    v["id"],
                    v["name"].as_str().unwrap_or("")
                )),
            }
        }
        FlowsCmd::Update { id, file } => {
            c.put(&format!("/flows/{id}"), &read(&file)?).await?;
            printer::line(format!("Flow {id} updated."));
        }
        FlowsCmd::Delete { id } => {
            c.delete(&format!("/flows/{id}")).await?;
            printer::line(format!("Flow {id} deleted."));
        }
        FlowsCmd::Activate { id } => {
            c.post(&format!("/flows/{id}/activate"), &json!({})).await?;
            printer::line(format!("Flow {id} activated."));
        }
        FlowsCmd::Deactivate { id } => {
            c.post(&format!("/flows/{id}/deactivate"), &json!({}))
                .await?;
            printer::line(format!("Flow {id} deactivated."));
        }
        FlowsCmd::Test { id } => {
            let v = c.post(&format!("/flows/{id}/test"), &json!({})).await?;
            let mut failed = false;
            for r in v["results"].as_array().into_iter().flatten() {
                failed |= r["ok"] != true;
                printer::line(format!(
                    "action {} ({}): {}",
                    r["action_index"],
                    r["type"].as_str().unwrap_or(""),
                    r["message"].as_str().unwrap_or("")
                ));
            }
            if failed {
                return Ok(Outcome::Failed);
            }
        }
        FlowsCmd::Executions { id, format } => {
            let rows: Vec<Value> = c
                .all(&format!("/flows/{id}/executions"), &[])
                .await?
                .into_iter()
                .flat_map(|x| {
                    let actions = x["actions"].as_array().cloned().unwrap_or_default();
                    actions.into_iter().map(move |a| {
                        json!({"execution": x["id"], "created": x["created"], "summary": x["summary"],
                               "action": a["type"], "status": a["status"], "attempts": a["attempts"],
                               "last_result": a["last_result"]})
                    })
                })
                .collect();
            printer::list(
                &rows,
                &[
                    "execution",
                    "created",
                    "action",
                    "status",
                    "attempts",
                    "last_result",
                ],
                format,
            );
        }
    }
    Ok(Outcome::Ok)
}
