//! `operations sync|profile|scan|materialize|export|list|get|abort`, waiting with a progress display.

use super::client;
use crate::client::Client;
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::Result;
use assay_core::operation::{
    ExportParams, MaterializeParams, MeasureParams, OperationParams, ProfileParams, ScanParams,
    SyncParams, effort_of_threshold,
};
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
    /// Profile the containers of one or more datastores and infer checks
    Profile {
        #[arg(long, value_delimiter = ',', required = true)]
        datastore_id: Vec<i64>,
        #[arg(long, value_delimiter = ',')]
        container_names: Vec<String>,
        /// Only containers with any of these tags
        #[arg(long, value_delimiter = ',')]
        container_tags: Vec<String>,
        /// off, low, medium, high, xhigh or max
        #[arg(long)]
        ai_effort: Option<String>,
        /// The older 0..5 scale (mapped to --ai-effort)
        #[arg(long, hide = true)]
        inference_threshold: Option<i64>,
        #[arg(long)]
        infer_as_draft: bool,
        /// Rows read per partition; -1 for all
        #[arg(long, allow_hyphen_values = true)]
        max_records_analyzed_per_partition: Option<i64>,
        /// Read every row even when an incremental profile is possible
        #[arg(long)]
        full: bool,
        /// Sampling settings of the Qualytics engine; accepted and sent, Assay profiles every row it reads
        #[command(flatten)]
        tuning: ProfileTuning,
        #[arg(long)]
        background: bool,
        #[arg(long, default_value_t = 1)]
        poll_interval: u64,
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Scan containers with their quality checks and record anomalies
    Scan {
        #[arg(long, value_delimiter = ',', required = true)]
        datastore_id: Vec<i64>,
        #[arg(long, value_delimiter = ',')]
        container_names: Vec<String>,
        /// Only containers with any of these tags
        #[arg(long, value_delimiter = ',')]
        container_tags: Vec<String>,
        /// Read only the rows after each container's checkpoint (the first incremental scan reads everything)
        #[arg(long)]
        incremental: bool,
        /// Remediation strategy for the enrichment tables (none, append, overwrite); the datastore's applies
        /// when not given
        #[arg(long)]
        remediation: Option<String>,
        /// Rows read per container; -1 for all
        #[arg(long, allow_hyphen_values = true)]
        max_records_analyzed_per_partition: Option<i64>,
        /// Offending rows kept per anomaly
        #[arg(long)]
        enrichment_source_record_limit: Option<i64>,
        /// Offending rows per check above which they are rolled up into one shape anomaly
        #[arg(long)]
        high_count_rollup_threshold: Option<i64>,
        /// Resolve open anomalies a full scan no longer finds (the default)
        #[arg(long, overrides_with = "no_auto_resolve_passed_anomalies")]
        auto_resolve_passed_anomalies: bool,
        /// Keep open anomalies open even when a full scan no longer finds them
        #[arg(long)]
        no_auto_resolve_passed_anomalies: bool,
        /// Start after this time instead of the checkpoint (YYYY-MM-DDTHH:MM:SS)
        #[arg(long)]
        greater_than_time: Option<String>,
        /// Start after this value of the incremental field instead of the checkpoint
        #[arg(long, allow_hyphen_values = true)]
        greater_than_batch: Option<f64>,
        #[arg(long)]
        background: bool,
        #[arg(long, default_value_t = 1)]
        poll_interval: u64,
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Copy containers into the linked enrichment datastore as <prefix>_mat_<name> tables
    Materialize {
        #[arg(long, value_delimiter = ',', required = true)]
        datastore_id: Vec<i64>,
        #[arg(long, value_delimiter = ',')]
        container_names: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        container_tags: Vec<String>,
        /// Rows copied per container; -1 for all
        #[arg(long, allow_hyphen_values = true)]
        max_records_per_partition: Option<i64>,
        #[arg(long)]
        background: bool,
        #[arg(long, default_value_t = 1)]
        poll_interval: u64,
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Measure row counts, sizes and last changes, and judge the automated volume and freshness checks
    Measure {
        #[arg(long, value_delimiter = ',', required = true)]
        datastore_id: Vec<i64>,
        #[arg(long, value_delimiter = ',')]
        container_names: Vec<String>,
        #[arg(long)]
        background: bool,
        #[arg(long, default_value_t = 1)]
        poll_interval: u64,
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Write anomalies, checks or field profiles to <prefix>_export_<asset> in the enrichment datastore
    Export {
        #[arg(long, value_delimiter = ',', required = true)]
        datastore_id: Vec<i64>,
        /// anomalies, checks or profiles
        #[arg(long)]
        asset_type: String,
        #[arg(long, value_delimiter = ',')]
        container_ids: Vec<i64>,
        /// Only containers with any of these tags
        #[arg(long, value_delimiter = ',')]
        container_tags: Vec<String>,
        #[arg(long)]
        include_deleted: bool,
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
        /// sync, profile, scan, export, materialize or measure
        #[arg(long = "type", alias = "operation-type")]
        operation_type: Option<String>,
        /// running, success, failure or aborted (comma-separated)
        #[arg(long = "status", alias = "result", value_delimiter = ',')]
        result: Vec<String>,
        /// Created on or after this day (YYYY-MM-DD)
        #[arg(long)]
        start_date: Option<String>,
        /// Created on or before this day (YYYY-MM-DD)
        #[arg(long)]
        end_date: Option<String>,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Abort {
        #[arg(long)]
        id: i64,
    },
}

/// Sampling and correlation settings of the Qualytics profiler. Assay reads every row (or
/// `--max-records-analyzed-per-partition`) and keeps exact value counts up to 64 distinct values, so these are
/// sent along for the record and do not change its results.
#[derive(clap::Args)]
pub struct ProfileTuning {
    #[arg(long)]
    max_count_testing_sample: Option<i64>,
    #[arg(long)]
    percent_testing_threshold: Option<f64>,
    #[arg(long)]
    high_correlation_threshold: Option<f64>,
    #[arg(long)]
    histogram_max_distinct_values: Option<i64>,
    /// Profile rows after this time (accepted; incremental profiles use the stored watermark)
    #[arg(long)]
    greater_than_time: Option<String>,
    /// Profile rows after this incremental value (accepted; incremental profiles use the stored watermark)
    #[arg(long, allow_hyphen_values = true)]
    greater_than_batch: Option<f64>,
}

impl ProfileTuning {
    fn apply(&self, body: &mut Value) {
        let pairs = [
            (
                "max_count_testing_sample",
                self.max_count_testing_sample.map(Value::from),
            ),
            (
                "percent_testing_threshold",
                self.percent_testing_threshold.map(Value::from),
            ),
            (
                "high_correlation_threshold",
                self.high_correlation_threshold.map(Value::from),
            ),
            (
                "histogram_max_distinct_values",
                self.histogram_max_distinct_values.map(Value::from),
            ),
            (
                "greater_than_time",
                self.greater_than_time.clone().map(Value::from),
            ),
            (
                "greater_than_batch",
                self.greater_than_batch.map(Value::from),
            ),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                body[k] = v;
            }
        }
    }
}

/// The body of `POST /operations/run`: the operation's typed parameters with its datastore and type.
fn request(datastore_id: i64, params: OperationParams) -> Value {
    let mut body = params.to_json();
    body["datastore_id"] = json!(datastore_id);
    body["type"] = json!(params.op_type().as_str());
    body
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
            let mut bodies = Vec::new();
            for ds in datastore_id {
                let mut p = SyncParams {
                    prune,
                    recreate,
                    ..Default::default()
                };
                if !include.is_empty() {
                    p.include = include.clone();
                }
                bodies.push(request(ds, OperationParams::Sync(p)));
            }
            start_each(&c, bodies, (background, poll_interval, timeout)).await
        }
        OperationsCmd::Profile {
            datastore_id,
            container_names,
            container_tags,
            ai_effort,
            inference_threshold,
            infer_as_draft,
            max_records_analyzed_per_partition,
            full,
            tuning,
            background,
            poll_interval,
            timeout,
        } => {
            let mut bodies = Vec::new();
            for ds in datastore_id {
                let mut p = ProfileParams {
                    container_names: container_names.clone(),
                    container_tags: container_tags.clone(),
                    infer_as_draft,
                    max_records_analyzed_per_partition,
                    incremental: !full,
                    ..Default::default()
                };
                // the server names a wrong level; a threshold with no level of its own is sent as given
                let mut threshold = None;
                match (&ai_effort, inference_threshold) {
                    (Some(e), _) => p.ai_effort = e.clone(),
                    (None, Some(t)) => match effort_of_threshold(t) {
                        Some(e) => p.ai_effort = e.into(),
                        None => threshold = Some(t),
                    },
                    (None, None) => {}
                }
                let mut body = request(ds, OperationParams::Profile(p));
                if let Some(t) = threshold {
                    body["inference_threshold"] = json!(t);
                }
                tuning.apply(&mut body);
                bodies.push(body);
            }
            start_each(&c, bodies, (background, poll_interval, timeout)).await
        }
        OperationsCmd::Scan {
            datastore_id,
            container_names,
            container_tags,
            incremental,
            remediation,
            max_records_analyzed_per_partition,
            enrichment_source_record_limit,
            high_count_rollup_threshold,
            auto_resolve_passed_anomalies: _,
            no_auto_resolve_passed_anomalies,
            greater_than_time,
            greater_than_batch,
            background,
            poll_interval,
            timeout,
        } => {
            let mut bodies = Vec::new();
            for ds in datastore_id {
                let p = ScanParams {
                    container_names: container_names.clone(),
                    container_tags: container_tags.clone(),
                    incremental,
                    max_records_analyzed_per_partition,
                    enrichment_source_record_limit,
                    high_count_rollup_threshold,
                    auto_resolve_passed_anomalies: no_auto_resolve_passed_anomalies
                        .then_some(false),
                    greater_than_time: greater_than_time.clone(),
                    greater_than_batch,
                    ..Default::default()
                };
                let mut body = request(ds, OperationParams::Scan(p));
                // not a scan parameter: sent so that the server explains where it belongs
                if let Some(r) = &remediation {
                    body["remediation"] = json!(r);
                }
                bodies.push(body);
            }
            start_each(&c, bodies, (background, poll_interval, timeout)).await
        }
        OperationsCmd::Materialize {
            datastore_id,
            container_names,
            container_tags,
            max_records_per_partition,
            background,
            poll_interval,
            timeout,
        } => {
            let mut bodies = Vec::new();
            for ds in datastore_id {
                bodies.push(request(
                    ds,
                    OperationParams::Materialize(MaterializeParams {
                        container_names: container_names.clone(),
                        container_tags: container_tags.clone(),
                        max_records_per_partition,
                    }),
                ));
            }
            start_each(&c, bodies, (background, poll_interval, timeout)).await
        }
        OperationsCmd::Measure {
            datastore_id,
            container_names,
            background,
            poll_interval,
            timeout,
        } => {
            let bodies = datastore_id
                .into_iter()
                .map(|ds| {
                    request(
                        ds,
                        OperationParams::Measure(MeasureParams {
                            container_names: container_names.clone(),
                        }),
                    )
                })
                .collect();
            start_each(&c, bodies, (background, poll_interval, timeout)).await
        }
        OperationsCmd::Export {
            datastore_id,
            asset_type,
            container_ids,
            container_tags,
            include_deleted,
            background,
            poll_interval,
            timeout,
        } => {
            let mut bodies = Vec::new();
            for ds in datastore_id {
                let mut ids = container_ids.clone();
                if !container_tags.is_empty() {
                    let mut q = vec![("datastore", ds.to_string())];
                    for t in &container_tags {
                        q.push(("tag", t.clone()));
                    }
                    ids.extend(
                        c.all("/containers", &q)
                            .await?
                            .iter()
                            .filter_map(|k| k["id"].as_i64()),
                    );
                    if ids.is_empty() {
                        anyhow::bail!(
                            "datastore {ds} has no container tagged {}",
                            container_tags.join(", ")
                        );
                    }
                }
                bodies.push(request(
                    ds,
                    OperationParams::Export(ExportParams {
                        asset_type: asset_type.clone(),
                        container_ids: ids,
                        include_deleted,
                    }),
                ));
            }
            start_each(&c, bodies, (background, poll_interval, timeout)).await
        }
        OperationsCmd::List {
            datastore_id,
            operation_type,
            result,
            start_date,
            end_date,
            format,
        } => {
            let mut q = Vec::new();
            if let Some(d) = datastore_id {
                q.push(("datastore", d.to_string()));
            }
            if let Some(t) = operation_type {
                q.push(("operation_type", t));
            }
            for r in result {
                q.push(("result", r));
            }
            for (k, v) in [("start_date", start_date), ("end_date", end_date)] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            let all = c.all("/operations", &q).await?;
            printer::list(
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
                format,
            );
            Ok(Outcome::Ok)
        }
        OperationsCmd::Get { id, format } => {
            printer::object(&c.get(&format!("/operations/{id}"), &[]).await?, format);
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

/// Runs one operation per body (each names its datastore), one after the other; failed when any failed.
async fn start_each(c: &Client, bodies: Vec<Value>, timing: (bool, u64, u64)) -> Result<Outcome> {
    let mut outcome = Outcome::Ok;
    for body in bodies {
        let ds = body["datastore_id"].as_i64().unwrap_or_default();
        if !start_and_wait(c, ds, &body, timing).await? {
            outcome = Outcome::Failed;
        }
    }
    Ok(outcome)
}

/// Starts an operation and, unless in the background, waits for it and reports; false when it failed.
pub(crate) async fn start_and_wait(
    c: &Client,
    ds: i64,
    body: &Value,
    (background, poll, timeout): (bool, u64, u64),
) -> Result<bool> {
    let op = c.post("/operations/run", body).await?;
    let id = op["id"].as_i64().unwrap_or_default();
    printer::line(format!(
        "Started {} operation {id} for datastore {ds}",
        op["type"].as_str().unwrap_or("an")
    ));
    if background {
        return Ok(true);
    }
    let done = wait(
        c,
        id,
        Duration::from_secs(poll.max(1)),
        Duration::from_secs(timeout),
    )
    .await?;
    Ok(report(&done))
}

/// Polls until `end_time` is set, showing progress.
async fn wait(c: &Client, id: i64, every: Duration, timeout: Duration) -> Result<Value> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} containers {prefix}",
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
        let rows = op["status"]["records_processed"].as_u64().unwrap_or(0);
        if rows > 0 {
            let secs = start.elapsed().as_secs_f64().max(0.001);
            bar.set_prefix(format!(
                "{rows} rows read, {:.0} rows/s",
                rows as f64 / secs
            ));
        }
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
    let kind = op["type"].as_str().unwrap_or("operation");
    let summary = if kind == "scan" {
        format!(
            "{} containers, {} rows scanned, {} anomalies identified",
            status["containers_analyzed"],
            status["records_processed"],
            status["anomalies_identified"]
        )
    } else if kind == "measure" {
        format!(
            "{} containers measured, {} anomalies identified",
            status["containers_measured"], status["anomalies_identified"]
        )
    } else if kind == "sync" {
        format!(
            "{} containers: {} added, {} updated, {} missing",
            status["containers_analyzed"],
            status["containers_added"],
            status["containers_updated"],
            status["containers_missing"]
        )
    } else {
        format!(
            "{} containers, {} rows read, {} fields profiled, {} checks synchronized",
            status["containers_analyzed"],
            status["records_processed"],
            status["fields_profiled"],
            status["checks_synchronized"]
        )
    };
    match (op["result"].as_str(), op["message"].as_str()) {
        (Some("success"), None) => {
            printer::line(format!(
                "Successfully finished {kind} operation {id} for datastore: {ds} ({summary})"
            ));
            true
        }
        (Some("success"), Some(m)) => {
            printer::line(format!(
                "Warning for {kind} operation {id} on datastore {ds}: {m} ({summary})"
            ));
            true
        }
        (r, m) => {
            printer::line(format!(
                "Failed {kind} operation {id} for datastore: {ds} ({}): {}",
                r.unwrap_or("?"),
                m.unwrap_or("")
            ));
            false
        }
    }
}
