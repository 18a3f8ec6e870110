//! The check form (New check and Edit): a table, a rule type from the rule catalogue, and the inputs that rule
//! needs (its fields, each property with its own input type, filter, coverage, description), swapped in by htmx
//! when the table or the rule changes. Saving calls the API's create or update handler; its field errors are shown
//! next to the inputs and everything typed is kept.

use super::details::{Head, load, section};
use super::form::Pairs;
use super::page::{PageResult, Shell, UiError, html, html_status, see_other, text};
use super::session::Session;
use crate::body::JsonBody;
use crate::routes::{checks as ck_api, id};
use crate::{ApiError, AppState};
use askama::Template;
use assay_core::rules::{self, Arity, Kind, RULES, Rule};
use assay_store::checks::CheckRecord;
use assay_store::datastores::DatastoreRecord;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What the form holds, as typed.
#[derive(Debug, Default)]
pub struct CheckForm {
    pub container: String,
    pub rule: String,
    pub fields: Vec<String>,
    /// Property values by key, as typed (lists one item a line; booleans `true`, `false` or empty).
    pub props: BTreeMap<String, String>,
    pub filter: String,
    pub coverage: String,
    pub description: String,
}

impl CheckForm {
    fn from_pairs(f: &Pairs) -> CheckForm {
        CheckForm {
            container: f.get("container_id").to_string(),
            rule: f.get("rule").to_string(),
            fields: f
                .all("fields")
                .into_iter()
                .filter(|v| !v.is_empty())
                .collect(),
            props: f
                .0
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("p.").map(|k| (k.to_string(), v.clone())))
                .collect(),
            filter: f.get("filter").to_string(),
            coverage: f.get("coverage").to_string(),
            description: f.get("description").to_string(),
        }
    }

    fn of(c: &CheckRecord) -> CheckForm {
        let rule = rules::rule(&c.rule_type);
        let props = c
            .properties
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let kind = rule
                            .and_then(|r| r.props.iter().find(|p| p.key == k))
                            .map(|p| p.kind);
                        let shown = match (kind, v) {
                            (Some(Kind::List), Value::Array(a)) => {
                                a.iter().map(text).collect::<Vec<_>>().join("\n")
                            }
                            (Some(Kind::DateTime), Value::String(s)) => rules::parse_datetime(s)
                                .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
                                .unwrap_or_else(|| s.clone()),
                            (_, Value::Null) => String::new(),
                            _ => text(v),
                        };
                        (k.clone(), shown)
                    })
                    .collect()
            })
            .unwrap_or_default();
        CheckForm {
            container: c.container_id.to_string(),
            rule: c.rule_type.clone(),
            fields: c.fields.clone(),
            props,
            filter: c.filter.clone().unwrap_or_default(),
            coverage: c.coverage.map(|v| v.to_string()).unwrap_or_default(),
            description: c.description.clone(),
        }
    }

    /// The JSON body of `POST /api/quality-checks` (with the container and rule) or of `PUT` (without).
    fn api_body(&self, rule: Option<&Rule>, create: bool) -> Value {
        let mut body = Map::new();
        if create {
            match self.container.trim().parse::<i64>() {
                Ok(n) => body.insert("container_id".into(), json!(n)),
                // the API reports the missing table next to its input
                Err(_) => None,
            };
            if !self.rule.is_empty() {
                body.insert("rule".into(), json!(self.rule));
            }
        }
        body.insert("description".into(), json!(self.description.trim()));
        body.insert("fields".into(), json!(self.fields));
        let mut props = Map::new();
        if let Some(r) = rule {
            for p in r.props {
                let raw = self.prop(p.key).trim();
                if raw.is_empty() {
                    continue;
                }
                let v = match p.kind {
                    Kind::Number | Kind::Integer | Kind::Id => {
                        if let Ok(n) = raw.parse::<i64>() {
                            json!(n)
                        } else if let Ok(n) = raw.parse::<f64>() {
                            json!(n)
                        } else {
                            // the API says what is wrong with it
                            json!(raw)
                        }
                    }
                    Kind::Bool => json!(raw == "true"),
                    Kind::List => json!(
                        raw.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .collect::<Vec<_>>()
                    ),
                    // a browser's date-time input leaves out zero seconds
                    Kind::DateTime if raw.len() == 16 => json!(format!("{raw}:00")),
                    _ => json!(raw),
                };
                props.insert(p.key.to_string(), v);
            }
            if r.filter {
                body.insert("filter".into(), json!(self.filter.trim()));
            }
            if r.coverage {
                let c = self.coverage.trim();
                body.insert(
                    "coverage".into(),
                    match c.parse::<f64>() {
                        Ok(n) => json!(n),
                        Err(_) if c.is_empty() => Value::Null,
                        Err(_) => json!(c),
                    },
                );
            }
        }
        body.insert("properties".into(), Value::Object(props));
        Value::Object(body)
    }

    fn prop(&self, key: &str) -> &str {
        self.props.get(key).map(String::as_str).unwrap_or("")
    }
}

/// A rule in the rule select.
pub struct RuleChoice {
    pub name: String,
    pub label: String,
    pub supported: bool,
}

/// A property input.
pub struct PropInput {
    pub key: String,
    /// `number`, `text`, `list`, `bool`, `datetime`, `choice` or `field`.
    pub input: &'static str,
    pub required: bool,
    pub value: String,
    pub choices: Vec<String>,
    pub error: String,
}

/// A table or field option.
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "check_form.html")]
struct CheckFormPage {
    shell: Option<Shell>,
    head: Head,
    /// The check being edited, if any (table and rule are then fixed).
    editing: Option<i64>,
    action: String,
    form: CheckForm,
    tables: Vec<Choice>,
    table_name: String,
    rules: Vec<RuleChoice>,
    /// What the chosen rule takes as fields.
    rule_help: String,
    arity: &'static str,
    fields: Vec<Choice>,
    props: Vec<PropInput>,
    filter: bool,
    coverage: bool,
    errors: BTreeMap<String, String>,
    general: String,
}

impl CheckFormPage {
    fn err(&self, field: &str) -> &str {
        self.errors.get(field).map(String::as_str).unwrap_or("")
    }
    fn has_field(&self, f: &str) -> bool {
        self.form.fields.iter().any(|x| x == f)
    }
}

/// The API's field errors keyed by the form's input names (`properties.max` → `p.max`, `fields[0]` → `fields`).
fn errors_of(e: &ApiError) -> (BTreeMap<String, String>, String) {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for fe in &e.errors {
        let key = if let Some(p) = fe.field.strip_prefix("properties.") {
            format!("p.{p}")
        } else if fe.field.starts_with("fields") {
            "fields".into()
        } else if fe.field == "rule_type" {
            "rule".into()
        } else {
            fe.field.clone()
        };
        out.entry(key)
            .and_modify(|m| {
                m.push_str("; ");
                m.push_str(&fe.message);
            })
            .or_insert_with(|| fe.message.clone());
    }
    let general = if e.errors.is_empty() {
        e.detail.clone()
    } else {
        String::new()
    };
    (out, general)
}

async fn page(
    s: &AppState,
    session: &Session,
    d: &DatastoreRecord,
    editing: Option<i64>,
    mut form: CheckForm,
    (errors, general): (BTreeMap<String, String>, String),
) -> Result<CheckFormPage, UiError> {
    let (items, _) = super::datastores::tables(s, &session.viewer(), d.id).await?;
    let items: Vec<_> = items
        .into_iter()
        .filter(|c| c.deleted_at.is_none())
        .collect();
    if !items.iter().any(|c| c.id.to_string() == form.container) {
        form.container = items.first().map(|c| c.id.to_string()).unwrap_or_default();
    }
    let table_name = items
        .iter()
        .find(|c| c.id.to_string() == form.container)
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let rule = rules::rule(&form.rule);
    let all_fields = match form.container.parse::<i64>() {
        Ok(cid) => s.store.fields(cid, false).await?,
        Err(_) => Vec::new(),
    };
    let field_names: Vec<String> = all_fields.iter().map(|f| f.name.clone()).collect();
    let fields = all_fields
        .iter()
        .filter(|f| {
            rule.is_none_or(|r| r.arity == Arity::Calculated || r.types.admits(&f.field_type))
        })
        .map(|f| Choice {
            value: f.name.clone(),
            label: format!("{} ({})", f.name, f.field_type),
        })
        .collect();
    let props = rule
        .map(|r| {
            r.props
                .iter()
                .map(|p| {
                    let (input, choices) = match p.kind {
                        Kind::Number | Kind::Integer | Kind::Id => ("number", Vec::new()),
                        Kind::Bool => ("bool", Vec::new()),
                        Kind::DateTime => ("datetime", Vec::new()),
                        Kind::List => ("list", Vec::new()),
                        Kind::Choice(c) => ("choice", c.iter().map(|s| s.to_string()).collect()),
                        Kind::Text if p.key == "field_name" => ("choice", field_names.clone()),
                        Kind::Text => ("text", Vec::new()),
                    };
                    PropInput {
                        key: p.key.to_string(),
                        input,
                        required: p.required,
                        value: form.prop(p.key).to_string(),
                        choices,
                        error: errors
                            .get(&format!("p.{}", p.key))
                            .cloned()
                            .unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let arity = match rule.map(|r| r.arity) {
        Some(Arity::Single) => "single",
        Some(Arity::Multi) => "multi",
        Some(Arity::Calculated) => "calculated",
        Some(Arity::None) | None => "none",
    };
    Ok(CheckFormPage {
        shell: Some(Shell::of(&session.user, section(d))),
        head: Head::of(d, "checks"),
        action: match editing {
            Some(cid) => format!("/checks/{cid}/edit"),
            None => format!("/datastores/{}/checks/new", d.id),
        },
        editing,
        tables: items
            .iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.name.clone(),
            })
            .collect(),
        table_name,
        rules: RULES
            .iter()
            .map(|r| RuleChoice {
                name: r.name.to_string(),
                label: match r.unsupported {
                    None => format!("{} — {}", r.name, r.description),
                    Some(_) => format!("{} (not supported)", r.name),
                },
                supported: r.unsupported.is_none(),
            })
            .collect(),
        rule_help: rule
            .map(|r| match r.arity {
                Arity::None => "Applies to the whole table.".to_string(),
                Arity::Calculated => "Fields are optional.".to_string(),
                _ => format!("Fields: {}.", r.types.describe()),
            })
            .unwrap_or_default(),
        arity,
        filter: rule.is_some_and(|r| r.filter),
        coverage: rule.is_some_and(|r| r.coverage),
        fields,
        props,
        errors,
        general,
        form,
    })
}

/// The New check form; `?container=` preselects a table.
pub async fn new(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: crate::params::Params,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let form = CheckForm {
        container: q.get("container").unwrap_or_default().to_string(),
        rule: q.get("rule").unwrap_or_default().to_string(),
        ..Default::default()
    };
    html(&page(&s, &session, &d, None, form, Default::default()).await?)
}

/// The form again from what was posted, for the table or rule just chosen (htmx swaps in `#check-form`); nothing
/// is saved.
pub async fn refresh(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let form = CheckForm::from_pairs(&Pairs::parse(&body));
    html(&page(&s, &session, &d, None, form, Default::default()).await?)
}

/// Creates the check through `POST /api/quality-checks`; a 4xx re-shows the form with the API's errors.
pub async fn create(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let form = CheckForm::from_pairs(&Pairs::parse(&body));
    let api_body = form.api_body(rules::rule(&form.rule), true);
    match ck_api::create(State(s.clone()), session.auth(), JsonBody(Some(api_body))).await {
        Ok(_) => see_other(&format!("/datastores/{}/checks", d.id)),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let p = page(&s, &session, &d, None, form, errors_of(&e)).await?;
            html_status(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
        Err(e) => Err(UiError(e)),
    }
}

/// The Edit form, filled in from the stored check.
pub async fn edit(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    let c = s
        .store
        .check(id(&raw, "quality check")?, &session.viewer())
        .await?;
    let d = load(&s, &session, &c.datastore_id.to_string()).await?;
    let form = CheckForm::of(&c);
    html(&page(&s, &session, &d, Some(c.id), form, Default::default()).await?)
}

/// Saves an edit through `PUT /api/quality-checks/{id}` (table and rule stay as they are).
pub async fn update(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let c = s
        .store
        .check(id(&raw, "quality check")?, &session.viewer())
        .await?;
    let d = load(&s, &session, &c.datastore_id.to_string()).await?;
    let mut form = CheckForm::from_pairs(&Pairs::parse(&body));
    form.container = c.container_id.to_string();
    form.rule = c.rule_type.clone();
    let api_body = form.api_body(rules::rule(&c.rule_type), false);
    match ck_api::update(
        State(s.clone()),
        session.auth(),
        Path(raw),
        JsonBody(Some(api_body)),
    )
    .await
    {
        Ok(_) => see_other(&format!("/datastores/{}/checks", d.id)),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let p = page(&s, &session, &d, Some(c.id), form, errors_of(&e)).await?;
            html_status(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
        Err(e) => Err(UiError(e)),
    }
}
