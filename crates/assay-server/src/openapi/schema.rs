//! The schemas of the OpenAPI document: path and query parameters of each route, the JSON body each accepts
//! (as its handler reads it), and the shared body schemas they refer to.

use assay_core::datastore::{MAX_ROLLUP_THRESHOLD, MAX_SOURCE_RECORD_LIMIT};
use serde_json::{Value, json};

/// The type of a path parameter: names are text, everything else is an integer id.
pub(super) fn path_param(name: &str) -> Value {
    let schema = if name == "tag_name" {
        json!({"type": "string", "minLength": 1})
    } else {
        json!({"type": "integer"})
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn query(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema})
}

fn int() -> Value {
    json!({"type": "integer"})
}
fn text() -> Value {
    json!({"type": "string"})
}
fn boolean() -> Value {
    json!({"type": "boolean"})
}
fn texts() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}
fn ints() -> Value {
    json!({"type": "array", "items": {"type": "integer"}})
}
fn one_of(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}
fn day() -> Value {
    json!({"type": "string", "format": "date"})
}
pub(super) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The query parameters of a route besides the path's own: pagination on every list, and each list's filters.
pub(super) fn query_params(method: &str, path: &str) -> Vec<Value> {
    let paged = [
        "/connections",
        "/datastores",
        "/containers",
        "/containers/{container_id}/profiles",
        "/containers/{container_id}/measurements",
        "/containers/{container_id}/scans",
        "/field-profiles",
        "/quality-checks",
        "/quality-checks/{check_id}/metrics",
        "/anomalies",
        "/global-tags",
        "/operations",
        "/operations/schedules",
        "/operations/schedules/{schedule_id}/instants",
        "/flows",
        "/flows/{flow_id}/executions",
        "/users",
        "/teams",
    ];
    let mut out = Vec::new();
    if method == "get" && paged.contains(&path) {
        out.push(query(
            "page",
            json!({"type": "integer", "minimum": 1, "default": 1, "description": "1-based page number"}),
        ));
        out.push(query(
            "size",
            json!({"type": "integer", "minimum": 1, "maximum": crate::params::MAX_SIZE,
                   "default": crate::params::DEFAULT_SIZE,
                   "description": "items per page; larger sizes are refused with 422, never cut short"}),
        ));
    }
    let archived = one_of(&["only", "include", "true", "false"]);
    let extra: Vec<(&str, Value)> = match (method, path) {
        ("get", "/connections") => vec![("name", text()), ("type", text())],
        ("get", "/datastores") => vec![
            ("name", text()),
            ("search", text()),
            ("enrichment_only", boolean()),
            ("datastore_type", text()),
            ("tag", text()),
        ],
        ("get", "/containers") => vec![
            ("datastore", int()),
            ("name", text()),
            ("search", text()),
            (
                "container_type",
                one_of(&["table", "view", "computed_table", "computed_join"]),
            ),
            ("tag", text()),
            ("archived", archived.clone()),
        ],
        ("get", "/containers/listing") => vec![("datastore", int())],
        ("get", "/containers/{container_id}/field-profiles") => vec![("profile_id", int())],
        ("get", "/field-profiles") => vec![
            ("datastore", int()),
            ("container", int()),
            ("profile_id", int()),
        ],
        ("get", "/quality-checks") => vec![
            ("datastore", int()),
            ("container", int()),
            ("rule_type", text()),
            ("tag", text()),
            ("status", text()),
            ("archived", archived.clone()),
            ("template_only", boolean()),
        ],
        ("delete", "/quality-checks/{check_id}") => vec![
            ("archive", boolean()),
            ("status", one_of(&["Discarded", "Invalid"])),
            ("delete_anomalies", boolean()),
        ],
        ("get", "/anomalies") => vec![
            ("datastore", int()),
            ("container", int()),
            ("quality_check", int()),
            ("operation", int()),
            (
                "status",
                one_of(&[
                    "Active",
                    "Acknowledged",
                    "Resolved",
                    "Invalid",
                    "Duplicate",
                    "Discarded",
                ]),
            ),
            ("archived", archived),
            ("anomaly_type", one_of(&["record", "shape"])),
            ("rule_type", text()),
            ("tag", text()),
            ("start_date", day()),
            ("end_date", day()),
            ("source_enriched", boolean()),
            ("sort_created", one_of(&["asc", "desc"])),
        ],
        ("delete", "/anomalies/{anomaly_id}") => vec![
            ("archive", boolean()),
            (
                "status",
                one_of(&["Resolved", "Invalid", "Duplicate", "Discarded"]),
            ),
        ],
        ("get", "/anomalies/{anomaly_id}/source-records") => vec![("source", text())],
        ("get", "/operations") => vec![
            ("datastore", int()),
            (
                "operation_type",
                one_of(&assay_core::operation::OperationType::NAMES),
            ),
            ("result", text()),
            ("finished", boolean()),
            ("start_date", day()),
            ("end_date", day()),
            ("sort_created", one_of(&["asc", "desc"])),
        ],
        ("post", "/export/anomalies" | "/export/checks" | "/export/field-profiles") => {
            vec![("datastore", int()), ("containers", int())]
        }
        ("post", "/export/check-templates") => vec![("enrich_datastore_id", int())],
        ("patch", "/datastores/{datastore_id}/enrichment/{enrichment_id}") => {
            vec![("enrichment_prefix", text())]
        }
        ("get" | "delete", "/datastores/{datastore_id}/enrichment-tables") => {
            vec![("prefix", text())]
        }
        _ => Vec::new(),
    };
    out.extend(extra.into_iter().map(|(n, s)| query(n, s)));
    out
}

/// The JSON body a route accepts, as the handlers read it (unknown keys are ignored; `null` means not given).
pub(super) fn request_body(method: &str, path: &str) -> Option<Value> {
    let object = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required});
    let schema = match (method, path) {
        ("post", "/auth/login") => object(
            json!({"username": text(), "password": text()}),
            &["username", "password"],
        ),
        ("post", "/connections") => extend(
            "Connection",
            json!({}),
            &["name", "type", "host", "username"],
        ),
        ("post", "/connections/test") => extend("Connection", json!({"database": text()}), &[]),
        ("put", "/connections/{connection_id}") => schema_ref("Connection"),
        ("post", "/connections/{connection_id}/test") => {
            extend("Connection", json!({"database": text()}), &[])
        }
        ("post", "/datastores") => extend("Datastore", json!({}), &["name", "database", "schema"]),
        ("post", "/datastores/connection") => schema_ref("Datastore"),
        ("put", "/datastores/{datastore_id}") => schema_ref("Datastore"),
        ("patch", "/datastores/{datastore_id}/enrichment/{enrichment_id}") => {
            object(json!({"enrichment_prefix": text(), "prefix": text()}), &[])
        }
        ("post", "/quality-checks") => extend("QualityCheck", json!({}), &["container_id", "rule"]),
        ("put", "/quality-checks/{check_id}") => schema_ref("QualityCheck"),
        ("delete", "/quality-checks") => json!({"type": "array", "items": object(
            json!({"id": int(), "archive": boolean(), "status": one_of(&["Discarded", "Invalid"]),
                   "delete_anomalies": boolean()}),
            &["id"],
        )}),
        ("put", "/anomalies/{anomaly_id}") => schema_ref("AnomalyChange"),
        ("patch", "/anomalies") => {
            json!({"type": "array", "items": extend("AnomalyChange", json!({"id": int()}), &["id"])})
        }
        ("delete", "/anomalies") => json!({"type": "array", "items": object(
            json!({"id": int(), "archive": boolean(),
                   "status": one_of(&["Resolved", "Invalid", "Duplicate", "Discarded"])}),
            &["id"],
        )}),
        ("post", "/containers") => extend("ComputedContainer", json!({}), &["name"]),
        ("post", "/containers/validate") => schema_ref("ComputedContainer"),
        ("put", "/containers/{container_id}") => extend(
            "ComputedContainer",
            json!({"tags": texts(), "force_drop_fields": boolean(),
                   "volumetric_tracking_enabled": boolean(), "freshness_tracking_enabled": boolean(),
                   "automate_volumetric_checks": boolean(), "automate_freshness_checks": boolean()}),
            &[],
        ),
        ("patch", "/containers") => json!({"type": "array", "items": object(
            json!({"id": int(), "description": text(), "tags": texts()}),
            &["id"],
        )}),
        ("post", "/computed-fields") => extend(
            "ComputedField",
            json!({"container_id": int()}),
            &["container_id", "name"],
        ),
        ("put", "/computed-fields/{field_id}") => schema_ref("ComputedField"),
        ("post", "/global-tags") => object(
            json!({"name": text(), "weight_modifier": int(), "type": text(), "color": text(),
                   "description": text(), "category": text()}),
            &["name"],
        ),
        ("post", "/quality-check-templates") => object(
            json!({"rule": rule_names(), "description": text(), "coverage": coverage(),
                   "filter": text(), "properties": {"type": "object"}, "tags": texts(),
                   "template_locked": boolean(), "additional_metadata": {"type": "object"}}),
            &["rule"],
        ),
        ("post", "/operations/run") => schema_ref("OperationRun"),
        ("post", "/operations/schedule") => schema_ref("Schedule"),
        ("post", "/flows") => schema_ref("Flow"),
        ("put", "/flows/{flow_id}") => schema_ref("FlowChange"),
        ("put", "/operations/schedules/{schedule_id}") => schema_ref("ScheduleChange"),
        ("post", "/users") => object(
            json!({"username": text(), "name": text(), "email": text(), "password": text(),
                   "role": one_of(&["Admin", "Member"]), "teams": texts()}),
            &["username"],
        ),
        ("post", "/teams") => object(json!({"name": text(), "description": text()}), &["name"]),
        ("post", "/teams/{team_id}/members") => {
            object(json!({"user_id": int(), "username": text()}), &[])
        }
        ("post", "/tokens") => object(
            json!({"name": text(), "user_id": int(),
                   "days": {"type": "integer", "minimum": 0, "description": "0: no expiry"}}),
            &[],
        ),
        _ => return None,
    };
    Some(json!({"required": false, "content": {"application/json": {"schema": schema}}}))
}

/// A shared body schema with more properties and required keys, written out in full (generators handle a flat
/// object better than `allOf`).
fn extend(name: &str, more: Value, required: &[&str]) -> Value {
    let mut schema = schemas()[name].clone();
    if let (Some(props), Some(more)) = (schema["properties"].as_object_mut(), more.as_object()) {
        props.extend(more.clone());
    }
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn rule_names() -> Value {
    let names: Vec<&str> = assay_core::rules::RULES.iter().map(|r| r.name).collect();
    json!({"type": "string", "enum": names})
}

fn coverage() -> Value {
    json!({"type": ["number", "null"], "minimum": 0, "maximum": 1})
}

/// The shared body schemas.
pub(super) fn schemas() -> Value {
    let mut all = base_schemas();
    // a schedule takes an operation's parameters, and its own name, cadence and state
    let mut props = all["OperationRun"]["properties"].clone();
    props["name"] = text();
    props["cron"] =
        json!({"type": "string", "description": "5 fields (minute hour day month weekday), UTC"});
    props["preset"] = one_of(&["hourly", "daily", "weekly", "monthly"]);
    props["interval_seconds"] = json!({"type": "integer", "minimum": 60});
    props["enabled"] = boolean();
    all["Schedule"] = json!({"type": "object", "required": ["name", "datastore_id", "type"],
                             "properties": props.clone()});
    all["ScheduleChange"] = json!({"type": "object", "properties": props});
    let flow = json!({
        "name": text(), "description": text(), "active": boolean(),
        "secrets_manager": {"type": "object", "required": ["secret_url"], "properties": {
            "login_url": text(), "credentials_payload": text(), "token_jsonpath": text(),
            "secret_url": text(), "token_header_name": text(), "data_jsonpath": text()}},
        "trigger": {"type": "object", "required": ["type"], "properties": {
            "type": one_of(&["operation", "anomaly", "anomaly_status"]),
            "operation_types": {"type": "array", "items": one_of(&assay_core::operation::OperationType::NAMES)},
            "results": {"type": "array", "items": one_of(&["success", "warning", "failure", "aborted"])},
            "statuses": texts()}},
        "filters": {"type": "object", "properties": {
            "datastores": {"type": "array", "items": {"type": "integer"}}, "containers": texts(), "tags": texts(),
            "rule_types": texts(), "min_weight": {"type": "integer", "minimum": 0}, "only_new": boolean()}},
        "actions": {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
            "type": one_of(&["webhook", "slack", "teams"]), "url": {"type": "string", "format": "uri"},
            "secret": {"type": "string", "minLength": 16}}}},
    });
    all["Flow"] = json!({"type": "object", "required": ["name", "trigger", "actions"], "properties": flow.clone()});
    all["FlowChange"] = json!({"type": "object", "properties": flow});
    all
}

fn base_schemas() -> Value {
    let nullable_text = json!({"type": ["string", "null"]});
    json!({
        "Error": {"type": "object", "required": ["detail"], "properties": {
            "detail": text(),
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "field": text(), "message": text()}}}}},
        "SecretsManager": {"type": "object", "properties": {
            "login_url": text(), "credentials_payload": {"type": ["object", "string"]},
            "token_jsonpath": text(), "secret_url": text(), "token_header_name": text(),
            "data_jsonpath": text()}},
        "Connection": {"type": "object", "properties": {
            "name": text(), "type": one_of(&["postgresql"]), "host": text(),
            "port": {"type": ["integer", "string"], "description": "1-65535 or a ${key} reference"},
            "username": text(), "password": text(), "parameters": {"type": "object"},
            "max_parallelization": int(), "jdbc_fetch_size": int(),
            "secrets_manager": {"oneOf": [schema_ref("SecretsManager"), {"type": "null"}]}}},
        "Datastore": {"type": "object", "properties": {
            "name": text(), "database": text(), "schema": text(), "description": nullable_text,
            "connection_id": int(), "connection": schema_ref("Connection"),
            "enrichment_only": boolean(), "enrich_only": boolean(), "enrichment_prefix": text(),
            "enrichment_source_record_limit": {"type": "integer", "minimum": 1, "maximum": MAX_SOURCE_RECORD_LIMIT},
            "high_count_rollup_threshold": {"type": "integer", "minimum": 1, "maximum": MAX_ROLLUP_THRESHOLD},
            "enrichment_remediation_strategy": one_of(&["none", "append", "overwrite"]),
            "teams": texts(), "trigger_catalog": boolean(), "trigger_sync": boolean(),
            "default_volumetric_tracking_enabled": boolean(), "default_freshness_tracking_enabled": boolean(),
            "default_automate_volumetric_checks": boolean(), "default_automate_freshness_checks": boolean()}},
        "QualityCheck": {"type": "object", "properties": {
            "container_id": int(), "rule": rule_names(), "description": text(), "fields": texts(),
            "coverage": coverage(), "filter": {"type": ["string", "null"]},
            "properties": {"type": ["object", "null"]}, "status": one_of(&["Active", "Draft"]),
            "tags": texts(), "additional_metadata": {"type": ["object", "null"]},
            "anomaly_message_field": {"type": ["string", "null"]}, "owner_id": int()}},
        "AnomalyChange": {"type": "object", "properties": {
            "status": one_of(&["Active", "Acknowledged"]), "description": text(), "tags": texts(),
            "assignee_ids": ints()}},
        "ComputedContainer": {"type": "object", "properties": {
            "container_type": one_of(&["computed_table", "computed_join"]), "name": text(),
            "description": text(), "datastore_id": int(), "query": text(),
            "left_container_id": int(), "right_container_id": int(),
            "left_join_field_name": text(), "right_join_field_name": text(),
            "select_clause": text(), "join_type": one_of(&["inner", "left", "right", "full"]),
            "left_prefix": text(), "right_prefix": text(), "where_clause": text(),
            "group_by_clause": text()}},
        "ComputedField": {"type": "object", "properties": {
            "name": text(), "transformation": text(), "transformation_type": text(),
            "source_fields": texts(), "properties": {"type": "object"},
            "additional_metadata": {"type": "object"}}},
        "OperationRun": {"type": "object", "required": ["datastore_id", "type"], "properties": {
            "datastore_id": int(),
            "type": one_of(&assay_core::operation::OperationType::NAMES),
            "container_names": texts(), "container_tags": texts(),
            "include": {"type": "array", "items": one_of(&["table", "view"])},
            "prune": boolean(), "recreate": boolean(),
            "ai_effort": text(), "inference_threshold": {"type": "integer", "minimum": 0, "maximum": 5},
            "infer_as_draft": boolean(), "max_records_analyzed_per_partition": int(),
            "incremental": boolean(),
            "enrichment_source_record_limit": {"type": "integer", "minimum": 1, "maximum": MAX_SOURCE_RECORD_LIMIT},
            "high_count_rollup_threshold": {"type": "integer", "minimum": 1, "maximum": MAX_ROLLUP_THRESHOLD},
            "auto_resolve_passed_anomalies": boolean(),
            "archive_duplicate_anomalies": boolean(),
            "reactivate_recurring_anomalies": boolean(),
            "greater_than_time": {"type": "string", "format": "date-time"},
            "greater_than_batch": {"type": "number"},
            "asset_type": one_of(&["anomalies", "checks", "profiles"]), "include_deleted": boolean(),
            "max_records_per_partition": int()}},
    })
}
