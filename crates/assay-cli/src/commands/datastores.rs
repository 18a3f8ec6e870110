//! `datastores create|list|get|update|delete|verify|test|enrichment|link-enrichment|unlink-enrichment`.

use super::client;
use super::connections::report_test;
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::Result;
use clap::{ArgAction, Subcommand};
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub enum DatastoresCmd {
    /// Create a datastore on an existing connection
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, required_unless_present = "connection_id")]
        connection_name: Option<String>,
        #[arg(long)]
        connection_id: Option<i64>,
        #[arg(long)]
        database: String,
        #[arg(long)]
        schema: String,
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Team names (default Public)
        #[arg(long, value_delimiter = ',')]
        teams: Vec<String>,
        #[arg(long, overrides_with = "no_enrichment_only")]
        enrichment_only: bool,
        #[arg(long)]
        no_enrichment_only: bool,
        #[arg(long)]
        enrichment_prefix: Option<String>,
        #[arg(long)]
        enrichment_source_record_limit: Option<i64>,
        #[arg(long, default_value = "none")]
        enrichment_remediation_strategy: String,
        #[arg(long)]
        high_count_rollup_threshold: Option<i64>,
        #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        trigger_sync: bool,
        #[arg(long, conflicts_with = "trigger_sync")]
        no_trigger_sync: bool,
        /// Print the request body instead of sending it
        #[arg(long)]
        dry_run: bool,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    List {
        #[arg(long)]
        name: Option<String>,
        /// Connector type (postgresql)
        #[arg(long = "type")]
        store_type: Option<String>,
        /// Only datastores with this tag
        #[arg(long)]
        tag: Option<String>,
        /// Only enrichment datastores
        #[arg(long, overrides_with = "no_enrichment_only")]
        enrichment_only: bool,
        /// Only source datastores
        #[arg(long)]
        no_enrichment_only: bool,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long, required_unless_present = "name")]
        id: Option<i64>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Change a datastore's settings (only the flags given)
    Update {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        name: Option<String>,
        /// Move the datastore to another connection
        #[arg(long)]
        connection_id: Option<i64>,
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        schema: Option<String>,
        #[arg(long, value_delimiter = ',')]
        teams: Option<Vec<String>>,
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
        #[arg(long, overrides_with = "no_enrichment_only")]
        enrichment_only: bool,
        #[arg(long)]
        no_enrichment_only: bool,
        #[arg(long)]
        enrichment_prefix: Option<String>,
        #[arg(long)]
        enrichment_source_record_limit: Option<i64>,
        #[arg(long)]
        enrichment_remediation_strategy: Option<String>,
        #[arg(long)]
        high_count_rollup_threshold: Option<i64>,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Delete {
        #[arg(long)]
        id: i64,
    },
    /// Test the datastore's connection and the privileges its role needs
    Verify {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Test a saved datastore (--id, same as verify), or one not saved yet (a connection, database and schema)
    Test {
        #[arg(long, required_unless_present_any = ["connection_id", "connection_name"])]
        id: Option<i64>,
        #[arg(long)]
        connection_id: Option<i64>,
        #[arg(long)]
        connection_name: Option<String>,
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        schema: Option<String>,
        #[arg(long)]
        enrichment_only: bool,
    },
    /// Link (--link EID) or unlink (--unlink) the enrichment datastore
    Enrichment {
        #[arg(long)]
        id: i64,
        #[arg(long, conflicts_with = "unlink", required_unless_present = "unlink")]
        link: Option<i64>,
        #[arg(long)]
        unlink: bool,
        #[arg(long)]
        prefix: Option<String>,
    },
    LinkEnrichment {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        enrichment_id: i64,
        /// Prefix of the enrichment tables (normalised, e.g. "Shop Data" → _shop_data)
        #[arg(long)]
        prefix: Option<String>,
    },
    UnlinkEnrichment {
        #[arg(long)]
        id: i64,
    },
}

pub async fn run(cmd: DatastoresCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        DatastoresCmd::Create {
            name,
            connection_name,
            connection_id,
            database,
            schema,
            tags,
            teams,
            enrichment_only,
            no_enrichment_only,
            enrichment_prefix,
            enrichment_source_record_limit,
            enrichment_remediation_strategy,
            high_count_rollup_threshold,
            trigger_sync,
            no_trigger_sync,
            dry_run,
            format,
        } => {
            let enrichment_only = enrichment_only && !no_enrichment_only;
            let connection_id = match (connection_id, connection_name) {
                (Some(id), _) => id,
                (None, Some(n)) => c.connection_id(&n).await?,
                (None, None) => crate::usage!("give --connection-name or --connection-id"),
            };
            let mut body = json!({
                "name": name, "connection_id": connection_id, "enrichment_only": enrichment_only,
                "enrichment_remediation_strategy": enrichment_remediation_strategy,
                "trigger_sync": trigger_sync && !no_trigger_sync,
                "tags": if tags.is_empty() { Value::Null } else { json!(tags) },
                "teams": if teams.is_empty() { Value::Null } else { json!(teams) },
                "database": database, "schema": schema,
            });
            for (k, v) in [
                ("enrichment_prefix", enrichment_prefix.map(Value::from)),
                (
                    "enrichment_source_record_limit",
                    enrichment_source_record_limit.map(Value::from),
                ),
                (
                    "high_count_rollup_threshold",
                    high_count_rollup_threshold.map(Value::from),
                ),
            ] {
                if let Some(v) = v {
                    body[k] = v;
                }
            }
            if dry_run {
                printer::object(&body, format);
                return Ok(Outcome::Ok);
            }
            let v = c.post("/datastores", &body).await?;
            if format.is_some() {
                printer::object(&v, format);
                return Ok(Outcome::Ok);
            }
            printer::line(format!("Datastore ID: {}", v["id"]));
            printer::line(format!(
                "Datastore Name: {}",
                v["name"].as_str().unwrap_or_default()
            ));
        }
        DatastoresCmd::List {
            name,
            store_type,
            tag,
            enrichment_only,
            no_enrichment_only,
            format,
        } => {
            let mut q = Vec::new();
            if let Some(n) = name {
                q.push(("name", n));
            }
            if let Some(t) = store_type {
                q.push(("type", t));
            }
            if let Some(t) = tag {
                q.push(("tag", t));
            }
            if enrichment_only {
                q.push(("enrichment_only", "true".to_string()));
            } else if no_enrichment_only {
                q.push(("enrichment_only", "false".to_string()));
            }
            let all = c.all("/datastores", &q).await?;
            printer::list(
                &all,
                &[
                    "id",
                    "name",
                    "type",
                    "host",
                    "database",
                    "schema",
                    "enrichment_only",
                    "teams",
                    "enrich_datastore",
                ],
                format,
            );
        }
        DatastoresCmd::Get { id, name, format } => {
            let id = match (id, name) {
                (Some(id), _) => id,
                (None, Some(n)) => c.datastore_id(&n).await?,
                (None, None) => crate::usage!("give --id or --name"),
            };
            printer::object(&c.get(&format!("/datastores/{id}"), &[]).await?, format);
        }
        DatastoresCmd::Update {
            id,
            name,
            connection_id,
            database,
            schema,
            teams,
            tags,
            enrichment_only,
            no_enrichment_only,
            enrichment_prefix,
            enrichment_source_record_limit,
            enrichment_remediation_strategy,
            high_count_rollup_threshold,
            format,
        } => {
            let mut body = Map::new();
            let only = match (enrichment_only, no_enrichment_only) {
                (true, _) => Some(Value::Bool(true)),
                (_, true) => Some(Value::Bool(false)),
                _ => None,
            };
            for (k, v) in [
                ("name", name.map(Value::from)),
                ("connection_id", connection_id.map(Value::from)),
                ("tags", tags.map(|t| json!(t))),
                ("enrichment_only", only),
                ("database", database.map(Value::from)),
                ("schema", schema.map(Value::from)),
                ("teams", teams.map(|t| json!(t))),
                ("enrichment_prefix", enrichment_prefix.map(Value::from)),
                (
                    "enrichment_source_record_limit",
                    enrichment_source_record_limit.map(Value::from),
                ),
                (
                    "enrichment_remediation_strategy",
                    enrichment_remediation_strategy.map(Value::from),
                ),
                (
                    "high_count_rollup_threshold",
                    high_count_rollup_threshold.map(Value::from),
                ),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            }
            printer::object(
                &c.put(&format!("/datastores/{id}"), &Value::Object(body))
                    .await?,
                format,
            );
        }
        DatastoresCmd::Delete { id } => {
            c.delete(&format!("/datastores/{id}")).await?;
            printer::line(format!("Datastore {id} deleted."));
        }
        DatastoresCmd::Verify {
            id,
            format: Some(f),
        } => {
            let v = c
                .post(&format!("/datastores/{id}/connection"), &json!({}))
                .await?;
            printer::object(&v, Some(f));
            return Ok(if v["connected"].as_bool().unwrap_or(false) {
                Outcome::Ok
            } else {
                Outcome::Failed
            });
        }
        DatastoresCmd::Verify { id, format: None } | DatastoresCmd::Test { id: Some(id), .. } => {
            let v = c
                .post(&format!("/datastores/{id}/connection"), &json!({}))
                .await?;
            return Ok(report_test(&format!("Datastore {id}"), &v));
        }
        DatastoresCmd::Test {
            id: None,
            connection_id,
            connection_name,
            database,
            schema,
            enrichment_only,
        } => {
            let connection_id = match (connection_id, connection_name) {
                (Some(id), _) => id,
                (None, Some(n)) => c.connection_id(&n).await?,
                (None, None) => crate::usage!(
                    "give --id, or --connection-id/--connection-name with --database and --schema"
                ),
            };
            let body = json!({"connection_id": connection_id, "database": database, "schema": schema,
                              "enrichment_only": enrichment_only});
            let v = c.post("/datastores/connection", &body).await?;
            return Ok(report_test("Unsaved datastore", &v));
        }
        DatastoresCmd::Enrichment {
            id,
            link: Some(eid),
            prefix,
            ..
        }
        | DatastoresCmd::LinkEnrichment {
            id,
            enrichment_id: eid,
            prefix,
        } => {
            let body = prefix.map(|p| json!({"enrichment_prefix": p}));
            let v = c
                .patch(&format!("/datastores/{id}/enrichment/{eid}"), body.as_ref())
                .await?;
            printer::line(format!(
                "Enrichment datastore {eid} linked to datastore {id} with prefix {}.",
                v["enrichment_prefix"].as_str().unwrap_or("-")
            ));
        }
        DatastoresCmd::Enrichment { id, .. } | DatastoresCmd::UnlinkEnrichment { id } => {
            c.delete(&format!("/datastores/{id}/enrichment")).await?;
            printer::line(format!("Enrichment unlinked from datastore {id}."));
        }
    }
    Ok(Outcome::Ok)
}
