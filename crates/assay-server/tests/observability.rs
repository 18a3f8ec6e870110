//! Volume and freshness tracking against a real source with the seed's read-only role: syncs and the `measure`
//! operation record measurements (the catalog's estimate after a sync, exact counts of small tables by the
//! measure operation, sizes, the last change), the settings follow
//! the datastore's defaults unless a container sets its own, and with automation on a missing daily load and a
//! table that stopped changing raise anomalies of the automated checks (which scans leave alone), while a
//! steady one does not. The history before today is written into the store with past timestamps: a band needs
//! days of it.

mod common;

use assay_testkit::TestPg;
use common::Api;
use common::checks::{anomalies, container_id, run, setup};
use serde_json::{Value, json};

const TABLES: &str = "
CREATE TABLE sales.loads (id int PRIMARY KEY, v int);
INSERT INTO sales.loads SELECT g, g FROM generate_series(1, 300) g;
CREATE TABLE sales.steady (id int PRIMARY KEY, v int);
INSERT INTO sales.steady SELECT g, g FROM generate_series(1, 120) g;
CREATE TABLE sales.frozen (id int PRIMARY KEY, v int);
INSERT INTO sales.frozen SELECT g, g FROM generate_series(1, 50) g;
";

async fn measurements(api: &Api, container: i64) -> Vec<Value> {
    let r = api
        .get(&format!("/containers/{container}/measurements"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// Writes 28 days of daily measurements before today instead of the container's own: `load(day)` rows a day
/// (day 1 is yesterday), a change each day until `stale_days` days ago, and the source's current modification
/// counter on each.
async fn history(
    api: &Api,
    container: i64,
    modifications: i64,
    load: impl Fn(i64) -> i64,
    stale_days: i64,
) {
    let meta = TestPg::shared().superuser(&api.metadata_db).await;
    // the history replaces today's measurements, so the next one follows it
    meta.execute(
        "DELETE FROM observability_measurements WHERE container_id = $1",
        &[&container],
    )
    .await
    .unwrap();
    let mut count = 10_000i64;
    for day in (1..=28i64).rev() {
        count += load(day);
        meta.execute(
            "INSERT INTO observability_measurements (container_id, measurement_time, row_count, size_bytes, \
               modifications, last_modification_time, method) \
             VALUES ($1, date_trunc('day', now()) - $2::int8 * interval '1 day' + interval '23 hours', $3, 8192, $4, \
               date_trunc('day', now()) - greatest($2::int8, $5::int8) * interval '1 day' + interval '18 hours', \
               'catalog estimate')",
            &[&container, &day, &count, &modifications, &stale_days],
        )
        .await
        .unwrap();
    }
}

async fn counter(db: &str, table: &str) -> i64 {
    TestPg::shared()
        .superuser(db)
        .await
        .query_one(
            "SELECT (n_tup_ins + n_tup_upd + n_tup_del)::int8 FROM pg_stat_all_tables \
             WHERE relid = $1::text::regclass",
            &[&format!("sales.{table}")],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn measurements_settings_and_automated_volume_and_freshness_checks() {
    let (api, ds, db) = setup("observe", TABLES).await;
    let loads = container_id(&api, ds, "loads").await;

    // the sync measured every table from the catalog (analyzed): its rows, its size, no change known yet
    let first = measurements(&api, loads).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["row_count"], 300);
    assert_eq!(first[0]["method"], "catalog estimate");
    assert!(first[0]["size_bytes"].as_i64().unwrap() > 0);
    assert!(first[0]["last_modification_time"].is_null());
    let c = api.get(&format!("/containers/{loads}")).await.body;
    assert_eq!(c["latest_observability_measurement"]["row_count"], 300);
    assert_eq!(
        (
            c["volumetric_tracking_enabled"].clone(),
            c["automate_volumetric_checks"].clone()
        ),
        (json!(true), json!(false)),
        "{c}"
    );

    // a change between measurements is the last modification; a bad setting is refused by name
    TestPg::shared()
        .superuser(&db)
        .await
        .batch_execute("INSERT INTO sales.loads SELECT g, g FROM generate_series(301, 310) g")
        .await
        .unwrap();
    let op = run(&api, ds, "measure", json!({"container_names": ["loads"]})).await;
    assert_eq!(op["result"], "success", "{op}");
    let now = measurements(&api, loads).await;
    assert_eq!(
        (now[0]["row_count"].clone(), now[0]["method"].clone()),
        (json!(310), json!("exact count"))
    );
    assert!(now[0]["last_modification_time"].is_string(), "{now:?}");
    let r = api
        .put(
            &format!("/containers/{loads}"),
            json!({"automate_volumetric_checks": "often"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("automate_volumetric_checks")
    );

    // automation from the datastore's defaults, one container opting out of tracking
    let r = api
        .put(
            &format!("/datastores/{ds}"),
            json!({"default_automate_volumetric_checks": true, "default_automate_freshness_checks": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["default_automate_volumetric_checks"], true);
    let customers = container_id(&api, ds, "customers").await;
    let r = api
        .put(
            &format!("/containers/{customers}"),
            json!({"volumetric_tracking_enabled": false, "freshness_tracking_enabled": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["automate_volumetric_checks"], true, "inherited");

    // histories: `loads` got nothing yesterday, `steady` got its usual load, `frozen` stopped changing
    let (steady, frozen) = (
        container_id(&api, ds, "steady").await,
        container_id(&api, ds, "frozen").await,
    );
    let usual = |d: i64| 100 + (d * 7 % 5) * 3;
    history(
        &api,
        loads,
        counter(&db, "loads").await,
        |d| if d == 1 { 0 } else { usual(d) },
        0,
    )
    .await;
    history(&api, steady, counter(&db, "steady").await, usual, 0).await;
    history(&api, frozen, counter(&db, "frozen").await, |_| 0, 4).await;
    let before = measurements(&api, customers).await.len();
    let op = run(&api, ds, "measure", json!({})).await;
    assert_eq!(op["result"], "success", "{op}");
    assert_eq!(
        measurements(&api, customers).await.len(),
        before,
        "a container without tracking is not measured"
    );
    let found = |name: &str| -> Vec<String> {
        op["status"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["container"]["name"] == name)
            .map(|c| {
                c["anomalies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let missing = found("loads");
    assert!(
        missing.iter().any(|m| m.contains("added 0 rows")),
        "{missing:?}"
    );
    assert!(found("steady").is_empty(), "{:?}", found("steady"));
    let stale = found("frozen");
    assert!(
        stale.iter().any(|m| m.contains("no change since")),
        "{stale:?}"
    );

    // the anomalies belong to the automated checks, which hold the learned limits
    let open = anomalies(&api, loads, "").await;
    let check_id = open[0]["failed_checks"][0]["quality_check"]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        open[0]["failed_checks"][0]["quality_check"]["rule_type"],
        "volumetric"
    );
    let check = api.get(&format!("/quality-checks/{check_id}")).await.body;
    assert!(
        check["properties"]["min"].as_f64().unwrap() > 0.0,
        "{check}"
    );
    let frozen_open = anomalies(&api, frozen, "").await;
    assert_eq!(
        frozen_open[0]["failed_checks"][0]["quality_check"]["rule_type"],
        "freshness"
    );
    // measuring again the same day does not open a second anomaly
    run(&api, ds, "measure", json!({"container_names": ["loads"]})).await;
    assert_eq!(anomalies(&api, loads, "").await.len(), 1);
    // scans leave the automated checks to the measurements
    let scan = run(&api, ds, "scan", json!({"container_names": ["steady"]})).await;
    assert_eq!(scan["result"], "success", "{scan}");
    let steady_checks = api
        .get(&format!("/quality-checks?container={steady}"))
        .await
        .body;
    let automated = steady_checks["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["rule_type"] == "volumetric" || c["rule_type"] == "freshness")
        .count();
    assert_eq!(automated, 2, "{steady_checks}");
    assert_eq!(scan["status"]["containers"][0]["checks_run"], 0, "{scan}");

    // the Observability tab: each tracked table with its count, the stale one marked, the band behind a line
    let root = api.base.trim_end_matches("/api");
    let page = reqwest::Client::new()
        .get(format!("{root}/datastores/{ds}/observability"))
        .header("Cookie", format!("assay_session={}", api.token))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!(r#"data-container="{frozen}" data-stale="true""#)),
        "{page}"
    );
    assert!(
        page.contains(&format!(r#"data-container="{steady}" data-stale="false""#)),
        "{page}"
    );
    assert!(
        !page.contains(&format!(r#"data-container="{customers}""#)),
        "not tracked"
    );
    assert!(page.contains(r#"<polygon class="band""#), "{page}");
}
