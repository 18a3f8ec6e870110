//! The message of a flow execution, version 1 of the payload: one JSON document per execution, with the flow, what
//! triggered it, the operation and datastore, the anomalies summarised (their count, the rule types that failed
//! most, and at most ten of them with a link to each in the UI). Webhooks receive it as it is; Slack gets it as a
//! Block Kit message and Teams as an adaptive card, built from the same document.

use crate::Context;
use assay_store::anomalies::AnomalyRecord;
use assay_store::flows::FlowRecord;
use assay_store::operations::OperationRecord;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The payload version receivers can rely on.
pub const VERSION: u32 = 1;
/// How many anomalies a message lists (the count covers all).
const LISTED: usize = 10;

pub struct Message {
    pub summary: String,
    body: Value,
}

impl Message {
    pub fn to_json(&self) -> Value {
        self.body.clone()
    }
}

fn link(ctx: &Context, path: &str) -> String {
    format!("{}{path}", ctx.settings.public_url.trim_end_matches('/'))
}

fn anomalies_part(ctx: &Context, anomalies: &[&AnomalyRecord]) -> Value {
    let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
    for a in anomalies {
        for c in &a.failed_checks {
            *rules.entry(c.rule_type.as_str()).or_default() += 1;
        }
    }
    let mut top: Vec<(&str, usize)> = rules.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    json!({
        "count": anomalies.len(),
        "records": anomalies.iter().map(|a| a.anomalous_records_count).sum::<i64>(),
        "top_failed_checks": top.iter().take(5).map(|(r, n)| json!({"rule_type": r, "anomalies": n})).collect::<Vec<_>>(),
        "items": anomalies.iter().take(LISTED).map(|a| json!({
            "id": a.id, "uuid": a.uuid, "table": a.container_name, "type": a.kind, "status": a.status,
            "records": a.anomalous_records_count, "message": a.message,
            "rule_types": a.failed_checks.iter().map(|c| c.rule_type.clone()).collect::<Vec<_>>(),
            "url": link(ctx, &format!("/anomalies/{}", a.id)),
        })).collect::<Vec<_>>(),
    })
}

/// The message of an operation's end (with a scan's anomalies that passed the filters).
pub fn for_operation(
    ctx: &Context,
    flow: &FlowRecord,
    op: &OperationRecord,
    anomalies: &[&AnomalyRecord],
) -> Message {
    let label = super::matching::result_label(op);
    let mut summary = format!("{} of {} ended: {label}", op.op_type, op.datastore_name);
    if op.op_type == "scan" {
        let tables: std::collections::BTreeSet<&str> = anomalies
            .iter()
            .map(|a| a.container_name.as_str())
            .collect();
        summary.push_str(&format!(
            ", {} anomal{} in {} table{}",
            anomalies.len(),
            if anomalies.len() == 1 { "y" } else { "ies" },
            tables.len(),
            if tables.len() == 1 { "" } else { "s" }
        ));
    }
    let body = json!({
        "version": VERSION,
        "summary": summary,
        "flow": {"id": flow.id, "name": flow.spec.name},
        "event": "operation_ended",
        "datastore": {"id": op.datastore_id, "name": op.datastore_name,
                      "url": link(ctx, &format!("/datastores/{}", op.datastore_id))},
        "operation": {"id": op.id, "type": op.op_type, "result": label, "message": op.message,
                      "start_time": op.start_time, "end_time": op.end_time,
                      "url": link(ctx, &format!("/datastores/{}/activity", op.datastore_id))},
        "anomalies": anomalies_part(ctx, anomalies),
    });
    Message { summary, body }
}

/// The message of anomalies whose status changed in one transaction.
pub fn for_status_changes(
    ctx: &Context,
    flow: &FlowRecord,
    changes: &[&(AnomalyRecord, String, String)],
) -> Message {
    let anomalies: Vec<&AnomalyRecord> = changes.iter().map(|(a, ..)| a).collect();
    let to: std::collections::BTreeSet<&str> = changes.iter().map(|(_, _, n)| n.as_str()).collect();
    let summary = format!(
        "{} anomal{} of {} changed status to {}",
        changes.len(),
        if changes.len() == 1 { "y" } else { "ies" },
        anomalies[0].datastore_name,
        to.into_iter().collect::<Vec<_>>().join(", ")
    );
    let body = json!({
        "version": VERSION,
        "summary": summary,
        "flow": {"id": flow.id, "name": flow.spec.name},
        "event": "anomaly_status_changed",
        "datastore": {"id": anomalies[0].datastore_id, "name": anomalies[0].datastore_name},
        "changes": changes.iter().map(|(a, old, new)| json!({"anomaly_id": a.id, "from": old, "to": new})).collect::<Vec<_>>(),
        "anomalies": anomalies_part(ctx, &anomalies),
    });
    Message { summary, body }
}

/// A sample message, for the Test of a flow's actions.
pub fn sample(ctx: &Context, flow: &FlowRecord) -> Value {
    json!({
        "version": VERSION,
        "summary": format!("Test message of flow '{}'", flow.spec.name),
        "flow": {"id": flow.id, "name": flow.spec.name},
        "event": "test",
        "anomalies": {"count": 0, "records": 0, "top_failed_checks": [], "items": []},
        "link": link(ctx, "/"),
    })
}

/// The body an action type receives for a message.
pub fn render(action_type: &str, m: &Value, delivery_id: &str) -> Value {
    match action_type {
        "slack" => slack(m),
        "teams" => teams(m),
        _ => {
            let mut v = m.clone();
            v["delivery_id"] = json!(delivery_id);
            v
        }
    }
}

/// The rule types that failed most, as `rule (anomalies)`.
pub(super) fn top_failed_checks(m: &Value) -> Vec<String> {
    m["anomalies"]["top_failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{} ({})",
                t["rule_type"].as_str().unwrap_or(""),
                t["anomalies"]
            )
        })
        .collect()
}

fn lines(m: &Value) -> (String, Vec<String>, String) {
    let top = top_failed_checks(m);
    let items: Vec<String> = m["anomalies"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "<{}|#{}> {} · {}",
                a["url"].as_str().unwrap_or(""),
                a["id"],
                a["table"].as_str().unwrap_or(""),
                a["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    (
        m["summary"].as_str().unwrap_or("").to_string(),
        items,
        top.join(", "),
    )
}

fn slack(m: &Value) -> Value {
    let (summary, items, top) = lines(m);
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{summary}*")}}),
    ];
    if !top.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("Top failed checks: {top}")}]}));
    }
    if !items.is_empty() {
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": items.join("\n")}}));
    }
    json!({"text": summary, "blocks": blocks})
}

fn teams(m: &Value) -> Value {
    let (summary, _, top) = lines(m);
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": summary}),
    ];
    if !top.is_empty() {
        body.push(
            json!({"type": "TextBlock", "wrap": true, "text": format!("Top failed checks: {top}")}),
        );
    }
    let facts: Vec<Value> = m["anomalies"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            json!({"title": format!("#{} {}", a["id"], a["table"].as_str().unwrap_or("")),
                         "value": a["message"].as_str().unwrap_or("")})
        })
        .collect();
    if !facts.is_empty() {
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    let mut actions = vec![];
    if let Some(url) = m["datastore"]["url"].as_str() {
        actions.push(json!({"type": "Action.OpenUrl", "title": "Open in Assay", "url": url}));
    }
    json!({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                    "version": "1.4", "body": body, "actions": actions}
    }]})
}
