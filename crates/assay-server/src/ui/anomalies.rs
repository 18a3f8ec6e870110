//! The Checks tab (checks by status, archive) and the Anomalies tab (open or archived, filtered by status, type,
//! table and rule, bulk acknowledge and archive), an anomaly's page with its failed checks and source records as
//! an HTML table, and acknowledge/archive. Changes go through the API's handlers.

use super::details::{Head, load, section};
use super::form::Pairs;
use super::page::{PageResult, Pager, Shell, UiError, encode, html, see_other, text, when};
use super::session::Session;
use crate::AppState;
use crate::body::JsonBody;
use crate::params::Params;
use crate::routes::{anomalies as an_api, checks as ck_api, id};
use askama::Template;
use assay_store::anomalies::{ARCHIVED, AnomalyFilter, OPEN};
use assay_store::checks::{CheckFilter, CheckRecord};
use axum::extract::{Path, State};
use serde_json::{Value, json};

pub struct CheckRow {
    pub id: i64,
    pub rule: String,
    pub table: String,
    pub fields: String,
    pub description: String,
    pub state: String,
    pub inferred: bool,
    pub anomalies: i64,
    pub last_asserted: String,
    pub message: String,
}

impl CheckRow {
    pub fn state_class(&self) -> String {
        self.state.replace(' ', "-")
    }

    pub(super) fn of(c: &CheckRecord) -> CheckRow {
        let state = if c.deleted_at.is_some() {
            "archived"
        } else {
            match c.is_passing {
                Some(true) => "passing",
                Some(false) => "failing",
                None if c.status == "Invalid" => "invalid",
                None => "not asserted",
            }
        };
        CheckRow {
            id: c.id,
            rule: c.rule_type.clone(),
            table: c.container_name.clone(),
            fields: c.fields.join(", "),
            description: c.description.clone(),
            state: state.to_string(),
            inferred: c.inferred,
            anomalies: c.anomaly_count,
            last_asserted: when(c.last_asserted),
            message: c.status_message.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "checks.html")]
struct ChecksPage {
    shell: Option<Shell>,
    head: Head,
    filter: String,
    checks: Vec<CheckRow>,
    /// The datastore's checks under any filter but archived (0: none yet).
    total: i64,
    pager: Pager,
}

pub async fn checks(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: Params,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let filter = match q.get("status") {
        Some(f @ ("passing" | "failing" | "archived")) => f.to_string(),
        _ => "all".to_string(),
    };
    let page = Pager::asked(&q);
    let of = |archived_only: bool, passing: Option<bool>| CheckFilter {
        datastore: Some(d.id),
        archived_only,
        passing,
        ..Default::default()
    };
    let chosen = of(
        filter == "archived",
        match filter.as_str() {
            "passing" => Some(true),
            "failing" => Some(false),
            _ => None,
        },
    );
    let (items, shown) = s
        .store
        .list_checks(&session.viewer(), &chosen, page, Pager::SIZE)
        .await?;
    let total = if filter == "all" {
        shown
    } else {
        s.store
            .list_checks(&session.viewer(), &of(false, None), 1, 1)
            .await?
            .1
    };
    html(&ChecksPage {
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "checks"),
        pager: Pager::new(
            &format!("/datastores/{}/checks", d.id),
            &format!("status={filter}"),
            page,
            shown,
        ),
        filter,
        checks: items.iter().map(CheckRow::of).collect(),
        total,
    })
}

/// Archives a check (status Discarded); its anomalies are kept.
pub async fn archive_check(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    let c = s
        .store
        .check(id(&raw, "quality check")?, &session.viewer())
        .await?;
    let q = Params(vec![
        ("archive".into(), "true".into()),
        ("status".into(), "Discarded".into()),
        ("delete_anomalies".into(), "false".into()),
    ]);
    ck_api::delete_one(State(s.clone()), session.auth(), Path(raw), q).await?;
    see_other(&format!("/datastores/{}/checks", c.datastore_id))
}

pub struct AnomalyRow {
    pub id: i64,
    pub table: String,
    pub kind: String,
    pub status: String,
    pub records: i64,
    pub message: String,
    pub rules: String,
    pub created: String,
}

impl AnomalyRow {
    pub(super) fn of(a: &assay_store::anomalies::AnomalyRecord) -> AnomalyRow {
        AnomalyRow {
            id: a.id,
            table: a.container_name.clone(),
            kind: a.kind.clone(),
            status: a.status.clone(),
            records: a.anomalous_records_count,
            message: a.message.clone().unwrap_or_default(),
            rules: a
                .failed_checks
                .iter()
                .map(|f| f.rule_type.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            created: when(Some(a.created)),
        }
    }
}

/// The Anomalies tab's filters, as given in the query.
#[derive(Default)]
pub struct AnomalyQuery {
    pub archived: bool,
    pub status: String,
    pub kind: String,
    pub table: String,
    pub rule: String,
}

impl AnomalyQuery {
    fn of(q: &Params) -> AnomalyQuery {
        let s = |k: &str| q.get(k).unwrap_or_default().to_string();
        AnomalyQuery {
            archived: q.get("archived").is_some_and(|v| v == "1" || v == "true"),
            status: s("status"),
            kind: s("type"),
            table: s("table"),
            rule: s("rule"),
        }
    }

    /// The query string that shows these filters again (`?archived=0&...`).
    pub fn query(&self) -> String {
        let mut q = format!("?archived={}", if self.archived { 1 } else { 0 });
        for (k, v) in [
            ("status", &self.status),
            ("type", &self.kind),
            ("table", &self.table),
            ("rule", &self.rule),
        ] {
            if !v.is_empty() {
                q.push_str(&format!("&{k}={}", encode(v)));
            }
        }
        q
    }

    fn filter(&self, datastore: i64) -> AnomalyFilter {
        let status_known =
            OPEN.contains(&self.status.as_str()) || ARCHIVED.contains(&self.status.as_str());
        AnomalyFilter {
            datastore: Some(datastore),
            container: self.table.parse().ok(),
            statuses: if status_known {
                vec![self.status.clone()]
            } else {
                Vec::new()
            },
            // a chosen status decides between open and archived by itself
            archived: if status_known {
                Some(false)
            } else {
                self.archived.then_some(true)
            },
            kind: matches!(self.kind.as_str(), "record" | "shape").then(|| self.kind.clone()),
            rule_types: if self.rule.is_empty() {
                Vec::new()
            } else {
                vec![self.rule.clone()]
            },
            newest_first: true,
            ..Default::default()
        }
    }
}

/// A table to filter by.
pub struct TableChoice {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "anomalies.html")]
struct AnomaliesPage {
    shell: Option<Shell>,
    head: Head,
    q: AnomalyQuery,
    statuses: Vec<&'static str>,
    archive_statuses: &'static [&'static str],
    tables: Vec<TableChoice>,
    rules: Vec<&'static str>,
    anomalies: Vec<AnomalyRow>,
    pager: Pager,
}

pub async fn list(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: Params,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let page = Pager::asked(&q);
    let q = AnomalyQuery::of(&q);
    let (items, total) = s
        .store
        .list_anomalies(&session.viewer(), &q.filter(d.id), page, Pager::SIZE)
        .await?;
    let (containers, _) = super::datastores::tables(&s, &session.viewer(), d.id).await?;
    let anomalies = items.iter().map(AnomalyRow::of).collect();
    let pager = Pager::new(
        &format!("/datastores/{}/anomalies", d.id),
        q.query().trim_start_matches('?'),
        page,
        total,
    );
    html(&AnomaliesPage {
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "anomalies"),
        q,
        statuses: OPEN.iter().chain(ARCHIVED.iter()).copied().collect(),
        archive_statuses: &ARCHIVED,
        tables: containers
            .iter()
            .map(|c| TableChoice {
                id: c.id.to_string(),
                name: c.name.clone(),
            })
            .collect(),
        rules: assay_core::rules::RULES
            .iter()
            .filter(|r| r.unsupported.is_none())
            .map(|r| r.name)
            .collect(),
        pager,
        anomalies,
    })
}

/// Bulk Acknowledge (`PATCH /api/anomalies`) or Archive as a status (`DELETE /api/anomalies`) of the anomalies
/// ticked in the list; back to the list with its filters.
pub async fn bulk(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let f = Pairs::parse(&body);
    let ids: Vec<i64> = f.all("ids").iter().filter_map(|v| v.parse().ok()).collect();
    if !ids.is_empty() {
        if f.get("action") == "acknowledge" {
            let items: Vec<Value> = ids
                .iter()
                .map(|i| json!({"id": i, "status": "Acknowledged"}))
                .collect();
            an_api::update_many(
                State(s.clone()),
                session.auth(),
                JsonBody(Some(json!(items))),
            )
            .await?;
        } else {
            let items: Vec<Value> = ids
                .iter()
                .map(|i| json!({"id": i, "archive": true, "status": f.get("archive_status")}))
                .collect();
            an_api::delete_many(
                State(s.clone()),
                session.auth(),
                JsonBody(Some(json!(items))),
            )
            .await?;
        }
    }
    let back = AnomalyQuery {
        archived: f.on("archived"),
        status: f.get("status").to_string(),
        kind: f.get("type").to_string(),
        table: f.get("table").to_string(),
        rule: f.get("rule").to_string(),
    };
    see_other(&format!("/datastores/{}/anomalies{}", d.id, back.query()))
}

pub struct Failed {
    pub check_id: i64,
    pub rule: String,
    pub fields: String,
    pub message: String,
}

pub struct Column {
    pub name: String,
    pub failed: bool,
}

#[derive(Template)]
#[template(path = "anomaly.html")]
struct AnomalyPage {
    shell: Option<Shell>,
    head: Head,
    id: i64,
    uuid: String,
    table: String,
    cid: i64,
    kind: String,
    status: String,
    open: bool,
    records: i64,
    message: String,
    created: String,
    operation: String,
    fingerprint: String,
    failed: Vec<Failed>,
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

pub async fn detail(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    let a = s
        .store
        .anomaly(id(&raw, "anomaly")?, &session.viewer())
        .await?;
    let d = load(&s, &session, &a.datastore_id.to_string()).await?;
    let axum::Json(src) = an_api::source_records(
        State(s.clone()),
        session.auth(),
        Path(raw.clone()),
        Params(Vec::new()),
    )
    .await?;
    let failed_fields: Vec<String> = a
        .failed_checks
        .iter()
        .flat_map(|f| {
            f.fields
                .as_array()
                .map(|a| a.iter().map(text).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    let items = src["items"].as_array().cloned().unwrap_or_default();
    // columns in the table's order, then any the catalog does not know
    let mut names: Vec<String> = s
        .store
        .fields(a.container_id, true)
        .await?
        .into_iter()
        .map(|f| f.name)
        .filter(|n| items.iter().any(|it| it.get(n).is_some()))
        .collect();
    for it in &items {
        if let Value::Object(m) = it {
            for k in m.keys() {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
    }
    let rows = items
        .iter()
        .map(|it| match it {
            Value::Object(m) => names
                .iter()
                .map(|n| m.get(n).map(text).unwrap_or_default())
                .collect(),
            other => vec![text(other)],
        })
        .collect();
    if names.is_empty() && !items.is_empty() {
        names.push("record".into());
    }
    let columns = names
        .into_iter()
        .map(|n| Column {
            failed: failed_fields.contains(&n),
            name: n,
        })
        .collect();
    html(&AnomalyPage {
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "anomalies"),
        id: a.id,
        uuid: a.uuid.clone(),
        table: a.container_name.clone(),
        cid: a.container_id,
        kind: a.kind.clone(),
        open: a.archived_at.is_none(),
        status: a.status.clone(),
        records: a.anomalous_records_count,
        message: a.message.clone().unwrap_or_default(),
        created: when(Some(a.created)),
        operation: a.operation_id.map(|o| o.to_string()).unwrap_or_default(),
        fingerprint: a.fingerprint.clone(),
        failed: a
            .failed_checks
            .iter()
            .map(|f| Failed {
                check_id: f.check_id,
                rule: f.rule_type.clone(),
                fields: f
                    .fields
                    .as_array()
                    .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
                message: f.message.clone(),
            })
            .collect(),
        columns,
        rows,
    })
}

/// Acknowledge (`PUT /api/anomalies/{id}` with status Acknowledged) or archive (`DELETE ...?archive=true`
/// with an archive status).
pub async fn set_status(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    body: String,
) -> PageResult {
    let a = s
        .store
        .anomaly(id(&raw, "anomaly")?, &session.viewer())
        .await?;
    let f = Pairs::parse(&body);
    match f.get("status") {
        st @ ("Acknowledged" | "Active") => {
            let _ = an_api::update(
                State(s.clone()),
                session.auth(),
                Path(raw.clone()),
                JsonBody(Some(json!({"status": st}))),
            )
            .await?;
        }
        st => {
            let q = Params(vec![
                ("archive".into(), "true".into()),
                ("status".into(), st.to_string()),
            ]);
            an_api::delete_one(State(s.clone()), session.auth(), Path(raw.clone()), q)
                .await
                .map_err(UiError)?;
        }
    }
    see_other(&format!("/anomalies/{}", a.id))
}
