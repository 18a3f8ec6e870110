//! Inference on a real table with the seed's read-only role: growing fields get lower bounds only, bounds
//! elsewhere are widened, uniqueness is confirmed by an exact count before it is inferred, code shapes become
//! patterns, candidates that the newest rows (the held-out tail) do not pass are dropped with the reason, and a
//! later full profile archives what it no longer infers and brings it back when it does again (a check a user
//! archived stays archived).

mod common;

use assay_testkit::TestPg;
use common::Api;
use serde_json::{Value, json};

/// 3000 payments in insertion order: a dense id without a key or sequence, a unique reference without a
/// constraint, a reference that is unique but for one pair, amounts, an insertion timestamp, a kind, and a
/// region whose fourth value appears only in the newest rows.
const PAYMENTS: &str = "
CREATE TABLE sales.payments (
  id bigint NOT NULL, ref text NOT NULL, almost text NOT NULL, amount numeric(10,2) NOT NULL,
  created timestamptz NOT NULL, kind text NOT NULL, region text NOT NULL
);
INSERT INTO sales.payments
SELECT g, 'PAY-' || lpad(((g * 7919) % 10000000)::text, 7, '0'),
       'A' || CASE WHEN g = 3000 THEN 1 ELSE g END,
       10 + (g * 37 % 1000) / 10.0, timestamptz '2026-01-01' + g * interval '1 minute',
       (ARRAY['card','bank','cash','voucher','wallet'])[1 + g % 5],
       CASE WHEN g > 2900 THEN 'far-east' ELSE (ARRAY['north','south','west'])[1 + g % 3] END
FROM generate_series(1, 3000) g;
";

/// A full profile (not an increment: archiving follows full profiles only).
async fn profile(api: &Api, ds: i64) -> Value {
    let op = api
        .ok(
            "/operations/run",
            json!({"datastore_id": ds, "type": "profile", "incremental": false}),
        )
        .await;
    let op = api.wait(op["id"].as_i64().unwrap()).await;
    assert_eq!(op["result"], "success", "{op}");
    op
}

async fn checks(api: &Api, container: i64, archived: &str) -> Vec<Value> {
    let r = api
        .get(&format!(
            "/quality-checks?container={container}&archived={archived}&size=500"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

fn find<'a>(cs: &'a [Value], rule: &str, field: &str) -> Option<&'a Value> {
    cs.iter()
        .find(|c| c["rule_type"] == rule && c["fields"][0]["name"] == field)
}

#[tokio::test]
async fn inference_understands_growth_keys_shapes_and_the_newest_rows() {
    let (api, ds, db) = common::checks::setup("infer", PAYMENTS).await;
    let container = common::checks::container_id(&api, ds, "payments").await;
    let op = profile(&api, ds).await;
    let cs = checks(&api, container, "exclude").await;
    let has = |rule: &str, field: &str| find(&cs, rule, field).is_some();

    // growing fields: a lower bound, no upper one
    for (lower, range, field) in [
        ("minValue", "between", "id"),
        ("afterDateTime", "betweenTimes", "created"),
    ] {
        let c = find(&cs, lower, field).unwrap_or_else(|| panic!("{lower}({field}) in {cs:#?}"));
        assert!(
            c["description"]
                .as_str()
                .unwrap()
                .contains("a lower bound only"),
            "{c}"
        );
        assert!(
            !has(range, field),
            "{range}({field}) bounds a growing field"
        );
    }
    // elsewhere the bounds are wider than what was seen, and say so
    let between = find(&cs, "between", "amount").expect("between(amount)");
    assert!(
        between["properties"]["max"].as_f64().unwrap() > 109.9,
        "{between}"
    );
    assert!(
        between["description"]
            .as_str()
            .unwrap()
            .contains("widened by the spread"),
        "{between}"
    );
    // uniqueness needs an exact count: the reference is unique, `almost` has one duplicate its estimate misses
    let unique = find(&cs, "unique", "ref").expect("unique(ref)");
    assert!(
        unique["description"]
            .as_str()
            .unwrap()
            .contains("exact count"),
        "{unique}"
    );
    assert!(
        !has("unique", "almost"),
        "a field with a duplicate is not unique"
    );
    // one code shape in every row
    let pattern = find(&cs, "matchesPattern", "ref").expect("matchesPattern(ref)");
    assert_eq!(pattern["properties"]["pattern"], r"^[A-Z]{3}\-[0-9]{7}$");
    // the region list from the older rows fails on the newest ones: dropped, and the operation says why
    assert!(!has("expectedValues", "region"), "{cs:#?}");
    assert!(has("expectedValues", "kind"));
    let dropped = op["status"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["container"]["name"] == "payments")
        .unwrap()["checks_dropped"]
        .as_array()
        .unwrap();
    let region = dropped
        .iter()
        .find(|d| d["rule"] == "expectedValues" && d["fields"][0] == "region")
        .unwrap_or_else(|| panic!("{dropped:?}"));
    assert!(
        region["reason"]
            .as_str()
            .unwrap()
            .contains("the value far-east"),
        "{region}"
    );

    // an owner must exist (a 422 naming the field, not a failed write)
    let r = api
        .put(
            &format!("/quality-checks/{}", unique["id"]),
            json!({"owner_id": 987654}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("owner_id"),
        "{}",
        r.body
    );

    // a later full profile archives what it no longer infers, with the reason
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute("UPDATE sales.payments SET kind = 'k' || (id % 40)")
        .await
        .unwrap();
    // a user archives another inferred check: it must stay archived
    let not_null = find(&cs, "notNull", "kind").unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = api
        .call("DELETE", &format!("/quality-checks/{not_null}"), None)
        .await;
    assert!(r.status < 300, "{}", r.body);
    let op = profile(&api, ds).await;
    let archived = checks(&api, container, "only").await;
    let kind = find(&archived, "expectedValues", "kind")
        .unwrap_or_else(|| panic!("archived expectedValues(kind): {archived:?} {op}"));
    assert_eq!(kind["status"], "Discarded");
    assert!(
        kind["status_message"]
            .as_str()
            .unwrap()
            .contains("no longer infers it"),
        "{kind}"
    );
    // the data returns to five kinds: the check comes back; the user's archive stands
    su.batch_execute(
        "UPDATE sales.payments SET kind = (ARRAY['card','bank','cash','voucher','wallet'])[1 + id % 5]",
    )
    .await
    .unwrap();
    profile(&api, ds).await;
    let active = checks(&api, container, "exclude").await;
    let back = find(&active, "expectedValues", "kind").expect("expectedValues(kind) is back");
    assert_eq!(back["id"], kind["id"]);
    assert_eq!(back["status"], "Active");
    assert!(
        find(&active, "notNull", "kind").is_none(),
        "the user's archive stands"
    );
}
