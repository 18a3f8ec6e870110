//! `config export|import`: a datastore's configuration as a folder of YAML files in the Qualytics CLI's layout
//! (`connections/<name>.yaml`, `datastores/<name>/_datastore.yaml`, `containers/<name>/_container.yaml` for
//! computed containers, `containers/<name>/computed_fields/<field>.yaml`, `checks/<container>/*.yaml`). Ids
//! become names on export and names become ids again on import, so a folder moves between instances. Secrets
//! are never written: they become `${CONNECTION_FIELD}` placeholders that import reads from the environment.

use super::client;
use crate::client::Client;
use crate::{Outcome, printer};
use anyhow::{Context, Result};
use assay_core::rules::slug;
use clap::Subcommand;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const KINDS: [&str; 6] = [
    "connections",
    "datastores",
    "containers",
    "computed_fields",
    "checks",
    "schedules",
];

/// The keys of a schedule that travel in `schedules.yaml` besides its operation's parameters.
const SCHEDULE_SERVER_KEYS: [&str; 10] = [
    "id",
    "datastore_id",
    "datastore",
    "trigger_type",
    "created",
    "updated",
    "created_by",
    "next_run",
    "last_run",
    "interval_seconds",
];

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Write datastores, their connections, computed containers and fields, and checks to a folder
    Export {
        /// Datastore to export (repeat for several)
        #[arg(long, required = true)]
        datastore_id: Vec<i64>,
        #[arg(long, short = 'o', default_value = "./qualytics-export")]
        output: PathBuf,
        /// Comma-separated kinds: connections,datastores,containers,computed_fields,checks (default: all)
        #[arg(long)]
        include: Option<String>,
    },
    /// Create or update everything in a folder written by export (matched by name)
    Import {
        #[arg(long, short = 'i', default_value = "./qualytics-export")]
        input: PathBuf,
        /// Show what would be created or updated without changing anything
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        include: Option<String>,
    },
    /// Check a server configuration file (TOML) without starting: every mistake is listed at once
    Check {
        /// The file (default: $ASSAY_CONFIG)
        #[arg(long = "config", short = 'c', env = "ASSAY_CONFIG")]
        file: PathBuf,
    },
}

fn kinds(include: Option<&str>) -> Result<BTreeSet<String>> {
    let Some(list) = include else {
        return Ok(KINDS.iter().map(|k| k.to_string()).collect());
    };
    let mut out = BTreeSet::new();
    for k in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        if !KINDS.contains(&k) {
            crate::usage!("--include: '{k}' is not one of {}", KINDS.join(", "));
        }
        out.insert(k.to_string());
    }
    Ok(out)
}

fn placeholder(connection: &str, field: &str) -> String {
    format!(
        "${{{}_{}}}",
        slug(connection).to_uppercase(),
        field.to_uppercase()
    )
}

fn pick(v: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| {
            v.get(*k)
                .filter(|x| !x.is_null())
                .map(|x| (k.to_string(), x.clone()))
        })
        .collect()
}

fn names(v: &Value) -> Value {
    json!(
        v.as_array()
            .map(|a| a
                .iter()
                .filter_map(|t| t.as_str().or(t["name"].as_str()).map(str::to_string))
                .collect::<Vec<_>>())
            .unwrap_or_default()
    )
}

/// A connection without ids and with secrets replaced by placeholders.
fn portable_connection(c: &Value) -> Value {
    let name = c["name"].as_str().unwrap_or("connection");
    let mut m = pick(
        c,
        &[
            "name",
            "type",
            "host",
            "port",
            "username",
            "parameters",
            "max_parallelization",
        ],
    );
    match c.get("secrets_manager").filter(|s| s.is_object()) {
        Some(sm) => {
            let mut sm = sm.clone();
            sm["credentials_payload"] = json!(placeholder(name, "credentials_payload"));
            m.insert("secrets_manager".into(), sm);
        }
        None if c["username"].is_string() => {
            m.insert("password".into(), json!(placeholder(name, "password")));
        }
        None => {}
    }
    Value::Object(m)
}

fn write_yaml(path: &Path, v: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, serde_yaml::to_string(v)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("{} is not valid YAML", path.display()))
}

const JOIN_REFS: [(&str, &str); 2] = [
    ("left_container_id", "left_container_name"),
    ("right_container_id", "right_container_name"),
];

async fn export(
    c: &Client,
    datastores: &[i64],
    out: &Path,
    kinds: &BTreeSet<String>,
) -> Result<()> {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut seen = BTreeSet::new();
    for id in datastores {
        let ds = c.get(&format!("/datastores/{id}"), &[]).await?;
        let ds_name = ds["name"].as_str().unwrap_or_default().to_string();
        let dir = out.join("datastores").join(slug(&ds_name));
        let conn = c
            .get(&format!("/connections/{}", ds["connection_id"]), &[])
            .await?;
        let mut conns = vec![conn.clone()];
        if let Some(eid) = ds["enrich_datastore"]["id"].as_i64() {
            let e = c.get(&format!("/datastores/{eid}"), &[]).await?;
            conns.push(
                c.get(&format!("/connections/{}", e["connection_id"]), &[])
                    .await?,
            );
        }
        if kinds.contains("connections") {
            for k in conns {
                let n = k["name"].as_str().unwrap_or_default().to_string();
                if seen.insert(n.clone()) {
                    write_yaml(
                        &out.join("connections").join(format!("{}.yaml", slug(&n))),
                        &portable_connection(&k),
                    )?;
                    *counts.entry("connections").or_default() += 1;
                }
            }
        }
        if kinds.contains("datastores") {
            let mut m = pick(
                &ds,
                &[
                    "name",
                    "database",
                    "schema",
                    "description",
                    "enrichment_only",
                    "enrichment_prefix",
                    "enrichment_source_record_limit",
                    "enrichment_remediation_strategy",
                    "high_count_rollup_threshold",
                ],
            );
            m.insert("connection_name".into(), conn["name"].clone());
            m.insert("teams".into(), names(&ds["teams"]));
            m.insert("tags".into(), names(&ds["global_tags"]));
            if let Some(e) = ds["enrich_datastore"]["name"].as_str() {
                m.insert("enrich_datastore_name".into(), json!(e));
            }
            write_yaml(&dir.join("_datastore.yaml"), &Value::Object(m))?;
            *counts.entry("datastores").or_default() += 1;
        }
        if kinds.contains("containers") || kinds.contains("computed_fields") {
            let all = c
                .all("/containers", &[("datastore", id.to_string())])
                .await?;
            let name_of = |cid: &Value| {
                all.iter()
                    .find(|k| k["id"] == *cid)
                    .and_then(|k| k["name"].as_str())
                    .map(str::to_string)
            };
            for k in &all {
                let cname = k["name"].as_str().unwrap_or_default();
                let cdir = dir.join("containers").join(slug(cname));
                let computed = k["container_type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("computed_"));
                if computed && kinds.contains("containers") {
                    let mut m = pick(
                        k,
                        &[
                            "name",
                            "container_type",
                            "query",
                            "description",
                            "additional_metadata",
                            "left_join_field_name",
                            "right_join_field_name",
                            "join_type",
                            "left_prefix",
                            "right_prefix",
                            "select_clause",
                            "where_clause",
                            "group_by_clause",
                        ],
                    );
                    for (idk, namek) in JOIN_REFS {
                        if let Some(n) = k.get(idk).and_then(&name_of) {
                            m.insert(namek.into(), json!(n));
                        }
                    }
                    m.insert("tags".into(), names(&k["global_tags"]));
                    m.insert("datastore_name".into(), json!(ds_name));
                    write_yaml(&cdir.join("_container.yaml"), &Value::Object(m))?;
                    *counts.entry("containers").or_default() += 1;
                }
                if kinds.contains("computed_fields") {
                    let detail = c.get(&format!("/containers/{}", k["id"]), &[]).await?;
                    for f in detail["computed_fields"].as_array().into_iter().flatten() {
                        let m = pick(
                            f,
                            &[
                                "name",
                                "transformation",
                                "source_fields",
                                "properties",
                                "additional_metadata",
                            ],
                        );
                        let fname = f["name"].as_str().unwrap_or("field");
                        write_yaml(
                            &cdir
                                .join("computed_fields")
                                .join(format!("{}.yaml", slug(fname))),
                            &Value::Object(m),
                        )?;
                        *counts.entry("computed_fields").or_default() += 1;
                    }
                }
            }
        }
        if kinds.contains("checks") {
            let n = super::checks::export(c, &[("datastore", id.to_string())], &dir.join("checks"))
                .await?;
            *counts.entry("checks").or_default() += n;
        }
        if kinds.contains("schedules") {
            let all = c
                .all("/operations/schedules", &[("datastore", id.to_string())])
                .await?;
            if !all.is_empty() {
                let portable: Vec<Value> = all.iter().map(portable_schedule).collect();
                write_yaml(&dir.join("schedules.yaml"), &Value::Array(portable))?;
                *counts.entry("schedules").or_default() += all.len();
            }
        }
    }
    printer::line(format!("Exported to {}:", out.display()));
    for k in KINDS {
        printer::line(format!("  {k}: {}", counts.get(k).copied().unwrap_or(0)));
    }
    Ok(())
}

/// What an import does (or would do, on a dry run) with a record that exists or not.
fn verb(dry_run: bool, existed: bool) -> &'static str {
    match (dry_run, existed) {
        (true, true) => "would update",
        (true, false) => "would create",
        (false, true) => "updated",
        (false, false) => "created",
    }
}

/// A schedule as another server takes it: its name, cadence, state and operation parameters, without ids.
fn portable_schedule(s: &Value) -> Value {
    let mut m = s.as_object().cloned().unwrap_or_default();
    let interval = m.get("interval_seconds").cloned();
    for k in SCHEDULE_SERVER_KEYS {
        m.remove(k);
    }
    if m.get("cron").is_some_and(Value::is_null) {
        m.remove("cron");
        if let Some(n) = interval {
            m.insert("interval_seconds".into(), n);
        }
    }
    Value::Object(m)
}

/// Creates or updates (by name) the schedules of `schedules.yaml` on datastore `id`.
async fn import_schedules(
    c: &Client,
    id: i64,
    file: &Path,
    dry_run: bool,
    t: &mut Tally,
) -> Result<()> {
    let list = read_yaml(file)?;
    let existing = c
        .all("/operations/schedules", &[("datastore", id.to_string())])
        .await?;
    for s in list.as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or_default();
        let found = existing.iter().find(|e| e["name"] == name);
        printer::line(format!(
            "schedule '{name}': {}",
            verb(dry_run, found.is_some())
        ));
        t.add("schedules", found.is_some());
        if dry_run {
            continue;
        }
        let mut body = s.clone();
        body["datastore_id"] = json!(id);
        let r = match found {
            Some(e) => {
                c.put(&format!("/operations/schedules/{}", e["id"]), &body)
                    .await
            }
            None => c.post("/operations/schedule", &body).await,
        };
        if let Err(e) = r {
            t.fail("schedules", format!("schedule '{name}': {e:#}"));
        }
    }
    Ok(())
}

/// Replaces `${VAR}` with the environment variable (an error naming it when unset).
pub(super) fn from_env(text: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let var = &rest[start + 2..start + end];
        let value = std::env::var(var).with_context(|| {
            format!("environment variable {var} is not set; export it with the secret's value")
        })?;
        out.push_str(&rest[..start]);
        out.push_str(&value);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

struct Tally(std::collections::BTreeMap<&'static str, (usize, usize, usize)>);

impl Tally {
    fn add(&mut self, kind: &'static str, existed: bool) {
        let e = self.0.entry(kind).or_default();
        if existed { e.1 += 1 } else { e.0 += 1 }
    }
    fn fail(&mut self, kind: &'static str, what: String) {
        self.0.entry(kind).or_default().2 += 1;
        printer::error(what);
    }
}

async fn import(
    c: &Client,
    input: &Path,
    dry_run: bool,
    kinds: &BTreeSet<String>,
) -> Result<Outcome> {
    let verb = |existed: bool| verb(dry_run, existed);
    let mut t = Tally(Default::default());
    if kinds.contains("connections") && input.join("connections").is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(input.join("connections"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let mut v = read_yaml(&f)?;
            let name = v["name"].as_str().unwrap_or_default().to_string();
            let existing = c.named("/connections", vec![], &name).await?;
            printer::line(format!("connection '{name}': {}", verb(existing.is_some())));
            t.add("connections", existing.is_some());
            if dry_run {
                continue;
            }
            let resolved = (|| -> Result<()> {
                if let Some(p) = v["password"].as_str() {
                    v["password"] = json!(from_env(p)?);
                }
                if let Some(p) = v["secrets_manager"]["credentials_payload"].as_str() {
                    v["secrets_manager"]["credentials_payload"] = json!(from_env(p)?);
                }
                Ok(())
            })();
            let r = match (resolved, &existing) {
                (Err(e), _) => Err(e),
                (Ok(()), Some(e)) => c.put(&format!("/connections/{}", e["id"]), &v).await,
                (Ok(()), None) => c.post("/connections", &v).await,
            };
            if let Err(e) = r {
                t.fail("connections", format!("{}: {e:#}", f.display()));
            }
        }
    }
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(input.join("datastores")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect(),
        Err(_) => Vec::new(),
    };
    // enrichment datastores first, so sources can link to them
    let mut keyed = Vec::new();
    for d in dirs.drain(..) {
        let ds = read_yaml(&d.join("_datastore.yaml")).unwrap_or(Value::Null);
        keyed.push((!ds["enrichment_only"].as_bool().unwrap_or(false), d, ds));
    }
    keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (_, dir, mut ds) in keyed {
        let name = ds["name"].as_str().unwrap_or_default().to_string();
        if name.is_empty() {
            t.fail(
                "datastores",
                format!("{}: no _datastore.yaml with a name", dir.display()),
            );
            continue;
        }
        let existing = c.named("/datastores", vec![], &name).await?;
        let mut id = existing.as_ref().and_then(|e| e["id"].as_i64());
        if kinds.contains("datastores") {
            printer::line(format!("datastore '{name}': {}", verb(existing.is_some())));
            t.add("datastores", existing.is_some());
            if !dry_run {
                let enrichment = ds
                    .as_object_mut()
                    .and_then(|m| m.remove("enrich_datastore_name"));
                if let Some(cn) = ds.as_object_mut().and_then(|m| m.remove("connection_name")) {
                    match c
                        .named("/connections", vec![], cn.as_str().unwrap_or_default())
                        .await?
                    {
                        Some(k) => ds["connection_id"] = k["id"].clone(),
                        None if existing.is_none() => {
                            t.fail(
                                "datastores",
                                format!(
                                    "datastore '{name}': connection {cn} not found; import it too"
                                ),
                            );
                            continue;
                        }
                        None => {}
                    }
                }
                let r = match id {
                    Some(i) => c.put(&format!("/datastores/{i}"), &ds).await,
                    None => {
                        ds["trigger_sync"] = json!(false);
                        c.post("/datastores", &ds).await
                    }
                };
                match r {
                    Ok(v) => id = v["id"].as_i64(),
                    Err(e) => {
                        t.fail("datastores", format!("datastore '{name}': {e:#}"));
                        continue;
                    }
                }
                if let (Some(i), Some(en)) = (id, enrichment.as_ref().and_then(Value::as_str))
                    && let Some(e) = c.named("/datastores", vec![], en).await?
                {
                    c.patch(&format!("/datastores/{i}/enrichment/{}", e["id"]), None)
                        .await?;
                }
            }
        }
        let Some(id) = id else { continue };
        if dry_run || ds["enrichment_only"].as_bool().unwrap_or(false) {
            continue;
        }
        let body = json!({"datastore_id": id, "type": "sync", "prune": false, "recreate": false});
        if !super::operations::start_and_wait(c, id, &body, (false, 1, 600)).await? {
            t.fail(
                "datastores",
                format!("datastore '{name}': the sync failed; containers and checks skipped"),
            );
            continue;
        }
        let cdirs: Vec<PathBuf> = match std::fs::read_dir(dir.join("containers")) {
            Ok(rd) => {
                let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        };
        for cdir in &cdirs {
            let file = cdir.join("_container.yaml");
            if kinds.contains("containers") && file.is_file() {
                let mut k = read_yaml(&file)?;
                let cname = k["name"].as_str().unwrap_or_default().to_string();
                let m = k
                    .as_object_mut()
                    .context("a container file is not a mapping")?;
                m.remove("datastore_name");
                for (idk, namek) in JOIN_REFS {
                    if let Some(n) = m.remove(namek) {
                        let found = c
                            .named(
                                "/containers",
                                vec![("datastore", id.to_string())],
                                n.as_str().unwrap_or_default(),
                            )
                            .await?;
                        m.insert(
                            idk.into(),
                            found.map(|f| f["id"].clone()).unwrap_or(Value::Null),
                        );
                    }
                }
                m.insert("datastore_id".into(), json!(id));
                let existing = c
                    .named("/containers", vec![("datastore", id.to_string())], &cname)
                    .await?;
                printer::line(format!("container '{cname}': {}", verb(existing.is_some())));
                t.add("containers", existing.is_some());
                let r = match &existing {
                    Some(e) => c.put(&format!("/containers/{}", e["id"]), &k).await,
                    None => c.post("/containers", &k).await,
                };
                if let Err(e) = r {
                    t.fail("containers", format!("container '{cname}': {e:#}"));
                }
            }
            let fdir = cdir.join("computed_fields");
            if kinds.contains("computed_fields") && fdir.is_dir() {
                let cname = read_yaml(&file)
                    .ok()
                    .and_then(|v| v["name"].as_str().map(str::to_string))
                    .unwrap_or_else(|| {
                        cdir.file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned()
                    });
                let Some(container) = c
                    .named("/containers", vec![("datastore", id.to_string())], &cname)
                    .await?
                else {
                    t.fail(
                        "computed_fields",
                        format!("container '{cname}' not found; its computed fields are skipped"),
                    );
                    continue;
                };
                let detail = c
                    .get(&format!("/containers/{}", container["id"]), &[])
                    .await?;
                let mut files: Vec<PathBuf> = std::fs::read_dir(&fdir)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .collect();
                files.sort();
                for f in files {
                    let mut v = read_yaml(&f)?;
                    let fname = v["name"].clone();
                    let existing = detail["computed_fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|x| x["name"] == fname);
                    printer::line(format!(
                        "computed field {fname}: {}",
                        verb(existing.is_some())
                    ));
                    t.add("computed_fields", existing.is_some());
                    let r = match existing {
                        Some(e) => c.put(&format!("/computed-fields/{}", e["id"]), &v).await,
                        None => {
                            v["container_id"] = container["id"].clone();
                            c.post("/computed-fields", &v).await
                        }
                    };
                    if let Err(e) = r {
                        t.fail("computed_fields", format!("{}: {e:#}", f.display()));
                    }
                }
            }
        }
        if kinds.contains("checks") && dir.join("checks").is_dir() {
            let (o, _) = super::checks::import(c, id, &dir.join("checks"), dry_run).await?;
            if matches!(o, Outcome::Failed) {
                t.fail(
                    "checks",
                    format!("datastore '{name}': some checks failed to import"),
                );
            }
        }
        let schedules = dir.join("schedules.yaml");
        if kinds.contains("schedules") && schedules.is_file() {
            import_schedules(c, id, &schedules, dry_run, &mut t).await?;
        }
    }
    printer::line(if dry_run {
        "Plan (nothing changed):"
    } else {
        "Imported:"
    });
    let mut failed = false;
    for k in KINDS {
        let (cr, up, f) = t.0.get(k).copied().unwrap_or_default();
        failed |= f > 0;
        printer::line(format!("  {k}: {cr} to create, {up} to update, {f} failed"));
    }
    Ok(if failed { Outcome::Failed } else { Outcome::Ok })
}

pub async fn run(cmd: ConfigCmd) -> Result<Outcome> {
    if let ConfigCmd::Check { file } = &cmd {
        crate::serve::config::check_file(file).map_err(crate::usage::Usage::from)?;
        printer::line(format!("{}: no errors", file.display()));
        return Ok(Outcome::Ok);
    }
    let c = client()?;
    match cmd {
        ConfigCmd::Export {
            datastore_id,
            output,
            include,
        } => {
            export(&c, &datastore_id, &output, &kinds(include.as_deref())?).await?;
            Ok(Outcome::Ok)
        }
        ConfigCmd::Import {
            input,
            dry_run,
            include,
        } => {
            // a folder of one datastore, or the datastores/ folder itself, both work
            let base = if input.join("_datastore.yaml").is_file() {
                input.join("../..")
            } else if input.file_name().is_some_and(|n| n == "datastores") {
                input.join("..")
            } else {
                input
            };
            import(&c, &base, dry_run, &kinds(include.as_deref())?).await
        }
        ConfigCmd::Check { .. } => unreachable!("answered above, without a client"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_become_placeholders_and_placeholders_read_the_environment() {
        let c = json!({"id": 3, "name": "Shop DB", "type": "postgresql", "host": "h", "port": 5432,
                       "username": "u", "created": "x"});
        let p = portable_connection(&c);
        assert_eq!(p["password"], "${SHOP_DB_PASSWORD}");
        assert!(p.get("id").is_none() && p.get("created").is_none());
        unsafe { std::env::set_var("ASSAY_TEST_PW", "s3cret") };
        assert_eq!(from_env("${ASSAY_TEST_PW}").unwrap(), "s3cret");
        assert!(
            from_env("${ASSAY_TEST_UNSET_VAR}")
                .unwrap_err()
                .to_string()
                .contains("ASSAY_TEST_UNSET_VAR")
        );
        assert!(kinds(Some("checks,nope")).is_err());
    }
}
