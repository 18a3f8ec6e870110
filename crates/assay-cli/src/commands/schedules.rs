//! `schedules create|list|get|update|enable|disable|delete|instants`: operations that run by themselves, on a cron
//! expression in UTC, a preset (hourly, daily, weekly, monthly) or a fixed interval.

use super::client;
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::Result;
use assay_core::operation::{OperationParams, OperationType};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// When a schedule fires and what its operation does, as flags shared by create and update.
#[derive(Args)]
pub struct Definition {
    /// A 5-field cron expression in UTC, e.g. '0 2 * * *'
    #[arg(long)]
    cron: Option<String>,
    /// hourly, daily, weekly or monthly
    #[arg(long)]
    preset: Option<String>,
    /// Every so many seconds (at least 60)
    #[arg(long)]
    interval_seconds: Option<i64>,
    /// Only these tables (profile, scan, materialize)
    #[arg(long, value_delimiter = ',')]
    container_names: Vec<String>,
    /// Incremental scan, or a profile that may read only new rows
    #[arg(long)]
    incremental: Option<bool>,
    /// The inference level of a profile
    #[arg(long)]
    ai_effort: Option<String>,
    /// Further parameters of the operation as a JSON object, as `POST /operations/run` takes them
    #[arg(long)]
    params: Option<String>,
}

#[derive(Subcommand)]
pub enum SchedulesCmd {
    /// Schedule an operation of a datastore
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        datastore_id: i64,
        /// sync, profile, scan, export or materialize
        #[arg(long = "type")]
        op_type: String,
        #[command(flatten)]
        def: Definition,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    List {
        #[arg(long)]
        datastore_id: Option<i64>,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Change a schedule: only the flags given
    Update {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        def: Definition,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Enable {
        #[arg(long)]
        id: i64,
    },
    Disable {
        #[arg(long)]
        id: i64,
    },
    Delete {
        #[arg(long)]
        id: i64,
    },
    /// What became of each due instant: queued (with its operation) or skipped (with the reason)
    Instants {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
}

impl Definition {
    /// The body keys these flags give. With `op_type`, the operation's parameters start from its typed
    /// defaults (a create); without, only the flags given are sent (an update).
    fn body(&self, op_type: Option<OperationType>) -> Result<Value> {
        let mut body = match op_type {
            Some(t) => OperationParams::default_for(t).to_json(),
            None => json!({}),
        };
        if let Some(p) = &self.params {
            let Ok(Value::Object(extra)) = serde_json::from_str::<Value>(p) else {
                crate::usage!(
                    "--params must be a JSON object, such as '{{\"incremental\": true}}'"
                );
            };
            for (k, v) in extra {
                body[k] = v;
            }
        }
        let set = |body: &mut Value, key: &str, v: Value| body[key] = v;
        if !self.container_names.is_empty() {
            set(&mut body, "container_names", json!(self.container_names));
        }
        if let Some(i) = self.incremental {
            set(&mut body, "incremental", json!(i));
        }
        if let Some(e) = &self.ai_effort {
            set(&mut body, "ai_effort", json!(e));
        }
        for (key, v) in [
            ("cron", self.cron.as_ref().map(|c| json!(c))),
            ("preset", self.preset.as_ref().map(|p| json!(p))),
            ("interval_seconds", self.interval_seconds.map(|n| json!(n))),
        ] {
            if let Some(v) = v {
                set(&mut body, key, v);
            }
        }
        Ok(body)
    }
}

const COLUMNS: [&str; 7] = [
    "id",
    "name",
    "type",
    "cron",
    "interval_seconds",
    "enabled",
    "next_run",
];

pub async fn run(cmd: SchedulesCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        SchedulesCmd::Create {
            name,
            datastore_id,
            op_type,
            def,
            format,
        } => {
            let Some(t) = OperationType::parse(&op_type) else {
                crate::usage!(
                    "--type takes sync, profile, scan, export or materialize, not '{op_type}'"
                );
            };
            let mut body = def.body(Some(t))?;
            body["name"] = json!(name);
            body["datastore_id"] = json!(datastore_id);
            body["type"] = json!(t.as_str());
            let v = c.post("/operations/schedule", &body).await?;
            match format {
                Some(_) => printer::object(&v, format),
                None => printer::line(format!(
                    "Created schedule {} '{}'; next run {}",
                    v["id"], name, v["next_run"]
                )),
            }
        }
        SchedulesCmd::List {
            datastore_id,
            format,
        } => {
            let q: Vec<(&str, String)> = datastore_id
                .map(|d| ("datastore", d.to_string()))
                .into_iter()
                .collect();
            printer::list(&c.all("/operations/schedules", &q).await?, &COLUMNS, format);
        }
        SchedulesCmd::Get { id, format } => printer::object(
            &c.get(&format!("/operations/schedules/{id}"), &[]).await?,
            format.or(Some(Format::Json)),
        ),
        SchedulesCmd::Update {
            id,
            name,
            def,
            format,
        } => {
            let mut body = def.body(None)?;
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            let v = c.put(&format!("/operations/schedules/{id}"), &body).await?;
            match format {
                Some(_) => printer::object(&v, format),
                None => printer::line(format!("Schedule {id} updated; next run {}", v["next_run"])),
            }
        }
        SchedulesCmd::Enable { id } => {
            c.post(&format!("/operations/schedules/{id}/enable"), &json!({}))
                .await?;
            printer::line(format!("Schedule {id} enabled."));
        }
        SchedulesCmd::Disable { id } => {
            c.post(&format!("/operations/schedules/{id}/disable"), &json!({}))
                .await?;
            printer::line(format!("Schedule {id} disabled."));
        }
        SchedulesCmd::Delete { id } => {
            c.delete(&format!("/operations/schedules/{id}")).await?;
            printer::line(format!("Schedule {id} deleted."));
        }
        SchedulesCmd::Instants { id, format } => printer::list(
            &c.all(&format!("/operations/schedules/{id}/instants"), &[])
                .await?,
            &["instant", "outcome", "operation_id", "reason"],
            format,
        ),
    }
    Ok(Outcome::Ok)
}
