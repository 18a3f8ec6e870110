//! Flows in the UI, for administrators: the list with each flow's trigger, actions and last execution (Test,
//! activate or deactivate, delete), the form that writes one (a trigger, the datastores it watches, one action of
//! any type), and a flow's page with its executions, each delivery and attempt. Every change goes through the
//! API's handlers; action URLs, signing secrets and SMTP passwords are never shown (the form leaves them empty,
//! and an empty one keeps the stored value).

use super::form::{Errors, Pairs};
use super::page::{PageResult, Pager, Shell, UiError, html, html_status, see_other};
use super::session::Session;
use crate::AppState;
use crate::body::JsonBody;
use crate::routes::{flows as api, id};
use askama::Template;
use assay_core::flow::{Action, Trigger};
use assay_store::Viewer;
use assay_store::datastores::DatastoreFilter;
use assay_store::flows::FlowRecord;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// A flow as the list shows it.
pub struct FlowRow {
    pub id: i64,
    pub name: String,
    pub trigger: String,
    pub actions: String,
    pub active: bool,
    pub last: String,
}

fn trigger_text(t: &Trigger) -> String {
    let list = |v: &[String], any: &str| {
        if v.is_empty() {
            any.to_string()
        } else {
            v.join(", ")
        }
    };
    match t {
        Trigger::Operation {
            operation_types,
            results,
        } => format!(
            "{} ends ({})",
            list(operation_types, "any operation"),
            list(results, "any result")
        ),
        Trigger::Anomaly => "a scan finds anomalies".into(),
        Trigger::AnomalyStatus { statuses } => {
            format!("anomalies change to {}", list(statuses, "any status"))
        }
    }
}

fn admin(session: &Session) -> Result<(), UiError> {
    session.auth().require_admin().map_err(UiError)
}

#[derive(Template)]
#[template(path = "flows.html")]
struct ListPage {
    shell: Option<Shell>,
    flows: Vec<FlowRow>,
    pager: Pager,
    notice: String,
}

pub async fn list(
    State(s): State<AppState>,
    session: Session,
    q: crate::params::Params,
) -> PageResult {
    admin(&session)?;
    let page = Pager::asked(&q);
    let (flows, total) = s.store.list_flows(page, Pager::SIZE).await?;
    let mut rows = Vec::new();
    for f in &flows {
        let (x, _) = s.store.flow_executions(f.id, 1, 1).await?;
        rows.push(FlowRow {
            id: f.id,
            name: f.spec.name.clone(),
            trigger: trigger_text(&f.spec.trigger),
            actions: f
                .spec
                .actions
                .iter()
                .map(Action::kind)
                .collect::<Vec<_>>()
                .join(", "),
            active: f.spec.active,
            last: x
                .first()
                .map(|x| {
                    let states: Vec<String> = x["actions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            format!(
                                "{} {}",
                                a["type"].as_str().unwrap_or(""),
                                a["status"].as_str().unwrap_or("")
                            )
                        })
                        .collect();
                    format!(
                        "{} · {}",
                        x["summary"].as_str().unwrap_or(""),
                        states.join(", ")
                    )
                })
                .unwrap_or_else(|| "never".into()),
        });
    }
    html(&ListPage {
        shell: Some(Shell::of(&session.user, "flows")),
        flows: rows,
        pager: Pager::new("/flows", "", page, total),
        notice: q.get("notice").unwrap_or_default().to_string(),
    })
}

/// The flow form as typed.
#[derive(Default)]
pub struct FlowForm {
    pub name: String,
    pub trigger: String,
    pub operation_types: Vec<String>,
    pub results: Vec<String>,
    pub statuses: Vec<String>,
    pub datastores: Vec<String>,
    pub only_new: bool,
    pub min_weight: String,
    pub action: String,
    pub url: String,
    pub to: String,
    pub smtp_host: String,
    pub smtp_port: String,
    pub smtp_from: String,
    pub smtp_username: String,
    pub smtp_security: String,
}

impl FlowForm {
    fn from_pairs(f: &Pairs) -> FlowForm {
        FlowForm {
            name: f.get("name").into(),
            trigger: f.get("trigger").into(),
            operation_types: f.all("operation_types"),
            results: f.all("results"),
            statuses: f.all("statuses"),
            datastores: f.all("datastores"),
            only_new: f.on("only_new"),
            min_weight: f.get("min_weight").into(),
            action: f.get("action").into(),
            url: f.get("url").into(),
            to: f.get("to").into(),
            smtp_host: f.get("smtp_host").into(),
            smtp_port: f.get("smtp_port").into(),
            smtp_from: f.get("smtp_from").into(),
            smtp_username: f.get("smtp_username").into(),
            smtp_security: f.get("smtp_security").into(),
        }
    }

    fn of(f: &FlowRecord) -> FlowForm {
        let (trigger, operation_types, results, statuses) = match &f.spec.trigger {
            Trigger::Operation {
                operation_types,
                results,
            } => (
                "operation",
                operation_types.clone(),
                results.clone(),
                vec![],
            ),
            Trigger::Anomaly => ("anomaly", vec![], vec![], vec![]),
            Trigger::AnomalyStatus { statuses } => {
                ("anomaly_status", vec![], vec![], statuses.clone())
            }
        };
        let mut form = FlowForm {
            name: f.spec.name.clone(),
            trigger: trigger.into(),
            operation_types,
            results,
            statuses,
            datastores: f
                .spec
                .filters
                .datastores
                .iter()
                .map(i64::to_string)
                .collect(),
            only_new: f.spec.filters.only_new,
            min_weight: f
                .spec
                .filters
                .min_weight
                .map(|w| w.to_string())
                .unwrap_or_default(),
            ..Default::default()
        };
        if let Some(a) = f.spec.actions.first() {
            form.action = a.kind().into();
            if let Action::Email { to, smtp } = a {
                form.to = to.join(", ");
                form.smtp_host = smtp.host.clone();
                form.smtp_port = smtp.port.to_string();
                form.smtp_from = smtp.from.clone();
                form.smtp_username = smtp.username.clone().unwrap_or_default();
                form.smtp_security = smtp.security.clone();
            }
        }
        form
    }

    /// The API body: secrets the form leaves empty are left out, so an edit keeps the stored ones.
    fn api_body(&self, pairs: &Pairs) -> Value {
        let trigger = match self.trigger.as_str() {
            "operation" => {
                json!({"type": "operation", "operation_types": self.operation_types, "results": self.results})
            }
            "anomaly_status" => json!({"type": "anomaly_status", "statuses": self.statuses}),
            other => json!({"type": other}),
        };
        let mut action = json!({"type": self.action});
        if self.action == "email" {
            action["to"] = json!(
                self.to
                    .split([',', ' ', '\n'])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
            );
            action["smtp"] = json!({"host": self.smtp_host, "port": self.smtp_port.trim().parse::<u16>().unwrap_or(587),
                                    "from": self.smtp_from, "security": if self.smtp_security.is_empty() { "starttls" } else { &self.smtp_security }});
            if !self.smtp_username.is_empty() {
                action["smtp"]["username"] = json!(self.smtp_username);
            }
            if !pairs.get("smtp_password").is_empty() {
                action["smtp"]["password"] = json!(pairs.get("smtp_password"));
            }
        } else {
            if !self.url.is_empty() {
                action["url"] = json!(self.url);
            }
            if self.action == "webhook" && !pairs.get("secret").is_empty() {
                action["secret"] = json!(pairs.get("secret"));
            }
        }
        json!({
            "name": self.name,
            "trigger": trigger,
            "filters": {
                "datastores": self.datastores.iter().filter_map(|d| d.parse::<i64>().ok()).collect::<Vec<_>>(),
                "only_new": self.only_new,
                "min_weight": self.min_weight.trim().parse::<i64>().ok(),
            },
            "actions": [action],
        })
    }

    fn has(list: &[String], v: &str) -> bool {
        list.iter().any(|x| x == v)
    }
}

#[derive(Template)]
#[template(path = "flow_form.html")]
struct FormPage {
    shell: Option<Shell>,
    editing: Option<i64>,
    form: FlowForm,
    datastores: Vec<(String, String)>,
    errors: Errors,
}

impl FormPage {
    fn err(&self, field: &str) -> &str {
        self.errors.get(field)
    }
    fn has(&self, list: &[String], v: &str) -> bool {
        FlowForm::has(list, v)
    }
}

async fn form_page(
    s: &AppState,
    session: &Session,
    editing: Option<i64>,
    form: FlowForm,
    errors: Errors,
) -> Result<FormPage, UiError> {
    let (items, _) = s
        .store
        .list_datastores(&Viewer::admin(0), &DatastoreFilter::default(), 1, 1000)
        .await?;
    Ok(FormPage {
        shell: Some(Shell::of(&session.user, "flows")),
        editing,
        form,
        datastores: items
            .iter()
            .filter(|d| !d.spec.enrichment_only)
            .map(|d| (d.id.to_string(), d.spec.name.clone()))
            .collect(),
        errors,
    })
}

pub async fn new(State(s): State<AppState>, session: Session) -> PageResult {
    admin(&session)?;
    let form = FlowForm {
        trigger: "anomaly".into(),
        action: "webhook".into(),
        smtp_port: "587".into(),
        smtp_security: "starttls".into(),
        ..Default::default()
    };
    html(&form_page(&s, &session, None, form, Errors::default()).await?)
}

pub async fn edit(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    admin(&session)?;
    let f = s.store.flow(id(&raw, "flow")?).await?;
    html(
        &form_page(
            &s,
            &session,
            Some(f.id),
            FlowForm::of(&f),
            Errors::default(),
        )
        .await?,
    )
}

/// Create (no id) or update, through the API's handler; the form again with the API's errors next to its inputs.
async fn save(s: AppState, session: Session, editing: Option<i64>, body: String) -> PageResult {
    admin(&session)?;
    let pairs = Pairs::parse(&body);
    let form = FlowForm::from_pairs(&pairs);
    let req = JsonBody(Some(form.api_body(&pairs)));
    let r = match editing {
        None => api::create(State(s.clone()), session.auth(), req).await,
        Some(fid) => {
            api::update(State(s.clone()), session.auth(), Path(fid.to_string()), req).await
        }
    };
    match r {
        Ok(axum::Json(v)) => see_other(&format!("/flows/{}", v["id"])),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let mut errors = Errors::from_api(&e);
            // the one action of the form is actions[0]
            let moved: Vec<(String, String)> = errors
                .fields
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("actions[0].")
                        .map(|f| (f.replace("smtp.", "smtp_"), v.clone()))
                })
                .collect();
            errors.fields.extend(moved);
            let p = form_page(&s, &session, editing, form, errors).await?;
            html_status(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
        Err(e) => Err(UiError(e)),
    }
}

pub async fn create(State(s): State<AppState>, session: Session, body: String) -> PageResult {
    save(s, session, None, body).await
}

pub async fn update(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let fid = id(&raw, "flow")?;
    save(s, session, Some(fid), body).await
}

/// One execution as the flow's page lists it.
pub struct ExecutionRow {
    pub id: i64,
    pub created: String,
    pub summary: String,
    pub deliveries: Vec<DeliveryRow>,
}

pub struct DeliveryRow {
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub last: String,
}

impl ExecutionRow {
    fn of(x: &Value) -> ExecutionRow {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        ExecutionRow {
            id: x["id"].as_i64().unwrap_or_default(),
            created: text(&x["created"]),
            summary: text(&x["summary"]),
            deliveries: x["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| DeliveryRow {
                    kind: text(&a["type"]),
                    status: text(&a["status"]),
                    attempts: a["attempts"].as_i64().unwrap_or_default(),
                    last: text(&a["last_result"]),
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "flow.html")]
struct FlowPage {
    shell: Option<Shell>,
    id: i64,
    name: String,
    trigger: String,
    actions: String,
    active: bool,
    executions: Vec<ExecutionRow>,
    pager: Pager,
    notice: String,
}

pub async fn page(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: crate::params::Params,
) -> PageResult {
    admin(&session)?;
    let f = s.store.flow(id(&raw, "flow")?).await?;
    let page = Pager::asked(&q);
    let (executions, total) = s.store.flow_executions(f.id, page, Pager::SIZE).await?;
    html(&FlowPage {
        shell: Some(Shell::of(&session.user, "flows")),
        id: f.id,
        name: f.spec.name.clone(),
        trigger: trigger_text(&f.spec.trigger),
        actions: f
            .spec
            .actions
            .iter()
            .map(Action::kind)
            .collect::<Vec<_>>()
            .join(", "),
        active: f.spec.active,
        executions: executions.iter().map(ExecutionRow::of).collect(),
        pager: Pager::new(&format!("/flows/{}", f.id), "", page, total),
        notice: q.get("notice").unwrap_or_default().to_string(),
    })
}

/// Test, activate, deactivate or delete, through the API's handlers.
pub async fn change(
    State(s): State<AppState>,
    session: Session,
    Path((raw, action)): Path<(String, String)>,
) -> PageResult {
    admin(&session)?;
    let p = Path(raw.clone());
    let notice = match action.as_str() {
        "test" => {
            let axum::Json(v) = api::test(State(s.clone()), session.auth(), p).await?;
            let parts: Vec<String> = v["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    format!(
                        "{}: {}",
                        r["type"].as_str().unwrap_or(""),
                        r["message"].as_str().unwrap_or("")
                    )
                })
                .collect();
            format!("Test: {}", parts.join("; "))
        }
        "activate" => {
            drop(api::activate(State(s.clone()), session.auth(), p).await?);
            "Activated.".into()
        }
        "deactivate" => {
            drop(api::deactivate(State(s.clone()), session.auth(), p).await?);
            "Deactivated.".into()
        }
        "delete" => {
            api::delete_one(State(s.clone()), session.auth(), p).await?;
            return see_other("/flows?notice=Deleted.");
        }
        other => {
            return Err(UiError(crate::ApiError::not_found(format!(
                "Not Found: no flow action '{other}'"
            ))));
        }
    };
    see_other(&format!(
        "/flows/{raw}?notice={}",
        super::page::encode(&notice)
    ))
}
