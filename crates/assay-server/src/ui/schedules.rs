//! Schedules in the UI: the Activity tab lists a datastore's schedules with their next and last run, and the
//! schedule form writes one through the API's handler, with a preview of the next five runs of its cadence
//! (computed by the same `Cadence` the scheduler uses) before it is saved. A schedule's page lists what became
//! of each of its due instants (queued with its operation, or skipped and why), newest first, 50 a page.

use super::details::{Head, load, section};
use super::form::{Errors, Pairs};
use super::page::{PageResult, Pager, Shell, UiError, html, html_status, see_other, when};
use super::session::Session;
use crate::AppState;
use crate::body::JsonBody;
use crate::params::Params;
use crate::routes::{id, schedules as api};
use askama::Template;
use assay_core::schedule::{Cadence, PRESETS};
use assay_store::schedules::ScheduleRecord;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

/// A schedule as the Activity tab lists it.
pub struct ScheduleRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub cadence: String,
    pub enabled: bool,
    pub next: String,
    pub last: String,
    pub last_outcome: String,
    pub last_operation: Option<i64>,
}

impl ScheduleRow {
    pub fn of(r: &ScheduleRecord) -> ScheduleRow {
        let next = assay_ops::scheduler::next_run(r);
        ScheduleRow {
            id: r.id,
            name: r.name.clone(),
            kind: r.op_type.clone(),
            cadence: match (&r.cron, r.interval_seconds) {
                (Some(c), _) => format!("cron {c} (UTC)"),
                (None, Some(n)) => format!("every {n} s"),
                _ => String::new(),
            },
            enabled: r.enabled,
            next: if r.enabled { when(next) } else { "off".into() },
            last: r
                .last
                .as_ref()
                .map(|l| when(Some(l.instant)))
                .unwrap_or_else(|| "never".into()),
            last_outcome: r
                .last
                .as_ref()
                .map(|l| match &l.reason {
                    Some(why) => format!("{}: {why}", l.outcome),
                    None => l.outcome.clone(),
                })
                .unwrap_or_default(),
            last_operation: r.last.as_ref().and_then(|l| l.operation_id),
        }
    }
}

/// The schedule form as typed.
#[derive(Default)]
pub struct ScheduleForm {
    pub name: String,
    pub kind: String,
    /// `preset`, `cron` or `interval`.
    pub how: String,
    pub preset: String,
    pub cron: String,
    pub interval: String,
    pub incremental: bool,
    pub tables: Vec<String>,
}

impl ScheduleForm {
    fn from_pairs(f: &Pairs) -> ScheduleForm {
        ScheduleForm {
            name: f.get("name").to_string(),
            kind: f.get("type").to_string(),
            how: f.get("how").to_string(),
            preset: f.get("preset").to_string(),
            cron: f.get("cron").to_string(),
            interval: f.get("interval_seconds").to_string(),
            incremental: f.on("incremental"),
            tables: f
                .all("container_names")
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }

    /// The cadence fields of the API body, from the one way the form chose.
    fn cadence_body(&self) -> serde_json::Value {
        match self.how.as_str() {
            "cron" => json!({"cron": self.cron}),
            "interval" => json!({"interval_seconds": self.interval.trim().parse::<i64>().ok()}),
            _ => json!({"preset": self.preset}),
        }
    }

    fn api_body(&self, datastore_id: i64) -> serde_json::Value {
        let mut body = self.cadence_body();
        body["name"] = json!(self.name);
        body["datastore_id"] = json!(datastore_id);
        body["type"] = json!(self.kind);
        if !self.tables.is_empty() && self.kind != "sync" && self.kind != "export" {
            body["container_names"] = json!(self.tables);
        }
        if self.kind == "scan" || self.kind == "profile" {
            body["incremental"] = json!(self.incremental);
        }
        body
    }

    fn has_table(&self, t: &str) -> bool {
        self.tables.iter().any(|x| x == t)
    }
}

#[derive(Template)]
#[template(path = "schedule_form.html")]
struct FormPage {
    shell: Option<Shell>,
    head: Head,
    form: ScheduleForm,
    presets: Vec<&'static str>,
    kinds: &'static [&'static str],
    table_names: Vec<String>,
    /// The next five runs of the cadence typed, or why there are none.
    preview: Vec<String>,
    preview_error: String,
    errors: Errors,
}

impl FormPage {
    fn err(&self, field: &str) -> &str {
        self.errors.get(field)
    }
}

const KINDS: [&str; 6] = assay_core::operation::OperationType::NAMES;

async fn page(
    s: &AppState,
    session: &Session,
    d: &assay_store::datastores::DatastoreRecord,
    form: ScheduleForm,
    errors: Errors,
) -> Result<FormPage, UiError> {
    let (tables, _) = super::datastores::tables(s, &session.viewer(), d.id).await?;
    let body = form.cadence_body();
    let now = chrono::Utc::now();
    let (preview, preview_error) = match Cadence::from_request(
        body["cron"].as_str(),
        body["preset"].as_str(),
        body["interval_seconds"].as_i64(),
        s.ops.settings.min_schedule_interval,
    ) {
        Ok(c) => (
            c.upcoming(now, now, 5)
                .into_iter()
                .map(|t| when(Some(t)))
                .collect(),
            String::new(),
        ),
        Err(e) => (
            vec![],
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    Ok(FormPage {
        shell: Some(Shell::of(&session.user, section(d))),
        head: Head::of(d, "activity"),
        form,
        presets: PRESETS.iter().map(|(p, _)| *p).collect(),
        kinds: &KINDS,
        table_names: tables.iter().map(|c| c.name.clone()).collect(),
        preview,
        preview_error,
        errors,
    })
}

pub async fn new(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let form = ScheduleForm {
        kind: "scan".into(),
        how: "preset".into(),
        preset: "daily".into(),
        ..Default::default()
    };
    html(&page(&s, &session, &d, form, Errors::default()).await?)
}

/// Save, or (with `preview`) show the next five runs of what was typed and keep every value.
pub async fn create(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let pairs = Pairs::parse(&body);
    let form = ScheduleForm::from_pairs(&pairs);
    if pairs.get("action") == "preview" {
        return html(&page(&s, &session, &d, form, Errors::default()).await?);
    }
    let req = form.api_body(d.id);
    match api::create(State(s.clone()), session.auth(), JsonBody(Some(req))).await {
        Ok(_) => see_other(&format!("/datastores/{}/activity", d.id)),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let mut errors = Errors::from_api(&e);
            for alias in ["preset", "interval_seconds"] {
                if let Some(m) = errors.fields.remove(alias) {
                    errors.fields.insert("cron".into(), m);
                }
            }
            let p = page(&s, &session, &d, form, errors).await?;
            html_status(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
        Err(e) => Err(UiError(e)),
    }
}

/// Enable, disable or delete, through the API's handlers; back to the Activity tab.
pub async fn change(
    State(s): State<AppState>,
    session: Session,
    Path((raw, action)): Path<(String, String)>,
) -> PageResult {
    let r = s
        .store
        .schedule(id(&raw, "schedule")?, &session.viewer())
        .await?;
    let p = Path(raw);
    match action.as_str() {
        "enable" => drop(api::enable(State(s.clone()), session.auth(), p).await?),
        "disable" => drop(api::disable(State(s.clone()), session.auth(), p).await?),
        "delete" => drop(api::delete_one(State(s.clone()), session.auth(), p).await?),
        other => {
            return Err(UiError(crate::ApiError::not_found(format!(
                "Not Found: no schedule action '{other}'"
            ))));
        }
    }
    see_other(&format!("/datastores/{}/activity", r.datastore_id))
}

/// One due instant as the schedule's page lists it.
pub struct InstantRow {
    pub instant: String,
    pub fired: String,
    pub outcome: String,
    pub reason: String,
    pub operation: Option<i64>,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage {
    shell: Option<Shell>,
    head: Head,
    schedule: ScheduleRow,
    instants: Vec<InstantRow>,
    pager: Pager,
}

/// A schedule and the history of its instants.
pub async fn show(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: Params,
) -> PageResult {
    let r = s
        .store
        .schedule(id(&raw, "schedule")?, &session.viewer())
        .await?;
    let d = load(&s, &session, &r.datastore_id.to_string()).await?;
    let page = Pager::asked(&q);
    let (items, total) = s.store.schedule_instants(r.id, page, Pager::SIZE).await?;
    html(&SchedulePage {
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "activity"),
        schedule: ScheduleRow::of(&r),
        instants: items
            .into_iter()
            .map(|i| InstantRow {
                instant: when(Some(i.instant)),
                fired: when(Some(i.fired_at)),
                outcome: i.outcome,
                reason: i.reason.unwrap_or_default(),
                operation: i.operation_id,
            })
            .collect(),
        pager: Pager::new(&format!("/schedules/{}", r.id), "", page, total),
    })
}
