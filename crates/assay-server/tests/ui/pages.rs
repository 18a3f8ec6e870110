//! The web UI's run options, Activity filters, paged lists and a check's own page, over plain HTTP.

use super::{admin, page, post_form};
use crate::common::{self, Api};
use serde_json::{Value, json};

/// The newest operation of the datastore, as the API shows it.
async fn newest(api: &Api, ds: i64) -> Value {
    let ops = api
        .get(&format!(
            "/operations?datastore={ds}&sort_created=desc&size=1"
        ))
        .await
        .body;
    ops["items"][0].clone()
}

#[tokio::test]
async fn run_options_reach_the_operation_and_activity_filters_and_pages() {
    // 60 tables besides orders and customers: more than one page of the Tables tab
    let (api, ds, _) = common::checks::setup(
        "uiruns",
        "DO $$ BEGIN FOR i IN 1..60 LOOP
           EXECUTE format('CREATE TABLE sales.t%s (id int)', lpad(i::text, 2, '0'));
         END LOOP; END $$;
         INSERT INTO sales.orders (total, updated_at) VALUES (5, now()), (50, now());",
    )
    .await;
    let ada = admin(&api, "ada").await;

    // the Overview's run forms offer the tables, the inference levels and full or incremental reads
    let (status, body, _) = page(&api, Some(&ada), &format!("/datastores/{ds}")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"<option value="orders">orders</option>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<option value="medium" selected>medium</option>"#),
        "{body}"
    );
    assert!(body.contains(r#"name="full""#) && body.contains(r#"name="incremental""#));

    // what the form chose is what the operation runs with
    let run = format!("/datastores/{ds}/run");
    let (status, _, _) = post_form(
        &api,
        &ada,
        &run,
        &[
            ("type", "profile"),
            ("container_names", "orders"),
            ("ai_effort", "high"),
            ("full", "on"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let op = newest(&api, ds).await;
    assert_eq!(op["type"], "profile", "{op}");
    let id = op["id"].as_i64().unwrap();
    let op = api.wait(id).await;
    assert_eq!(op["result"], "success", "{op}");
    // the operation echoes its parameters
    assert_eq!(op["container_names"], json!(["orders"]), "{op}");
    assert_eq!(op["ai_effort"], "high", "{op}");
    assert_eq!(op["incremental"], false, "{op}");
    let (status, _, _) = post_form(
        &api,
        &ada,
        &run,
        &[
            ("type", "scan"),
            ("container_names", "orders"),
            ("incremental", "on"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let op = api
        .wait(newest(&api, ds).await["id"].as_i64().unwrap())
        .await;
    assert_eq!(op["type"], "scan", "{op}");
    assert_eq!(op["incremental"], true, "{op}");
    assert_eq!(op["container_names"], json!(["orders"]), "{op}");
    // without the box ticked, a scan reads everything
    post_form(&api, &ada, &run, &[("type", "scan")]).await;
    let op = api
        .wait(newest(&api, ds).await["id"].as_i64().unwrap())
        .await;
    assert_eq!(op["incremental"], false, "{op}");
    assert_eq!(op["container_names"], json!([]), "{op}");

    // Activity: filtered by type and by status, the filters kept in the form
    let activity = format!("/datastores/{ds}/activity");
    let (_, body, _) = page(&api, Some(&ada), &activity).await;
    for kind in ["sync", "profile", "scan"] {
        assert!(body.contains(&format!(r#"data-kind="{kind}""#)), "{body}");
    }
    let (_, body, _) = page(&api, Some(&ada), &format!("{activity}?type=scan")).await;
    assert_eq!(body.matches(r#"data-kind="scan""#).count(), 2, "{body}");
    assert!(!body.contains(r#"data-kind="sync""#) && !body.contains(r#"data-kind="profile""#));
    assert!(body.contains(r#"<option value="scan" selected>scan</option>"#));
    let (_, body, _) = page(
        &api,
        Some(&ada),
        &format!("{activity}?type=sync&result=failure"),
    )
    .await;
    assert!(!body.contains("data-kind="), "{body}");
    assert!(
        body.contains("No operations match these filters."),
        "{body}"
    );

    // the Tables tab pages: 62 tables and the view `big`, 50 a page, the second page holds the rest
    let tables = format!("/datastores/{ds}/tables");
    let (_, first, _) = page(&api, Some(&ada), &tables).await;
    assert!(first.contains("Page 1 of 2 · 63 in all"), "{first}");
    assert!(
        first.contains(&format!(r#"href="{tables}?page=2" rel="next""#)),
        "{first}"
    );
    let (_, second, _) = page(&api, Some(&ada), &format!("{tables}?page=2")).await;
    assert!(second.contains("Page 2 of 2"), "{second}");
    let names = |body: &str| -> Vec<String> {
        body.split("href=\"/containers/")
            .skip(1)
            .filter_map(|r| r.split('>').nth(1))
            .filter_map(|r| r.split('<').next())
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (names(&first), names(&second));
    assert_eq!((a.len(), b.len()), (50, 13), "{a:?} {b:?}");
    assert!(a.iter().all(|n| !b.contains(n)), "no table on both pages");
}

#[tokio::test]
async fn a_check_has_its_own_page_with_its_results_and_anomalies() {
    let (api, ds, _) = common::checks::setup(
        "uicheckpage",
        "INSERT INTO sales.orders (total) VALUES (5), (-7), (50);",
    )
    .await;
    let orders = common::checks::container_id(&api, ds, "orders").await;
    let check = common::checks::create(&api, orders, "notNegative", &["total"], json!({})).await;
    let quiet = common::checks::create(
        &api,
        orders,
        "between",
        &["total"],
        json!({"min": -100, "max": 100}),
    )
    .await;
    for _ in 0..2 {
        common::checks::run(&api, ds, "scan", json!({})).await;
    }
    let ada = admin(&api, "ada").await;
    // the Checks tab links each check to its page
    let (_, body, _) = page(&api, Some(&ada), &format!("/datastores/{ds}/checks")).await;
    assert!(
        body.contains(&format!(r#"href="/checks/{check}""#)),
        "{body}"
    );
    let (status, body, _) = page(&api, Some(&ada), &format!("/checks/{check}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("notNegative on"), "{body}");
    assert!(body.contains(r#"id="check-state">failing"#), "{body}");
    assert!(
        body.contains("the value is zero or more"),
        "the rule's description: {body}"
    );
    assert!(body.contains(&format!(r#"href="/checks/{check}/edit""#)));
    // one result per scan, both failed with one anomalous row
    assert_eq!(
        body.matches(r#"<tr data-result="failed">"#).count(),
        2,
        "{body}"
    );
    let anomalies = common::checks::anomalies(&api, orders, "").await;
    let mine: Vec<i64> = anomalies
        .iter()
        .filter(|a| {
            a["failed_checks"]
                .as_array()
                .is_some_and(|f| f.iter().any(|c| c["quality_check"]["id"] == check))
        })
        .filter_map(|a| a["id"].as_i64())
        .collect();
    assert!(!mine.is_empty(), "{anomalies:?}");
    for a in &mine {
        assert!(
            body.contains(&format!(r#"<tr data-anomaly="{a}">"#)),
            "{body}"
        );
    }
    // a check that passed: its results say so and it has no anomalies
    let (_, body, _) = page(&api, Some(&ada), &format!("/checks/{quiet}")).await;
    assert_eq!(
        body.matches(r#"<tr data-result="passed">"#).count(),
        2,
        "{body}"
    );
    assert!(
        body.contains("This check has found no anomalies."),
        "{body}"
    );
    assert!(
        body.contains("&#34;max&#34;: 100"),
        "properties shown: {body}"
    );
    // an id nobody has is a 404 page
    let (status, _, _) = page(&api, Some(&ada), "/checks/987654").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn schedules_are_written_with_a_preview_and_listed_in_activity() {
    let (api, ds, _) = common::checks::setup("uisched", "SELECT 1").await;
    let ada = admin(&api, "ada").await;
    let form = format!("/datastores/{ds}/schedules/new");
    let (status, body, _) = page(&api, Some(&ada), &form).await;
    assert_eq!(status, 200);
    // the default (daily) previews five midnights, UTC
    assert_eq!(body.matches("<li>").count(), 5, "{body}");
    // a preview keeps what was typed and shows the next five runs of that cron
    let (status, body, _) = post_form(
        &api,
        &ada,
        &form,
        &[
            ("name", "weekday mornings"),
            ("type", "scan"),
            ("how", "cron"),
            ("cron", "30 6 * * 1-5"),
            ("incremental", "on"),
            ("action", "preview"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"value="weekday mornings""#), "{body}");
    let runs: Vec<&str> = body
        .split("<li>")
        .skip(1)
        .filter_map(|r| r.split("</li>").next())
        .collect();
    assert_eq!(runs.len(), 5, "{body}");
    assert!(runs.iter().all(|r| r.contains("06:30")), "{runs:?}");
    // a wrong cron is refused next to its input, nothing saved
    let (status, body, _) = post_form(
        &api,
        &ada,
        &form,
        &[
            ("name", "bad"),
            ("type", "scan"),
            ("how", "cron"),
            ("cron", "every day"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(body.contains(r#"id="err-cron""#), "{body}");
    assert_eq!(api.get("/operations/schedules").await.body["total"], 0);
    // saved: listed on the Activity tab with its cadence and next run, then disabled and deleted
    let (status, _, location) = post_form(
        &api,
        &ada,
        &form,
        &[
            ("name", "weekday mornings"),
            ("type", "scan"),
            ("how", "cron"),
            ("cron", "30 6 * * 1-5"),
            ("incremental", "on"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), format!("/datastores/{ds}/activity"));
    let list = api.get("/operations/schedules").await.body;
    let s = &list["items"][0];
    assert_eq!(
        (s["cron"].clone(), s["incremental"].clone()),
        (json!("30 6 * * 1-5"), json!(true)),
        "{list}"
    );
    let id = s["id"].as_i64().unwrap();
    let (_, body, _) = page(&api, Some(&ada), &format!("/datastores/{ds}/activity")).await;
    assert!(
        body.contains(&format!(r#"data-schedule="{id}" data-enabled="true""#)),
        "{body}"
    );
    assert!(body.contains("cron 30 6 * * 1-5 (UTC)"), "{body}");
    // the schedule's page lists what became of each due instant, as the API records it
    assert!(
        body.contains(&format!(r#"href="/schedules/{id}""#)),
        "{body}"
    );
    let (_, empty, _) = page(&api, Some(&ada), &format!("/schedules/{id}")).await;
    assert!(empty.contains("No instant has come due yet."), "{empty}");
    let monday = chrono::DateTime::parse_from_rfc3339("2026-11-30T06:30:00Z")
        .unwrap()
        .to_utc();
    for day in 0..2 {
        api.state
            .store
            .fire_schedule(id, monday + chrono::TimeDelta::days(day))
            .await
            .unwrap();
    }
    let (status, body, _) = page(&api, Some(&ada), &format!("/schedules/{id}")).await;
    assert_eq!(status, 200);
    let fired = api
        .get(&format!("/operations/schedules/{id}/instants"))
        .await
        .body;
    let fired = fired["items"].as_array().unwrap();
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert_eq!(body.matches("data-outcome=").count(), 2, "{body}");
    for i in fired {
        assert!(
            body.contains(&format!(
                r#"data-outcome="{}""#,
                i["outcome"].as_str().unwrap()
            )),
            "{body}"
        );
        if let Some(op) = i["operation_id"].as_i64() {
            assert!(body.contains(&format!("#{op}")), "{body}");
        }
        if let Some(reason) = i["reason"].as_str() {
            assert!(body.contains(reason), "{body}");
        }
    }
    let (status, _, _) = post_form(&api, &ada, &format!("/schedules/{id}/disable"), &[]).await;
    assert_eq!(status, 303);
    let (_, body, _) = page(&api, Some(&ada), &format!("/datastores/{ds}/activity")).await;
    assert!(
        body.contains(&format!(r#"data-schedule="{id}" data-enabled="false""#)),
        "{body}"
    );
    let (status, _, _) = post_form(&api, &ada, &format!("/schedules/{id}/delete"), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(api.get("/operations/schedules").await.body["total"], 0);
}

#[tokio::test]
async fn flows_are_written_tested_and_edited_in_the_ui_by_administrators() {
    let (api, ds, _) = common::checks::setup("uiflows", "SELECT 1").await;
    let rx = assay_testkit::Receiver::start().await;
    let ada = admin(&api, "ada").await;
    let (status, body, _) = page(&api, Some(&ada), "/flows").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"href="/flows" aria-current="page">Flows</a>"#),
        "{body}"
    );
    // a wrong URL is refused next to its input, what was typed kept
    let ds_s = ds.to_string();
    let (status, body, _) = post_form(
        &api,
        &ada,
        "/flows/new",
        &[
            ("name", "alerts"),
            ("trigger", "anomaly"),
            ("datastores", &ds_s),
            ("action", "webhook"),
            ("url", "ftp://nowhere"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body.contains(r#"id="err-url""#) && body.contains(r#"value="alerts""#),
        "{body}"
    );
    // saved: its page, with nothing secret shown
    let hook = rx.url("/ui");
    let (status, _, location) = post_form(
        &api,
        &ada,
        "/flows/new",
        &[
            ("name", "alerts"),
            ("trigger", "operation"),
            ("operation_types", "sync"),
            ("results", "failure"),
            ("datastores", &ds_s),
            ("action", "webhook"),
            ("url", &hook),
            ("secret", "ui-flow-signing-secret-1"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let at = location.unwrap();
    let (_, body, _) = page(&api, Some(&ada), &at).await;
    assert!(body.contains("sync ends (failure)"), "{body}");
    assert!(
        !body.contains(&rx.addr.to_string()) && !body.contains("ui-flow-signing-secret-1"),
        "{body}"
    );
    let id = at.trim_start_matches("/flows/").to_string();
    let stored = api.get(&format!("/flows/{id}")).await.body;
    assert_eq!(stored["filters"]["datastores"], json!([ds]), "{stored}");
    // Test sends a sample, signed, and the page says what the receiver answered
    let (status, _, location) = post_form(&api, &ada, &format!("/flows/{id}/test"), &[]).await;
    assert_eq!(status, 303);
    let (_, body, _) = page(&api, Some(&ada), &location.unwrap()).await;
    assert!(body.contains("delivered (HTTP 200)"), "{body}");
    let got = rx.wait_for(1, 10).await;
    assert!(got[0].header("x-assay-signature").is_some());
    // editing without the URL and secret keeps them
    let (status, _, _) = post_form(
        &api,
        &ada,
        &format!("/flows/{id}/edit"),
        &[
            ("name", "alerts renamed"),
            ("trigger", "anomaly"),
            ("action", "webhook"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    post_form(&api, &ada, &format!("/flows/{id}/test"), &[]).await;
    let got = rx.wait_for(2, 10).await;
    assert!(
        got[1].header("x-assay-signature").is_some(),
        "the secret was kept"
    );
    assert_eq!(
        api.get(&format!("/flows/{id}")).await.body["name"],
        "alerts renamed"
    );
    // deactivate, delete
    post_form(&api, &ada, &format!("/flows/{id}/deactivate"), &[]).await;
    assert_eq!(api.get(&format!("/flows/{id}")).await.body["active"], false);
    post_form(&api, &ada, &format!("/flows/{id}/delete"), &[]).await;
    assert_eq!(api.get(&format!("/flows/{id}")).await.status, 404);
    // a member sees no Flows link and may not open the pages
    api.ok(
        "/users",
        json!({"username": "mem", "password": "member-password", "role": "Member"}),
    )
    .await;
    let mem = super::sign_in(&api, "mem", "member-password").await;
    let (_, body, _) = page(&api, Some(&mem), "/datastores").await;
    assert!(!body.contains(r#"href="/flows""#), "{body}");
    let (status, _, _) = page(&api, Some(&mem), "/flows").await;
    assert_eq!(status, 403);
}
