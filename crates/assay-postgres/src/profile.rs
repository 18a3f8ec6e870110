//! Reading a table for profiling: `COPY (SELECT ...) TO STDOUT (FORMAT binary)` over parallel connections, each
//! on a range of the table's pages (`ctid` ranges), folded into per-field states as the bytes arrive.
//! Incremental reads filter on a watermark passed with `set_config` (COPY takes no bind parameters).

use crate::connect::{ConnectParams, query_error};
use crate::error::PgError;
use crate::ident::{qualified, quote_ident};
use assay_engine::copy::CopyParser;
use assay_engine::fold::Folder;
use assay_engine::kind::Kind;
use assay_engine::state::FieldState;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A column to profile.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// Base type name (`pg_type.typname`) and category, to choose the wire kind.
    pub typname: String,
    pub typcategory: String,
}

/// Which rows to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    All,
    /// Rows whose `column` (of SQL type `sql_type`) is greater than the watermark text.
    After {
        column: String,
        sql_type: String,
        watermark: String,
    },
    /// Rows committed after the watermark (`pg_xact_commit_timestamp(xmin)`; needs track_commit_timestamp).
    CommittedAfter {
        watermark: String,
    },
}

#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub schema: String,
    pub table: String,
    pub columns: Vec<Column>,
    pub rows: Rows,
    /// Split a plain table or materialized view into this many page ranges (one connection each).
    pub parallelism: usize,
    /// Stop each partition after this many rows.
    pub limit_per_partition: Option<u64>,
    /// Page ranges apply (relkind r or m).
    pub has_ctid: bool,
    /// A parenthesised query to read instead of `schema.table` (computed containers and fields).
    pub relation: Option<String>,
    /// Read the last tenth of the table's pages (its newest rows, in an append-mostly table) as a partition of
    /// its own and return its states apart too, for validating what is inferred from the rest. Applies to page
    /// ranges of tables of at least [`HOLDOUT_MIN_PAGES`] pages.
    pub holdout: bool,
}

/// The fewest pages a table needs for a held-out tail.
pub const HOLDOUT_MIN_PAGES: i64 = 10;

/// States of part of the rows.
pub struct Part {
    pub states: Vec<FieldState>,
    pub rows: u64,
}

/// What a read produced.
pub struct ReadResult {
    /// Every row read.
    pub states: Vec<FieldState>,
    /// With a holdout: the rows before it, and the held-out tail (both also in `states`).
    pub split: Option<(Part, Part)>,
    pub rows: u64,
    pub partitions: usize,
    /// When the read started, as the server saw it (the next commit-timestamp watermark).
    pub started_at: String,
    pub bytes: i64,
    /// Notes on columns read as text.
    pub casts: Vec<Option<String>>,
}

/// Shared between the partitions and the caller: rows so far, and the abort flag.
#[derive(Debug, Default)]
pub struct Progress {
    pub rows: AtomicU64,
    pub abort: AtomicBool,
}

/// Watches `progress.abort` (the user's abort) and `stop` (a sibling partition failed) while a session's statement
/// runs, and cancels that statement on the server when either is set: a statement that waits for a lock or for
/// rows that are slow to come is stopped too, not only one that streams. Stops watching when dropped.
struct CancelOnAbort(tokio::task::JoinHandle<()>);

impl CancelOnAbort {
    fn watch(
        client: &tokio_postgres::Client,
        params: &ConnectParams,
        progress: &Arc<Progress>,
        stop: &Arc<AtomicBool>,
    ) -> CancelOnAbort {
        let token = client.cancel_token();
        let params = params.clone();
        let progress = progress.clone();
        let stop = stop.clone();
        CancelOnAbort(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                if progress.abort.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                    params.cancel(&token).await;
                    return;
                }
            }
        }))
    }
}

impl Drop for CancelOnAbort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An error of a session that was cancelled because of an abort (or a failed sibling) is that abort.
fn or_aborted(e: PgError, progress: &Progress, stop: &AtomicBool) -> PgError {
    if progress.abort.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
        PgError::Aborted
    } else {
        e
    }
}

fn kinds(plan: &ReadPlan) -> Vec<(Kind, Option<&'static str>)> {
    plan.columns
        .iter()
        .map(|c| Kind::for_type(&c.typname, &c.typcategory))
        .collect()
}

/// The SELECT list: columns as they are, or cast for the kinds Assay reads as text.
fn select_list(plan: &ReadPlan) -> String {
    plan.columns
        .iter()
        .zip(kinds(plan))
        .map(|(c, (_, cast))| match cast {
            Some(t) => format!("{}::{t}", quote_ident(&c.name)),
            None => quote_ident(&c.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The COPY statement of one partition; `pages` is `(from, to)` with `to = None` for the open last range.
pub fn copy_sql(plan: &ReadPlan, pages: Option<(u64, Option<u64>)>) -> String {
    let mut conds: Vec<String> = Vec::new();
    if let Some((from, to)) = pages {
        // page numbers are computed here, never taken from input
        conds.push(format!("ctid >= '({from},0)'::tid"));
        if let Some(to) = to {
            conds.push(format!("ctid < '({to},0)'::tid"));
        }
    }
    match &plan.rows {
        Rows::All => {}
        Rows::After {
            column, sql_type, ..
        } => conds.push(format!(
            "{} > current_setting('assay.watermark')::{sql_type}",
            quote_ident(column)
        )),
        Rows::CommittedAfter { .. } => conds.push(
            "pg_xact_commit_timestamp(xmin) > current_setting('assay.watermark')::timestamptz"
                .into(),
        ),
    }
    let cols = if plan.columns.is_empty() {
        "1".to_string()
    } else {
        select_list(plan)
    };
    let mut sql = match &plan.relation {
        Some(r) => format!("SELECT {cols} FROM {r} AS t"),
        None => format!(
            "SELECT {cols} FROM {}",
            qualified(&plan.schema, &plan.table)
        ),
    };
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    if let Some(n) = plan.limit_per_partition {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    format!("COPY ({sql}) TO STDOUT (FORMAT binary)")
}

/// The page ranges of a read: `parts` ranges over the pages, the last open-ended; with `holdout`, the ranges
/// cover the first nine tenths and the tail (open-ended, so rows added while reading are in it) comes last.
fn page_ranges(pages: u64, parts: usize, holdout: bool) -> Vec<(u64, Option<u64>)> {
    let parts = parts.max(1) as u64;
    let cut = if holdout {
        (pages * 9).div_ceil(10)
    } else {
        pages
    };
    let step = cut.div_ceil(parts).max(1);
    let mut ranges: Vec<(u64, Option<u64>)> = (0..parts)
        .map(|i| {
            let from = (i * step).min(cut);
            let open_end = i + 1 == parts && !holdout;
            (from, (!open_end).then(|| ((i + 1) * step).min(cut)))
        })
        .collect();
    if holdout {
        ranges.push((cut, None));
    }
    ranges
}

/// Reads the table as planned. Each partition uses its own connection from `params`.
pub async fn read(
    params: &ConnectParams,
    plan: &ReadPlan,
    progress: Arc<Progress>,
) -> Result<ReadResult, PgError> {
    let first = params.connect().await?;
    // set when a partition fails, so that the others stop too
    let stop = Arc::new(AtomicBool::new(false));
    let qe = |e: tokio_postgres::Error| or_aborted(query_error(&e, params), &progress, &stop);
    let rel = qualified(&plan.schema, &plan.table);
    // the sizes wait for the table's lock: an abort cancels that wait
    let watch = CancelOnAbort::watch(&first, params, &progress, &stop);
    let row = if plan.relation.is_some() {
        first
            .query_one("SELECT now()::text, 0::int8, 0::int8", &[])
            .await
            .map_err(qe)?
    } else {
        first
            .query_one(
                "SELECT now()::text, pg_total_relation_size($1::text::regclass), \
                        pg_relation_size($1::text::regclass) / current_setting('block_size')::int8",
                &[&rel],
            )
            .await
            .map_err(qe)?
    };
    drop(watch);
    let started_at: String = row.get(0);
    let bytes: i64 = row.get(1);
    let pages: i64 = row.get(2);
    let parts = if plan.has_ctid {
        plan.parallelism.max(1).min((pages.max(1)) as usize)
    } else {
        1
    };
    let holdout = plan.holdout && plan.has_ctid && pages >= HOLDOUT_MIN_PAGES;
    let ranges: Vec<Option<(u64, Option<u64>)>> = if plan.has_ctid && (parts > 1 || holdout) {
        page_ranges(pages as u64, parts, holdout)
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None]
    };
    let held_index = holdout.then(|| ranges.len() - 1);
    drop(first);
    let casts: Vec<Option<String>> = plan
        .columns
        .iter()
        .zip(kinds(plan))
        .map(|(c, (_, cast))| cast.map(|t| format!("{} ({}) was read as {t}", c.name, c.typname)))
        .collect();
    let mut tasks = Vec::new();
    for range in ranges.iter().copied() {
        let sql = copy_sql(plan, range);
        let watermark = match &plan.rows {
            Rows::All => None,
            Rows::After { watermark, .. } | Rows::CommittedAfter { watermark } => {
                Some(watermark.clone())
            }
        };
        let kinds: Vec<Kind> = kinds(plan).into_iter().map(|(k, _)| k).collect();
        let progress = progress.clone();
        let stop = stop.clone();
        let params = params.clone();
        // Each partition runs on its own thread with a single-threaded runtime holding both its connection and
        // its decoding: no hand-offs between worker threads per message, and the decoding never occupies the
        // threads that serve the API.
        tasks.push(tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| PgError::Property {
                    field: "profile".into(),
                    message: e.to_string(),
                })?;
            rt.block_on(async move {
                let r = match params.connect().await {
                    Ok(client) => {
                        partition(client, &params, sql, watermark, kinds, &progress, &stop).await
                    }
                    Err(e) => Err(e),
                };
                if r.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                r
            })
        }));
    }
    let mut states: Option<Vec<FieldState>> = None;
    let mut held: Option<Part> = None;
    let mut rows = 0;
    let mut failure = None;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(Ok((part_states, part_rows))) if Some(i) == held_index => {
                rows += part_rows;
                held = Some(Part {
                    states: part_states,
                    rows: part_rows,
                });
            }
            Ok(Ok((part_states, part_rows))) => {
                rows += part_rows;
                match states.as_mut() {
                    None => states = Some(part_states),
                    Some(acc) => {
                        for (a, b) in acc.iter_mut().zip(&part_states) {
                            a.merge(b);
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                stop.store(true, Ordering::Relaxed);
                // the partition that failed first is the cause; the others were cancelled because of it
                match (&failure, &e) {
                    (None, _) | (Some(PgError::Aborted), _) => failure = Some(e),
                    _ => {}
                }
            }
            Err(e) => {
                failure.get_or_insert(PgError::Property {
                    field: "profile".into(),
                    message: e.to_string(),
                });
            }
        }
    }
    if let Some(e) = failure {
        return Err(if progress.abort.load(Ordering::Relaxed) {
            PgError::Aborted
        } else {
            e
        });
    }
    let empty = || -> Vec<FieldState> {
        kinds(plan)
            .into_iter()
            .map(|(k, _)| FieldState::new(k))
            .collect()
    };
    let mut states = states.unwrap_or_else(empty);
    let split = match held {
        Some(tail) => {
            let before = Part {
                states: states.clone(),
                rows: rows - tail.rows,
            };
            for (a, b) in states.iter_mut().zip(&tail.states) {
                a.merge(b);
            }
            Some((before, tail))
        }
        None => None,
    };
    Ok(ReadResult {
        states,
        split,
        rows,
        partitions: ranges.len(),
        started_at,
        bytes,
        casts,
    })
}

async fn partition(
    client: tokio_postgres::Client,
    params: &ConnectParams,
    sql: String,
    watermark: Option<String>,
    kinds: Vec<Kind>,
    progress: &Arc<Progress>,
    stop: &Arc<AtomicBool>,
) -> Result<(Vec<FieldState>, u64), PgError> {
    let qe = |e: tokio_postgres::Error| or_aborted(query_error(&e, params), progress, stop);
    // COPY may wait for the table's lock before the first row: an abort cancels that wait on the server
    let _watch = CancelOnAbort::watch(&client, params, progress, stop);
    if let Some(w) = &watermark {
        client
            .execute("SELECT set_config('assay.watermark', $1, false)", &[w])
            .await
            .map_err(qe)?;
    }
    let mut folder = Folder::new(&kinds);
    let stream = client.copy_out(sql.as_str()).await.map_err(qe)?;
    futures_util::pin_mut!(stream);
    let mut parser = CopyParser::new();
    let mut since_report = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(qe)?;
        let n = parser
            .feed(&chunk, |i, v| folder.add(i, v), || {})
            .map_err(|e| PgError::Property {
                field: "profile".into(),
                message: e.to_string(),
            })?;
        since_report += n;
        if since_report >= 8192 {
            progress.rows.fetch_add(since_report, Ordering::Relaxed);
            since_report = 0;
            if progress.abort.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                // stop the server's work too, not only ours
                params.cancel(&client.cancel_token()).await;
                return Err(PgError::Aborted);
            }
        }
    }
    progress.rows.fetch_add(since_report, Ordering::Relaxed);
    parser.finish().map_err(|e| PgError::Property {
        field: "profile".into(),
        message: e.to_string(),
    })?;
    Ok((folder.finish(), parser.rows()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rows: Rows) -> ReadPlan {
        ReadPlan {
            schema: "s".into(),
            table: "t\"x".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    typname: "int8".into(),
                    typcategory: "N".into(),
                },
                Column {
                    name: "tags".into(),
                    typname: "_text".into(),
                    typcategory: "A".into(),
                },
            ],
            rows,
            parallelism: 2,
            limit_per_partition: Some(100),
            has_ctid: true,
            relation: None,
            holdout: false,
        }
    }

    #[test]
    fn page_ranges_cover_every_page_once_and_the_holdout_is_the_tail() {
        for pages in [1u64, 5, 9, 10, 11, 97, 1000] {
            for parts in 1..=5 {
                for holdout in [false, true] {
                    let r = super::page_ranges(pages, parts, holdout);
                    // contiguous from page 0, the last open-ended
                    assert_eq!(r[0].0, 0);
                    for w in r.windows(2) {
                        assert_eq!(w[0].1, Some(w[1].0), "{pages} {parts} {holdout}: {r:?}");
                    }
                    assert_eq!(r.last().unwrap().1, None);
                    if holdout {
                        assert_eq!(r.len(), parts + 1);
                        let tail = r.last().unwrap().0;
                        assert_eq!(tail, (pages * 9).div_ceil(10), "{r:?}");
                    } else {
                        assert_eq!(r.len(), parts);
                    }
                }
            }
        }
    }

    #[test]
    fn copy_statements_quote_identifiers_and_bind_watermarks() {
        assert_eq!(
            copy_sql(&plan(Rows::All), Some((0, Some(10)))),
            "COPY (SELECT \"id\", \"tags\"::text FROM \"s\".\"t\"\"x\" WHERE ctid >= '(0,0)'::tid AND ctid < '(10,0)'::tid LIMIT 100) TO STDOUT (FORMAT binary)"
        );
        let sql = copy_sql(
            &plan(Rows::After {
                column: "up\"d".into(),
                sql_type: "timestamp with time zone".into(),
                watermark: "2026-01-01' OR 1=1".into(),
            }),
            None,
        );
        assert!(
            sql.contains(
                "\"up\"\"d\" > current_setting('assay.watermark')::timestamp with time zone"
            ),
            "{sql}"
        );
        assert!(
            !sql.contains("OR 1=1"),
            "the watermark is never in the SQL text"
        );
        assert!(
            copy_sql(
                &plan(Rows::CommittedAfter {
                    watermark: "x".into()
                }),
                None
            )
            .contains("pg_xact_commit_timestamp(xmin)")
        );
    }
}
