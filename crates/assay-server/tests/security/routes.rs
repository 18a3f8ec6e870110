//! The team-isolation cases of every route of the route table: for each method and path, the requests a member
//! of team A makes with team B's ids (in the path, the query or the body) and the answer each must get. A route
//! missing here is reported as unclassified, so the table cannot grow without a case.

use crate::common::Api;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Expect {
    /// 404 with a JSON detail.
    NotFound,
    /// A reference in a query or body to a record A cannot see: refused as if it did not exist (404 or 422).
    Refused,
    /// A list filtered by B's id: empty (or 404 for a listing of one datastore).
    Empty,
    /// Admin-only: 403.
    Forbidden,
    /// Not team-scoped (the user directory, tags, templates, the rule catalogue): anything but a server error,
    /// and nothing of B's in the answer.
    Global,
}

pub(crate) struct Case {
    pub method: String,
    pub path: String,
    pub body: Option<Value>,
    pub expect: Expect,
}

#[derive(Clone, Copy)]
pub(crate) struct Ids {
    pub a_ds: i64,
    pub a_enr: i64,
    pub a_container: i64,
    pub b_conn: i64,
    pub b_ds: i64,
    pub b_enr: i64,
    pub b_container: i64,
    pub b_computed: i64,
    pub b_field: i64,
    pub b_computed_field: i64,
    pub b_check: i64,
    pub b_anomaly: i64,
    pub b_op: i64,
    pub b_profile: i64,
    pub b_schedule: i64,
    pub team_b: i64,
    pub alice: i64,
    pub bob: i64,
}

/// The cases of one route of the table; `None` when the route is not classified.
pub(crate) fn cases(method: &str, template: &str, i: &Ids, a_db: &str) -> Option<Vec<Case>> {
    use Expect::*;
    let case = |path: String, body: Option<Value>, expect: Expect| Case {
        method: method.to_string(),
        path,
        body,
        expect,
    };
    let each = |ids: &[i64], param: &str, body: Option<Value>, expect: Expect| -> Vec<Case> {
        ids.iter()
            .map(|id| {
                case(
                    template.replace(param, &id.to_string()),
                    body.clone(),
                    expect,
                )
            })
            .collect()
    };
    let b_datastores = [i.b_ds, i.b_enr];
    let b_containers = [i.b_container, i.b_computed];
    let run = |ds: i64| -> Vec<Case> {
        ["sync", "profile", "scan", "export", "materialize"]
            .iter()
            .map(|t| {
                case(
                    template.to_string(),
                    Some(json!({"datastore_id": ds, "type": t, "asset_type": "anomalies"})),
                    Refused,
                )
            })
            .collect()
    };
    let v = match (method, template) {
        (
            "GET",
            "/status"
            | "/health"
            | "/health/ready"
            | "/openapi.json"
            | "/docs"
            | "/quality-checks/spec",
        ) => {
            vec![case(template.into(), None, Global)]
        }
        ("POST", "/auth/login") => vec![case(
            template.into(),
            Some(json!({"username": "alice", "password": "alice-password"})),
            Global,
        )],
        (
            "GET",
            "/connections" | "/datastores" | "/containers" | "/users" | "/teams" | "/global-tags",
        ) => {
            vec![case(format!("{template}?size=500"), None, Global)]
        }
        ("GET", "/users/me") => vec![case(template.into(), None, Global)],
        ("GET", "/users/{user_id}") => each(&[i.alice, i.bob], "{user_id}", None, Global),
        ("GET", "/teams/{team_id}") => each(&[i.team_b], "{team_id}", None, Global),
        ("POST", "/connections") => vec![case(
            template.into(),
            Some(Api::conn_body("alpha-own-conn", "alpha_nobody", "alpha-pw")),
            Global,
        )],
        ("POST", "/connections/test") => vec![case(template.into(), Some(json!({})), Global)],
        ("GET" | "DELETE", "/connections/{connection_id}") => {
            each(&[i.b_conn], "{connection_id}", None, NotFound)
        }
        ("PUT", "/connections/{connection_id}") => each(
            &[i.b_conn],
            "{connection_id}",
            Some(json!({"host": "alpha.invalid", "password": "alpha-chosen"})),
            NotFound,
        ),
        ("POST", "/connections/{connection_id}/test") => each(
            &[i.b_conn],
            "{connection_id}",
            Some(json!({"host": "127.0.0.1", "database": a_db})),
            NotFound,
        ),
        ("POST", "/datastores") => vec![case(
            template.into(),
            Some(
                json!({"name": "alpha-borrowed", "connection_id": i.b_conn, "database": a_db,
                        "schema": "public", "teams": ["TeamA"], "trigger_sync": false}),
            ),
            Refused,
        )],
        ("POST", "/datastores/connection") => vec![case(
            template.into(),
            Some(json!({"connection_id": i.b_conn, "database": a_db, "schema": "public"})),
            Refused,
        )],
        ("GET" | "DELETE", "/datastores/{datastore_id}")
        | ("POST", "/datastores/{datastore_id}/connection")
        | ("GET", "/datastores/{datastore_id}/schemas")
        | ("DELETE", "/datastores/{datastore_id}/enrichment")
        | ("GET" | "DELETE", "/datastores/{datastore_id}/enrichment-tables") => {
            each(&b_datastores, "{datastore_id}", None, NotFound)
        }
        ("PUT", "/datastores/{datastore_id}") => each(
            &b_datastores,
            "{datastore_id}",
            Some(json!({"description": "alpha was here", "teams": ["TeamA"]})),
            NotFound,
        ),
        ("PATCH", "/datastores/{datastore_id}/enrichment/{enrichment_id}") => vec![
            case(
                format!("/datastores/{}/enrichment/{}", i.b_ds, i.a_enr),
                None,
                NotFound,
            ),
            case(
                format!("/datastores/{}/enrichment/{}?prefix=alpha", i.a_ds, i.b_enr),
                None,
                NotFound,
            ),
        ],
        ("GET", "/containers/listing") => vec![case(
            format!("{template}?datastore={}", i.b_ds),
            None,
            Empty,
        )],
        ("GET", "/containers/{container_id}")
        | ("GET", "/containers/{container_id}/fields")
        | ("GET", "/containers/{container_id}/profiles")
        | ("GET", "/containers/{container_id}/measurements")
        | ("GET", "/containers/{container_id}/scans")
        | ("DELETE", "/containers/{container_id}") => {
            each(&b_containers, "{container_id}", None, NotFound)
        }
        ("GET", "/containers/{container_id}/field-profiles") => {
            let mut v = each(&b_containers, "{container_id}", None, NotFound);
            v.push(case(
                format!(
                    "/containers/{}/field-profiles?profile_id={}",
                    i.a_container, i.b_profile
                ),
                None,
                Empty,
            ));
            v
        }
        ("PUT", "/containers/{container_id}") => each(
            &b_containers,
            "{container_id}",
            Some(json!({"description": "alpha was here", "tags": []})),
            NotFound,
        ),
        ("POST", "/containers") => vec![
            case(
                template.into(),
                Some(
                    json!({"container_type": "computed_table", "name": "alpha_peek", "datastore_id": i.b_ds,
                            "query": "SELECT 1 AS one"}),
                ),
                Refused,
            ),
            case(
                template.into(),
                Some(
                    json!({"container_type": "computed_join", "name": "alpha_join",
                            "left_container_id": i.a_container, "right_container_id": i.b_container,
                            "left_join_field_name": "id", "right_join_field_name": "id",
                            "select_clause": "left_id"}),
                ),
                Refused,
            ),
        ],
        ("PATCH", "/containers") => vec![case(
            template.into(),
            Some(json!([{"id": i.a_container, "description": "alpha"},
                        {"id": i.b_container, "description": "alpha was here"}])),
            Refused,
        )],
        ("POST", "/containers/validate") => vec![case(
            template.into(),
            Some(
                json!({"container": {"container_type": "computed_table", "name": "alpha_peek",
                                      "datastore_id": i.b_ds, "query": "SELECT 1 AS one"}}),
            ),
            Refused,
        )],
        ("POST", "/computed-fields") => vec![case(
            template.into(),
            Some(
                json!({"container_id": i.b_container, "name": "alpha_cf", "transformation": "customExpression",
                        "properties": {"column_expression": "1"}}),
            ),
            Refused,
        )],
        ("PUT", "/computed-fields/{field_id}") => each(
            &[i.b_computed_field],
            "{field_id}",
            Some(
                json!({"name": "alpha_cf", "transformation": "customExpression",
                        "properties": {"column_expression": "2"}}),
            ),
            NotFound,
        ),
        ("DELETE", "/computed-fields/{field_id}") => {
            each(&[i.b_computed_field], "{field_id}", None, NotFound)
        }
        ("POST", "/global-tags") => vec![case(
            template.into(),
            Some(json!({"name": "alpha-tag"})),
            Global,
        )],
        ("GET" | "DELETE", "/global-tags/{tag_name}") => {
            vec![case(
                template.replace("{tag_name}", "alpha-tag"),
                None,
                Global,
            )]
        }
        ("POST", "/quality-check-templates") => vec![case(
            template.into(),
            Some(json!({"rule": "notNull", "description": "alpha template"})),
            Global,
        )],
        ("GET", "/field-profiles") => vec![
            case(
                format!("{template}?container={}", i.b_container),
                None,
                Empty,
            ),
            case(format!("{template}?datastore={}", i.b_ds), None, Empty),
            case(
                format!("{template}?profile_id={}", i.b_profile),
                None,
                Empty,
            ),
        ],
        ("GET", "/quality-checks") => vec![
            case(format!("{template}?datastore={}", i.b_ds), None, Empty),
            case(
                format!("{template}?container={}", i.b_container),
                None,
                Empty,
            ),
        ],
        ("POST", "/quality-checks") => vec![
            case(
                template.into(),
                Some(
                    json!({"container_id": i.b_container, "rule": "notNull", "fields": ["id"],
                            "description": "alpha check", "properties": {}}),
                ),
                Refused,
            ),
            // A's own container, B's as the reference
            case(
                template.into(),
                Some(
                    json!({"container_id": i.a_container, "rule": "isReplicaOf", "fields": ["id"],
                            "properties": {"ref_container_id": i.b_container}}),
                ),
                Refused,
            ),
            case(
                template.into(),
                Some(
                    json!({"container_id": i.a_container, "rule": "aggregationComparison", "fields": [],
                            "properties": {"expression": "count(*)", "comparison": "eq",
                                           "ref_expression": "count(*)", "ref_container_id": i.b_container}}),
                ),
                Refused,
            ),
        ],
        ("DELETE", "/quality-checks") => vec![case(
            template.into(),
            Some(json!([{"id": i.b_check, "archive": false}])),
            Refused,
        )],
        ("GET" | "DELETE", "/quality-checks/{check_id}")
        | ("GET", "/quality-checks/{check_id}/metrics") => {
            each(&[i.b_check], "{check_id}", None, NotFound)
        }
        ("PUT", "/quality-checks/{check_id}") => each(
            &[i.b_check],
            "{check_id}",
            Some(json!({"description": "alpha was here"})),
            NotFound,
        ),
        ("GET", "/anomalies") => vec![
            case(format!("{template}?datastore={}", i.b_ds), None, Empty),
            case(
                format!("{template}?container={}", i.b_container),
                None,
                Empty,
            ),
            case(
                format!("{template}?quality_check={}", i.b_check),
                None,
                Empty,
            ),
            case(format!("{template}?operation={}", i.b_op), None, Empty),
        ],
        ("PATCH", "/anomalies") => vec![case(
            template.into(),
            Some(json!([{"id": i.b_anomaly, "status": "Acknowledged"}])),
            Refused,
        )],
        ("DELETE", "/anomalies") => vec![case(
            template.into(),
            Some(json!([{"id": i.b_anomaly, "archive": false}])),
            Refused,
        )],
        ("GET" | "DELETE", "/anomalies/{anomaly_id}") => {
            each(&[i.b_anomaly], "{anomaly_id}", None, NotFound)
        }
        ("GET", "/anomalies/{anomaly_id}/source-records") => vec![
            case(
                format!("/anomalies/{}/source-records", i.b_anomaly),
                None,
                NotFound,
            ),
            case(
                format!(
                    "/anomalies/{}/source-records?source=enrichment",
                    i.b_anomaly
                ),
                None,
                NotFound,
            ),
        ],
        ("PUT", "/anomalies/{anomaly_id}") => each(
            &[i.b_anomaly],
            "{anomaly_id}",
            Some(json!({"status": "Acknowledged"})),
            NotFound,
        ),
        ("POST", "/export/anomalies" | "/export/checks" | "/export/field-profiles") => vec![case(
            format!("{template}?datastore={}", i.b_ds),
            None,
            NotFound,
        )],
        ("POST", "/export/check-templates") => vec![case(
            format!("{template}?enrich_datastore_id={}", i.b_enr),
            None,
            NotFound,
        )],
        ("GET", "/operations") => vec![case(
            format!("{template}?datastore={}", i.b_ds),
            None,
            Empty,
        )],
        ("POST", "/operations/run") => run(i.b_ds).into_iter().chain(run(i.b_enr)).collect(),
        ("GET", "/operations/{operation_id}") | ("PUT", "/operations/abort/{operation_id}") => {
            each(&[i.b_op], "{operation_id}", None, NotFound)
        }
        // flows see every datastore: an administrator's
        ("GET" | "POST", "/flows") => vec![case(
            template.into(),
            Some(json!({"name": "alpha", "trigger": {"type": "anomaly"}, "actions": []})),
            Forbidden,
        )],
        ("GET" | "PUT" | "DELETE", "/flows/{flow_id}")
        | ("POST", "/flows/{flow_id}/activate")
        | ("POST", "/flows/{flow_id}/deactivate")
        | ("POST", "/flows/{flow_id}/test")
        | ("GET", "/flows/{flow_id}/executions") => {
            each(&[i.b_op], "{flow_id}", Some(json!({})), Forbidden)
        }
        ("POST", "/operations/schedule") => vec![case(
            template.into(),
            Some(
                json!({"name": "alpha-made", "datastore_id": i.b_ds, "type": "scan", "preset": "daily"}),
            ),
            Refused,
        )],
        ("GET", "/operations/schedules") => vec![case(
            format!("{template}?datastore={}", i.b_ds),
            None,
            Empty,
        )],
        ("GET" | "DELETE", "/operations/schedules/{schedule_id}")
        | ("POST", "/operations/schedules/{schedule_id}/enable")
        | ("POST", "/operations/schedules/{schedule_id}/disable")
        | ("GET", "/operations/schedules/{schedule_id}/instants") => {
            each(&[i.b_schedule], "{schedule_id}", None, NotFound)
        }
        ("PUT", "/operations/schedules/{schedule_id}") => each(
            &[i.b_schedule],
            "{schedule_id}",
            Some(json!({"name": "alpha-renamed"})),
            NotFound,
        ),
        ("POST", "/users") => vec![case(
            template.into(),
            Some(
                json!({"username": "alpha-made", "password": "alpha-made-pw", "teams": ["TeamB"]}),
            ),
            Forbidden,
        )],
        ("POST", "/teams") => vec![case(
            template.into(),
            Some(json!({"name": "alpha-team"})),
            Forbidden,
        )],
        ("POST", "/teams/{team_id}/members") => each(
            &[i.team_b],
            "{team_id}",
            Some(json!({"user_id": i.alice})),
            Forbidden,
        ),
        ("POST", "/tokens") => vec![case(
            template.into(),
            Some(json!({"user_id": i.bob, "name": "alpha-borrowed"})),
            Forbidden,
        )],
        _ => return None,
    };
    Some(v)
}
