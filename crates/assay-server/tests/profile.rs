//! The profile operation against a real PostgreSQL, with the seed's read-only role: metrics checked against
//! SQL, exotic types, incremental profiles equal to full ones for appended rows, re-basing after updates,
//! inferred checks (and user edits kept), per-container failures and abort.

mod common;

use assay_testkit::TestPg;
use common::Api;
use serde_json::{Value, json};

/// A source with a mixed table; returns (api, datastore id, database, reader role).
async fn setup(prefix: &str, ddl: &str) -> (Api, i64, String, String) {
    common::checks::setup_with_reader(prefix, ddl).await
}

async fn profile(api: &Api, ds: i64, extra: Value) -> Value {
    let mut body = json!({"datastore_id": ds, "type": "profile"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let op = api.ok("/operations/run", body).await;
    api.wait(op["id"].as_i64().unwrap()).await
}

async fn container_id(api: &Api, ds: i64, name: &str) -> i64 {
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

async fn fields(api: &Api, container: i64) -> Vec<Value> {
    let v = api
        .get(&format!("/containers/{container}/field-profiles"))
        .await
        .body;
    assert_eq!(
        v["total"].as_i64().unwrap() as usize,
        v["items"].as_array().unwrap().len()
    );
    v["items"].as_array().unwrap().clone()
}

fn field<'a>(fs: &'a [Value], name: &str) -> &'a Value {
    fs.iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no profile for {name}"))
}

const MIXED: &str = "
CREATE TYPE sales.mood AS ENUM ('ok', 'sad');
CREATE DOMAIN sales.positive AS int CHECK (VALUE > 0);
CREATE TABLE sales.mixed (
  id bigint PRIMARY KEY, qty int, price numeric(12,2), ratio float8, placed timestamptz, day date,
  email text, status text, flag bool, uid uuid, doc jsonb, tags text[], span int4range, pt point,
  cash money, mood sales.mood, pos sales.positive, huge numeric
);
INSERT INTO sales.mixed
SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 200) - 20 END, (g % 1000) * 1.25, g / 7.0,
       timestamptz '2026-01-01' + g * interval '1 minute', date '2026-01-01' + (g % 300),
       CASE WHEN g % 100 = 0 THEN 'broken' ELSE 'u' || g || '@example.com' END,
       (ARRAY['new','paid','shipped'])[1 + g % 3], g % 2 = 0,
       md5(g::text)::uuid, jsonb_build_object('g', g), ARRAY['a', g::text], int4range(g, g + 5), point(g, g),
       (g % 50)::money, (ARRAY['ok','sad'])[1 + g % 2]::sales.mood, 1 + g % 9, (10::numeric ^ 40) + g
FROM generate_series(1, 20000) g;
INSERT INTO sales.mixed (id, ratio, day, placed, huge) VALUES
  (20001, 'NaN', 'infinity', '-infinity', 'NaN'), (20002, 'Infinity', '2026-02-01', now() - interval '1 day', 1);
";

#[tokio::test]
async fn field_profiles_match_sql_and_survive_exotic_types() {
    let (api, ds, db, _) = setup("mixed", MIXED).await;
    let op = profile(&api, ds, json!({"container_names": ["mixed"]})).await;
    assert_eq!(op["result"], "success", "{op}");
    assert_eq!(op["status"]["containers_analyzed"], 1);
    assert_eq!(op["status"]["records_processed"], 20002);
    let cid = container_id(&api, ds, "mixed").await;
    let fs = fields(&api, cid).await;
    assert_eq!(fs.len(), 18, "every column gets a profile");
    let su = TestPg::shared().superuser(&db).await;
    let truth = su
        .query_one(
            "SELECT count(qty)::float8 / count(*), min(qty)::float8, max(qty)::float8, avg(qty)::float8, stddev_samp(qty)::float8, \
                    count(DISTINCT qty)::float8, count(DISTINCT email)::float8, count(DISTINCT id)::float8, \
                    percentile_disc(0.5) WITHIN GROUP (ORDER BY qty)::float8, count(*) FILTER (WHERE qty < 0)::int8 \
             FROM sales.mixed",
            &[],
        )
        .await
        .unwrap();
    let qty = field(&fs, "qty");
    assert!((qty["completeness"].as_f64().unwrap() - truth.get::<_, f64>(0)).abs() < 1e-12);
    assert_eq!(qty["min"].as_f64().unwrap(), truth.get::<_, f64>(1));
    assert_eq!(qty["max"].as_f64().unwrap(), truth.get::<_, f64>(2));
    assert!((qty["mean"].as_f64().unwrap() - truth.get::<_, f64>(3)).abs() < 1e-9);
    assert!((qty["std_dev"].as_f64().unwrap() - truth.get::<_, f64>(4)).abs() < 1e-6);
    assert_eq!(qty["negatives"].as_i64().unwrap(), truth.get::<_, i64>(9));
    let rel = |est: f64, exact: f64| (est - exact).abs() / exact;
    assert!(
        rel(
            qty["approximate_distinct_values"].as_f64().unwrap(),
            truth.get(5)
        ) < 0.02
    );
    assert!(
        rel(
            field(&fs, "email")["approximate_distinct_values"]
                .as_f64()
                .unwrap(),
            truth.get(6)
        ) < 0.02
    );
    assert!(
        rel(
            field(&fs, "id")["approximate_distinct_values"]
                .as_f64()
                .unwrap(),
            truth.get(7)
        ) < 0.02
    );
    // the median's rank is within 1 %
    let median = qty["median"].as_f64().unwrap();
    let rank: f64 = su
        .query_one(
            "SELECT (count(*) FILTER (WHERE qty <= $1))::float8 / count(qty) FROM sales.mixed",
            &[&(median as i32)],
        )
        .await
        .unwrap()
        .get(0);
    assert!((rank - 0.5).abs() < 0.01, "median {median} has rank {rank}");
    // text: lengths, inferred kinds, top values for low cardinality
    let email = field(&fs, "email");
    assert_eq!(email["min_length"], 6);
    let share = email["type_inference"]["email"].as_f64().unwrap();
    assert!((share - 0.99).abs() < 0.001, "{share}");
    assert!(
        email["mean"].is_null()
            && email["not_applicable"]
                .as_array()
                .unwrap()
                .contains(&json!("mean"))
    );
    let status = field(&fs, "status");
    assert_eq!(status["top_values"].as_array().unwrap().len(), 3);
    assert!(status["entropy"].as_f64().unwrap() > 1.5);
    // booleans, temporal values and infinities
    assert_eq!(field(&fs, "flag")["true_count"], 10000);
    let day = field(&fs, "day");
    assert_eq!(day["non_finite"], 1);
    assert_eq!(day["min"], "2026-01-01T00:00:00Z");
    let ratio = field(&fs, "ratio");
    assert_eq!(ratio["non_finite"], 2);
    assert!(
        ratio["notes"][0]
            .as_str()
            .unwrap()
            .contains("NaN or infinite")
    );
    // exotic types get the metrics that make sense and a note
    for name in ["tags", "span", "pt", "doc"] {
        let f = field(&fs, name);
        assert!(
            (f["completeness"].as_f64().unwrap() - 20000.0 / 20002.0).abs() < 1e-12,
            "{name}: {f}"
        );
        assert!(
            f["notes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n.as_str().unwrap().contains("read as text")),
            "{name}"
        );
    }
    assert!(
        field(&fs, "cash")["max"].as_f64().unwrap() > 0.0,
        "money is read as numeric"
    );
    assert!(field(&fs, "huge")["min"].as_f64().unwrap() == 1.0);
    assert_eq!(
        field(&fs, "mood")["top_values"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        field(&fs, "pos")["min"],
        1.0,
        "domains resolve to their base type"
    );
    assert!(
        rel(
            field(&fs, "uid")["approximate_distinct_values"]
                .as_f64()
                .unwrap(),
            20000.0
        ) < 0.02
    );
    // the field-profiles listing and the profile history
    assert_eq!(
        api.get(&format!("/field-profiles?container={cid}&size=100"))
            .await
            .body["total"],
        18
    );
    let hist = api.get(&format!("/containers/{cid}/profiles")).await.body;
    assert_eq!(hist["items"][0]["records_count"], 20002);
    assert_eq!(hist["items"][0]["incremental"], false);
}

const ORDERS: &str = "
CREATE TABLE sales.events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, amount numeric, note text);
INSERT INTO sales.events (at, amount, note)
SELECT timestamptz '2026-01-01' + g * interval '1 second', g % 977, 'n' || (g % 13) FROM generate_series(1, 30000) g;
CREATE TABLE sales.plain (code text, qty int);
INSERT INTO sales.plain SELECT 'c' || g, g % 17 FROM generate_series(1, 5000) g;
";

fn core(f: &Value) -> Value {
    json!([
        f["name"],
        f["records"],
        f["nulls"],
        f["min"],
        f["max"],
        f["min_length"],
        f["max_length"],
        f["negatives"],
        f["top_values"]
    ])
}

fn close(a: &Value, b: &Value, key: &str) -> bool {
    match (a[key].as_f64(), b[key].as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * (1.0 + x.abs().max(y.abs())),
        (None, None) => true,
        _ => false,
    }
}

#[tokio::test]
async fn incremental_profiles_equal_full_ones_for_appended_rows() {
    let (api, ds, db, _) = setup("incr", ORDERS).await;
    let su = TestPg::shared().superuser(&db).await;
    let first = profile(&api, ds, json!({})).await;
    assert_eq!(first["result"], "success", "{first}");
    let events = container_id(&api, ds, "events").await;
    let plain = container_id(&api, ds, "plain").await;
    // append 1 % to both: one has an incremental field (at), the other only commit timestamps
    su.batch_execute(
        "INSERT INTO sales.events (at, amount, note) SELECT timestamptz '2026-02-01' + g * interval '1 second', -g, 'late' \
         FROM generate_series(1, 300) g; \
         INSERT INTO sales.plain SELECT 'x' || g, 100 + g FROM generate_series(1, 50) g;",
    )
    .await
    .unwrap();
    let second = profile(&api, ds, json!({})).await;
    assert_eq!(second["result"], "success", "{second}");
    let results = second["status"]["containers"].as_array().unwrap();
    let by = |id: i64| {
        results
            .iter()
            .find(|r| r["container"]["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by(events)["incremental"], true, "{second}");
    assert_eq!(by(events)["records_processed"], 300);
    assert_eq!(by(plain)["incremental"], true);
    assert_eq!(by(plain)["records_processed"], 50);
    let inc_events = fields(&api, events).await;
    let inc_plain = fields(&api, plain).await;
    // a forced full profile of the same data gives the same profile
    let third = profile(&api, ds, json!({"incremental": false})).await;
    assert_eq!(third["status"]["containers"][0]["incremental"], false);
    let full_events = fields(&api, events).await;
    let full_plain = fields(&api, plain).await;
    assert_eq!(inc_events.len(), 4);
    assert_eq!(inc_plain.len(), 2);
    for (inc, full) in [(&inc_events, &full_events), (&inc_plain, &full_plain)] {
        assert_eq!(inc.len(), full.len(), "{inc:?} vs {full:?}");
        for (a, b) in inc.iter().zip(full.iter()) {
            assert_eq!(core(a), core(b));
            for key in ["mean", "std_dev", "sum", "completeness"] {
                assert!(close(a, b, key), "{key}: {} vs {}", a[key], b[key]);
            }
            let (da, db_) = (
                a["approximate_distinct_values"].as_f64().unwrap(),
                b["approximate_distinct_values"].as_f64().unwrap(),
            );
            assert!((da - db_).abs() / db_ < 0.02, "{da} vs {db_}");
        }
    }
    assert_eq!(field(&inc_events, "amount")["negatives"], 300);
    // an update re-bases the next profile in full
    su.batch_execute("UPDATE sales.plain SET qty = -1 WHERE qty = 3")
        .await
        .unwrap();
    // the drift check reads the table's update counter, which the updating backend publishes within a second
    for i in 0.. {
        let updated: i64 = su
            .query_one(
                "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'sales.plain'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if updated > 0 {
            break;
        }
        assert!(i < 200, "the update never reached pg_stat_user_tables");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let fourth = profile(&api, ds, json!({"container_names": ["plain"]})).await;
    let r = &fourth["status"]["containers"][0];
    assert_eq!(r["incremental"], false, "{fourth}");
    assert!(r["message"].as_str().unwrap().contains("re-base"), "{r}");
    assert!(
        field(&fields(&api, plain).await, "qty")["negatives"]
            .as_i64()
            .unwrap()
            > 0
    );
    // a sampled profile is never incremental and stores no state
    let sampled = profile(
        &api,
        ds,
        json!({"container_names": ["events"], "max_records_analyzed_per_partition": 1000}),
    )
    .await;
    assert_eq!(sampled["status"]["containers"][0]["sampled"], true);
    assert!(sampled["status"]["records_processed"].as_i64().unwrap() <= 2000);
}

#[tokio::test]
async fn inferred_checks_follow_the_level_and_keep_user_edits() {
    let (api, ds, _db, _reader) = setup("infer", ORDERS).await;
    let op = profile(&api, ds, json!({"ai_effort": "off"})).await;
    assert_eq!(op["status"]["checks_synchronized"], 0);
    assert_eq!(
        api.get(&format!("/quality-checks?datastore={ds}"))
            .await
            .body["total"],
        0
    );
    let op = profile(&api, ds, json!({"inference_threshold": 3})).await;
    assert!(
        op["status"]["checks_synchronized"].as_i64().unwrap() > 5,
        "{op}"
    );
    let checks = api
        .get(&format!("/quality-checks?datastore={ds}&size=100"))
        .await
        .body;
    let items = checks["items"].as_array().unwrap();
    let find = |rule: &str, field: &str| {
        items
            .iter()
            .find(|c| {
                c["rule_type"] == rule
                    && c["fields"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f["name"] == field)
            })
            .cloned()
    };
    let between = find("between", "amount").expect("between on amount");
    assert_eq!(between["inferred"], true);
    // the observed range, widened by the spread of the values
    assert_eq!(between["properties"]["min"], 0.0);
    assert!(
        between["properties"]["max"].as_f64().unwrap() > 976.0,
        "{between}"
    );
    assert!(
        between["description"]
            .as_str()
            .unwrap()
            .contains("observed 0 to 976"),
        "{between}"
    );
    assert!(find("notNull", "at").is_some());
    assert!(find("unique", "id").is_some());
    assert!(find("expectedValues", "note").is_some());
    assert!(find("afterDateTime", "at").is_some());
    assert!(items.iter().any(|c| c["rule_type"] == "expectedSchema"));
    assert_eq!(between["container"]["name"], "events");
    // a user edits the between check; re-profiling with new data leaves it alone, and updates the others
    let id = between["id"].as_i64().unwrap();
    api.state
        .store
        .edit_check_properties(
            id,
            &json!({"min": -5, "max": 5000, "inclusive_min": true, "inclusive_max": true}),
            "admin",
        )
        .await
        .unwrap();
    let minv = find("maxValue", "amount").unwrap();
    TestPg::shared()
        .superuser(&_db)
        .await
        .batch_execute("INSERT INTO sales.events (at, amount) VALUES (now(), 5000)")
        .await
        .unwrap();
    let op = profile(&api, ds, json!({"ai_effort": "high"})).await;
    assert_eq!(op["result"], "success");
    let edited = api.get(&format!("/quality-checks/{id}")).await.body;
    assert_eq!(edited["properties"]["max"], 5000);
    assert_eq!(edited["inferred"], false);
    let refreshed = api
        .get(&format!("/quality-checks/{}", minv["id"]))
        .await
        .body;
    assert!(
        refreshed["properties"]["value"].as_f64().unwrap() >= 5000.0,
        "untouched inferred checks follow the data: {refreshed}"
    );
    // new inferred checks can be drafts
    TestPg::shared().superuser(&_db).await.batch_execute(&format!("CREATE TABLE sales.fresh AS SELECT g AS n FROM generate_series(1, 100) g; GRANT SELECT ON sales.fresh TO {}", _reader)).await.unwrap();
    api.sync(ds, json!({})).await;
    let op = profile(
        &api,
        ds,
        json!({"ai_effort": "max", "infer_as_draft": true, "container_names": ["fresh"]}),
    )
    .await;
    assert_eq!(op["result"], "success");
    let fresh = container_id(&api, ds, "fresh").await;
    let drafts = api
        .get(&format!("/quality-checks?container={fresh}&status=Draft"))
        .await
        .body;
    assert!(drafts["total"].as_i64().unwrap() >= 3, "{drafts}");
    assert_eq!(
        api.get(&format!("/quality-checks?container={fresh}&status=Active"))
            .await
            .body["total"],
        0
    );
    // bad requests
    for body in [
        json!({"datastore_id": ds, "type": "profile", "ai_effort": "extreme"}),
        json!({"datastore_id": ds, "type": "profile", "inference_threshold": 9}),
        json!({"datastore_id": ds, "type": "profile", "max_records_analyzed_per_partition": 0}),
    ] {
        assert_eq!(api.post("/operations/run", body).await.status, 422);
    }
}

#[tokio::test]
async fn a_failing_container_does_not_stop_the_others_and_abort_stops_quickly() {
    let (api, ds, db, reader) = setup("faults", ORDERS).await;
    let su = TestPg::shared().superuser(&db).await;
    su.batch_execute(&format!("REVOKE SELECT ON sales.plain FROM {reader}"))
        .await
        .unwrap();
    let op = profile(&api, ds, json!({})).await;
    assert_eq!(op["result"], "success", "{op}");
    let msg = op["message"].as_str().unwrap();
    assert!(msg.contains("plain") && msg.contains("42501"), "{msg}");
    let failed = op["status"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["container"]["name"] == "plain")
        .unwrap()
        .clone();
    assert_eq!(failed["result"], "failure");
    let events = container_id(&api, ds, "events").await;
    assert_eq!(fields(&api, events).await.len(), 4);
    // unknown container names
    let op = profile(&api, ds, json!({"container_names": ["nope"]})).await;
    assert_eq!(op["result"], "failure");
    assert!(op["message"].as_str().unwrap().contains("nope"));
    // abort: a table whose row-level security policy sleeps a millisecond per row for the reader, so reading it
    // takes far longer than the abort may; aborted once its COPY is active on the server
    su.batch_execute(&format!(
        "CREATE TABLE sales.slow_tbl (id int PRIMARY KEY, h text); \
         INSERT INTO sales.slow_tbl SELECT g, md5(g::text) FROM generate_series(1, {SLOW_ROWS}) g; \
         ALTER TABLE sales.slow_tbl ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY slow_reads ON sales.slow_tbl FOR SELECT USING (pg_sleep(0.001) IS NOT NULL); \
         GRANT SELECT ON sales.slow_tbl TO {reader}; ANALYZE sales.slow_tbl"
    ))
    .await
    .unwrap();
    api.sync(ds, json!({})).await;
    let slow = container_id(&api, ds, "slow_tbl").await;
    let started = api
        .ok(
            "/operations/run",
            json!({"datastore_id": ds, "type": "profile", "container_names": ["slow_tbl"]}),
        )
        .await;
    let id = started["id"].as_i64().unwrap();
    let copying = "COPY (SELECT%slow_tbl%";
    assert!(active_reads(&su, &reader, copying).await_some().await > 0);
    let t0 = std::time::Instant::now();
    let abort = api
        .call("PUT", &format!("/operations/abort/{id}"), None)
        .await;
    assert!(abort.status < 300, "{}", abort.body);
    let done = api.wait(id).await;
    assert_eq!(done["result"], "aborted", "{done}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(
        api.get(&format!("/containers/{slow}/field-profiles"))
            .await
            .body["total"],
        0,
        "no partial profile"
    );
    // the server-side COPY was cancelled, long before the read could have ended by itself
    active_reads(&su, &reader, copying).await_none().await;
}

/// Rows of `slow_tbl`: a millisecond each for the reader, so a full read takes over ten seconds per partition.
const SLOW_ROWS: i64 = 30000;

/// The reader's active statements on the source whose text is like a pattern, polled (bounded) by
/// [`ActiveReads::await_some`] and [`ActiveReads::await_none`].
struct ActiveReads<'a> {
    su: &'a tokio_postgres::Client,
    reader: &'a str,
    like: &'a str,
}

fn active_reads<'a>(
    su: &'a tokio_postgres::Client,
    reader: &'a str,
    like: &'a str,
) -> ActiveReads<'a> {
    ActiveReads { su, reader, like }
}

impl ActiveReads<'_> {
    async fn count(&self) -> i64 {
        self.su
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active' \
                 AND query LIKE $2",
                &[&self.reader, &self.like],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Waits until at least one such statement is active (10 s at most); returns how many are.
    async fn await_some(&self) -> i64 {
        for _ in 0..1000 {
            let n = self.count().await;
            if n > 0 {
                return n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no statement like {} became active", self.like);
    }

    /// Waits until no such statement is active; panics if one still is after 5 s.
    async fn await_none(&self) {
        for _ in 0..100 {
            if self.count().await == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "a statement like {} is still active: it was not cancelled",
            self.like
        );
    }
}
