//! Helpers of the check, scan and anomaly tests: a source datastore over a given schema read with the seed's
//! read-only role, operations run to their end, checks created through the API, and anomaly listings.

use super::Api;
use assay_testkit::TestPg;
use serde_json::{Value, json};

pub async fn setup(prefix: &str, ddl: &str) -> (Api, i64, String) {
    let (api, id, db, _) = setup_with_reader(prefix, ddl).await;
    (api, id, db)
}

/// [`setup`], also returning the reader role (for grants and revokes in the test).
pub async fn setup_with_reader(prefix: &str, ddl: &str) -> (Api, i64, String, String) {
    let api = Api::start().await;
    let (db, reader, _) = super::shop(prefix).await;
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(ddl).await.unwrap();
    su.batch_execute(&format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {reader}; ANALYZE"
    ))
    .await
    .unwrap();
    let id = source(&api, prefix, &reader, &db).await;
    (api, id, db, reader)
}

/// A connection of `reader` and a datastore over the `sales` schema of `db`, synced; returns its id.
pub async fn source(api: &Api, prefix: &str, reader: &str, db: &str) -> i64 {
    let c = api
        .ok(
            "/connections",
            Api::conn_body(&format!("c-{prefix}"), reader, "readerpw"),
        )
        .await;
    let ds = api
        .ok("/datastores", json!({"name": prefix, "connection_id": c["id"], "database": db, "schema": "sales", "trigger_sync": false}))
        .await;
    let id = ds["id"].as_i64().unwrap();
    assert_eq!(api.sync(id, json!({})).await["result"], "success");
    id
}

pub async fn run(api: &Api, ds: i64, kind: &str, extra: Value) -> Value {
    let mut body = json!({"datastore_id": ds, "type": kind});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let op = api.ok("/operations/run", body).await;
    api.wait(op["id"].as_i64().unwrap()).await
}

pub async fn container_id(api: &Api, ds: i64, name: &str) -> i64 {
    let list = api
        .get(&format!("/containers/listing?datastore={ds}"))
        .await
        .body;
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

pub async fn create(api: &Api, container: i64, rule: &str, fields: &[&str], props: Value) -> i64 {
    let r = api
        .post(
            "/quality-checks",
            json!({"container_id": container, "rule": rule, "fields": fields,
            "description": format!("{rule} on {fields:?}"), "properties": props}),
        )
        .await;
    assert_eq!(r.status, 200, "{rule} {fields:?}: {}", r.body);
    assert_eq!(r.body["rule_type"], rule);
    r.body["id"].as_i64().unwrap()
}

pub async fn anomalies(api: &Api, container: i64, extra: &str) -> Vec<Value> {
    let v = api
        .get(&format!(
            "/anomalies?container={container}&size=1000{extra}"
        ))
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    v.body["items"].as_array().unwrap().clone()
}
