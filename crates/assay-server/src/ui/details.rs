//! A datastore's page: the header and tabs every tab shares, the Overview (totals, Run Sync/Profile/Scan and
//! operations polled by htmx while they run), Activity (operations with per-container results and abort) and
//! Settings (name and teams, enrichment link, delete). Runs, aborts and edits call the API's handlers.

use super::datastores::counts;
use super::form::{Errors, Pairs};
use super::page::{
    PageResult, Pager, Shell, UiError, duration, html, html_status, see_other, text, when,
};
use super::session::Session;
use crate::AppState;
use crate::body::JsonBody;
use crate::routes::{datastores as ds_api, id, operations as ops_api};
use askama::Template;
use assay_store::datastores::DatastoreRecord;
use assay_store::operations::{OperationFilter, OperationRecord};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;

/// The header of every tab.
pub struct Head {
    pub id: i64,
    pub name: String,
    pub enrichment_only: bool,
    pub connector: String,
    pub host: String,
    pub database: String,
    pub schema: String,
    pub teams: String,
    pub enrichment: Option<String>,
    pub enrichment_id: i64,
    pub prefix: String,
    /// The current tab.
    pub tab: &'static str,
}

impl Head {
    pub fn of(d: &DatastoreRecord, tab: &'static str) -> Head {
        Head {
            id: d.id,
            name: d.spec.name.clone(),
            enrichment_only: d.spec.enrichment_only,
            connector: if d.connector == "postgresql" {
                "PostgreSQL".into()
            } else {
                d.connector.clone()
            },
            host: d.host.clone(),
            database: d.spec.database.clone(),
            schema: d.spec.schema.clone(),
            teams: d
                .teams
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            enrichment: d.enrichment.as_ref().map(|e| e.name.clone()),
            enrichment_id: d.enrichment.as_ref().map(|e| e.id).unwrap_or_default(),
            prefix: d.spec.enrichment_prefix.clone().unwrap_or_default(),
            tab,
        }
    }
}

/// Loads a datastore the user may see (others are a 404).
pub async fn load(s: &AppState, session: &Session, raw: &str) -> Result<DatastoreRecord, UiError> {
    Ok(s.store
        .datastore(id(raw, "datastore")?, &session.viewer())
        .await?)
}

/// An operation as the Activity tab shows it.
pub struct OpRow {
    pub id: i64,
    pub kind: String,
    pub result: String,
    pub running: bool,
    /// An abort was requested and the runner has not stopped yet.
    pub aborting: bool,
    pub created: String,
    pub duration: String,
    pub message: String,
    pub triggered_by: String,
    pub progress: String,
    pub containers: Vec<ContainerResult>,
}

pub struct ContainerResult {
    pub name: String,
    pub result: String,
    pub detail: String,
}

impl OpRow {
    fn of(o: &OperationRecord) -> OpRow {
        let st = &o.status;
        let n = |k: &str| st[k].as_i64();
        let progress = match (n("containers_analyzed"), n("total_containers")) {
            (Some(a), Some(t)) => format!("{a} of {t} tables"),
            _ => String::new(),
        };
        let containers = st["containers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        let mut detail = Vec::new();
                        for (key, label) in [
                            ("records_processed", "records"),
                            ("checks_run", "checks run"),
                            ("checks_failed", "checks failed"),
                            ("anomaly_count", "anomalies"),
                            ("checks_added", "checks inferred"),
                        ] {
                            if let Some(v) = c[key].as_i64() {
                                detail.push(format!("{v} {label}"));
                            }
                        }
                        if let Some(m) = c["message"].as_str().filter(|m| !m.is_empty()) {
                            detail.push(m.to_string());
                        }
                        ContainerResult {
                            name: text(&c["container"]["name"]),
                            result: c["result"].as_str().unwrap_or_default().to_string(),
                            detail: detail.join(" · "),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        OpRow {
            id: o.id,
            kind: o.op_type.clone(),
            result: o.result.clone(),
            running: o.end_time.is_none(),
            aborting: o.end_time.is_none() && o.abort_requested,
            created: when(Some(o.created)),
            duration: duration(o.start_time, o.end_time),
            message: o.message.clone().unwrap_or_default(),
            triggered_by: o.triggered_by.clone(),
            progress,
            containers,
        }
    }
}

async fn operations(
    s: &AppState,
    session: &Session,
    did: i64,
    size: i64,
) -> Result<Vec<OpRow>, UiError> {
    let filter = OperationFilter {
        datastores: vec![did],
        ..Default::default()
    };
    let (ops, _) = s
        .store
        .list_operations(&session.viewer(), &filter, 1, size)
        .await?;
    Ok(ops.iter().map(OpRow::of).collect())
}

/// The recent operations of a datastore, polled while one runs.
pub struct Ops {
    id: i64,
    ops: Vec<OpRow>,
    polling: bool,
    flash: Option<String>,
    /// Whether the flash reports a success (else it is an error).
    flash_ok: bool,
}

#[derive(Template)]
#[template(path = "ops_fragment.html")]
struct OpsFragment {
    frag: Ops,
}

/// A source writing into an enrichment datastore, and the tables Assay made there for its prefix.
pub struct Linked {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub tables: Vec<(String, String, i32)>,
    /// Why the tables could not be listed (the store unreachable, ...).
    pub error: String,
}

/// The enrichment tables of each linked source, as `GET /api/datastores/{id}/enrichment-tables` lists them.
async fn linked_sources(
    s: &AppState,
    session: &Session,
    d: &DatastoreRecord,
) -> Result<Vec<Linked>, UiError> {
    let mut out = Vec::new();
    for src in &d.linked_datastores {
        let Ok(rec) = s.store.datastore(src.id, &session.viewer()).await else {
            continue;
        };
        let prefix = rec
            .spec
            .enrichment_prefix
            .clone()
            .or_else(|| assay_core::datastore::normalize_prefix(&rec.spec.name).ok())
            .unwrap_or_default();
        let q = crate::params::Params(vec![("prefix".into(), prefix.clone())]);
        let listed =
            ds_api::enrichment_tables(State(s.clone()), session.auth(), Path(d.id.to_string()), q)
                .await;
        let (tables, error) = match listed {
            Ok(axum::Json(v)) => (
                v["tables"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|t| {
                                (
                                    text(&t["name"]),
                                    text(&t["kind"]),
                                    t["schema_version"].as_i64().unwrap_or(0) as i32,
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                String::new(),
            ),
            Err(e) if e.status.is_server_error() && e.status.as_u16() != 502 => {
                return Err(UiError(e));
            }
            Err(e) => (Vec::new(), e.detail),
        };
        out.push(Linked {
            id: rec.id,
            name: rec.spec.name.clone(),
            prefix,
            tables,
            error,
        });
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    shell: Option<Shell>,
    head: Head,
    notice: Option<String>,
    tables: i64,
    fields: i64,
    rows: i64,
    checks: i64,
    anomalies: i64,
    frag: Ops,
    linked: Vec<Linked>,
    /// The tables a profile or scan may be limited to.
    table_names: Vec<String>,
    /// The inference levels a profile offers, `medium` first as the default.
    efforts: &'static [&'static str],
}

pub async fn overview(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: crate::params::Params,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let viewer = session.viewer();
    let (tables, checks, anomalies) = counts(&s, &viewer, d.id).await?;
    let (containers, _) = s
        .store
        .list_containers(
            &viewer,
            &assay_store::catalog::ContainerFilter {
                datastores: vec![d.id],
                ..Default::default()
            },
            1,
            1000,
        )
        .await?;
    let fields = containers.iter().map(|c| c.field_count).sum();
    let rows = containers
        .iter()
        .filter_map(|c| c.row_estimate)
        .filter(|r| *r > 0)
        .sum();
    let ops = operations(&s, &session, d.id, 5).await?;
    let polling = ops.iter().any(|o| o.running);
    let notice = if q.get("created").is_some() {
        Some(format!("Datastore “{}” was created.", d.spec.name))
    } else if q.get("linked").is_some() {
        Some(format!(
            "Datastore “{}” is ready{}.",
            d.spec.name,
            d.enrichment
                .as_ref()
                .map(|e| format!(", with enrichment datastore “{}”", e.name))
                .unwrap_or_default()
        ))
    } else {
        None
    };
    html(&OverviewPage {
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "overview"),
        notice,
        tables,
        fields,
        rows,
        checks,
        anomalies,
        linked: if d.spec.enrichment_only {
            linked_sources(&s, &session, &d).await?
        } else {
            Vec::new()
        },
        frag: Ops {
            id: d.id,
            ops,
            polling,
            flash: None,
            flash_ok: true,
        },
        table_names: containers.iter().map(|c| c.name.clone()).collect(),
        efforts: &assay_core::operation::AI_EFFORTS,
    })
}

pub fn section(d: &DatastoreRecord) -> &'static str {
    if d.spec.enrichment_only {
        "enrichment"
    } else {
        "sources"
    }
}

/// The recent operations (polled every second by htmx while one runs).
pub async fn operations_fragment(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let ops = operations(&s, &session, d.id, 5).await?;
    let polling = ops.iter().any(|o| o.running);
    html(&OpsFragment {
        frag: Ops {
            id: d.id,
            ops,
            polling,
            flash: None,
            flash_ok: true,
        },
    })
}

/// Run Sync, Profile or Scan: the same queueing as `POST /api/operations/run`.
pub async fn run(
    State(s): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let f = Pairs::parse(&body);
    let kind = f.get("type").to_string();
    let req = run_request(d.id, &kind, &f);
    let (flash, flash_ok) =
        match ops_api::run(State(s.clone()), session.auth(), JsonBody(Some(req))).await {
            Ok(axum::Json(v)) => (
                format!("{} queued (operation {}).", capital(&kind), text(&v["id"])),
                true,
            ),
            Err(e) if e.status.is_client_error() => {
                (format!("Could not start {kind}: {}", e.detail), false)
            }
            Err(e) => return Err(UiError(e)),
        };
    if !headers.contains_key("hx-request") {
        return see_other(&format!("/datastores/{}/activity", d.id));
    }
    let ops = operations(&s, &session, d.id, 5).await?;
    html(&OpsFragment {
        frag: Ops {
            id: d.id,
            polling: ops.iter().any(|o| o.running),
            ops,
            flash: Some(flash),
            flash_ok,
        },
    })
}

/// The API body of a Run form: its type, and the options the form offers (tables; a profile's inference level
/// and full read; a scan's incremental read). What the form leaves out takes the API's defaults.
fn run_request(datastore_id: i64, kind: &str, f: &Pairs) -> serde_json::Value {
    let mut req = json!({"datastore_id": datastore_id, "type": kind});
    let tables: Vec<String> = f
        .all("container_names")
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect();
    if !tables.is_empty() {
        req["container_names"] = json!(tables);
    }
    match kind {
        "profile" => {
            if !f.get("ai_effort").is_empty() {
                req["ai_effort"] = json!(f.get("ai_effort"));
            }
            if f.on("full") {
                req["incremental"] = json!(false);
            }
        }
        "scan" => req["incremental"] = json!(f.on("incremental")),
        _ => {}
    }
    req
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    shell: Option<Shell>,
    head: Head,
    ops: Vec<OpRow>,
    polling: bool,
    /// The filters shown: an operation type and a result ("" for any).
    kind: String,
    result: String,
    kinds: &'static [&'static str],
    results: &'static [&'static str],
    /// The page's own URL with its filters, which htmx polls while an operation runs.
    here: String,
    pager: Pager,
    schedules: Vec<super::schedules::ScheduleRow>,
}

/// The operation types and results the Activity tab filters by.
const OP_KINDS: [&str; 6] = assay_core::operation::OperationType::NAMES;
const OP_RESULTS: [&str; 5] = ["queued", "running", "success", "failure", "aborted"];

pub async fn activity(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: crate::params::Params,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    // only values the filters offer are used (anything else shows every operation)
    let pick = |key: &str, of: &[&str]| {
        q.get(key)
            .filter(|v| of.contains(v))
            .unwrap_or_default()
            .to_string()
    };
    let (kind, result) = (pick("type", &OP_KINDS), pick("result", &OP_RESULTS));
    let page = Pager::asked(&q);
    let filter = OperationFilter {
        datastores: vec![d.id],
        op_type: (!kind.is_empty()).then(|| kind.clone()),
        results: if result.is_empty() {
            vec![]
        } else {
            vec![result.clone()]
        },
        ..Default::default()
    };
    let (items, total) = s
        .store
        .list_operations(&session.viewer(), &filter, page, Pager::SIZE)
        .await?;
    let ops: Vec<OpRow> = items.iter().map(OpRow::of).collect();
    let path = format!("/datastores/{}/activity", d.id);
    let query = format!(
        "type={}&result={}",
        super::page::encode(&kind),
        super::page::encode(&result)
    );
    let (schedules, _) = s
        .store
        .list_schedules(&session.viewer(), Some(d.id), 1, 100)
        .await?;
    html(&ActivityPage {
        schedules: schedules
            .iter()
            .map(super::schedules::ScheduleRow::of)
            .collect(),
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "activity"),
        polling: ops.iter().any(|o| o.running),
        ops,
        here: format!("{path}?{query}&page={page}"),
        pager: Pager::new(&path, &query, page, total),
        kind,
        result,
        kinds: &OP_KINDS,
        results: &OP_RESULTS,
    })
}

/// Abort: `PUT /api/operations/abort/{id}`'s handler.
pub async fn abort(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    let op = s
        .store
        .operation(id(&raw, "operation")?, &session.viewer())
        .await?;
    let _ = ops_api::abort(State(s.clone()), session.auth(), Path(raw)).await?;
    see_other(&format!("/datastores/{}/activity", op.datastore_id))
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    shell: Option<Shell>,
    head: Head,
    name: String,
    teams: Vec<String>,
    chosen: Vec<String>,
    errors: Errors,
    saved: bool,
    linked_sources: String,
}

impl SettingsPage {
    fn err(&self, field: &str) -> &str {
        self.errors.get(field)
    }
    fn has_team(&self, t: &str) -> bool {
        self.chosen.iter().any(|c| c == t)
    }
}

async fn settings_page(
    s: &AppState,
    session: &Session,
    d: &DatastoreRecord,
    name: String,
    chosen: Vec<String>,
    errors: Errors,
) -> Result<SettingsPage, UiError> {
    let mut teams = vec![assay_core::datastore::PUBLIC_TEAM.to_string()];
    if session.user.is_admin() {
        teams.extend(
            s.store
                .list_teams(1, 500)
                .await?
                .0
                .into_iter()
                .map(|t| t.name),
        );
    } else {
        teams.extend(session.user.teams.iter().map(|t| t.name.clone()));
    }
    for t in &chosen {
        if !teams.contains(t) {
            teams.push(t.clone());
        }
    }
    teams.dedup();
    Ok(SettingsPage {
        shell: Some(Shell::of(&session.user, section(d))),
        head: Head::of(d, "settings"),
        name,
        teams,
        chosen,
        errors,
        saved: false,
        linked_sources: d
            .linked_datastores
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

pub async fn settings(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: crate::params::Params,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let chosen = d.teams.iter().map(|t| t.name.clone()).collect();
    let mut page = settings_page(
        &s,
        &session,
        &d,
        d.spec.name.clone(),
        chosen,
        Errors::default(),
    )
    .await?;
    page.saved = q.get("saved").is_some();
    html(&page)
}

/// Saves name and teams through `PUT /api/datastores/{id}`'s handler.
pub async fn save_settings(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let f = Pairs::parse(&body);
    let name = f.get("name").trim().to_string();
    let teams = f.all("teams");
    let req = json!({"name": name, "teams": teams});
    match ds_api::update(
        State(s.clone()),
        session.auth(),
        Path(raw),
        JsonBody(Some(req)),
    )
    .await
    {
        Ok(_) => see_other(&format!("/datastores/{}/settings?saved=1", d.id)),
        Err(e) if e.status.is_client_error() => {
            let page = settings_page(&s, &session, &d, name, teams, Errors::from_api(&e)).await?;
            html_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(UiError(e)),
    }
}

pub async fn unlink(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    ds_api::unlink(State(s.clone()), session.auth(), Path(raw)).await?;
    see_other(&format!("/datastores/{}/settings?saved=1", d.id))
}

/// Deletes after the datastore's name was typed to confirm.
pub async fn delete(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let f = Pairs::parse(&body);
    if f.get("confirm").trim() != d.spec.name {
        let mut errors = Errors::default();
        errors.fields.insert(
            "confirm".into(),
            "type the datastore's name exactly to confirm".into(),
        );
        let chosen = d.teams.iter().map(|t| t.name.clone()).collect();
        let page = settings_page(&s, &session, &d, d.spec.name.clone(), chosen, errors).await?;
        return html_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    match ds_api::delete(State(s.clone()), session.auth(), Path(raw)).await {
        Ok(_) => see_other(if d.spec.enrichment_only {
            "/enrichment"
        } else {
            "/datastores"
        }),
        Err(e) if e.status == StatusCode::CONFLICT => {
            let mut errors = Errors::default();
            errors.fields.insert("confirm".into(), e.detail.clone());
            let chosen = d.teams.iter().map(|t| t.name.clone()).collect();
            let page = settings_page(&s, &session, &d, d.spec.name.clone(), chosen, errors).await?;
            html_status(StatusCode::CONFLICT, &page)
        }
        Err(e) => Err(UiError(e)),
    }
}
