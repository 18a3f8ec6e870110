//! The Observability tab: for each table of a datastore whose tracking is on, its row count over the last weeks
//! with the learned daily band drawn behind it (the previous day's count plus the band of that day's load),
//! its size, its last change and the freshness limit learned from the gaps between changes.

use super::details::{Head, load, section};
use super::page::{PageResult, Shell, html, when};
use super::session::Session;
use super::svg::{self, Point, Svg};
use crate::AppState;
use askama::Template;
use assay_core::observability::{self as judge, Verdict};
use assay_store::catalog::ContainerFilter;
use assay_store::observability::{MeasurementRecord, series};
use axum::extract::{Path, State};

/// Tables shown on one page (the rest through the API and CLI).
const SHOWN: usize = 30;

pub struct TableRow {
    pub id: i64,
    pub name: String,
    pub rows: String,
    pub size: String,
    pub method: String,
    pub last_change: String,
    pub freshness: String,
    pub stale: bool,
    pub automated: String,
    pub chart: Option<Svg>,
}

#[derive(Template)]
#[template(path = "observability.html")]
struct ObservabilityPage {
    shell: Option<Shell>,
    head: Head,
    tables: Vec<TableRow>,
    untracked: usize,
}

/// The chart of the row counts, with the band of each day that had one.
fn chart(name: &str, records: &[MeasurementRecord]) -> Option<Svg> {
    let points: Vec<Point> = records
        .iter()
        .filter_map(|m| {
            Some(Point {
                at: m.measurement_time.timestamp_millis() as f64,
                value: m.row_count? as f64,
                tip: format!(
                    "{}: {} rows ({})",
                    when(Some(m.measurement_time)),
                    m.row_count?,
                    m.method
                ),
            })
        })
        .collect();
    let series = series(records);
    let counts = judge::daily_counts(&series);
    let loads = judge::daily_loads(&series);
    let mut band = Vec::new();
    for (day, _) in &loads {
        let (Some(b), Some(prev)) = (
            judge::volume_band(&loads, *day),
            counts.get(&(*day - chrono::TimeDelta::days(1))),
        ) else {
            continue;
        };
        let Some(last) = records
            .iter()
            .rev()
            .find(|m| m.measurement_time.date_naive() == *day)
        else {
            continue;
        };
        let at = last.measurement_time.timestamp_millis() as f64;
        band.push((at, (*prev as f64 + b.low).max(0.0), *prev as f64 + b.high));
    }
    let span = (
        records
            .first()
            .map(|m| when(Some(m.measurement_time)))
            .unwrap_or_default(),
        records
            .last()
            .map(|m| when(Some(m.measurement_time)))
            .unwrap_or_default(),
    );
    svg::banded_chart(
        &format!("Rows of {name} over time"),
        &points,
        &band,
        None,
        &|v| format!("{v:.0}"),
        &span,
    )
}

pub async fn page(
    State(s): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> PageResult {
    let d = load(&s, &session, &raw).await?;
    let filter = ContainerFilter {
        datastores: vec![d.id],
        ..Default::default()
    };
    let (containers, _) = s
        .store
        .list_containers(&session.viewer(), &filter, 1, 1000)
        .await?;
    let now = chrono::Utc::now();
    let mut tables = Vec::new();
    let mut untracked = 0;
    for c in &containers {
        let f = c.observability;
        if !f.tracking() || c.query.is_some() || c.definition.is_some() {
            untracked += 1;
            continue;
        }
        if tables.len() == SHOWN {
            continue;
        }
        let records = s
            .store
            .measurement_series(c.id, judge::WINDOW_DAYS + 7)
            .await?;
        let latest = records.last();
        let (verdict, max_age) = judge::judge_freshness(&series(&records), now);
        let automated: Vec<&str> = [
            (f.automate_volumetric_checks, "volume"),
            (f.automate_freshness_checks, "freshness"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        tables.push(TableRow {
            id: c.id,
            name: c.name.clone(),
            rows: latest
                .and_then(|m| m.row_count)
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into()),
            size: latest
                .and_then(|m| m.size_bytes)
                .map(|b| format!("{:.1} MB", b as f64 / 1e6))
                .unwrap_or_else(|| "—".into()),
            method: latest.map(|m| m.method.clone()).unwrap_or_default(),
            last_change: when(latest.and_then(|m| m.last_modification_time)),
            freshness: match (&verdict, max_age) {
                (Verdict::Learning { have, need }, _) => {
                    format!("learning ({have} of {need} changes seen)")
                }
                (_, Some(a)) => format!(
                    "changes at least every {:.1} h",
                    a.num_minutes() as f64 / 60.0 / judge::FRESHNESS_SLACK
                ),
                _ => String::new(),
            },
            stale: matches!(verdict, Verdict::Anomalous(_)),
            automated: if automated.is_empty() {
                "off".into()
            } else {
                automated.join(", ")
            },
            chart: chart(&c.name, &records),
        });
    }
    html(&ObservabilityPage {
        shell: Some(Shell::of(&session.user, section(&d))),
        head: Head::of(&d, "observability"),
        tables,
        untracked,
    })
}
