//! The API under concurrent use: API clients doing the load benchmark's mix of reads and check edits while
//! scans run, at a small scale. Every answer must be a 2xx and every edit must land: a PUT of a check's
//! description and a concurrent PUT of the same check's properties both survive.

mod common;

use common::Api;
use common::checks::{container_id, create, setup};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const ORDERS: &str = "
CREATE TABLE sales.lines (id bigint PRIMARY KEY, qty int, status text, email text, amount numeric);
INSERT INTO sales.lines
SELECT i, 1 + i % 9, (ARRAY['paid','shipped','returned'])[1 + i % 3],
       CASE WHEN i % 100 = 0 THEN 'broken' ELSE 'u' || i || '@x.io' END, (i % 500) / 10.0
FROM generate_series(1, 20000) i;
";

const CLIENTS: usize = 10;

/// What one client saw: answers that were not 2xx, edits made, and the last value of each kind it wrote.
#[derive(Default)]
struct Seen {
    failures: Vec<String>,
    edits: u64,
    last_description: Option<String>,
    last_value: Option<i64>,
}

/// Client `i` cycles through the mix; its edits alternate between the description of `checks[i]` and the
/// properties of `checks[i + 1]`, so every check has two concurrent writers of different keys.
async fn client(
    i: usize,
    api: Arc<Api>,
    ds: i64,
    table: i64,
    checks: Arc<Vec<i64>>,
    stop: Arc<AtomicBool>,
) -> Seen {
    let mut seen = Seen::default();
    let mut k = i;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let (method, path, body) = match k % 8 {
            0 => ("GET", "/datastores".to_string(), None),
            1 => ("GET", format!("/datastores/{ds}"), None),
            2 => ("GET", format!("/containers?datastore={ds}"), None),
            3 => ("GET", format!("/quality-checks?datastore={ds}"), None),
            4 => ("GET", format!("/anomalies?datastore={ds}"), None),
            5 => ("GET", format!("/operations?datastore={ds}"), None),
            6 => ("GET", format!("/containers/{table}/field-profiles"), None),
            _ => {
                seen.edits += 1;
                if seen.edits % 2 == 1 {
                    let d = format!("client {i} edit {}", seen.edits);
                    seen.last_description = Some(d.clone());
                    (
                        "PUT",
                        format!("/quality-checks/{}", checks[i]),
                        Some(json!({"description": d})),
                    )
                } else {
                    let v = 100 + (i as i64) * 10_000 + seen.edits as i64;
                    seen.last_value = Some(v);
                    let next = checks[(i + 1) % checks.len()];
                    (
                        "PUT",
                        format!("/quality-checks/{next}"),
                        Some(json!({"properties": {"value": v}})),
                    )
                }
            }
        };
        let r = api.call(method, &path, body).await;
        if !(200..300).contains(&r.status) {
            seen.failures
                .push(format!("{method} {path}: {} {}", r.status, r.body));
        }
    }
    seen
}

async fn scan(api: &Api, ds: i64) -> Value {
    let op = api
        .ok(
            "/operations/run",
            json!({"datastore_id": ds, "type": "scan", "container_names": ["lines"]}),
        )
        .await;
    api.wait(op["id"].as_i64().unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_during_scans_get_only_2xx_and_every_edit_lands() {
    let (api, ds, _) = setup("load", ORDERS).await;
    let table = container_id(&api, ds, "lines").await;
    let profile = common::checks::run(&api, ds, "profile", json!({})).await;
    assert_eq!(profile["result"], "success", "{profile}");
    create(&api, table, "notNull", &["email"], json!({})).await;
    create(
        &api,
        table,
        "matchesPattern",
        &["email"],
        json!({"pattern": "@"}),
    )
    .await;
    create(
        &api,
        table,
        "between",
        &["qty"],
        json!({"min": 1, "max": 9}),
    )
    .await;
    let mut checks = Vec::new();
    for _ in 0..CLIENTS {
        checks.push(create(&api, table, "maxValue", &["qty"], json!({"value": 100})).await);
    }
    let api = Arc::new(api);
    let checks = Arc::new(checks);
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                i,
                api.clone(),
                ds,
                table,
                checks.clone(),
                stop.clone(),
            ))
        })
        .collect();
    // scans run back to back for the whole window (at least one, whatever the machine's speed)
    let t0 = std::time::Instant::now();
    let mut scans = 0;
    while scans == 0 || t0.elapsed() < Duration::from_secs(5) {
        let op = scan(&api, ds).await;
        assert_eq!(op["result"], "success", "{op}");
        scans += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    let failures: Vec<&String> = seen.iter().flat_map(|s| &s.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failed requests: {failures:#?}",
        failures.len()
    );
    assert!(
        seen.iter().all(|s| s.edits >= 2),
        "every client edited both of its checks"
    );
    for (j, id) in checks.iter().enumerate() {
        let c = api.get(&format!("/quality-checks/{id}")).await.body;
        assert_eq!(
            c["description"],
            json!(seen[j].last_description.clone().unwrap()),
            "check {id} lost client {j}'s description"
        );
        let writer = (j + CLIENTS - 1) % CLIENTS;
        assert_eq!(
            c["properties"]["value"],
            json!(seen[writer].last_value.unwrap()),
            "check {id} lost client {writer}'s properties"
        );
    }
    cards_show_each_datastores_own_figures(&api, ds).await;
}

/// The text of `<strong class="{class}">` in `card`.
fn figure<'a>(card: &'a str, class: &str) -> &'a str {
    let open = format!(r#"<strong class="{class}">"#);
    let at = card
        .find(&open)
        .unwrap_or_else(|| panic!("no {class} in {card}"))
        + open.len();
    &card[at..at + card[at..].find('<').unwrap()]
}

/// The cards page and the datastore list compute their figures for all datastores at once; each datastore
/// must still get its own: the scanned one its counts, score and newest operation, an empty one none of them.
async fn cards_show_each_datastores_own_figures(api: &Api, ds: i64) {
    let connection = api.get(&format!("/datastores/{ds}")).await.body["connection_id"].clone();
    let empty = api
        .ok(
            "/datastores",
            json!({"name": "load-empty", "connection_id": connection, "database": "postgres",
                   "schema": "nothing", "trigger_sync": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let html = reqwest::Client::new()
        .get(api.base.replace("/api", "/datastores"))
        .header("Cookie", format!("assay_session={}", api.token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let card = |id: i64| {
        let at = html
            .find(&format!(r#"<li class="card" data-datastore="{id}">"#))
            .unwrap_or_else(|| panic!("no card for {id}: {html}"));
        let end = html[at + 1..]
            .find(r#"<li class="card""#)
            .map_or(html.len(), |e| at + 1 + e);
        html[at..end].to_string()
    };
    let total = |path: String| async move { api.get(&path).await.body["total"].as_i64().unwrap() };
    let scanned = card(ds);
    assert_eq!(
        figure(&scanned, "n-tables"),
        total(format!("/containers?datastore={ds}"))
            .await
            .to_string()
    );
    assert_eq!(
        figure(&scanned, "n-checks"),
        total(format!("/quality-checks?datastore={ds}"))
            .await
            .to_string()
    );
    let open = total(format!("/anomalies?datastore={ds}")).await;
    assert!(open > 0, "the scans found the broken e-mail addresses");
    assert_eq!(figure(&scanned, "n-anomalies"), open.to_string());
    let checks = api
        .get(&format!("/quality-checks?datastore={ds}&size=100"))
        .await
        .body;
    let states: Vec<&Value> = checks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["is_passing"])
        .collect();
    let passed = states.iter().filter(|v| **v == &json!(true)).count();
    let score = format!("{:.0}", 100.0 * passed as f64 / states.len() as f64);
    assert!(score != "100", "one check fails");
    assert_eq!(figure(&scanned, "score"), score);
    let newest = api
        .get(&format!("/operations?datastore={ds}&size=1"))
        .await
        .body["items"][0]["id"]
        .clone();
    assert!(scanned.contains(&format!("#{newest}</a>")), "{scanned}");
    let list = api.get("/datastores?size=100").await.body;
    let entry = |id: i64| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(entry(ds)["latest_operation"]["id"], newest);
    assert!(entry(empty)["latest_operation"].is_null());

    let nothing = card(empty);
    for class in ["n-tables", "n-checks", "n-anomalies"] {
        assert_eq!(figure(&nothing, class), "0", "{nothing}");
    }
    assert_eq!(figure(&nothing, "score"), "–");
    assert!(nothing.contains("No operations yet"), "{nothing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_edits_of_different_keys_of_one_check_both_land() {
    let (api, ds, _) = setup("edits", ORDERS).await;
    let table = container_id(&api, ds, "lines").await;
    let id = create(&api, table, "maxValue", &["qty"], json!({"value": 100})).await;
    let path = format!("/quality-checks/{id}");
    for round in 0..20 {
        let d = format!("round {round}");
        let (a, b) = tokio::join!(
            api.put(&path, json!({"description": d})),
            api.put(&path, json!({"properties": {"value": 200 + round}})),
        );
        assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
        let c = api.get(&format!("/quality-checks/{id}")).await.body;
        assert_eq!(
            c["description"],
            json!(d),
            "round {round}: the description was lost"
        );
        assert_eq!(
            c["properties"]["value"],
            json!(200 + round),
            "round {round}: the properties were lost"
        );
    }
}
