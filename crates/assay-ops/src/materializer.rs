//! The materialize operation: each chosen container of a source datastore (tables, views and computed
//! containers, read through the same relation as profiles and scans) is copied into its linked enrichment
//! datastore as `<prefix>_mat_<name>`, one transaction per container, so a failure leaves the previous
//! snapshot of that container in place and the other containers still finish.

use crate::Context;
use crate::Ending;
use assay_core::operation::MaterializeParams;
use assay_postgres::ident::qualified;
use assay_store::Viewer;
use assay_store::operations::OperationRecord;
use serde_json::{Value, json};

pub async fn run(ctx: &Context, op: &OperationRecord) -> Ending {
    let fail = Ending::failure;
    let viewer = Viewer::admin(0);
    let ds = match ctx.store.datastore(op.datastore_id, &viewer).await {
        Ok(d) => d,
        Err(e) => return fail(e.to_string(), json!({})),
    };
    let Some(link) = &ds.enrichment else {
        return fail(
            format!(
                "datastore '{}' has no enrichment datastore; link one before materializing",
                ds.spec.name
            ),
            json!({}),
        );
    };
    let p = match crate::params_of::<MaterializeParams>(op) {
        Ok(p) => p,
        Err(e) => return fail(e, json!({})),
    };
    let (chosen, unknown) = match crate::choose::containers(
        ctx,
        ds.id,
        &p.container_names,
        &p.container_tags,
        "materialize",
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return fail(e, json!({})),
    };
    let limit = p.row_limit();
    let target = match crate::enrichment::enrichment_target(ctx, &ds, link.id).await {
        Ok(t) => t,
        Err(e) => return fail(e, json!({})),
    };
    let mut enrichment = match target.params.connect().await {
        Ok(c) => c,
        Err(e) => return fail(e.to_string(), json!({})),
    };
    let (source, _) = match crate::source::open_read_only(ctx, &ds).await {
        Ok(c) => c,
        Err(e) => return fail(e.to_string(), json!({})),
    };
    let mut results: Vec<Value> = unknown
        .iter()
        .map(|n| json!({"name": n, "result": "failure", "message": "no such container; run a sync or check the name"}))
        .collect();
    let mut failed = unknown.len();
    for c in &chosen {
        if let Ok(true) = ctx.store.abort_requested(op.id).await {
            return Ending {
                result: "aborted",
                message: Some("aborted; containers done so far keep their new snapshot".into()),
                status: json!({"containers": results}),
            };
        }
        let relation = match crate::computed::relation_of(ctx, &ds, c).await {
            Ok(r) => r.unwrap_or_else(|| qualified(&ds.spec.schema, &c.name)),
            Err(e) => {
                failed += 1;
                results.push(json!({"container_id": c.id, "name": c.name, "result": "failure", "message": e}));
                continue;
            }
        };
        let r = assay_enrichment::materialize::copy(
            &source,
            &relation,
            limit,
            &mut enrichment,
            &target.schema,
            &target.prefix,
            &target.params.user,
            &c.name,
            c.id,
        )
        .await;
        match r {
            Ok(m) => results.push(
                json!({"container_id": c.id, "name": c.name, "result": "success",
                "table": m.table, "records": m.rows, "fields_as_text": m.as_text}),
            ),
            Err(e) => {
                failed += 1;
                results.push(
                    json!({"container_id": c.id, "name": c.name, "result": "failure",
                    "message": e.to_string()}),
                );
            }
        }
    }
    let total = chosen.len() + unknown.len();
    let status = json!({"total_containers": total, "containers": results});
    match failed {
        0 => Ending {
            result: "success",
            message: None,
            status,
        },
        n => Ending {
            result: "failure",
            message: Some(format!(
                "{n} of {total} containers could not be materialized; see each container's message"
            )),
            status,
        },
    }
}
