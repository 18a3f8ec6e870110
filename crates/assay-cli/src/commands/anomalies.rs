//! `anomalies list|get|update|archive|delete`.

use super::client;
use crate::{Outcome, printer};
use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum AnomaliesCmd {
    List {
        #[arg(long)]
        datastore_id: Option<i64>,
        #[arg(long)]
        container_id: Option<i64>,
        #[arg(long)]
        check_id: Option<i64>,
        /// Any of Active, Acknowledged, Resolved, Invalid, Duplicate, Discarded (default: the open ones)
        #[arg(long, value_delimiter = ',')]
        status: Vec<String>,
        /// record or shape
        #[arg(long)]
        r#type: Option<String>,
    },
    Get {
        #[arg(long)]
        id: i64,
    },
    /// Set an open status (Active or Acknowledged), a description or tags
    Update {
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<i64>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
    },
    /// Archive with Resolved (default), Invalid, Duplicate or Discarded
    Archive {
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<i64>,
        #[arg(long, default_value = "Resolved")]
        status: String,
    },
    /// Delete for good
    Delete {
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<i64>,
    },
}

pub async fn run(cmd: AnomaliesCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        AnomaliesCmd::List {
            datastore_id,
            container_id,
            check_id,
            status,
            r#type,
        } => {
            let mut q = Vec::new();
            if let Some(d) = datastore_id {
                q.push(("datastore", d.to_string()));
            }
            if let Some(d) = container_id {
                q.push(("container", d.to_string()));
            }
            if let Some(d) = check_id {
                q.push(("quality_check", d.to_string()));
            }
            for s in status {
                q.push(("status", s));
            }
            if let Some(t) = r#type {
                q.push(("anomaly_type", t));
            }
            let all = c.all("/anomalies", &q).await?;
            printer::table(
                &all,
                &[
                    "id",
                    "type",
                    "status",
                    "container",
                    "anomalous_records_count",
                    "created",
                    "message",
                ],
            );
        }
        AnomaliesCmd::Get { id } => printer::json(&c.get(&format!("/anomalies/{id}"), &[]).await?),
        AnomaliesCmd::Update {
            ids,
            status,
            description,
            tags,
        } => {
            if let Some(s) = &status
                && s != "Active"
                && s != "Acknowledged"
            {
                bail!(
                    "--status takes Active or Acknowledged; use `anomalies archive` for the others"
                );
            }
            let items: Vec<Value> = ids
                .iter()
                .map(|id| {
                    let mut v = json!({"id": id});
                    if let Some(s) = &status {
                        v["status"] = json!(s);
                    }
                    if let Some(d) = &description {
                        v["description"] = json!(d);
                    }
                    if let Some(t) = &tags {
                        v["tags"] = json!(t);
                    }
                    v
                })
                .collect();
            c.patch("/anomalies", Some(&Value::Array(items))).await?;
            printer::line(format!(
                "Updated {} anomal{}",
                ids.len(),
                if ids.len() == 1 { "y" } else { "ies" }
            ));
        }
        AnomaliesCmd::Archive { ids, status } => {
            let items: Vec<Value> = ids
                .iter()
                .map(|id| json!({"id": id, "archive": true, "status": status}))
                .collect();
            c.request(
                reqwest::Method::DELETE,
                "/anomalies",
                &[],
                Some(&Value::Array(items)),
            )
            .await?;
            printer::line(format!("Archived {} as {status}", ids.len()));
        }
        AnomaliesCmd::Delete { ids } => {
            let items: Vec<Value> = ids
                .iter()
                .map(|id| json!({"id": id, "archive": false}))
                .collect();
            c.request(
                reqwest::Method::DELETE,
                "/anomalies",
                &[],
                Some(&Value::Array(items)),
            )
            .await?;
            printer::line(format!("Deleted {}", ids.len()));
        }
    }
    Ok(Outcome::Ok)
}
