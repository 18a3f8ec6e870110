//! A check's own page: its definition (rule, table, fields, properties, filter, coverage, how it came to be),
//! the history of its results scan by scan, and the anomalies it took part in, each list paged.

use super::anomalies::{AnomalyRow, CheckRow};
use super::details::{Head, section};
use super::page::{PageResult, Pager, Shell, html, when};
use super::session::Session;
use crate::AppState;
use crate::params::Params;
use crate::routes::id;
use askama::Template;
use assay_store::anomalies::AnomalyFilter;
use axum::extract::{Path, State};
use serde_json::Value;

/// One result of the check: a scan's measurement.
pub struct ResultRow {
    pub created: String,
    pub operation: String,
    pub passed: String,
    pub asserted: String,
    pub anomalous: String,
    pub value: String,
    pub message: String,
}

impl ResultRow {
    fn of(m: &Value) -> ResultRow {
        let text = |v: &Value| match v {
            Value::Null => "—".to_string(),
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        ResultRow {
            created: m["created"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| when(Some(t.with_timezone(&chrono::Utc))))
                .unwrap_or_else(|| text(&m["created"])),
            operation: text(&m["operation_id"]),
            passed: match m["passed"].as_bool() {
                Some(true) => "passed".into(),
                Some(false) => "failed".into(),
                None => "—".into(),
            },
            asserted: text(&m["asserted_records"]),
            anomalous: text(&m["anomalous_records"]),
            value: text(&m["value"]),
            message: m["message"].as_str().unwrap_or_default().to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "check.html")]
struct CheckPage {
    shell: Option<Shell>,
    head: Head,
    check: CheckRow,
    container_id: i64,
    rule_description: String,
    properties: String,
    filter: String,
    coverage: String,
    status: String,
    origin: String,
    tags: String,
    results: Vec<ResultRow>,
    pager: Pager,
    anomalies: Vec<AnomalyRow>,
    anomaly_pager: Pager,
}

pub async fn page(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: Params,
) -> PageResult {
    let viewer = session.viewer();
    let k = s.store.check(id(&raw, "quality check")?, &viewer).await?;
    let d = s.store.datastore(k.datastore_id, &viewer).await?;
    let page = Pager::asked(&q);
    let apage = Pager::asked_as(&q, "apage");
    let (metrics, measured) = s.store.check_metrics(k.id, page, Pager::SIZE).await?;
    let filter = AnomalyFilter {
        check: Some(k.id),
        archived: Some(false),
        newest_first: true,
        ..Default::default()
    };
    let (anomalies, found) = s
        .store
        .list_anomalies(&viewer, &filter, apage, Pager::SIZE)
        .await?;
    let path = format!("/checks/{}", k.id);
    let pretty = |v: &Value| match v {
        Value::Null => String::new(),
        Value::Object(m) if m.is_empty() => String::new(),
        v => serde_json::to_string_pretty(v).unwrap_or_default(),
    };
    html(&CheckPage {
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "checks"),
        container_id: k.container_id,
        rule_description: assay_core::rules::rule(&k.rule_type)
            .map(|r| r.description.to_string())
            .unwrap_or_default(),
        properties: pretty(&k.properties),
        filter: k.filter.clone().unwrap_or_default(),
        coverage: k
            .coverage
            .map(|c| format!("{:.0} %", c * 100.0))
            .unwrap_or_else(|| "100 %".into()),
        status: k.status.clone(),
        origin: if k.inferred {
            format!(
                "Inferred from a profile. {}",
                pretty(&k.additional_metadata)
            )
        } else {
            format!(
                "Written by {}",
                k.last_editor.clone().unwrap_or_else(|| "a user".into())
            )
        },
        tags: k
            .tags
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        check: CheckRow::of(&k),
        results: metrics.iter().map(ResultRow::of).collect(),
        pager: Pager::new(&path, &format!("apage={apage}"), page, measured),
        anomalies: anomalies.iter().map(AnomalyRow::of).collect(),
        anomaly_pager: Pager::keyed(&path, &format!("page={page}"), "apage", apage, found),
    })
}
