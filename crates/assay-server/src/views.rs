//! The API's JSON shapes for stored records (Qualytics field names). Secrets never appear here: a connection's
//! password and a secrets manager's credentials payload are write-only.

use assay_core::catalog::TableKind;
use assay_core::connection::Port;
use assay_store::catalog::{ContainerRecord, FieldRecord};
use assay_store::connections::ConnectionRecord;
use assay_store::datastores::DatastoreRecord;
use assay_store::operations::OperationRecord;
use assay_store::users::{Team, User};
use serde_json::{Value, json};

pub fn page(items: Vec<Value>, total: i64, page: i64, size: i64) -> Value {
    let pages = if total == 0 {
        0
    } else {
        (total + size - 1) / size
    };
    json!({"items": items, "total": total, "page": page, "size": size, "pages": pages})
}

fn port(p: &Port) -> Value {
    match p {
        Port::Number(n) => json!(n),
        Port::Reference(s) => json!(s),
    }
}

pub fn connection(r: &ConnectionRecord) -> Value {
    let s = &r.spec;
    json!({
        "id": r.id,
        "name": s.name,
        "type": s.connector,
        "connection_type": "jdbc",
        "host": s.host,
        "port": port(&s.port),
        "username": s.username,
        "parameters": s.parameters,
        "max_parallelization": s.max_parallelization,
        "jdbc_fetch_size": s.jdbc_fetch_size,
        "secrets_manager": s.secrets_manager.as_ref().map(|sm| json!({
            "login_url": sm.login_url,
            "token_jsonpath": sm.token_jsonpath,
            "secret_url": sm.secret_url,
            "token_header_name": sm.token_header_name,
            "data_jsonpath": sm.data_jsonpath,
        })),
        "product_name": "PostgreSQL",
        "created": r.created,
        "datastores": r.datastores,
    })
}

pub fn datastore(r: &DatastoreRecord, latest: Option<&OperationRecord>, scheduled: bool) -> Value {
    let s = &r.spec;
    json!({
        "id": r.id,
        "name": s.name,
        "description": s.description,
        "created": r.created,
        "store_type": "jdbc",
        "type": r.connector,
        "connection_id": r.connection_id,
        "host": r.host,
        "database": s.database,
        "schema": s.schema,
        "enrichment_only": s.enrichment_only,
        "enrichment_prefix": s.enrichment_prefix,
        "enrichment_source_record_limit": s.enrichment_source_record_limit,
        "enrichment_remediation_strategy": s.enrichment_remediation_strategy.as_str(),
        "high_count_rollup_threshold": s.high_count_rollup_threshold,
        "teams": r.teams,
        "tags": r.tags,
        "global_tags": r.tags.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
        "enrich_datastore": r.enrichment,
        "linked_datastores": r.linked_datastores,
        "has_scheduled_operations": scheduled,
        "latest_operation": latest.map(operation),
    })
}

pub fn operation(o: &OperationRecord) -> Value {
    let mut v = json!({
        "id": o.id,
        "type": o.op_type,
        "datastore_id": o.datastore_id,
        "datastore": {"id": o.datastore_id, "name": o.datastore_name},
        "created": o.created,
        "start_time": o.start_time,
        "end_time": o.end_time,
        "result": o.result,
        "message": o.message,
        "detail": o.detail,
        "status": if o.status.is_object() { o.status.clone() } else { json!({}) },
        "triggered_by": o.triggered_by,
        "schedule": o.schedule.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
        "aborted_by": o.aborted_by,
        "abort_requested": o.abort_requested,
    });
    // echo the run parameters (include, prune, recreate, ...) without overwriting the fields above
    with_params(&mut v, &o.params);
    v
}

/// Adds an operation's parameters (as `operations/run` takes them) to a view, keeping the view's own fields.
fn with_params(v: &mut Value, params: &Value) {
    if let (Some(params), Some(obj)) = (params.as_object(), v.as_object_mut()) {
        for (k, val) in params {
            obj.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
}

pub fn container(c: &ContainerRecord) -> Value {
    let mut v = container_base(c);
    // a computed join shows its definition (container ids, keys, clauses) and its own type
    if let (Some(Value::Object(d)), Some(obj)) = (&c.definition, v.as_object_mut()) {
        for (k, val) in d {
            obj.insert(k.clone(), val.clone());
        }
    }
    v
}

fn container_base(c: &ContainerRecord) -> Value {
    let kind = TableKind::parse(&c.table_type).unwrap_or(TableKind::Table);
    json!({
        "id": c.id,
        "name": c.name,
        "container_type": kind.container_type(),
        "table_type": c.table_type,
        "datastore": {"id": c.datastore_id, "name": c.datastore_name},
        "created": c.created,
        "deleted_at": c.deleted_at,
        "status": if c.deleted_at.is_some() { "Inaccessible" } else { "Available" },
        "description": c.description.clone().or_else(|| c.remarks.clone()),
        "query": c.query,
        "additional_metadata": c.additional_metadata,
        "tags": c.tags,
        "primary_key": c.primary_key,
        "incremental_identifier_type": c.incremental_identifier_type,
        "incremental_field_name": c.incremental_field_name,
        "incremental_checkpoint": c.incremental_checkpoint,
        "incremental_candidates": c.incremental_candidates,
        "partition_field": c.incremental_field_name,
        "row_estimate": c.row_estimate,
        "last_synced": c.last_synced,
        "computed_fields": [],
        "global_tags": c.tags.as_array().map(|a| a.iter().map(|t| json!({"name": t})).collect::<Vec<_>>()).unwrap_or_default(),
        "metrics": {"fields": c.field_count, "records": c.row_estimate},
        "volumetric_tracking_enabled": c.observability.volumetric_tracking_enabled,
        "freshness_tracking_enabled": c.observability.freshness_tracking_enabled,
        "automate_volumetric_checks": c.observability.automate_volumetric_checks,
        "automate_freshness_checks": c.observability.automate_freshness_checks,
        "latest_observability_measurement": c.latest_measurement,
    })
}

pub fn field(f: &FieldRecord, primary_key: &[String]) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "type": f.field_type,
        "native_type": f.native_type,
        "nullable": f.nullable,
        "ordinal": f.ordinal,
        "primary_key": primary_key.contains(&f.name),
        "sequence_backed": f.sequence_backed,
        "description": f.remarks,
        "status": if f.deleted_at.is_some() { "missing" } else { "active" },
        "deleted_at": f.deleted_at,
        "created": f.created,
        "container_id": f.container_id,
    })
}

pub fn user(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "name": u.name,
        "email": u.email,
        "role": u.role,
        "user_type": "Human",
        "created": u.created,
        "teams": u.teams,
    })
}

pub fn team(t: &Team) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "created": t.created,
        "members": t.members,
        "is_public": t.name == assay_core::datastore::PUBLIC_TEAM,
    })
}

/// A schedule, with its next instant (`next_run`) and what became of its newest one (`last_run`).
pub fn schedule(
    r: &assay_store::schedules::ScheduleRecord,
    next: Option<chrono::DateTime<chrono::Utc>>,
) -> Value {
    let mut v = json!({
        "id": r.id,
        "name": r.name,
        "type": r.op_type,
        "trigger_type": "operation",
        "datastore_id": r.datastore_id,
        "datastore": {"id": r.datastore_id, "name": r.datastore_name},
        "cron": r.cron,
        "interval_seconds": r.interval_seconds,
        "enabled": r.enabled,
        "created": r.created,
        "updated": r.updated,
        "created_by": r.created_by,
        "next_run": next,
        "last_run": r.last.as_ref().map(instant),
    });
    // the operation's parameters, as `operations/run` takes them
    with_params(&mut v, &r.params);
    v
}

/// What became of one instant of a schedule.
pub fn instant(i: &assay_store::schedules::InstantRecord) -> Value {
    json!({"instant": i.instant, "outcome": i.outcome, "operation_id": i.operation_id, "reason": i.reason,
           "fired_at": i.fired_at})
}
