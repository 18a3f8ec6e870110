//! From a container's profile to its inferred checks: fields that may be unique are confirmed with an exact count
//! on the source, candidates are inferred from the rows before the held-out part and kept only when the held-out
//! rows pass them, and the store is brought in line: kept candidates are added or updated, and after a full
//! profile the inferred checks it no longer supports are archived with the reason.
//!
//! The held-out part is the newest rows: the last tenth of the table's pages on a full read (the tail of an
//! append-mostly table). Without one (an incremental profile, a small table, a sample, a computed container),
//! candidates are kept as inferred.

use assay_engine::infer::{self, Hints, Inferred};
use assay_engine::profile::FieldProfile;
use assay_postgres::ident::{qualified, quote_ident};
use assay_postgres::{ConnectParams, PgError};
use assay_store::StoreError;
use assay_store::catalog::{ContainerRecord, FieldRecord};
use assay_store::checks::InferredCheck;
use serde_json::{Value, json};

/// Fields need at least this many rows before uniqueness is worth confirming (a handful of rows is unique by
/// chance).
const UNIQUE_MIN_ROWS: u64 = 50;

/// What inference starts from.
pub struct Inputs<'a> {
    pub container: &'a ContainerRecord,
    pub fields: &'a [FieldRecord],
    /// Profiles of every row read (and merged).
    pub all: &'a [FieldProfile],
    pub rows: u64,
    /// Profiles and row count of the rows before the held-out part, and the held-out part's profiles.
    pub split: Option<(Vec<FieldProfile>, u64, Vec<FieldProfile>)>,
    pub level: u8,
    pub draft: bool,
    pub sampled: bool,
    /// The whole table was read (not an increment, not a sample): unsupported checks may be archived.
    pub full: bool,
    /// The source table, for the exact uniqueness count; `None` for computed containers.
    pub table: Option<(&'a str, &'a str)>,
}

/// What inference did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub added: i64,
    pub updated: i64,
    pub archived: i64,
    /// Candidates the held-out rows did not pass: rule, fields and why.
    pub dropped: Vec<Value>,
}

fn store_err(e: StoreError) -> PgError {
    PgError::Property {
        field: "metadata".into(),
        message: e.to_string(),
    }
}

/// Fields whose profile says every value may be distinct, counted exactly on the source: those that are.
async fn confirm_unique(
    params: &ConnectParams,
    table: (&str, &str),
    candidates: &[&str],
) -> Result<Vec<String>, PgError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let counts: Vec<String> = candidates
        .iter()
        .map(|f| format!("count(DISTINCT {})", quote_ident(f)))
        .collect();
    let sql = format!(
        "SELECT count(*), {} FROM {}",
        counts.join(", "),
        qualified(table.0, table.1)
    );
    let client = params.connect_read_only().await?;
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(|e| assay_postgres::connect::query_error(&e, params))?;
    let total: i64 = row.get(0);
    Ok(candidates
        .iter()
        .enumerate()
        .filter(|(i, _)| row.get::<_, i64>(i + 1) == total)
        .map(|(_, f)| f.to_string())
        .collect())
}

/// Infers, validates and saves the container's checks.
pub async fn run(
    ctx: &crate::Context,
    params: &ConnectParams,
    input: Inputs<'_>,
) -> Result<Outcome, PgError> {
    let c = input.container;
    let key = (c.primary_key.len() == 1).then(|| c.primary_key[0].as_str());
    // sequence keys and incremental candidates grow with new rows: no upper bounds for them
    let mut growing: Vec<&str> = input
        .fields
        .iter()
        .filter(|f| f.sequence_backed)
        .map(|f| f.name.as_str())
        .collect();
    if let Some(cands) = c.incremental_candidates.as_array() {
        growing.extend(
            cands
                .iter()
                .filter_map(|x| x["incremental_field_name"].as_str()),
        );
    }
    let maybe_unique: Vec<&str> = input
        .all
        .iter()
        .filter(|p| {
            input.level >= 2
                && input.full
                && Some(p.name.as_str()) != key
                && matches!(p.field_type.as_str(), "Integral" | "String")
                && p.nulls == 0
                && p.records >= UNIQUE_MIN_ROWS
                && p.unique_distinct_ratio.is_some_and(|r| r >= 0.97)
        })
        .map(|p| p.name.as_str())
        .collect();
    let unique = match input.table {
        Some(t) if !input.sampled => confirm_unique(params, t, &maybe_unique).await?,
        _ => Vec::new(),
    };
    let unique: Vec<&str> = unique.iter().map(String::as_str).collect();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (trained, trained_rows) = match &input.split {
        Some((t, rows, _)) => (t.as_slice(), *rows),
        None => (input.all, input.rows),
    };
    let hints = Hints {
        rows: trained_rows,
        level: input.level,
        now_iso: &now,
        sampled: input.sampled,
        key,
        growing: &growing,
        unique: &unique,
    };
    let mut out = Outcome::default();
    let mut kept: Vec<Inferred> = Vec::new();
    let mut reasons: Vec<(String, String)> = Vec::new();
    for cand in infer::infer(trained, &hints) {
        let verdict = match (&input.split, cand.fields.as_slice()) {
            (Some((t, _, held)), [f]) => {
                let at = trained.iter().position(|p| &p.name == f);
                match at {
                    Some(i) => infer::validate(&cand, &t[i], &held[i], &now),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        };
        match verdict {
            Ok(()) => kept.push(cand),
            Err(why) => {
                out.dropped
                    .push(json!({"rule": cand.rule, "fields": cand.fields, "reason": why}));
                reasons.push((cand.key.clone(), format!("dropped by validation: {why}")));
            }
        }
    }
    let checks: Vec<InferredCheck> = kept
        .into_iter()
        .map(|i| InferredCheck {
            key: i.key,
            rule_type: i.rule.to_string(),
            description: i.description,
            fields: i.fields,
            coverage: i.coverage,
            properties: i.properties,
            status: if input.draft { "Draft" } else { "Active" }.into(),
        })
        .collect();
    let sync = ctx
        .store
        .upsert_inferred_checks(c.id, &checks)
        .await
        .map_err(store_err)?;
    out.added = sync.added;
    out.updated = sync.updated;
    if input.full && !input.sampled {
        let keep: Vec<String> = checks.iter().map(|k| k.key.clone()).collect();
        out.archived = ctx
            .store
            .archive_unsupported_inferred(c.id, &keep, &reasons)
            .await
            .map_err(store_err)?;
    }
    Ok(out)
}
