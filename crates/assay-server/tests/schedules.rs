//! Schedules against a real metadata store and source: validation that names the field, the API's life cycle,
//! each due instant fired exactly once by two servers sharing one store, a still-running previous run recorded as
//! a skipped instant, and one catch-up run after downtime. Tests run schedules in seconds (the test servers allow
//! intervals from 1 s and look for due instants five times a second).

mod common;

use assay_store::schedules::Fired;
use chrono::{DateTime, TimeDelta, Utc};
use common::Api;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

async fn instants(api: &Api, id: i64) -> Vec<Value> {
    let r = api
        .get(&format!("/operations/schedules/{id}/instants?size=1000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn schedules_are_validated_by_field_and_managed_through_the_api() {
    let (api, ds, _) = common::checks::setup("schedapi", "SELECT 1").await;
    let post = |body: Value| {
        let api = &api;
        async move { api.post("/operations/schedule", body).await }
    };
    let field = |r: &common::Resp| {
        r.body["errors"][0]["field"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    // every problem names its field
    let r =
        post(json!({"name": "n", "datastore_id": ds, "type": "scan", "cron": "61 * * * *"})).await;
    assert_eq!((r.status, field(&r)), (422, "cron".into()), "{}", r.body);
    let r = post(json!({"name": "n", "datastore_id": ds, "type": "scan", "cron": "0 * * * *", "preset": "daily"})).await;
    assert_eq!((r.status, field(&r)), (422, "cron".into()), "{}", r.body);
    let r =
        post(json!({"name": "n", "datastore_id": 987654, "type": "scan", "preset": "daily"})).await;
    assert_eq!(
        (r.status, field(&r)),
        (422, "datastore_id".into()),
        "{}",
        r.body
    );
    let r = post(
        json!({"name": "n", "datastore_id": ds, "type": "scan", "preset": "daily",
                        "enrichment_source_record_limit": 0}),
    )
    .await;
    assert_eq!(
        (r.status, field(&r)),
        (422, "enrichment_source_record_limit".into()),
        "the parameters operations/run refuses: {}",
        r.body
    );
    let r =
        post(json!({"name": "n", "datastore_id": ds, "type": "vacuum", "preset": "daily"})).await;
    assert_eq!((r.status, field(&r)), (422, "type".into()), "{}", r.body);
    let r = post(json!({"datastore_id": ds, "type": "scan", "preset": "daily"})).await;
    assert_eq!((r.status, field(&r)), (422, "name".into()), "{}", r.body);

    // a daily scan: its next run is the next midnight UTC, its parameters are a scan's
    let before = api.get(&format!("/datastores/{ds}")).await.body;
    assert_eq!(before["has_scheduled_operations"], false);
    let r = post(
        json!({"name": "nightly", "datastore_id": ds, "type": "scan", "preset": "daily",
                        "incremental": true, "container_names": ["orders"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.body;
    let id = s["id"].as_i64().unwrap();
    assert_eq!(s["cron"], "0 0 * * *");
    assert_eq!(s["trigger_type"], "operation");
    assert_eq!(
        (s["incremental"].clone(), s["container_names"].clone()),
        (json!(true), json!(["orders"]))
    );
    let next = at(&s["next_run"]);
    assert!(
        next > Utc::now() && next - Utc::now() <= TimeDelta::days(1),
        "{s}"
    );
    assert_eq!(next.format("%H:%M:%S").to_string(), "00:00:00");
    assert!(s["last_run"].is_null());
    let after = api.get(&format!("/datastores/{ds}")).await.body;
    assert_eq!(after["has_scheduled_operations"], true);
    // the same name twice on one datastore is a conflict
    let r =
        post(json!({"name": "nightly", "datastore_id": ds, "type": "sync", "preset": "hourly"}))
            .await;
    assert_eq!(r.status, 409, "{}", r.body);

    // list, change (only the keys given), disable, enable, delete
    let list = api
        .get(&format!("/operations/schedules?datastore={ds}"))
        .await
        .body;
    assert_eq!(list["total"], 1, "{list}");
    let path = format!("/operations/schedules/{id}");
    let r = api.put(&path, json!({"cron": "30 6 * * 1-5"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["cron"].clone(), r.body["incremental"].clone()),
        (json!("30 6 * * 1-5"), json!(true))
    );
    let r = api.put(&path, json!({"cron": "every day"})).await;
    assert_eq!((r.status, field(&r)), (422, "cron".into()), "{}", r.body);
    let r = api.post(&format!("{path}/disable"), json!({})).await;
    assert_eq!(
        (
            r.status,
            r.body["enabled"].clone(),
            r.body["next_run"].clone()
        ),
        (200, json!(false), Value::Null)
    );
    assert_eq!(
        api.get(&format!("/datastores/{ds}")).await.body["has_scheduled_operations"],
        false
    );
    let r = api.post(&format!("{path}/enable"), json!({})).await;
    assert_eq!((r.status, r.body["enabled"].clone()), (200, json!(true)));
    assert_eq!(api.call("DELETE", &path, None).await.status, 204);
    assert_eq!(api.get(&path).await.status, 404);
}

#[tokio::test]
async fn two_servers_fire_each_instant_exactly_once() {
    let (a, ds, _) = common::checks::setup("schedtwo", "SELECT 1").await;
    // a second server on the same metadata store
    let b = Api::start_on(&a.metadata_db, a.key).await;
    let r = a
        .post(
            "/operations/schedule",
            json!({"name": "every 2 s", "datastore_id": ds, "type": "sync", "interval_seconds": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    b.post(&format!("/operations/schedules/{id}/disable"), json!({}))
        .await;
    let fired = instants(&a, id).await;
    assert!(fired.len() >= 4, "{fired:?}");
    // the delay between a due instant and its claim, for the record (the test servers look every 200 ms)
    let mut lags: Vec<i64> = fired
        .iter()
        .map(|i| (at(&i["fired_at"]) - at(&i["instant"])).num_milliseconds())
        .collect();
    lags.sort();
    eprintln!(
        "schedule firing delay over {} instants: p50 {} ms, max {} ms",
        lags.len(),
        lags[lags.len() / 2],
        lags[lags.len() - 1]
    );
    // consecutive instants two seconds apart: none lost
    let times: Vec<DateTime<Utc>> = fired.iter().map(|i| at(&i["instant"])).collect();
    for w in times.windows(2) {
        assert_eq!(w[0] - w[1], TimeDelta::seconds(2), "{times:?}");
    }
    // one operation per queued instant, each naming the schedule: none doubled
    let ops = a
        .get(&format!("/operations?datastore={ds}&size=1000"))
        .await
        .body;
    let scheduled: Vec<&Value> = ops["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["schedule"]["id"] == id)
        .collect();
    let queued: BTreeSet<i64> = fired
        .iter()
        .filter(|i| i["outcome"] == "queued")
        .map(|i| i["operation_id"].as_i64().unwrap())
        .collect();
    let run: BTreeSet<i64> = scheduled
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(run, queued, "{ops}");
    assert!(
        scheduled
            .iter()
            .all(|o| o["triggered_by"] == "schedule every 2 s")
    );
}

#[tokio::test]
async fn an_unfinished_run_skips_the_instant_and_downtime_runs_the_latest_missed_instant_once() {
    // a table that takes seconds to scan: the schedule's runs outlast its interval
    let (api, ds, _) = common::checks::setup(
        "schedslow",
        "CREATE TABLE sales.slow (id int, note text);
         INSERT INTO sales.slow SELECT i, md5(i::text) FROM generate_series(1, 4000) i;
         ALTER TABLE sales.slow ENABLE ROW LEVEL SECURITY;
         CREATE POLICY slow_reads ON sales.slow FOR SELECT USING (pg_sleep(0.001) IS NOT NULL);",
    )
    .await;
    let slow = common::checks::container_id(&api, ds, "slow").await;
    common::checks::create(&api, slow, "notNull", &["id"], json!({})).await;
    let r = api
        .post(
            "/operations/schedule",
            json!({"name": "busy", "datastore_id": ds, "type": "scan", "interval_seconds": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let mut skipped = Vec::new();
    for _ in 0..100 {
        skipped = instants(&api, id)
            .await
            .into_iter()
            .filter(|i| i["outcome"] == "skipped")
            .collect();
        if !skipped.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!skipped.is_empty(), "an instant during a run is skipped");
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("still"),
        "{skipped:?}"
    );
    assert!(skipped[0]["operation_id"].is_null());
    // never two runs of the schedule at once
    let ops = api
        .get(&format!("/operations?datastore={ds}&size=1000"))
        .await
        .body;
    let unfinished = ops["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["schedule"]["id"] == id && o["end_time"].is_null())
        .count();
    assert!(unfinished <= 1, "{ops}");
    let r = api
        .post(&format!("/operations/schedules/{id}/disable"), json!({}))
        .await;
    assert_eq!(r.status, 200);

    // downtime: a schedule every minute, looked at again ten minutes and a half after its anchor, fires the
    // latest missed instant once, not ten
    let r = api
        .post(
            "/operations/schedule",
            json!({"name": "minutely", "datastore_id": ds, "type": "sync", "interval_seconds": 60}),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let anchor = api
        .state
        .store
        .schedule(id, &assay_store::Viewer::admin(0))
        .await
        .unwrap()
        .anchor;
    let ctx = &api.state.ops;
    let later = anchor + TimeDelta::seconds(630);
    let fired: Vec<_> = assay_ops::scheduler::tick(ctx, later)
        .await
        .unwrap()
        .into_iter()
        .filter(|(s, ..)| *s == id)
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].1, anchor + TimeDelta::seconds(600));
    assert!(matches!(fired[0].2, Fired::Queued(_)), "{fired:?}");
    // the same instant again, from this server or another, is not fired twice
    let again = assay_ops::scheduler::tick(ctx, later).await.unwrap();
    assert!(again.iter().all(|(s, ..)| *s != id), "{again:?}");
    assert_eq!(
        ctx.store.fire_schedule(id, fired[0].1).await.unwrap(),
        Fired::Taken
    );
    assert_eq!(instants(&api, id).await.len(), 1);
}
