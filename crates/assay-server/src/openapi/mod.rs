//! The OpenAPI document served at `/api/openapi.json`: every route the server has, from one table; the
//! parameters and bodies of each route come from `schema.rs`.

mod schema;

use schema::{path_param, query_params, request_body, schema_ref, schemas};
use serde_json::{Map, Value, json};

/// (method, path under `/api`, summary, tag).
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("get", "/status", "Service status (public)", "system"),
    ("get", "/health", "Liveness probe (public, 204)", "system"),
    (
        "get",
        "/health/ready",
        "Readiness probe (public): 200 when the metadata store answers, its migrations are applied and the runner claims work, else 503",
        "system",
    ),
    ("get", "/openapi.json", "This document", "system"),
    (
        "get",
        "/docs",
        "This document in Swagger UI (HTML, public)",
        "system",
    ),
    (
        "post",
        "/auth/login",
        "Exchange a username and password for an API token",
        "auth",
    ),
    ("get", "/connections", "List connections", "connections"),
    ("post", "/connections", "Create a connection", "connections"),
    (
        "post",
        "/connections/test",
        "Test an unsaved connection",
        "connections",
    ),
    (
        "get",
        "/connections/{connection_id}",
        "Get a connection",
        "connections",
    ),
    (
        "put",
        "/connections/{connection_id}",
        "Update a connection",
        "connections",
    ),
    (
        "delete",
        "/connections/{connection_id}",
        "Delete an unused connection",
        "connections",
    ),
    (
        "post",
        "/connections/{connection_id}/test",
        "Test a saved connection, optionally with overrides",
        "connections",
    ),
    ("get", "/datastores", "List datastores", "datastores"),
    ("post", "/datastores", "Create a datastore", "datastores"),
    (
        "post",
        "/datastores/connection",
        "Test an unsaved datastore with its permission preflight",
        "datastores",
    ),
    (
        "get",
        "/datastores/{datastore_id}",
        "Get a datastore",
        "datastores",
    ),
    (
        "put",
        "/datastores/{datastore_id}",
        "Update a datastore",
        "datastores",
    ),
    (
        "delete",
        "/datastores/{datastore_id}",
        "Delete a datastore",
        "datastores",
    ),
    (
        "post",
        "/datastores/{datastore_id}/connection",
        "Test a datastore with its permission preflight",
        "datastores",
    ),
    (
        "get",
        "/datastores/{datastore_id}/schemas",
        "List the user schemas of a datastore's database",
        "datastores",
    ),
    (
        "delete",
        "/datastores/{datastore_id}/enrichment",
        "Unlink the enrichment datastore",
        "datastores",
    ),
    (
        "patch",
        "/datastores/{datastore_id}/enrichment/{enrichment_id}",
        "Link an enrichment datastore",
        "datastores",
    ),
    ("get", "/containers", "List containers", "containers"),
    (
        "get",
        "/containers/listing",
        "All containers of a datastore (bare array)",
        "containers",
    ),
    (
        "get",
        "/containers/{container_id}",
        "Get a container",
        "containers",
    ),
    (
        "get",
        "/containers/{container_id}/fields",
        "Fields of a container (bare array)",
        "containers",
    ),
    (
        "get",
        "/containers/{container_id}/field-profiles",
        "Field profiles of the latest profile ({items, total})",
        "profiles",
    ),
    (
        "get",
        "/containers/{container_id}/profiles",
        "Profile history of a container",
        "profiles",
    ),
    (
        "get",
        "/containers/{container_id}/measurements",
        "Volume and freshness measurements of a container, newest first ({items, total})",
        "profiles",
    ),
    ("get", "/field-profiles", "List field profiles", "profiles"),
    ("get", "/quality-checks", "List quality checks", "checks"),
    (
        "post",
        "/quality-checks",
        "Create a quality check",
        "checks",
    ),
    (
        "delete",
        "/quality-checks",
        "Archive or delete several quality checks",
        "checks",
    ),
    (
        "get",
        "/quality-checks/spec",
        "The rule type catalogue",
        "checks",
    ),
    (
        "get",
        "/quality-checks/{check_id}",
        "Get a quality check",
        "checks",
    ),
    (
        "put",
        "/quality-checks/{check_id}",
        "Update a quality check",
        "checks",
    ),
    (
        "delete",
        "/quality-checks/{check_id}",
        "Archive or delete a quality check",
        "checks",
    ),
    (
        "get",
        "/quality-checks/{check_id}/metrics",
        "A check's measurements, scan by scan",
        "checks",
    ),
    ("get", "/anomalies", "List anomalies", "anomalies"),
    (
        "patch",
        "/anomalies",
        "Update several anomalies",
        "anomalies",
    ),
    (
        "delete",
        "/anomalies",
        "Archive or delete several anomalies",
        "anomalies",
    ),
    (
        "get",
        "/anomalies/{anomaly_id}",
        "Get an anomaly",
        "anomalies",
    ),
    (
        "put",
        "/anomalies/{anomaly_id}",
        "Update an anomaly",
        "anomalies",
    ),
    (
        "delete",
        "/anomalies/{anomaly_id}",
        "Archive or delete an anomaly",
        "anomalies",
    ),
    (
        "get",
        "/anomalies/{anomaly_id}/source-records",
        "An anomaly's offending rows",
        "anomalies",
    ),
    (
        "get",
        "/containers/{container_id}/scans",
        "A container's scans, newest first",
        "catalog",
    ),
    (
        "post",
        "/export/anomalies",
        "Export anomalies to the enrichment datastore",
        "export",
    ),
    (
        "post",
        "/export/checks",
        "Export quality checks to the enrichment datastore",
        "export",
    ),
    (
        "post",
        "/export/field-profiles",
        "Export field profiles to the enrichment datastore",
        "export",
    ),
    (
        "post",
        "/export/check-templates",
        "Export check templates to an enrichment datastore (204)",
        "export",
    ),
    (
        "get",
        "/datastores/{datastore_id}/enrichment-tables",
        "The enrichment tables Assay created for a prefix",
        "datastores",
    ),
    (
        "delete",
        "/datastores/{datastore_id}/enrichment-tables",
        "Drop exactly the enrichment tables Assay created for a prefix",
        "datastores",
    ),
    ("post", "/containers", "Create a computed table", "catalog"),
    (
        "patch",
        "/containers",
        "Set tags or descriptions of several containers",
        "catalog",
    ),
    (
        "post",
        "/containers/validate",
        "Check a computed table definition with the source",
        "catalog",
    ),
    (
        "put",
        "/containers/{container_id}",
        "Update a container",
        "catalog",
    ),
    (
        "delete",
        "/containers/{container_id}",
        "Delete a computed table",
        "catalog",
    ),
    (
        "post",
        "/computed-fields",
        "Create a computed field",
        "catalog",
    ),
    (
        "put",
        "/computed-fields/{field_id}",
        "Update a computed field",
        "catalog",
    ),
    (
        "delete",
        "/computed-fields/{field_id}",
        "Delete a computed field",
        "catalog",
    ),
    ("get", "/global-tags", "List global tags", "tags"),
    ("post", "/global-tags", "Create a global tag", "tags"),
    ("get", "/global-tags/{tag_name}", "Get a global tag", "tags"),
    (
        "delete",
        "/global-tags/{tag_name}",
        "Delete a global tag",
        "tags",
    ),
    (
        "post",
        "/quality-check-templates",
        "Create a check template",
        "checks",
    ),
    ("get", "/operations", "List operations", "operations"),
    ("post", "/operations/run", "Run an operation", "operations"),
    (
        "get",
        "/operations/{operation_id}",
        "Get an operation",
        "operations",
    ),
    (
        "put",
        "/operations/abort/{operation_id}",
        "Abort an operation",
        "operations",
    ),
    ("get", "/flows", "List flows (admin)", "flows"),
    (
        "post",
        "/flows",
        "Create a flow: trigger, filters, actions (admin)",
        "flows",
    ),
    ("get", "/flows/{flow_id}", "Get a flow (admin)", "flows"),
    (
        "put",
        "/flows/{flow_id}",
        "Change a flow; actions keep their URL and secret unless given (admin)",
        "flows",
    ),
    (
        "delete",
        "/flows/{flow_id}",
        "Delete a flow (admin)",
        "flows",
    ),
    (
        "post",
        "/flows/{flow_id}/activate",
        "Activate a flow (admin)",
        "flows",
    ),
    (
        "post",
        "/flows/{flow_id}/deactivate",
        "Deactivate a flow (admin)",
        "flows",
    ),
    (
        "post",
        "/flows/{flow_id}/test",
        "Send a sample message to every action now (admin)",
        "flows",
    ),
    (
        "get",
        "/flows/{flow_id}/executions",
        "A flow's executions with each delivery and attempt (admin)",
        "flows",
    ),
    (
        "post",
        "/operations/schedule",
        "Schedule an operation (cron in UTC, a preset or an interval)",
        "schedules",
    ),
    (
        "get",
        "/operations/schedules",
        "List schedules",
        "schedules",
    ),
    (
        "get",
        "/operations/schedules/{schedule_id}",
        "Get a schedule with its next and last run",
        "schedules",
    ),
    (
        "put",
        "/operations/schedules/{schedule_id}",
        "Change a schedule (the keys given)",
        "schedules",
    ),
    (
        "delete",
        "/operations/schedules/{schedule_id}",
        "Delete a schedule",
        "schedules",
    ),
    (
        "post",
        "/operations/schedules/{schedule_id}/enable",
        "Enable a schedule (instants count from now)",
        "schedules",
    ),
    (
        "post",
        "/operations/schedules/{schedule_id}/disable",
        "Disable a schedule",
        "schedules",
    ),
    (
        "get",
        "/operations/schedules/{schedule_id}/instants",
        "What became of each due instant (queued or skipped)",
        "schedules",
    ),
    ("get", "/users", "List users", "users"),
    ("post", "/users", "Create a user (admin)", "users"),
    ("get", "/users/me", "The signed-in user", "users"),
    ("get", "/users/{user_id}", "Get a user", "users"),
    ("get", "/teams", "List teams", "teams"),
    ("post", "/teams", "Create a team (admin)", "teams"),
    ("get", "/teams/{team_id}", "Get a team", "teams"),
    (
        "post",
        "/teams/{team_id}/members",
        "Add a user to a team (admin)",
        "teams",
    ),
    ("post", "/tokens", "Create an API token", "auth"),
];

pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, summary, tag) in ROUTES {
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(path_param)
            .collect();
        params.extend(query_params(method, path));
        let entry = paths
            .entry(format!("/api{path}"))
            .or_insert_with(|| json!({}));
        let error = json!({"description": "Error: {\"detail\": ...}",
                           "content": {"application/json": {"schema": schema_ref("Error")}}});
        let mut op = json!({
            "summary": summary,
            "tags": [tag],
            "operationId": format!("{method}_{}", path.replace(['/', '{', '}', '.'], "_").trim_matches('_')),
            "parameters": params,
            "responses": {"200": {"description": "OK"}, "4XX": error},
        });
        if let Some(body) = request_body(method, path) {
            op["requestBody"] = body;
        }
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Assay API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Data quality for PostgreSQL; compatible with the Qualytics API."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas(),
        },
        "security": [{"bearer": []}],
        "paths": paths,
    })
}
