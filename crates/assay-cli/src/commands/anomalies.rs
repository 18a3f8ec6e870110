//! `anomalies list|get|update|archive|delete`.

use super::{IdArgs, client};
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum AnomaliesCmd {
    List {
        #[arg(long)]
        datastore_id: Option<i64>,
        /// Container id
        #[arg(long, alias = "container-id")]
        container: Option<i64>,
        #[arg(long)]
        check_id: Option<i64>,
        /// Any of Active, Acknowledged, Resolved, Invalid, Duplicate, Discarded (default: the open ones)
        #[arg(long, value_delimiter = ',')]
        status: Vec<String>,
        /// record or shape
        #[arg(long)]
        r#type: Option<String>,
        /// Only anomalies with this tag
        #[arg(long)]
        tag: Option<String>,
        /// Created on or after this day (YYYY-MM-DD)
        #[arg(long)]
        start_date: Option<String>,
        /// Created on or before this day (YYYY-MM-DD)
        #[arg(long)]
        end_date: Option<String>,
        /// Only anomalies whose source records reached the enrichment datastore
        #[arg(long, overrides_with = "no_source_enriched")]
        source_enriched: bool,
        /// Only anomalies whose source records did not reach it
        #[arg(long)]
        no_source_enriched: bool,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Set an open status (Active or Acknowledged), a description or tags
    Update {
        #[command(flatten)]
        ids: IdArgs,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
        /// Comma-separated user ids; an empty string clears the assignees
        #[arg(long)]
        assignee_ids: Option<String>,
    },
    /// Archive with Resolved (default), Invalid, Duplicate or Discarded
    Archive {
        #[command(flatten)]
        ids: IdArgs,
        #[arg(long, default_value = "Resolved")]
        status: String,
    },
    /// Delete for good
    Delete {
        #[command(flatten)]
        ids: IdArgs,
    },
}

pub async fn run(cmd: AnomaliesCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        AnomaliesCmd::List {
            datastore_id,
            container,
            check_id,
            status,
            r#type,
            tag,
            start_date,
            end_date,
            source_enriched,
            no_source_enriched,
            format,
        } => {
            let mut q = Vec::new();
            if let Some(d) = datastore_id {
                q.push(("datastore", d.to_string()));
            }
            if let Some(d) = container {
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
            for (k, v) in [
                ("tag", tag),
                ("start_date", start_date),
                ("end_date", end_date),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            if source_enriched {
                q.push(("source_enriched", "true".into()));
            } else if no_source_enriched {
                q.push(("source_enriched", "false".into()));
            }
            let all = c.all("/anomalies", &q).await?;
            printer::list(
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
                format,
            );
        }
        AnomaliesCmd::Get { id, format } => {
            printer::object(&c.get(&format!("/anomalies/{id}"), &[]).await?, format)
        }
        AnomaliesCmd::Update {
            ids,
            status,
            description,
            tags,
            assignee_ids,
        } => {
            let ids = ids.all()?;
            let assignees: Option<Vec<i64>> = match assignee_ids.as_deref().map(str::trim) {
                None => None,
                Some("") => Some(Vec::new()),
                Some(list) => Some(
                    list.split(',')
                        .map(|x| x.trim().parse::<i64>())
                        .collect::<Result<_, _>>()
                        .map_err(|_| {
                            anyhow::anyhow!("--assignee-ids takes user ids like \"1,2\"")
                        })?,
                ),
            };
            if let Some(s) = &status
                && s != "Active"
                && s != "Acknowledged"
            {
                crate::usage!(
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
                    if let Some(a) = &assignees {
                        v["assignee_ids"] = json!(a);
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
            let ids = ids.all()?;
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
            let ids = ids.all()?;
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
