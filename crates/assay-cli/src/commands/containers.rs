//! `containers list|get|fields|field-profiles|measurements|create|update|delete|validate`: the catalog a sync
//! found, its volume and freshness measurements, and computed containers (a query, or a join of two containers)
//! defined from the command line.

use super::client;
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

/// The definition flags shared by `create` and `validate`.
#[derive(Args)]
pub struct Definition {
    /// computed_table or computed_join (computed_file needs a file container, which PostgreSQL has not)
    #[arg(long = "type", short = 't')]
    container_type: String,
    /// Datastore of a computed table
    #[arg(long)]
    datastore_id: Option<i64>,
    /// SQL query of a computed table
    #[arg(long, short = 'q')]
    query: Option<String>,
    /// Source container of a computed_file (refused on PostgreSQL)
    #[arg(long)]
    source_container_id: Option<i64>,
    /// Select clause of a join, over the prefixed fields (left_<field>, right_<field>)
    #[arg(long)]
    select_clause: Option<String>,
    #[arg(long)]
    where_clause: Option<String>,
    #[arg(long)]
    group_by_clause: Option<String>,
    #[arg(long)]
    left_container_id: Option<i64>,
    #[arg(long)]
    right_container_id: Option<i64>,
    #[arg(long)]
    left_key_field: Option<String>,
    #[arg(long)]
    right_key_field: Option<String>,
    /// inner (default), left, right or full
    #[arg(long)]
    join_type: Option<String>,
}

impl Definition {
    fn body(&self, name: &str) -> Result<Map<String, Value>> {
        let t = self.container_type.as_str();
        if !matches!(t, "computed_table" | "computed_join" | "computed_file") {
            crate::usage!("--type takes computed_table, computed_join or computed_file, not '{t}'");
        }
        let mut b = Map::new();
        b.insert("container_type".into(), json!(t));
        b.insert("name".into(), json!(name));
        let pairs = [
            ("datastore_id", self.datastore_id.map(Value::from)),
            ("query", self.query.clone().map(Value::from)),
            (
                "source_container_id",
                self.source_container_id.map(Value::from),
            ),
            ("select_clause", self.select_clause.clone().map(Value::from)),
            ("where_clause", self.where_clause.clone().map(Value::from)),
            (
                "group_by_clause",
                self.group_by_clause.clone().map(Value::from),
            ),
            ("left_container_id", self.left_container_id.map(Value::from)),
            (
                "right_container_id",
                self.right_container_id.map(Value::from),
            ),
            (
                "left_join_field_name",
                self.left_key_field.clone().map(Value::from),
            ),
            (
                "right_join_field_name",
                self.right_key_field.clone().map(Value::from),
            ),
            ("join_type", self.join_type.clone().map(Value::from)),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                b.insert(k.into(), v);
            }
        }
        Ok(b)
    }
}

#[derive(Subcommand)]
pub enum ContainersCmd {
    List {
        #[arg(long)]
        datastore_id: i64,
        /// table, view, computed_table or computed_join (comma-separated)
        #[arg(long = "type", value_delimiter = ',')]
        container_type: Vec<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        tag: Vec<String>,
        /// Names containing this text
        #[arg(long)]
        search: Option<String>,
        /// Include containers a sync no longer finds
        #[arg(long)]
        archived: bool,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long)]
        id: i64,
        /// Also print the latest field profiles
        #[arg(long)]
        profiles: bool,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Fields {
        #[arg(long)]
        id: i64,
    },
    /// The latest field profiles of a container
    FieldProfiles {
        #[arg(long)]
        id: i64,
    },
    /// Volume and freshness measurements of a container, newest first
    Measurements {
        #[arg(long)]
        id: i64,
        #[arg(long, default_value_t = 30)]
        limit: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Create a computed container: a query (computed_table) or a join of two containers (computed_join)
    Create {
        #[arg(long, short = 'n')]
        name: String,
        #[command(flatten)]
        definition: Definition,
        #[arg(long)]
        left_prefix: Option<String>,
        #[arg(long)]
        right_prefix: Option<String>,
        #[arg(long, short = 'd')]
        description: Option<String>,
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Print the request body instead of sending it
        #[arg(long)]
        dry_run: bool,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Change a container: a computed one's name, query or clauses; any container's description and tags
    Update {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'n')]
        name: Option<String>,
        #[arg(long, short = 'q')]
        query: Option<String>,
        #[arg(long)]
        select_clause: Option<String>,
        #[arg(long)]
        where_clause: Option<String>,
        #[arg(long)]
        group_by_clause: Option<String>,
        #[arg(long, short = 'd')]
        description: Option<String>,
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
        /// Allow a new query to drop fields that checks use
        #[arg(long)]
        force_drop_fields: bool,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Delete a computed container with its fields, checks and anomalies
    Delete {
        #[arg(long)]
        id: i64,
    },
    /// Check a computed container definition against the source without saving it
    Validate {
        #[arg(long, short = 'n', default_value = "validation_test")]
        name: String,
        #[command(flatten)]
        definition: Definition,
        /// Seconds to wait for the answer
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

pub async fn run(cmd: ContainersCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        ContainersCmd::List {
            datastore_id,
            container_type,
            name,
            tag,
            search,
            archived,
            format,
        } => {
            let mut q = vec![("datastore", datastore_id.to_string())];
            q.extend(container_type.into_iter().map(|t| ("container_type", t)));
            q.extend(tag.into_iter().map(|t| ("tag", t)));
            if let Some(n) = name.or(search) {
                q.push(("name", n));
            }
            if archived {
                q.push(("archived", "include".into()));
            }
            let all = c.all("/containers", &q).await?;
            printer::list(
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
                format,
            );
        }
        ContainersCmd::Get {
            id,
            profiles,
            format,
        } => {
            let mut v = c.get(&format!("/containers/{id}"), &[]).await?;
            if profiles {
                let p = c
                    .get(&format!("/containers/{id}/field-profiles"), &[])
                    .await?;
                v["field_profiles"] = p["items"].clone();
            }
            printer::object(&v, format);
        }
        ContainersCmd::Measurements { id, limit, format } => {
            let v = c
                .get(
                    &format!("/containers/{id}/measurements"),
                    &[("size", limit.to_string())],
                )
                .await?;
            printer::list(
                v["items"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                &[
                    "measurement_time",
                    "row_count",
                    "size_bytes",
                    "last_modification_time",
                    "method",
                ],
                format,
            );
        }
        ContainersCmd::FieldProfiles { id } => {
            let v = c
                .get(&format!("/containers/{id}/field-profiles"), &[])
                .await?;
            printer::table(
                v["items"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                &[
                    "name",
                    "field_type",
                    "completeness",
                    "approximate_distinct_values",
                    "min",
                    "max",
                    "mean",
                    "median",
                    "min_length",
                    "max_length",
                ],
            );
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
        ContainersCmd::Create {
            name,
            definition,
            left_prefix,
            right_prefix,
            description,
            tags,
            dry_run,
            format,
        } => {
            let mut b = definition.body(&name)?;
            for (k, v) in [
                ("left_prefix", left_prefix),
                ("right_prefix", right_prefix),
                ("description", description),
            ] {
                if let Some(v) = v {
                    b.insert(k.into(), json!(v));
                }
            }
            if !tags.is_empty() {
                b.insert("tags".into(), json!(tags));
            }
            let body = Value::Object(b);
            if dry_run {
                printer::object(&body, format.or(Some(Format::Json)));
                return Ok(Outcome::Ok);
            }
            let v = c.post("/containers", &body).await?;
            if format.is_some() {
                printer::object(&v, format);
            } else {
                printer::line(format!(
                    "Created {} '{}' (id {})",
                    v["container_type"].as_str().unwrap_or("container"),
                    v["name"].as_str().unwrap_or_default(),
                    v["id"]
                ));
            }
        }
        ContainersCmd::Update {
            id,
            name,
            query,
            select_clause,
            where_clause,
            group_by_clause,
            description,
            tags,
            force_drop_fields,
            format,
        } => {
            let mut b = Map::new();
            for (k, v) in [
                ("name", name),
                ("query", query),
                ("select_clause", select_clause),
                ("where_clause", where_clause),
                ("group_by_clause", group_by_clause),
                ("description", description),
            ] {
                if let Some(v) = v {
                    b.insert(k.into(), json!(v));
                }
            }
            if let Some(t) = tags {
                b.insert("tags".into(), json!(t));
            }
            if force_drop_fields {
                b.insert("force_drop_fields".into(), json!(true));
            }
            let v = c
                .put(&format!("/containers/{id}"), &Value::Object(b))
                .await?;
            printer::object(&v, format);
        }
        ContainersCmd::Delete { id } => {
            c.delete(&format!("/containers/{id}")).await?;
            printer::line(format!("Container {id} deleted."));
        }
        ContainersCmd::Validate {
            name,
            definition,
            timeout,
        } => {
            let body = json!({"container": Value::Object(definition.body(&name)?)});
            let r = tokio::time::timeout(
                std::time::Duration::from_secs(timeout.max(1)),
                c.post("/containers/validate", &body),
            )
            .await;
            match r {
                Err(_) => bail!("no answer from the server within {timeout} s"),
                Ok(Err(e)) => {
                    printer::line(format!("Validation failed: {e:#}"));
                    return Ok(Outcome::Failed);
                }
                Ok(Ok(_)) => printer::line("Validation passed: the source accepts the definition."),
            }
        }
    }
    Ok(Outcome::Ok)
}
