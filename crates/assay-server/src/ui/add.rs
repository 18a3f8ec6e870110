//! The Add Datastore flow: the form (new or existing connection, Secrets Management, teams, initiate sync), Test
//! Connection (an htmx fragment with the API's classified outcome), and Finish or Next (to the Link Enrichment
//! step in `link.rs`). Saving and testing call the API's own handlers with the body the form describes, so
//! validation, visibility and failure classification are the API's.

use super::form::{DatastoreForm, Errors, Pairs};
use super::page::{PageResult, Shell, UiError, html, html_status, see_other};
use super::session::Session;
use crate::AppState;
use crate::body::JsonBody;
use crate::routes::datastores as api;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

/// A connection the form can reuse.
pub struct ConnChoice {
    pub id: String,
    pub label: String,
}

/// What Test Connection said.
pub struct TestResult {
    pub ok: bool,
    pub message: String,
    pub cause: String,
    pub reasons: Vec<String>,
    pub fix: String,
    pub missing: Vec<String>,
    pub grants: Vec<String>,
}

impl TestResult {
    pub(super) fn of(v: &Value) -> TestResult {
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let d = &v["diagnosis"];
        let p = &v["preflight"];
        TestResult {
            ok: v["success"].as_bool().unwrap_or(false),
            // with a diagnosis, the headline is what the server said; cause, reasons and fix follow apart
            message: match (d["message"].as_str(), d["code"].as_str()) {
                (Some(m), Some(code)) => format!("{m} [{code}]"),
                _ => v["message"].as_str().unwrap_or_default().to_string(),
            },
            cause: d["cause"].as_str().unwrap_or_default().to_string(),
            reasons: strs(&d["reasons"]),
            fix: d["fix"].as_str().unwrap_or_default().to_string(),
            missing: p["missing"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|m| {
                            format!(
                                "{} on {}{}",
                                m["privilege"].as_str().unwrap_or_default(),
                                m["object"].as_str().unwrap_or_default(),
                                if m["blocking"].as_bool().unwrap_or(true) {
                                    ""
                                } else {
                                    " (warning)"
                                }
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            grants: strs(&p["grants"]),
        }
    }

    /// A request that never reached the server (validation): shown as the failure it is.
    pub(super) fn invalid(e: &crate::ApiError) -> TestResult {
        TestResult {
            ok: false,
            message: format!("Not tested: {}", e.detail),
            cause: String::new(),
            reasons: Vec::new(),
            fix: "Correct the fields marked below and test again.".into(),
            missing: Vec::new(),
            grants: Vec::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "test_result.html")]
pub(super) struct TestFragment {
    pub result: TestResult,
}

#[derive(Template)]
#[template(path = "add.html")]
struct AddPage {
    shell: Option<Shell>,
    form: DatastoreForm,
    errors: Errors,
    connections: Vec<ConnChoice>,
    teams: Vec<String>,
    result: Option<TestResult>,
}

impl AddPage {
    fn err(&self, field: &str) -> &str {
        self.errors.get(field)
    }
}

/// The teams a user may give a datastore: their own and Public (admins: every team).
pub(super) async fn team_choices(s: &AppState, session: &Session) -> Result<Vec<String>, UiError> {
    let mut out = vec![assay_core::datastore::PUBLIC_TEAM.to_string()];
    if session.user.is_admin() {
        let (teams, _) = s.store.list_teams(1, 500).await?;
        out.extend(teams.into_iter().map(|t| t.name));
    } else {
        out.extend(session.user.teams.iter().map(|t| t.name.clone()));
    }
    out.dedup();
    Ok(out)
}

pub(super) async fn connection_choices(
    s: &AppState,
    session: &Session,
) -> Result<Vec<ConnChoice>, UiError> {
    let (items, _) = s
        .store
        .list_connections_for(&session.viewer(), None, &[], 1, 500)
        .await?;
    Ok(items
        .iter()
        .map(|c| ConnChoice {
            id: c.id.to_string(),
            label: format!(
                "{} ({}:{})",
                c.spec.name,
                c.spec.host,
                port_text(&c.spec.port)
            ),
        })
        .collect())
}

fn port_text(p: &assay_core::connection::Port) -> String {
    match p {
        assay_core::connection::Port::Number(n) => n.to_string(),
        assay_core::connection::Port::Reference(r) => r.clone(),
    }
}

async fn add_page(
    s: &AppState,
    session: &Session,
    form: DatastoreForm,
    errors: Errors,
    result: Option<TestResult>,
) -> Result<AddPage, UiError> {
    Ok(AddPage {
        shell: Some(Shell::of(&session.user, "sources")),
        form,
        errors,
        connections: connection_choices(s, session).await?,
        teams: team_choices(s, session).await?,
        result,
    })
}

pub async fn form(State(s): State<AppState>, session: Session) -> PageResult {
    let page = add_page(
        &s,
        &session,
        DatastoreForm::blank(),
        Errors::default(),
        None,
    )
    .await?;
    html(&page)
}

/// Runs the API's unsaved-datastore test for a form.
pub(super) async fn run_test(
    s: &AppState,
    session: &Session,
    form: &DatastoreForm,
    enrichment: bool,
) -> (TestResult, Errors) {
    match api::test_unsaved(
        State(s.clone()),
        session.auth(),
        JsonBody(Some(form.api_body(enrichment))),
    )
    .await
    {
        Ok(axum::Json(v)) => (TestResult::of(&v), Errors::default()),
        Err(e) => (TestResult::invalid(&e), Errors::from_api(&e)),
    }
}

/// Test Connection: the result fragment for htmx, or (without JavaScript) the whole form again with the result.
pub async fn test(
    State(s): State<AppState>,
    session: Session,
    headers: axum::http::HeaderMap,
    body: String,
) -> PageResult {
    let form = DatastoreForm::from_pairs(&Pairs::parse(&body));
    let (result, errors) = run_test(&s, &session, &form, false).await;
    if headers.contains_key("hx-request") {
        return html(&TestFragment { result });
    }
    let page = add_page(&s, &session, form, errors, Some(result)).await?;
    html(&page)
}

/// Finish (create, then the datastore page) or Next (create, then Link Enrichment). A failure re-shows the form
/// with every value typed and the errors next to their fields.
pub async fn submit(State(s): State<AppState>, session: Session, body: String) -> PageResult {
    let pairs = Pairs::parse(&body);
    let form = DatastoreForm::from_pairs(&pairs);
    if pairs.get("action") == "test" {
        let (result, errors) = run_test(&s, &session, &form, false).await;
        let page = add_page(&s, &session, form, errors, Some(result)).await?;
        return html(&page);
    }
    match api::create(
        State(s.clone()),
        session.auth(),
        JsonBody(Some(form.api_body(false))),
    )
    .await
    {
        Ok(axum::Json(v)) => {
            let id = v["id"].as_i64().unwrap_or_default();
            if pairs.get("action") == "next" {
                see_other(&format!("/datastores/{id}/link?created=1"))
            } else {
                see_other(&format!("/datastores/{id}?created=1"))
            }
        }
        Err(e) if e.status.is_client_error() => {
            let page = add_page(&s, &session, form, Errors::from_api(&e), None).await?;
            html_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(UiError(e)),
    }
}
