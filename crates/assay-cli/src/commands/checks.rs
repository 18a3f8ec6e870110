//! `checks list|get|create|update|delete|export|import`. Check files are YAML (or JSON) in the portable layout
//! of the Qualytics CLI: `rule_type`, `description`, `container` (name), `fields` (names), `coverage`, `filter`,
//! `anomaly_message_field`, `properties`, `tags`, `status`, `additional_metadata` with `_qualytics_check_uid`.
//! Import upserts by that uid; an existing check without one is matched by the uid its export would get
//! (`slug(container)__slug(rule)__slug(sorted fields)`), so a round trip never duplicates checks.

use super::{IdArgs, client};
use crate::client::Client;
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ChecksCmd {
    /// List the quality checks of a datastore
    List {
        #[arg(long)]
        datastore_id: i64,
        #[command(flatten)]
        select: Select,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Create checks from a YAML or JSON file (one check or a list)
    Create {
        #[arg(long)]
        datastore_id: i64,
        #[arg(long, short = 'f')]
        file: PathBuf,
        #[command(flatten)]
        people: People,
    },
    /// Replace a check's definition from a YAML or JSON file
    Update {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f')]
        file: PathBuf,
        #[command(flatten)]
        people: People,
    },
    /// Archive (default) or delete checks
    Delete {
        #[command(flatten)]
        ids: IdArgs,
        /// Archive (the default)
        #[arg(long, overrides_with = "no_archive")]
        archive: bool,
        /// Delete for good instead of archiving
        #[arg(long, alias = "hard")]
        no_archive: bool,
        /// Discarded (default) or Invalid
        #[arg(long, default_value = "Discarded")]
        status: String,
    },
    /// Activate (unarchive) checks
    Activate {
        #[command(flatten)]
        ids: IdArgs,
    },
    /// Write the checks of a datastore as one YAML file per check
    Export {
        #[arg(long)]
        datastore_id: i64,
        #[arg(long, short = 'o', default_value = "./checks")]
        output: PathBuf,
        #[command(flatten)]
        select: Select,
    },
    /// Create or update checks from a directory written by export (matched by _qualytics_check_uid)
    Import {
        /// Target datastore (repeat for several)
        #[arg(long, required = true)]
        datastore_id: Vec<i64>,
        #[arg(long, short = 'i', default_value = "./checks")]
        input: PathBuf,
        /// Show what would change without changing anything
        #[arg(long)]
        dry_run: bool,
        /// Write the checks that failed (which file, why) to this file
        #[arg(long)]
        failures_log: Option<PathBuf>,
    },
}

/// Which checks of a datastore `list` and `export` take.
#[derive(clap::Args)]
pub struct Select {
    /// Comma-separated container ids or names. Example: "1,ORDERS"
    #[arg(long, value_delimiter = ',')]
    containers: Vec<String>,
    /// Comma-separated tag names
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Active, Draft or Archived
    #[arg(long)]
    status: Option<String>,
}

impl Select {
    async fn query(&self, c: &Client, datastore_id: i64) -> Result<Vec<(&'static str, String)>> {
        let mut q = vec![("datastore", datastore_id.to_string())];
        match self.status.as_deref() {
            Some("Archived") => q.push(("archived", "only".into())),
            Some(s) => q.push(("status", s.to_string())),
            None => {}
        }
        if !self.containers.is_empty() {
            let ids = container_ids(c, datastore_id).await?;
            for x in &self.containers {
                let id = match x.parse::<i64>() {
                    Ok(id) => id,
                    Err(_) => *ids.get(x).with_context(|| {
                        format!("datastore {datastore_id} has no container '{x}'")
                    })?,
                };
                q.push(("container", id.to_string()));
            }
        }
        for t in &self.tags {
            q.push(("tag", t.clone()));
        }
        Ok(q)
    }
}

/// Owner and default assignee applied to every check of a file.
#[derive(clap::Args)]
pub struct People {
    /// Owner user id (overrides the file)
    #[arg(long)]
    owner_id: Option<i64>,
    /// Default anomaly assignee user id (overrides the file; 0 clears it)
    #[arg(long)]
    default_anomaly_assignee_id: Option<i64>,
}

impl People {
    fn apply(&self, body: &mut Value) {
        if let Some(o) = self.owner_id {
            body["owner_id"] = json!(o);
        }
        if let Some(a) = self.default_anomaly_assignee_id {
            body["default_anomaly_assignee_id"] = if a == 0 { Value::Null } else { json!(a) };
        }
    }
}

use assay_core::rules::slug;

fn field_names(k: &Value) -> Vec<String> {
    k["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["name"].as_str().or(f.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn uid_of(k: &Value) -> String {
    if let Some(u) = k["additional_metadata"]["_qualytics_check_uid"].as_str() {
        return u.to_string();
    }
    assay_core::rules::check_uid(
        k["container"]["name"].as_str().unwrap_or(""),
        k["rule_type"].as_str().unwrap_or(""),
        &field_names(k),
    )
}

/// The portable form of a check.
fn portable(k: &Value) -> Value {
    let mut meta = k["additional_metadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    meta.remove("from quality check id");
    meta.remove("main datastore id");
    meta.insert("_qualytics_check_uid".into(), json!(uid_of(k)));
    let tags: Vec<Value> = k["global_tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t["name"].clone()).collect())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("rule_type".into(), k["rule_type"].clone());
    m.insert("description".into(), k["description"].clone());
    m.insert("container".into(), k["container"]["name"].clone());
    m.insert("fields".into(), json!(field_names(k)));
    m.insert("coverage".into(), k["coverage"].clone());
    m.insert("filter".into(), k["filter"].clone());
    m.insert(
        "anomaly_message_field".into(),
        k["anomaly_message_field"].clone(),
    );
    m.insert("properties".into(), k["properties"].clone());
    m.insert("tags".into(), Value::Array(tags));
    m.insert("status".into(), k["status"].clone());
    m.insert("additional_metadata".into(), Value::Object(meta));
    Value::Object(m)
}

fn read_file(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?
    } else {
        serde_yaml::from_str(&text)
            .with_context(|| format!("{} is not valid YAML", path.display()))?
    };
    Ok(match v {
        Value::Array(a) => a,
        other => vec![other],
    })
}

/// The request body for a portable check, with the container name resolved to an id.
fn body_of(k: &Value, containers: &HashMap<String, i64>, with_container: bool) -> Result<Value> {
    let rule = k["rule_type"]
        .as_str()
        .or(k["rule"].as_str())
        .context("a check has no rule_type")?;
    let mut b = json!({
        "description": k["description"].as_str().unwrap_or("Imported quality check"),
        "fields": k["fields"].as_array().cloned().unwrap_or_default(),
        "coverage": k["coverage"],
        "filter": k["filter"],
        "properties": if k["properties"].is_object() { k["properties"].clone() } else { json!({}) },
        "tags": k["tags"].as_array().cloned().unwrap_or_default(),
        "additional_metadata": if k["additional_metadata"].is_object() { k["additional_metadata"].clone() } else { json!({}) },
        "status": k["status"].as_str().filter(|s| *s == "Draft").unwrap_or("Active"),
    });
    if let Some(f) = k.get("anomaly_message_field") {
        b["anomaly_message_field"] = f.clone();
    }
    if with_container {
        let name = k["container"]
            .as_str()
            .context("a check has no container name")?;
        let id = containers.get(name).with_context(|| {
            format!("the datastore has no container '{name}'; run a sync first")
        })?;
        b["container_id"] = json!(id);
        b["rule"] = json!(rule);
    }
    Ok(b)
}

async fn container_ids(c: &Client, datastore_id: i64) -> Result<HashMap<String, i64>> {
    let v = c
        .get(
            "/containers/listing",
            &[("datastore", datastore_id.to_string())],
        )
        .await?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x["name"].as_str()?.to_string(), x["id"].as_i64()?)))
                .collect()
        })
        .unwrap_or_default())
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            yaml_files(&p, out)?;
        } else if p
            .extension()
            .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(())
}

pub async fn run(cmd: ChecksCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        ChecksCmd::List {
            datastore_id,
            select,
            format,
        } => {
            let q = select.query(&c, datastore_id).await?;
            let all = c.all("/quality-checks", &q).await?;
            printer::list(
                &all,
                &[
                    "id",
                    "rule_type",
                    "container",
                    "fields",
                    "coverage",
                    "status",
                    "inferred",
                    "is_passing",
                    "description",
                ],
                format,
            );
        }
        ChecksCmd::Get { id, format } => {
            printer::object(&c.get(&format!("/quality-checks/{id}"), &[]).await?, format)
        }
        ChecksCmd::Create {
            datastore_id,
            file,
            people,
        } => {
            let ids = container_ids(&c, datastore_id).await?;
            let (mut ok, mut failed) = (0, 0);
            for k in read_file(&file)? {
                let r = match body_of(&k, &ids, true) {
                    Ok(mut b) => {
                        people.apply(&mut b);
                        c.post("/quality-checks", &b).await
                    }
                    Err(e) => Err(e),
                };
                match r {
                    Ok(v) => {
                        ok += 1;
                        printer::line(format!(
                            "Created check {} ({})",
                            v["id"],
                            v["rule_type"].as_str().unwrap_or("")
                        ));
                    }
                    Err(e) => {
                        failed += 1;
                        printer::error(format!("{e:#}"));
                    }
                }
            }
            printer::line(format!("{ok} created, {failed} failed"));
            return Ok(if failed > 0 {
                Outcome::Failed
            } else {
                Outcome::Ok
            });
        }
        ChecksCmd::Update { id, file, people } => {
            let items = read_file(&file)?;
            let [k] = items.as_slice() else {
                crate::usage!("{} must hold exactly one check", file.display());
            };
            let mut body = body_of(k, &HashMap::new(), false)?;
            people.apply(&mut body);
            let v = c.put(&format!("/quality-checks/{id}"), &body).await?;
            printer::line(format!("Updated check {}", v["id"]));
        }
        ChecksCmd::Delete {
            ids,
            archive: _,
            no_archive: hard,
            status,
        } => {
            let ids = ids.all()?;
            let body: Vec<Value> = ids
                .iter()
                .map(|id| json!({"id": id, "archive": !hard, "status": status}))
                .collect();
            c.request(
                reqwest::Method::DELETE,
                "/quality-checks",
                &[],
                Some(&Value::Array(body)),
            )
            .await?;
            printer::line(format!(
                "{} {} check(s)",
                if hard { "Deleted" } else { "Archived" },
                ids.len()
            ));
        }
        ChecksCmd::Activate { ids } => {
            for id in ids.all()? {
                let k = c.get(&format!("/quality-checks/{id}"), &[]).await?;
                let mut body = body_of(&portable(&k), &HashMap::new(), false)?;
                body["status"] = json!("Active");
                c.put(&format!("/quality-checks/{id}"), &body).await?;
                printer::line(format!("Activated check {id}"));
            }
        }
        ChecksCmd::Export {
            datastore_id,
            output,
            select,
        } => {
            let q = select.query(&c, datastore_id).await?;
            let n = export(&c, &q, &output).await?;
            printer::line(format!("Exported {n} check(s) to {}", output.display()));
        }
        ChecksCmd::Import {
            datastore_id,
            input,
            dry_run,
            failures_log,
        } => {
            let mut failures = Vec::new();
            let mut outcome = Outcome::Ok;
            for ds in datastore_id {
                let (o, f) = import(&c, ds, &input, dry_run).await?;
                failures.extend(f);
                if matches!(o, Outcome::Failed) {
                    outcome = Outcome::Failed;
                }
            }
            if let Some(path) = failures_log {
                std::fs::write(&path, failures.join("\n") + "\n")
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            return Ok(outcome);
        }
    }
    Ok(Outcome::Ok)
}

/// Writes the checks `q` selects as one portable YAML file per check under `output/<container>/`; returns how
/// many.
pub async fn export(c: &Client, q: &[(&str, String)], output: &Path) -> Result<usize> {
    let all = c.all("/quality-checks", q).await?;
    let mut written: HashMap<PathBuf, usize> = HashMap::new();
    for k in &all {
        let p = portable(k);
        let dir = output.join(slug(p["container"].as_str().unwrap_or("container")));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let fields: Vec<String> = field_names(k);
        let base = format!(
            "{}__{}",
            slug(p["rule_type"].as_str().unwrap_or("")),
            slug(&fields.join("_"))
        );
        let n = written.entry(dir.join(&base)).or_insert(0);
        *n += 1;
        let name = if *n == 1 {
            format!("{base}.yaml")
        } else {
            format!("{base}_{n}.yaml")
        };
        std::fs::write(dir.join(&name), serde_yaml::to_string(&p)?)
            .with_context(|| format!("cannot write {name}"))?;
    }
    Ok(all.len())
}

/// Imports a directory of check files into one datastore: (outcome, failures as "file: why").
pub async fn import(
    c: &Client,
    datastore_id: i64,
    input: &Path,
    dry_run: bool,
) -> Result<(Outcome, Vec<String>)> {
    {
        {
            let ids = container_ids(c, datastore_id).await?;
            let existing = c
                .all(
                    "/quality-checks",
                    &[("datastore", datastore_id.to_string())],
                )
                .await?;
            let by_uid: HashMap<String, i64> = existing
                .iter()
                .filter_map(|k| Some((uid_of(k), k["id"].as_i64()?)))
                .collect();
            let mut files = Vec::new();
            yaml_files(input, &mut files)?;
            let mut failures = Vec::new();
            let (mut created, mut updated, mut failed) = (0, 0, 0);
            for f in files {
                for k in read_file(&f)? {
                    let uid = k["additional_metadata"]["_qualytics_check_uid"]
                        .as_str()
                        .map(str::to_string);
                    let target = uid.as_ref().and_then(|u| by_uid.get(u)).copied();
                    let action = if target.is_some() { "update" } else { "create" };
                    if dry_run {
                        printer::line(format!(
                            "would {action} {} ({})",
                            uid.unwrap_or_default(),
                            f.display()
                        ));
                        continue;
                    }
                    let r = match target {
                        Some(id) => match body_of(&k, &ids, false) {
                            Ok(b) => c.put(&format!("/quality-checks/{id}"), &b).await,
                            Err(e) => Err(e),
                        },
                        None => match body_of(&k, &ids, true) {
                            Ok(b) => c.post("/quality-checks", &b).await,
                            Err(e) => Err(e),
                        },
                    };
                    match (r, target) {
                        (Ok(_), Some(_)) => updated += 1,
                        (Ok(_), None) => created += 1,
                        (Err(e), _) => {
                            failed += 1;
                            printer::error(format!("{}: {e:#}", f.display()));
                            failures.push(format!("{}: {e:#}", f.display()));
                        }
                    }
                }
            }
            if !dry_run {
                printer::line(format!(
                    "{created} created, {updated} updated, {failed} failed"
                ));
            }
            let outcome = if failed > 0 {
                Outcome::Failed
            } else {
                Outcome::Ok
            };
            Ok((outcome, failures))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_uids_follow_the_portable_layout() {
        assert_eq!(slug("  Orders (2024)!"), "orders_2024");
        let k = json!({"rule_type": "between", "container": {"name": "Orders"},
                       "fields": [{"name": "total"}, {"name": "amount"}], "additional_metadata": {}});
        assert_eq!(uid_of(&k), "orders__between__amount_total");
        let p = portable(&k);
        assert_eq!(p["fields"], json!(["total", "amount"]));
        assert_eq!(
            p["additional_metadata"]["_qualytics_check_uid"],
            "orders__between__amount_total"
        );
    }
}
