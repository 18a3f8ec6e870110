//! The Tables tab: containers with row counts and fields, a container's fields with their latest profile, and a
//! field's profile with its SVG histogram, quantile bar and top values.

use super::anomalies::{AnomalyRow, CheckRow};
use super::details::{Head, load, section};
use super::page::{PageResult, Pager, Shell, UiError, html, text, when};
use super::session::Session;
use super::svg::{self, Svg};
use crate::AppState;
use crate::routes::id;
use askama::Template;
use assay_store::anomalies::AnomalyFilter;
use assay_store::checks::CheckFilter;
use assay_store::profiles::FieldProfileRecord;
use axum::extract::{Path, State};
use serde_json::Value;

pub struct TableRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub rows: String,
    pub fields: i64,
    pub last_synced: String,
    pub missing: bool,
}

#[derive(Template)]
#[template(path = "tables.html")]
struct TablesPage {
    shell: Option<Shell>,
    head: Head,
    tables: Vec<TableRow>,
    pager: Pager,
}

pub async fn list(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    q: crate::params::Params,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let page = Pager::asked(&q);
    let filter = assay_store::catalog::ContainerFilter {
        datastores: vec![d.id],
        ..Default::default()
    };
    let (items, total) = s
        .store
        .list_containers(&session.viewer(), &filter, page, Pager::SIZE)
        .await?;
    let tables = items
        .iter()
        .map(|c| TableRow {
            id: c.id,
            name: c.name.clone(),
            kind: c.table_type.replace('_', " "),
            rows: c
                .row_estimate
                .filter(|r| *r >= 0)
                .map(|r| r.to_string())
                .unwrap_or_else(|| "—".into()),
            fields: c.field_count,
            last_synced: when(c.last_synced),
            missing: c.deleted_at.is_some(),
        })
        .collect();
    html(&TablesPage {
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "tables"),
        pager: Pager::new(&format!("/datastores/{}/tables", d.id), "", page, total),
        tables,
    })
}

pub struct FieldRow {
    pub id: i64,
    pub name: String,
    pub field_type: String,
    pub native_type: String,
    pub nullable: bool,
    pub profiled: bool,
    pub completeness: String,
    pub distinct: String,
    pub min: String,
    pub max: String,
}

#[derive(Template)]
#[template(path = "container.html")]
struct ContainerPage {
    shell: Option<Shell>,
    head: Head,
    cid: i64,
    name: String,
    rows: String,
    profiled_rows: String,
    primary_key: String,
    incremental: String,
    fields: Vec<FieldRow>,
    checks: Vec<CheckRow>,
    anomalies: Vec<AnomalyRow>,
    /// Rows per profile, oldest first.
    row_history: Option<Svg>,
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{:.1}%", x * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn opt(v: &Value) -> String {
    if v.is_null() {
        "—".into()
    } else {
        svg::label(v)
    }
}

/// How many profiles the history charts show at most.
const HISTORY: i64 = 50;

/// The first and last time of a history, as the chart's time axis labels.
fn ends(
    first: Option<chrono::DateTime<chrono::Utc>>,
    last: Option<chrono::DateTime<chrono::Utc>>,
) -> (String, String) {
    (when(first), when(last))
}

async fn latest_profiles(
    s: &AppState,
    session: &Session,
    cid: i64,
) -> Result<Vec<FieldProfileRecord>, UiError> {
    Ok(s.store
        .field_profiles(&session.viewer(), &[cid], &[], None, 1, 1000)
        .await?
        .0)
}

pub async fn container(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    let c = s
        .store
        .container(id(&raw, "table")?, &session.viewer())
        .await?;
    let d = load(&s, &session, &c.datastore_id.to_string()).await?;
    let fields = s.store.fields(c.id, false).await?;
    let profiles = latest_profiles(&s, &session, c.id).await?;
    let latest = s.store.latest_profile(c.id).await.ok().flatten();
    let (mut history, _) = s.store.container_profiles(c.id, 1, HISTORY).await?;
    history.reverse();
    let row_history = svg::line_chart(
        &format!("Rows of {} per profile", c.name),
        &history
            .iter()
            .map(|p| svg::Point {
                at: p.created.timestamp_millis() as f64,
                value: p.profile.records_count as f64,
                tip: format!(
                    "{}: {} rows (operation {})",
                    when(Some(p.created)),
                    p.profile.records_count,
                    p.profile
                        .operation_id
                        .map(|o| o.to_string())
                        .unwrap_or_else(|| "—".into())
                ),
            })
            .collect::<Vec<_>>(),
        None,
        &|v| format!("{v:.0}"),
        &ends(
            history.first().map(|p| p.created),
            history.last().map(|p| p.created),
        ),
    );
    let rows = fields
        .iter()
        .map(|f| {
            let p = profiles
                .iter()
                .find(|p| p.field_id == Some(f.id) || p.name == f.name)
                .map(|p| &p.profile);
            let get = |k: &str| p.map(|p| p[k].clone()).unwrap_or(Value::Null);
            FieldRow {
                id: f.id,
                name: f.name.clone(),
                field_type: f.field_type.clone(),
                native_type: f.native_type.clone(),
                nullable: f.nullable,
                profiled: p.is_some(),
                completeness: pct(&get("completeness")),
                distinct: get("approximate_distinct_values")
                    .as_f64()
                    .map(|x| format!("{x:.0}"))
                    .unwrap_or_else(|| "—".into()),
                min: opt(&get("min")),
                max: opt(&get("max")),
            }
        })
        .collect();
    let viewer = session.viewer();
    let check_filter = CheckFilter {
        containers: vec![c.id],
        ..Default::default()
    };
    let checks = s.store.list_checks(&viewer, &check_filter, 1, 200).await?.0;
    let anomaly_filter = AnomalyFilter {
        container: Some(c.id),
        newest_first: true,
        ..Default::default()
    };
    let anomalies = s
        .store
        .list_anomalies(&viewer, &anomaly_filter, 1, 50)
        .await?
        .0;
    html(&ContainerPage {
        checks: checks.iter().map(CheckRow::of).collect(),
        anomalies: anomalies.iter().map(AnomalyRow::of).collect(),
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "tables"),
        cid: c.id,
        name: c.name.clone(),
        rows: c
            .row_estimate
            .filter(|r| *r >= 0)
            .map(|r| r.to_string())
            .unwrap_or_else(|| "—".into()),
        profiled_rows: latest
            .map(|p| {
                format!(
                    "{} records profiled {}",
                    p.profile.records_count,
                    when(Some(p.created))
                )
            })
            .unwrap_or_else(|| "not profiled yet".into()),
        primary_key: c.primary_key.join(", "),
        incremental: c.incremental_field_name.clone().unwrap_or_default(),
        fields: rows,
        row_history,
    })
}

pub struct Stat {
    pub name: &'static str,
    pub value: String,
}

pub struct TopValue {
    pub value: String,
    pub count: String,
    pub share: String,
}

#[derive(Template)]
#[template(path = "field.html")]
struct FieldPage {
    shell: Option<Shell>,
    head: Head,
    cid: i64,
    container: String,
    name: String,
    field_type: String,
    profiled: String,
    stats: Vec<Stat>,
    histogram: Option<Svg>,
    quantiles: Option<Svg>,
    top: Vec<TopValue>,
    notes: Vec<String>,
    /// Completeness and distinct values per profile, oldest first.
    completeness_history: Option<Svg>,
    distinct_history: Option<Svg>,
}

pub async fn field(
    State(s): State<AppState>,
    session: Session,
    Path((raw, raw_f)): Path<(String, String)>,
) -> PageResult {
    let c = s
        .store
        .container(id(&raw, "table")?, &session.viewer())
        .await?;
    let fid = id(&raw_f, "field")?;
    let d = load(&s, &session, &c.datastore_id.to_string()).await?;
    let fields = s.store.fields(c.id, true).await?;
    let f = fields
        .iter()
        .find(|f| f.id == fid)
        .ok_or_else(|| crate::ApiError::not_found(format!("field {fid} not found")))?;
    let profiles = latest_profiles(&s, &session, c.id).await?;
    let rec = profiles
        .iter()
        .find(|p| p.field_id == Some(f.id) || p.name == f.name);
    let empty = Value::Null;
    let p = rec.map(|r| &r.profile).unwrap_or(&empty);
    let mut stats = Vec::new();
    for (key, name) in [
        ("records", "Records"),
        ("nulls", "Nulls"),
        ("completeness", "Completeness"),
        ("approximate_distinct_values", "Distinct (estimate)"),
        ("min", "Minimum"),
        ("max", "Maximum"),
        ("mean", "Mean"),
        ("std_dev", "Standard deviation"),
        ("median", "Median"),
        ("min_length", "Shortest"),
        ("max_length", "Longest"),
        ("zeros", "Zeros"),
        ("negatives", "Negatives"),
    ] {
        let v = &p[key];
        if v.is_null() {
            continue;
        }
        let value = match key {
            "completeness" => pct(v),
            "approximate_distinct_values" => {
                v.as_f64().map(|x| format!("{x:.0}")).unwrap_or_default()
            }
            _ => svg::label(v),
        };
        stats.push(Stat { name, value });
    }
    let histogram = p["histogram_buckets"]
        .as_array()
        .and_then(|b| svg::histogram(b, &format!("Histogram of {}", f.name)));
    let q = &p["quantiles"];
    let quantiles = if q.is_object() {
        svg::quantile_bar(&[
            ("min", &p["min"]),
            ("p01", &q["p01"]),
            ("p25", &q["p25"]),
            ("p50", &q["p50"]),
            ("p75", &q["p75"]),
            ("p99", &q["p99"]),
            ("max", &p["max"]),
        ])
    } else {
        None
    };
    let top = p["top_values"]
        .as_array()
        .map(|a| {
            a.iter()
                .take(10)
                .map(|t| TopValue {
                    value: text(&t["value"]),
                    count: text(&t["count"]),
                    share: pct(&t["ratio"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let notes = p["notes"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let history = s
        .store
        .field_profile_history(c.id, &f.name, HISTORY)
        .await?;
    let series = |key: &str, scale: f64, unit: &str| -> Vec<svg::Point> {
        history
            .iter()
            .filter_map(|h| {
                let v = h.profile[key].as_f64()? * scale;
                Some(svg::Point {
                    at: h.created.timestamp_millis() as f64,
                    value: v,
                    tip: format!("{}: {v:.0}{unit}", when(Some(h.created))),
                })
            })
            .collect()
    };
    let span = ends(
        history.first().map(|h| h.created),
        history.last().map(|h| h.created),
    );
    let completeness_history = svg::line_chart(
        &format!("Completeness of {} per profile", f.name),
        &series("completeness", 100.0, " % complete"),
        Some(100.0),
        &|v| format!("{v:.0} %"),
        &span,
    );
    let distinct_history = svg::line_chart(
        &format!("Distinct values of {} per profile", f.name),
        &series("approximate_distinct_values", 1.0, " distinct values"),
        None,
        &|v| format!("{v:.0}"),
        &span,
    );
    html(&FieldPage {
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "tables"),
        cid: c.id,
        container: c.name.clone(),
        name: f.name.clone(),
        field_type: f.field_type.clone(),
        profiled: rec.map(|r| when(Some(r.created))).unwrap_or_default(),
        stats,
        histogram,
        quantiles,
        top,
        notes,
        completeness_history,
        distinct_history,
    })
}
