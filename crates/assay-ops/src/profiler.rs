//! The profile operation: for each container, read its rows (in parallel page ranges, or only the rows after
//! the watermark when an earlier full ctx exists), merge with the stored ctx, finalise field profiles,
//! save them with their states, and upsert the inferred checks. A failing container does not stop the others.

use crate::{Context, Ending};
use assay_core::operation::ProfileParams;
use assay_engine::profile::{FieldProfile, finalize};
use assay_engine::state::FieldState;
use assay_postgres::profile::{Column, Progress, ReadPlan, Rows};
use assay_postgres::{ConnectParams, PgError};
use assay_store::Viewer;
use assay_store::catalog::{ContainerRecord, FieldRecord};
use assay_store::operations::OperationRecord;
use assay_store::profiles::{NewContainerProfile, NewFieldProfile};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// After this many increments in a row a profile is taken in full again.
pub const REBASE_AFTER_INCREMENTS: i32 = 10;

struct Settings {
    names: Vec<String>,
    /// Only containers with any of these tags (`container_tags`).
    tags: Vec<String>,
    level: u8,
    draft: bool,
    limit: Option<u64>,
    allow_incremental: bool,
}

fn settings(p: ProfileParams) -> Settings {
    Settings {
        level: p.level(),
        draft: p.infer_as_draft,
        limit: p.row_limit(),
        allow_incremental: p.incremental,
        names: p.container_names,
        tags: p.container_tags,
    }
}

pub async fn run(ctx: &Context, op: &OperationRecord) -> Ending {
    let mut status = json!({"total_containers": 0, "containers_analyzed": 0, "records_processed": 0,
                            "fields_profiled": 0, "checks_synchronized": 0, "containers": []});
    let fail = Ending::failure;
    let s = match crate::params_of::<ProfileParams>(op) {
        Ok(p) => settings(p),
        Err(e) => return fail(e, status),
    };
    let viewer = Viewer::admin(0);
    let ds = match ctx.store.datastore(op.datastore_id, &viewer).await {
        Ok(d) => d,
        Err(e) => return fail(e.to_string(), status),
    };
    let (chosen, mut unknown) =
        match crate::choose::containers(ctx, ds.id, &s.names, &s.tags, "profile").await {
            Ok(c) => c,
            Err(e) => return fail(e, status),
        };
    status["total_containers"] = json!(chosen.len());
    let (params, conn) = match crate::source::resolve_with_connection(ctx, &ds).await {
        Ok(p) => p,
        Err(e) => return fail(e.to_string(), status),
    };
    let parallelism = conn.spec.max_parallelization.unwrap_or(2).clamp(1, 16) as usize;
    let progress = Arc::new(Progress::default());
    // report progress and pick up abort requests while containers are read
    let watcher = {
        let store = ctx.store.clone();
        let progress = progress.clone();
        let id = op.id;
        let base = status.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let mut st = base.clone();
                st["records_processed"] = json!(progress.rows.load(Ordering::Relaxed));
                if let Ok(true) = store.operation_progress(id, &st).await {
                    progress.abort.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let mut failures = Vec::new();
    let mut results = Vec::new();
    let mut aborted = false;
    // row counts of whole tables read, for the volume measurements
    let mut counted = Vec::new();
    for c in &chosen {
        if progress.abort.load(Ordering::Relaxed) {
            aborted = true;
            break;
        }
        let t0 = Instant::now();
        match profile_container(ctx, op, c, &params, parallelism, &s, progress.clone()).await {
            Ok(done) => {
                if !done.incremental && !done.sampled {
                    counted.push(crate::observe::Counted {
                        container_id: c.id,
                        rows: done.rows as i64,
                        method: "profile",
                    });
                }
                status["containers_analyzed"] =
                    json!(status["containers_analyzed"].as_i64().unwrap_or(0) + 1);
                status["fields_profiled"] =
                    json!(status["fields_profiled"].as_i64().unwrap_or(0) + done.fields);
                status["checks_synchronized"] = json!(
                    status["checks_synchronized"].as_i64().unwrap_or(0)
                        + done.checks_added
                        + done.checks_updated
                );
                results.push(json!({"container": {"id": c.id, "name": c.name}, "result": "success",
                    "records_processed": done.rows, "incremental": done.incremental, "sampled": done.sampled,
                    "profile_id": done.profile_id, "checks_added": done.checks_added, "checks_updated": done.checks_updated,
                    "checks_archived": done.checks_archived, "checks_dropped": done.dropped,
                    "duration_ms": t0.elapsed().as_millis() as u64, "message": done.note}));
            }
            Err(PgError::Aborted) => {
                aborted = true;
                results
                    .push(json!({"container": {"id": c.id, "name": c.name}, "result": "aborted"}));
                break;
            }
            Err(e) => {
                let msg = format!("{}: {e}", c.name);
                failures.push(msg.clone());
                results.push(json!({"container": {"id": c.id, "name": c.name}, "result": "failure", "message": e.to_string()}));
            }
        }
        status["containers"] = json!(results);
    }
    watcher.abort();
    status["records_processed"] = json!(progress.rows.load(Ordering::Relaxed));
    status["containers"] = json!(results);
    if !aborted {
        crate::observe::after(ctx, &ds, &chosen, &counted, op.id).await;
    }
    if aborted {
        return Ending {
            result: "aborted",
            message: Some(
                "aborted; containers finished before the abort keep their profiles".into(),
            ),
            status,
        };
    }
    unknown.sort();
    let mut notes = Vec::new();
    if !unknown.is_empty() {
        notes.push(format!("no such containers: {}", unknown.join(", ")));
    }
    if !failures.is_empty() {
        notes.push(format!("failed containers: {}", failures.join("; ")));
    }
    let all_failed = failures.len() == chosen.len();
    Ending {
        result: if all_failed { "failure" } else { "success" },
        message: (!notes.is_empty()).then(|| notes.join(". ")),
        status,
    }
}

struct Done {
    rows: u64,
    fields: i64,
    incremental: bool,
    sampled: bool,
    profile_id: i64,
    checks_added: i64,
    checks_updated: i64,
    checks_archived: i64,
    /// Candidates the newest rows did not pass, with the reason.
    dropped: Vec<Value>,
    note: Option<String>,
}

fn watermark_of(st: &FieldState, field: &FieldRecord) -> Option<String> {
    let max = st.max?;
    Some(match field.field_type.as_str() {
        "Timestamp" => chrono::DateTime::from_timestamp_micros(max as i64)?
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "Date" => chrono::DateTime::from_timestamp_micros(max as i64)?
            .format("%Y-%m-%d")
            .to_string(),
        _ => format!("{max}"),
    })
}

async fn mutations(params: &ConnectParams, rel: &str) -> Option<i64> {
    let client = params.connect().await.ok()?;
    let row = client
        .query_opt(
            "SELECT (n_tup_upd + n_tup_del)::int8 FROM pg_stat_user_tables WHERE relid = $1::text::regclass",
            &[&rel],
        )
        .await
        .ok()??;
    row.get(0)
}

async fn profile_container(
    ctx: &Context,
    op: &OperationRecord,
    c: &ContainerRecord,
    params: &ConnectParams,
    parallelism: usize,
    s: &Settings,
    progress: Arc<Progress>,
) -> Result<Done, PgError> {
    let store_err = |e: assay_store::StoreError| PgError::Property {
        field: "metadata".into(),
        message: e.to_string(),
    };
    let fields = ctx.store.fields(c.id, false).await.map_err(store_err)?;
    let ds = ctx
        .store
        .datastore(c.datastore_id, &Viewer::admin(0))
        .await
        .map_err(store_err)?;
    let rel = assay_postgres::ident::qualified(&ds.spec.schema, &c.name);
    let columns: Vec<Column> = fields
        .iter()
        .map(|f| Column {
            name: f.name.clone(),
            typname: f.typname.clone(),
            typcategory: f.typcategory.clone(),
        })
        .collect();
    let relation = crate::computed::relation_of(ctx, &ds, c)
        .await
        .map_err(|message| PgError::Property {
            field: "metadata".into(),
            message,
        })?;
    let has_relation = relation.is_some();
    let has_ctid =
        relation.is_none() && matches!(c.table_type.as_str(), "table" | "materialized_view");
    let prev = ctx.store.latest_profile(c.id).await.map_err(store_err)?;
    let strategy = c.incremental_identifier_type.clone();
    let mut note = None;
    let now_mutations = if has_ctid {
        mutations(params, &rel).await
    } else {
        None
    };

    // can this run read only the new rows?
    let mut base: Option<(Vec<FieldState>, i32, i64)> = None;
    if let (true, None, Some(p), Some(strat)) = (s.allow_incremental, s.limit, &prev, &strategy) {
        let drifted = matches!((p.profile.mutations, now_mutations), (Some(a), Some(b)) if b != a);
        if !p.profile.sampled
            && p.profile.watermark.is_some()
            && p.profile.increments < REBASE_AFTER_INCREMENTS
            && !drifted
        {
            let stored = ctx.store.profile_states(p.id).await.map_err(store_err)?;
            let same_fields = stored.len() == fields.len()
                && stored.iter().zip(&fields).all(|((n, _), f)| n == &f.name);
            let states: Option<Vec<FieldState>> = stored
                .iter()
                .map(|(_, b)| b.as_ref().and_then(|b| FieldState::from_bytes(b).ok()))
                .collect();
            let _ = strat;
            match (same_fields, states) {
                (true, Some(states)) => base = Some((states, p.profile.increments + 1, p.id)),
                (false, _) => {
                    note = Some(
                        "the fields changed since the last profile: profiled in full".to_string(),
                    )
                }
                (true, None) => {
                    note = Some(
                        "the stored profile state is from an earlier Assay: profiled in full"
                            .to_string(),
                    )
                }
            }
        } else if drifted {
            note = Some(
                "rows were updated or deleted since the last profile: profiled in full to re-base"
                    .to_string(),
            );
        } else if p.profile.increments >= REBASE_AFTER_INCREMENTS {
            note = Some(format!(
                "re-based in full after {REBASE_AFTER_INCREMENTS} incremental profiles"
            ));
        }
    }
    if strategy.is_none() {
        note.get_or_insert_with(|| {
            "no incremental field and no commit timestamps: profiled in full".to_string()
        });
    }
    let rows = match (&base, strategy.as_deref(), &prev) {
        (Some(_), Some("postgresql"), Some(p)) => Rows::CommittedAfter {
            watermark: p.profile.watermark.clone().unwrap_or_default(),
        },
        (Some(_), Some(_), Some(p)) => {
            let f = fields
                .iter()
                .find(|f| Some(&f.name) == c.incremental_field_name.as_ref());
            match f {
                Some(f) => Rows::After {
                    column: f.name.clone(),
                    sql_type: f.native_type.clone(),
                    watermark: p.profile.watermark.clone().unwrap_or_default(),
                },
                None => {
                    base = None;
                    Rows::All
                }
            }
        }
        _ => Rows::All,
    };
    let plan = ReadPlan {
        schema: ds.spec.schema.clone(),
        table: c.name.clone(),
        columns,
        rows,
        parallelism: if base.is_some() { 1 } else { parallelism },
        limit_per_partition: s.limit,
        has_ctid: has_ctid && base.is_none(),
        relation,
        // a full read keeps its newest pages apart, to validate what is inferred from the rest
        holdout: base.is_none() && s.limit.is_none(),
    };
    let t0 = Instant::now();
    let read = assay_postgres::profile::read(params, &plan, progress).await?;
    let incremental = base.is_some();
    let finalized = |states: &[FieldState]| -> Vec<FieldProfile> {
        fields
            .iter()
            .zip(states)
            .zip(&read.casts)
            .map(|((f, st), cast)| finalize(&f.name, &f.field_type, st, cast.as_deref()))
            .collect()
    };
    // the newest rows, held out from inference: the tail of a full read (an incremental profile infers from the
    // merged states, so its checks follow the data as it arrives)
    let mut split = None;
    let (states, increments, parent) = match base {
        Some((mut prev_states, inc, parent)) => {
            for (a, b) in prev_states.iter_mut().zip(&read.states) {
                a.merge(b);
            }
            (prev_states, inc, Some(parent))
        }
        None => {
            if let Some((before, tail)) = &read.split
                && before.rows > 0
                && tail.rows > 0
            {
                split = Some((
                    finalized(&before.states),
                    before.rows,
                    finalized(&tail.states),
                ));
            }
            (read.states, 0, None)
        }
    };
    let sampled = s.limit.is_some();
    let records = states.first().map(|s| s.count).unwrap_or(read.rows);
    let watermark = match strategy.as_deref() {
        Some("postgresql") => Some(read.started_at.clone()),
        Some(_) => fields
            .iter()
            .position(|f| Some(&f.name) == c.incremental_field_name.as_ref())
            .and_then(|i| watermark_of(&states[i], &fields[i]))
            .or_else(|| prev.as_ref().and_then(|p| p.profile.watermark.clone())),
        None => None,
    };
    let profiles: Vec<FieldProfile> = finalized(&states);
    let new_fields: Vec<NewFieldProfile> = fields
        .iter()
        .zip(&states)
        .zip(&profiles)
        .map(|((f, st), p)| NewFieldProfile {
            field_id: Some(f.id),
            name: f.name.clone(),
            profile: serde_json::to_value(p).unwrap_or(Value::Null),
            state: (!sampled).then(|| st.to_bytes()),
        })
        .collect();
    let cp = NewContainerProfile {
        operation_id: Some(op.id),
        container_id: c.id,
        records_count: records as i64,
        records_processed: read.rows as i64,
        bytes: Some(read.bytes),
        duration_ms: t0.elapsed().as_millis() as i64,
        partitions: read.partitions as i32,
        sampled,
        sample_limit: s.limit.map(|n| n as i64),
        incremental,
        strategy: strategy.clone(),
        watermark,
        increments,
        mutations: now_mutations,
        parent_profile_id: parent,
        message: note.clone(),
    };
    let profile_id = ctx
        .store
        .save_profile(&cp, &new_fields)
        .await
        .map_err(store_err)?;
    let table = (!has_relation).then_some((ds.spec.schema.as_str(), c.name.as_str()));
    let inferred = crate::inference::run(
        ctx,
        params,
        crate::inference::Inputs {
            container: c,
            fields: &fields,
            all: &profiles,
            rows: records,
            split,
            level: s.level,
            draft: s.draft,
            sampled,
            full: !incremental && !sampled,
            table,
        },
    )
    .await?;
    tracing::info!(
        container_id = c.id,
        rows = read.rows,
        incremental,
        "ContainerProfiled"
    );
    Ok(Done {
        rows: read.rows,
        fields: fields.len() as i64,
        incremental,
        sampled,
        profile_id,
        checks_added: inferred.added,
        checks_updated: inferred.updated,
        checks_archived: inferred.archived,
        dropped: inferred.dropped,
        note,
    })
}
