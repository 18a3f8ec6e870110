//! The Link Enrichment Datastore step: a prefix, then an existing enrichment datastore (shown with its team,
//! host, database and schema) or a new one (the same connection form as Add Datastore), Test Connection, and
//! Finish, which creates the new one if asked and links it through the API's handlers.

use super::add::{
    ConnChoice, TestFragment, TestResult, connection_choices, run_test, team_choices,
};
use super::form::{DatastoreForm, Errors, Pairs};
use super::page::{PageResult, Shell, UiError, html, html_status, see_other};
use super::session::Session;
use crate::AppState;
use crate::body::JsonBody;
use crate::params::Params;
use crate::routes::datastores as api;
use askama::Template;
use assay_store::datastores::DatastoreFilter;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

/// An enrichment datastore the step can use, with where it lives.
pub struct EnrichChoice {
    pub id: String,
    pub name: String,
    pub teams: String,
    pub host: String,
    pub database: String,
    pub schema: String,
}

/// What the user chose and typed (re-shown unchanged after a test or a failure).
struct Input {
    form: DatastoreForm,
    /// `existing` or `new`.
    choice: String,
    enrichment_id: String,
    errors: Errors,
    result: Option<TestResult>,
}

impl Input {
    fn of(pairs: &Pairs) -> Input {
        Input {
            form: DatastoreForm::from_pairs(pairs),
            choice: pairs.get("choice").to_string(),
            enrichment_id: pairs.get("enrichment_id").to_string(),
            errors: Errors::default(),
            result: None,
        }
    }
}

#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage {
    shell: Option<Shell>,
    id: i64,
    source: String,
    created: bool,
    choice: String,
    enrichment_id: String,
    existing: Vec<EnrichChoice>,
    form: DatastoreForm,
    errors: Errors,
    teams: Vec<String>,
    connections: Vec<ConnChoice>,
    result: Option<TestResult>,
}

impl LinkPage {
    fn err(&self, field: &str) -> &str {
        self.errors.get(field)
    }
}

async fn page(s: &AppState, session: &Session, id: i64, input: Input) -> Result<LinkPage, UiError> {
    let viewer = session.viewer();
    let source = s.store.datastore(id, &viewer).await?;
    let filter = DatastoreFilter {
        enrichment_only: Some(true),
        ..Default::default()
    };
    let (items, _) = s.store.list_datastores(&viewer, &filter, 1, 500).await?;
    let existing = items
        .iter()
        .map(|e| EnrichChoice {
            id: e.id.to_string(),
            name: e.spec.name.clone(),
            teams: e
                .teams
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            host: e.host.clone(),
            database: e.spec.database.clone(),
            schema: e.spec.schema.clone(),
        })
        .collect();
    Ok(LinkPage {
        shell: Some(Shell::of(&session.user, "sources")),
        id,
        source: source.spec.name,
        created: false,
        choice: input.choice,
        enrichment_id: input.enrichment_id,
        existing,
        form: input.form,
        errors: input.errors,
        teams: team_choices(s, session).await?,
        connections: connection_choices(s, session).await?,
        result: input.result,
    })
}

pub async fn form(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: Params,
) -> PageResult {
    let id = crate::routes::id(&raw, "datastore")?;
    let source = s.store.datastore(id, &session.viewer()).await?;
    let mut form = DatastoreForm::blank();
    form.prefix = source
        .spec
        .enrichment_prefix
        .clone()
        .or_else(|| assay_core::datastore::normalize_prefix(&source.spec.name).ok())
        .unwrap_or_default();
    form.teams = source.teams.iter().map(|t| t.name.clone()).collect();
    form.trigger_sync = false;
    let input = Input {
        form,
        choice: "new".into(),
        enrichment_id: String::new(),
        errors: Errors::default(),
        result: None,
    };
    let mut p = page(&s, &session, id, input).await?;
    p.created = q.get("created").is_some();
    if !p.existing.is_empty() {
        p.choice = "existing".into();
    }
    html(&p)
}

/// Tests the chosen enrichment datastore: a saved one with the API's preflight, or the new one's form. Field
/// errors go to `input`.
async fn test_choice(s: &AppState, session: &Session, input: &mut Input) -> TestResult {
    let (result, errors) = if input.choice == "existing" {
        match api::test(
            State(s.clone()),
            session.auth(),
            Path(input.enrichment_id.clone()),
        )
        .await
        {
            Ok(axum::Json(v)) => (TestResult::of(&v), Errors::default()),
            Err(e) => (TestResult::invalid(&e), Errors::from_api(&e)),
        }
    } else {
        run_test(s, session, &input.form, true).await
    };
    input.errors = errors;
    result
}

/// Test Connection: the result fragment for htmx, else the whole step again with the result.
pub async fn test(
    State(s): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let id = crate::routes::id(&raw, "datastore")?;
    let mut input = Input::of(&Pairs::parse(&body));
    let result = test_choice(&s, &session, &mut input).await;
    if headers.contains_key("hx-request") {
        return html(&TestFragment { result });
    }
    input.result = Some(result);
    html(&page(&s, &session, id, input).await?)
}

/// Finish: create the enrichment datastore if asked, link it with the prefix, then the source's page. A failure
/// re-shows the step with what was typed.
pub async fn submit(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let id = crate::routes::id(&raw, "datastore")?;
    let pairs = Pairs::parse(&body);
    let mut input = Input::of(&pairs);
    if pairs.get("action") == "test" {
        input.result = Some(test_choice(&s, &session, &mut input).await);
        return html(&page(&s, &session, id, input).await?);
    }
    let eid = if input.choice == "existing" {
        if input.enrichment_id.is_empty() {
            input.errors.fields.insert(
                "enrichment_id".into(),
                "choose an enrichment datastore".into(),
            );
            let p = page(&s, &session, id, input).await?;
            return html_status(StatusCode::UNPROCESSABLE_ENTITY, &p);
        }
        input.enrichment_id.clone()
    } else {
        let body = JsonBody(Some(input.form.api_body(true)));
        match api::create(State(s.clone()), session.auth(), body).await {
            Ok(axum::Json(v)) => {
                let eid = v["id"].as_i64().unwrap_or_default().to_string();
                // if the link fails now, the step is shown again with the new datastore chosen
                input.choice = "existing".into();
                input.enrichment_id = eid.clone();
                eid
            }
            Err(e) if e.status.is_client_error() => {
                input.errors = Errors::from_api(&e);
                let p = page(&s, &session, id, input).await?;
                return html_status(StatusCode::UNPROCESSABLE_ENTITY, &p);
            }
            Err(e) => return Err(UiError(e)),
        }
    };
    let mut q = Vec::new();
    if !input.form.prefix.trim().is_empty() {
        q.push(("prefix".to_string(), input.form.prefix.trim().to_string()));
    }
    let path = Path((id.to_string(), eid));
    match api::link(
        State(s.clone()),
        session.auth(),
        path,
        Params(q),
        JsonBody(None),
    )
    .await
    {
        Ok(_) => see_other(&format!("/datastores/{id}?linked=1")),
        Err(e) if e.status.is_client_error() => {
            input.errors = Errors::from_api(&e);
            let p = page(&s, &session, id, input).await?;
            html_status(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
        Err(e) => Err(UiError(e)),
    }
}
