//! The web UI's quality pages over plain HTTP: the check form (a rule's own inputs, the API's errors next to them,
//! editing a check), the Anomalies tab (filters, bulk acknowledge and archive) and the profile history charts.

use super::{admin, page, post_form};
use crate::common;
use serde_json::json;

#[tokio::test]
async fn the_check_form_shows_a_rules_inputs_keeps_values_and_edits() {
    let (api, ds, _) = common::checks::setup(
        "uicheckform",
        "INSERT INTO sales.orders (total) VALUES (5), (50), (500);",
    )
    .await;
    let orders = common::checks::container_id(&api, ds, "orders").await;
    let ada = admin(&api, "ada").await;
    let (status, body, _) = page(&api, Some(&ada), &format!("/datastores/{ds}/checks")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!(r#"href="/datastores/{ds}/checks/new""#)),
        "{body}"
    );

    // choosing a rule swaps in its inputs: `between` takes one numeric field and min/max numbers
    let o = orders.to_string();
    let (status, body, _) = post_form(
        &api,
        &ada,
        &format!("/datastores/{ds}/checks/form"),
        &[("container_id", &o), ("rule", "between")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"<option value="between" selected>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<option value="total">total (Fractional)</option>"#),
        "{body}"
    );
    assert!(
        !body.contains(r#"<option value="updated_at">"#),
        "a timestamp is not a numeric field"
    );
    assert!(
        body.contains(
            r#"<input type="number" step="any" id="p-min" name="p.min" value="" required>"#
        ),
        "{body}"
    );
    assert!(body.contains(r#"id="p-inclusive_min""#), "{body}");
    assert!(body.contains(r#"id="filter""#) && body.contains(r#"id="coverage""#));

    // min > max: the API's error is shown next to max, and everything typed is kept
    let new = format!("/datastores/{ds}/checks/new");
    let (status, body, _) = post_form(
        &api,
        &ada,
        &new,
        &[
            ("container_id", &o),
            ("rule", "between"),
            ("fields", "total"),
            ("p.min", "100"),
            ("p.max", "10"),
            ("p.inclusive_min", "false"),
            ("filter", "total > 1"),
            ("description", "totals <in> range"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains(
            r#"<p class="field-error" id="err-p-max">max (10) is less than min (100)</p>"#
        ),
        "{body}"
    );
    assert!(body.contains(r#"name="p.min" value="100""#));
    assert!(body.contains(r#"name="p.max" value="10""#));
    assert!(body.contains(r#"<option value="false" selected>no</option>"#));
    assert!(
        body.contains(r#"value="total &gt; 1""#) || body.contains(r#"value="total &#62; 1""#),
        "{body}"
    );
    assert!(body.contains("totals &lt;in&gt; range") || body.contains("totals &#60;in&#62; range"));
    assert!(body.contains(r#"<option value="total" selected>"#));
    let none = api
        .get(&format!("/quality-checks?container={orders}"))
        .await
        .body;
    assert_eq!(none["total"], 0, "nothing saved: {none}");

    // a valid one is created through the API's handler
    let (status, _, location) = post_form(
        &api,
        &ada,
        &new,
        &[
            ("container_id", &o),
            ("rule", "between"),
            ("fields", "total"),
            ("p.min", "1"),
            ("p.max", "1000"),
            ("p.inclusive_min", ""),
            ("filter", ""),
            ("coverage", "0.9"),
            ("description", "totals in range"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), format!("/datastores/{ds}/checks"));
    let list = api
        .get(&format!("/quality-checks?container={orders}"))
        .await
        .body;
    let check = &list["items"][0];
    assert_eq!(check["rule_type"], "between");
    assert_eq!(check["properties"]["min"], 1);
    assert_eq!(check["properties"]["max"], 1000);
    assert_eq!(
        check["properties"]["inclusive_min"], true,
        "the API's default"
    );
    assert_eq!(check["coverage"], 0.9);
    assert_eq!(check["fields"][0]["name"], "total");
    let cid = check["id"].as_i64().unwrap();

    // Edit: the same form, filled in; a bad value keeps the edit, a good one saves it
    let edit = format!("/checks/{cid}/edit");
    let (_, body, _) = page(&api, Some(&ada), &format!("/datastores/{ds}/checks")).await;
    assert!(body.contains(&format!(r#"href="{edit}""#)), "{body}");
    let (status, body, _) = page(&api, Some(&ada), &edit).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"name="p.max" value="1000""#), "{body}");
    assert!(body.contains(r#"<option value="total" selected>"#));
    assert!(body.contains(">totals in range</textarea>"));
    let (status, body, _) = post_form(
        &api,
        &ada,
        &edit,
        &[
            ("fields", "total"),
            ("p.min", "1"),
            ("p.max", "abc"),
            ("description", "wider"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body.contains(r#"id="err-p-max">must be a number"#),
        "{body}"
    );
    assert!(body.contains(r#"name="p.max" value="abc""#));
    let (status, _, _) = post_form(
        &api,
        &ada,
        &edit,
        &[
            ("fields", "total"),
            ("p.min", "0"),
            ("p.max", "5000"),
            ("coverage", "1"),
            ("description", "wider"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let c = api.get(&format!("/quality-checks/{cid}")).await.body;
    assert_eq!(c["properties"]["max"], 5000, "{c}");
    assert_eq!(c["description"], "wider");
    assert_eq!(c["coverage"], 1.0);
}

#[tokio::test]
async fn anomalies_filter_and_change_in_bulk() {
    let (api, ds, _) = common::checks::setup(
        "uianomalies",
        "INSERT INTO sales.orders (total) VALUES (5), (50), (-500);
         INSERT INTO sales.customers VALUES (1, NULL), (2, 'b@example.com');",
    )
    .await;
    let orders = common::checks::container_id(&api, ds, "orders").await;
    let customers = common::checks::container_id(&api, ds, "customers").await;
    common::checks::create(&api, orders, "notNegative", &["total"], json!({})).await;
    common::checks::create(&api, customers, "notNull", &["email"], json!({})).await;
    common::checks::create(&api, orders, "notNull", &["total"], json!({})).await;
    let scan = common::checks::run(&api, ds, "scan", json!({})).await;
    assert!(
        scan["result"] == "success" || scan["result"] == "warning",
        "{scan}"
    );
    let on_orders = common::checks::anomalies(&api, orders, "").await;
    let on_customers = common::checks::anomalies(&api, customers, "").await;
    assert!(!on_orders.is_empty() && !on_customers.is_empty());
    let a = on_orders[0]["id"].as_i64().unwrap();
    let b = on_customers[0]["id"].as_i64().unwrap();
    let row = |id: i64| format!(r#"<tr data-anomaly="{id}">"#);
    let ada = admin(&api, "ada").await;
    // the card's quality score: one of the three checks passed
    let (_, body, _) = page(&api, Some(&ada), "/datastores").await;
    assert!(
        body.contains(r#"<strong class="score">33</strong> quality score"#),
        "{body}"
    );

    // unfiltered: both; filtered by table or by rule type: only that one, the filter kept in the form
    let list = format!("/datastores/{ds}/anomalies");
    let (status, body, _) = page(&api, Some(&ada), &list).await;
    assert_eq!(status, 200);
    assert!(body.contains(&row(a)) && body.contains(&row(b)), "{body}");
    let (_, body, _) = page(
        &api,
        Some(&ada),
        &format!("{list}?archived=0&table={customers}"),
    )
    .await;
    assert!(!body.contains(&row(a)) && body.contains(&row(b)), "{body}");
    assert!(body.contains(&format!(
        r#"<option value="{customers}" selected>customers</option>"#
    )));
    let (_, body, _) = page(
        &api,
        Some(&ada),
        &format!("{list}?rule=notNegative&type=record"),
    )
    .await;
    assert!(body.contains(&row(a)) && !body.contains(&row(b)), "{body}");
    let (_, body, _) = page(&api, Some(&ada), &format!("{list}?type=shape")).await;
    assert!(!body.contains(&row(a)) && !body.contains(&row(b)));
    assert!(body.contains("No anomalies match these filters."));
    let (_, body, _) = page(&api, Some(&ada), &format!("{list}?status=Acknowledged")).await;
    assert!(!body.contains(&row(a)) && !body.contains(&row(b)));

    // bulk Acknowledge of both, back to the same filters
    let (a_s, b_s) = (a.to_string(), b.to_string());
    let (status, _, location) = post_form(
        &api,
        &ada,
        &format!("{list}/bulk"),
        &[
            ("archived", "0"),
            ("status", ""),
            ("type", "record"),
            ("ids", &a_s),
            ("ids", &b_s),
            ("action", "acknowledge"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), format!("{list}?archived=0&type=record"));
    for id in [a, b] {
        let v = api.get(&format!("/anomalies/{id}")).await.body;
        assert_eq!(v["status"], "Acknowledged", "{v}");
    }
    let (_, body, _) = page(&api, Some(&ada), &format!("{list}?status=Acknowledged")).await;
    assert!(body.contains(&row(a)) && body.contains(&row(b)), "{body}");

    // bulk Archive as Invalid of one
    let (status, _, _) = post_form(
        &api,
        &ada,
        &format!("{list}/bulk"),
        &[
            ("ids", &b_s),
            ("action", "archive"),
            ("archive_status", "Invalid"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let v = api.get(&format!("/anomalies/{b}")).await.body;
    assert_eq!(v["status"], "Invalid", "{v}");
    let (_, body, _) = page(&api, Some(&ada), &format!("{list}?archived=1")).await;
    assert!(body.contains(&row(b)) && !body.contains(&row(a)), "{body}");
}

#[tokio::test]
async fn profile_history_charts_have_a_point_per_profile() {
    let (api, ds, db) = common::checks::setup(
        "uihistory",
        "INSERT INTO sales.orders (total) VALUES (5), (50), (NULL);",
    )
    .await;
    let orders = common::checks::container_id(&api, ds, "orders").await;
    let ada = admin(&api, "ada").await;
    let table = format!("/containers/{orders}");
    let (_, body, _) = page(&api, Some(&ada), &table).await;
    assert!(
        !body.contains("<svg class=\"chart history\""),
        "no profile, no chart"
    );
    // the table's New check opens the form with this table chosen
    let new = format!("/datastores/{ds}/checks/new?container={orders}");
    assert!(body.contains(&format!(r#"href="{new}""#)), "{body}");
    let (_, body, _) = page(&api, Some(&ada), &new).await;
    assert!(
        body.contains(&format!(
            r#"<option value="{orders}" selected>orders</option>"#
        )),
        "{body}"
    );

    let p = common::checks::run(&api, ds, "profile", json!({})).await;
    assert_eq!(p["result"], "success", "{p}");
    let su = assay_testkit::TestPg::shared().superuser(&db).await;
    su.batch_execute("INSERT INTO sales.orders (total) VALUES (7), (8); ANALYZE")
        .await
        .unwrap();
    let p = common::checks::run(&api, ds, "profile", json!({})).await;
    assert_eq!(p["result"], "success", "{p}");

    // the table's rows per profile: two points, each with its tooltip
    let (status, body, _) = page(&api, Some(&ada), &table).await;
    assert_eq!(status, 200);
    let chart = svg_of(&body, "row-history");
    assert!(chart.contains(r#"data-points="2""#), "{chart}");
    assert_eq!(
        chart.matches("<circle class=\"point\"").count(),
        2,
        "{chart}"
    );
    assert!(chart.contains(": 3 rows (operation "), "{chart}");
    assert!(chart.contains(": 5 rows (operation "), "{chart}");

    // a field's completeness and distinct values per profile
    let marker = format!(r#"<tr data-field="total"><td><a href="/containers/{orders}/fields/"#);
    let at = body.find(&marker).expect("the field's link") + marker.len();
    let fid: String = body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let (status, body, _) = page(&api, Some(&ada), &format!("{table}/fields/{fid}")).await;
    assert_eq!(status, 200);
    let completeness = svg_of(&body, "completeness-history");
    assert_eq!(completeness.matches("<circle").count(), 2, "{completeness}");
    assert!(completeness.contains("67 % complete"), "{completeness}");
    assert!(completeness.contains("80 % complete"), "{completeness}");
    let distinct = svg_of(&body, "distinct-history");
    assert_eq!(distinct.matches("<circle").count(), 2, "{distinct}");
    assert!(
        distinct.contains(": 2 distinct values</title>"),
        "{distinct}"
    );
    assert!(
        distinct.contains(": 4 distinct values</title>"),
        "{distinct}"
    );
}

/// The `<svg>` inside the figure with this id.
fn svg_of(body: &str, figure: &str) -> String {
    let start = body
        .find(&format!(r#"id="{figure}""#))
        .unwrap_or_else(|| panic!("no {figure} in {body}"));
    let end = start + body[start..].find("</svg>").unwrap();
    body[start..end].to_string()
}
