//! The sync operation: read the schema's catalog on one session and apply it to the datastore's containers and
//! fields in one metadata transaction (upserts by name, vanished objects marked or pruned).

use crate::{Context, Ending};
use assay_core::operation::SyncParams;
use assay_store::Viewer;
use assay_store::operations::OperationRecord;
use serde_json::json;

/// Sync: read the schema's catalog and apply it to the containers and fields of the datastore.
pub async fn run(ctx: &Context, op: &OperationRecord) -> Ending {
    let mut status =
        json!({"total_containers": 0, "containers_analyzed": 0, "records_processed": 0});
    let ds = match ctx
        .store
        .datastore(op.datastore_id, &Viewer::admin(0))
        .await
    {
        Ok(d) => d,
        Err(e) => return Ending::failure(format!("datastore {}: {e}", op.datastore_id), status),
    };
    let p = match crate::params_of::<SyncParams>(op) {
        Ok(p) => p,
        Err(e) => return Ending::failure(e, status),
    };
    let (kinds, prune, recreate) = (p.kinds(), p.prune, p.recreate);
    let (client, params) = match crate::source::open(ctx, &ds).await {
        Ok(c) => c,
        Err(e) => return Ending::failure(e.to_string(), status),
    };
    let snapshot = match assay_postgres::catalog::discover(&client, &params, &ds.spec.schema).await
    {
        Ok(s) => s,
        Err(e) => {
            return Ending::failure(
                format!(
                    "cannot read the catalog of datastore '{}': {e}",
                    ds.spec.name
                ),
                status,
            );
        }
    };
    let wanted = snapshot
        .tables
        .iter()
        .filter(|t| kinds.iter().any(|k| k == t.kind.container_type()))
        .count();
    status["total_containers"] = json!(wanted);
    match ctx.store.operation_progress(op.id, &status).await {
        Ok(true) => {
            return Ending {
                result: "aborted",
                message: Some("aborted before the catalog was saved".into()),
                status,
            };
        }
        Ok(false) => {}
        Err(e) => return Ending::failure(format!("metadata store: {e}"), status),
    }
    let outcome = match ctx
        .store
        .apply_sync(
            ds.id,
            &snapshot.tables,
            snapshot.commit_timestamps,
            &kinds,
            prune,
            recreate,
        )
        .await
    {
        Ok(o) => o,
        Err(e) => return Ending::failure(format!("cannot save the catalog: {e}"), status),
    };
    status["containers_analyzed"] = json!(outcome.containers);
    status["containers_added"] = json!(outcome.added);
    status["containers_updated"] = json!(outcome.updated);
    status["containers_restored"] = json!(outcome.restored);
    status["containers_missing"] = json!(outcome.missing);
    status["containers_pruned"] = json!(outcome.pruned);
    status["fields_synced"] = json!(outcome.fields);
    status["commit_timestamps"] = json!(snapshot.commit_timestamps);
    if let Ok((containers, _)) = crate::choose::containers(ctx, ds.id, &[], &[], "measure").await {
        crate::observe::after(ctx, &ds, &containers, &[], op.id).await;
    }
    // success with a message is the UI's "warning"
    let message = if outcome.containers == 0 {
        Some(format!(
            "schema \"{}\" has no tables or views this role can see; check the schema name and the role's grants",
            ds.spec.schema
        ))
    } else {
        None
    };
    Ending {
        result: "success",
        message,
        status,
    }
}
