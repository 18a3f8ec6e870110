//! Which flows an event matches, and the message of each execution. An operation's end is one event (a scan's
//! anomalies are summarised in it, never one message per anomaly); the status changes written by one transaction
//! (a bulk acknowledge) are grouped into one event.

use super::message;
use crate::Context;
use assay_core::flow::{Filters, Trigger};
use assay_store::StoreError;
use assay_store::Viewer;
use assay_store::anomalies::{AnomalyFilter, AnomalyRecord};
use assay_store::flows::{FlowEvent, FlowRecord, NewExecution};
use assay_store::operations::OperationRecord;
use std::collections::BTreeMap;

/// The result label a flow matches: a success with a message is a warning.
pub fn result_label(op: &OperationRecord) -> &str {
    match (op.result.as_str(), &op.message) {
        ("success", Some(_)) => "warning",
        (r, _) => r,
    }
}

/// Whether an anomaly passes a flow's filters. "Only new" leaves out duplicates and anomalies that recur (their
/// fingerprint was reported before).
pub fn passes(f: &Filters, a: &AnomalyRecord) -> bool {
    let tags: Vec<&str> = a
        .tags
        .as_array()
        .map(|t| t.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    (f.datastores.is_empty() || f.datastores.contains(&a.datastore_id))
        && (f.containers.is_empty() || f.containers.contains(&a.container_name))
        && (f.tags.is_empty() || f.tags.iter().any(|t| tags.contains(&t.as_str())))
        && (f.rule_types.is_empty()
            || a.failed_checks
                .iter()
                .any(|c| f.rule_types.contains(&c.rule_type)))
        && f.min_weight.is_none_or(|w| i64::from(a.weight) >= w)
        && !(f.only_new
            && (a.status == "Duplicate" || a.fingerprint_source.is_some() || a.recurrences > 0))
}

pub async fn plan(ctx: &Context, events: Vec<FlowEvent>) -> Result<Vec<NewExecution>, StoreError> {
    let flows = ctx.store.active_flows().await?;
    if flows.is_empty() {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    let mut status_groups: BTreeMap<i64, Vec<FlowEvent>> = BTreeMap::new();
    for e in events {
        match (e.kind.as_str(), e.operation_id) {
            ("operation_ended", Some(op)) => {
                operation_ended(ctx, &flows, e.id, op, &mut out).await?
            }
            _ => status_groups.entry(e.txid).or_default().push(e),
        }
    }
    for (_, group) in status_groups {
        status_changed(ctx, &flows, group, &mut out).await?;
    }
    Ok(out)
}

async fn operation_ended(
    ctx: &Context,
    flows: &[FlowRecord],
    event: i64,
    op_id: i64,
    out: &mut Vec<NewExecution>,
) -> Result<(), StoreError> {
    let op = match ctx.store.operation(op_id, &Viewer::admin(0)).await {
        Ok(op) => op,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let anomalies = if op.op_type == "scan" {
        let f = AnomalyFilter {
            operation: Some(op.id),
            archived: Some(false),
            ..Default::default()
        };
        ctx.store
            .list_anomalies(&Viewer::admin(0), &f, 1, 1000)
            .await?
            .0
    } else {
        vec![]
    };
    for flow in flows {
        let f = &flow.spec.filters;
        if !(f.datastores.is_empty() || f.datastores.contains(&op.datastore_id)) {
            continue;
        }
        let kept: Vec<&AnomalyRecord> = anomalies.iter().filter(|a| passes(f, a)).collect();
        let trigger = match &flow.spec.trigger {
            Trigger::Operation {
                operation_types,
                results,
            } if (operation_types.is_empty() || operation_types.contains(&op.op_type))
                && (results.is_empty() || results.iter().any(|r| r == result_label(&op))) =>
            {
                "operation"
            }
            Trigger::Anomaly if op.op_type == "scan" && !kept.is_empty() => "anomaly",
            _ => continue,
        };
        let m = message::for_operation(ctx, flow, &op, &kept);
        out.push(NewExecution {
            flow_id: flow.id,
            event_id: event,
            trigger: trigger.into(),
            summary: m.summary.clone(),
            message: m.to_json(),
            action_types: flow
                .spec
                .actions
                .iter()
                .map(|a| a.kind().to_string())
                .collect(),
        });
    }
    Ok(())
}

async fn status_changed(
    ctx: &Context,
    flows: &[FlowRecord],
    group: Vec<FlowEvent>,
    out: &mut Vec<NewExecution>,
) -> Result<(), StoreError> {
    let Some(first) = group.first().map(|e| e.id) else {
        return Ok(());
    };
    let mut changes = Vec::new();
    for e in &group {
        let Some(id) = e.anomaly_id else { continue };
        match ctx.store.anomaly(id, &Viewer::admin(0)).await {
            Ok(a) => changes.push((
                a,
                e.old_status.clone().unwrap_or_default(),
                e.new_status.clone().unwrap_or_default(),
            )),
            Err(StoreError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
    }
    for flow in flows {
        let Trigger::AnomalyStatus { statuses } = &flow.spec.trigger else {
            continue;
        };
        let kept: Vec<&(AnomalyRecord, String, String)> = changes
            .iter()
            .filter(|(a, _, new)| {
                (statuses.is_empty() || statuses.contains(new)) && passes(&flow.spec.filters, a)
            })
            .collect();
        if kept.is_empty() {
            continue;
        }
        let m = message::for_status_changes(ctx, flow, &kept);
        out.push(NewExecution {
            flow_id: flow.id,
            event_id: first,
            trigger: "anomaly_status".into(),
            summary: m.summary.clone(),
            message: m.to_json(),
            action_types: flow
                .spec
                .actions
                .iter()
                .map(|a| a.kind().to_string())
                .collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn anomaly(status: &str, source: Option<i64>, recurrences: i32) -> AnomalyRecord {
        let now = chrono::Utc::now();
        AnomalyRecord {
            id: 1,
            uuid: String::new(),
            operation_id: Some(1),
            datastore_id: 1,
            datastore_name: "ds".into(),
            container_id: 1,
            container_name: "orders".into(),
            kind: "record".into(),
            status: status.into(),
            anomalous_records_count: 1,
            fingerprint: "f".into(),
            fingerprint_source: source,
            message: None,
            description: None,
            tags: json!([]),
            assignee_ids: json!([]),
            source_records: json!([]),
            source_enriched: false,
            weight: 1,
            created: now,
            updated: now,
            archived_at: None,
            failed_checks: vec![],
            is_new: true,
            last_seen: now,
            times_seen: 1,
            recurrences,
        }
    }

    #[test]
    fn only_new_leaves_out_duplicates_and_recurring_anomalies() {
        let only_new = Filters {
            only_new: true,
            ..Filters::default()
        };
        assert!(passes(&only_new, &anomaly("Active", None, 0)));
        assert!(!passes(&only_new, &anomaly("Duplicate", Some(7), 0)));
        assert!(!passes(&only_new, &anomaly("Active", None, 1)));
        assert!(passes(&Filters::default(), &anomaly("Active", None, 1)));
    }
}
