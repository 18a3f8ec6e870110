//! The datastore lists: source datastores as cards (connection, location, counts, last operation) and the
//! enrichment datastores on their own page. The store's visibility predicate decides what a user sees.

use super::page::{PageResult, Pager, Shell, html, when};
use super::session::Session;
use crate::AppState;
use crate::params::Params;
use askama::Template;
use assay_store::Viewer;
use assay_store::anomalies::AnomalyFilter;
use assay_store::catalog::ContainerFilter;
use assay_store::checks::CheckFilter;
use assay_store::datastores::{DatastoreFilter, DatastoreRecord, DatastoreSummary};
use assay_store::operations::OperationRecord;
use axum::extract::State;

/// One datastore card.
pub struct Card {
    pub id: i64,
    pub name: String,
    pub connector: String,
    pub connection: String,
    pub host: String,
    pub database: String,
    pub schema: String,
    pub teams: String,
    pub tables: i64,
    pub checks: i64,
    pub anomalies: i64,
    /// Percentage of active checks that passed their last scan, when any has run.
    pub score: Option<String>,
    pub last_op: Option<OpLine>,
    pub enrichment: Option<String>,
    pub linked: String,
}

/// An operation in one line.
pub struct OpLine {
    pub id: i64,
    pub kind: String,
    pub result: String,
    pub when: String,
    pub message: String,
}

impl OpLine {
    pub fn of(o: &OperationRecord) -> OpLine {
        OpLine {
            id: o.id,
            kind: o.op_type.clone(),
            result: o.result.clone(),
            when: when(o.end_time.or(o.start_time).or(Some(o.created))),
            message: o.message.clone().unwrap_or_default(),
        }
    }
}

/// Counts of a datastore's tables, active checks and open anomalies, as the viewer may see them.
pub async fn counts(
    s: &AppState,
    viewer: &Viewer,
    id: i64,
) -> Result<(i64, i64, i64), assay_store::StoreError> {
    let (_, tables) = s
        .store
        .list_containers(
            viewer,
            &ContainerFilter {
                datastores: vec![id],
                ..Default::default()
            },
            1,
            1,
        )
        .await?;
    let (_, checks) = s
        .store
        .list_checks(
            viewer,
            &CheckFilter {
                datastore: Some(id),
                ..Default::default()
            },
            1,
            1,
        )
        .await?;
    let (_, anomalies) = s
        .store
        .list_anomalies(
            viewer,
            &AnomalyFilter {
                datastore: Some(id),
                ..Default::default()
            },
            1,
            1,
        )
        .await?;
    Ok((tables, checks, anomalies))
}

/// A datastore's tables and views as the viewer may see them, for choosers (the first 1000), and how many
/// there are.
pub async fn tables(
    s: &AppState,
    viewer: &Viewer,
    id: i64,
) -> Result<(Vec<assay_store::catalog::ContainerRecord>, i64), assay_store::StoreError> {
    let filter = ContainerFilter {
        datastores: vec![id],
        ..Default::default()
    };
    s.store.list_containers(viewer, &filter, 1, 1000).await
}

/// A datastore's card from its record and summary.
pub fn card(d: &DatastoreRecord, summary: DatastoreSummary) -> Card {
    Card {
        id: d.id,
        name: d.spec.name.clone(),
        connector: if d.connector == "postgresql" {
            "PostgreSQL".into()
        } else {
            d.connector.clone()
        },
        connection: summary.connection_name,
        host: d.host.clone(),
        database: d.spec.database.clone(),
        schema: d.spec.schema.clone(),
        teams: d
            .teams
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        tables: summary.tables,
        checks: summary.checks,
        anomalies: summary.open_anomalies,
        score: summary.quality_score.map(|p| format!("{p:.0}")),
        last_op: summary.latest_operation.as_ref().map(OpLine::of),
        enrichment: d.enrichment.as_ref().map(|e| e.name.clone()),
        linked: d
            .linked_datastores
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[derive(Template)]
#[template(path = "datastores.html")]
struct ListPage {
    shell: Option<Shell>,
    enrichment: bool,
    cards: Vec<Card>,
    pager: Pager,
}

async fn list(s: &AppState, session: &Session, enrichment: bool, page: i64) -> PageResult {
    let viewer = session.viewer();
    let filter = DatastoreFilter {
        enrichment_only: Some(enrichment),
        ..Default::default()
    };
    let (items, total) = s
        .store
        .list_datastores(&viewer, &filter, page, Pager::SIZE)
        .await?;
    // every card's counts, score and last operation in two queries, whatever the number of cards
    let ids: Vec<i64> = items.iter().map(|d| d.id).collect();
    let mut summaries = s.store.datastore_summaries(&ids).await?;
    let cards = items
        .iter()
        .map(|d| card(d, summaries.remove(&d.id).unwrap_or_default()))
        .collect();
    html(&ListPage {
        shell: Some(Shell::of(
            &session.user,
            if enrichment { "enrichment" } else { "sources" },
        )),
        enrichment,
        pager: Pager::new(
            if enrichment {
                "/enrichment"
            } else {
                "/datastores"
            },
            "",
            page,
            total,
        ),
        cards,
    })
}

pub async fn sources(State(s): State<AppState>, session: Session, q: Params) -> PageResult {
    list(&s, &session, false, Pager::asked(&q)).await
}

pub async fn enrichments(State(s): State<AppState>, session: Session, q: Params) -> PageResult {
    list(&s, &session, true, Pager::asked(&q)).await
}
