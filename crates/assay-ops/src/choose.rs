//! Which containers of a datastore an operation (profile, scan, materialize) runs on: all of them, or those
//! named in `container_names` and/or tagged with any of `container_tags`.

use crate::Context;
use assay_store::Viewer;
use assay_store::catalog::{ContainerFilter, ContainerRecord};

/// The chosen containers, and the names asked for that match none. Fails when nothing is left to `verb`.
pub async fn containers(
    ctx: &Context,
    datastore_id: i64,
    names: &[String],
    tags: &[String],
    verb: &str,
) -> Result<(Vec<ContainerRecord>, Vec<String>), String> {
    let filter = ContainerFilter {
        datastores: vec![datastore_id],
        tags: tags.to_vec(),
        ..Default::default()
    };
    let (all, _) = ctx
        .store
        .list_containers(&Viewer::admin(0), &filter, 1, 100_000)
        .await
        .map_err(|e| e.to_string())?;
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !all.iter().any(|c| &c.name == *n))
        .cloned()
        .collect();
    let chosen: Vec<ContainerRecord> = all
        .into_iter()
        .filter(|c| names.is_empty() || names.contains(&c.name))
        .collect();
    if chosen.is_empty() {
        return Err(if unknown.is_empty() {
            format!("no containers to {verb}: run a sync first")
        } else {
            format!(
                "no such containers: {}; run a sync or check the names",
                unknown.join(", ")
            )
        });
    }
    Ok((chosen, unknown))
}
