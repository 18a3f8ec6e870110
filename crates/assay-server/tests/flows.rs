//! Notifications against real receivers on loopback: a scan yields one message per action with all its anomalies
//! (a signed webhook, a Slack Block Kit message, a Teams card), `only_new` keeps repeated anomalies quiet, a
//! receiver that refuses and then comes back gets the message once under one delivery id, one that keeps failing
//! ends `failed` after the bounded attempts, every attempt is visible, and no URL or secret is ever shown.

mod common;

use assay_testkit::receiver::{Mode, Receiver};
use serde_json::{Value, json};

const SECRET: &str = "flow-signing-secret-0042";

async fn setup(prefix: &str) -> (common::Api, i64, i64) {
    let (api, ds, _) = common::checks::setup(
        prefix,
        "INSERT INTO sales.orders (total) VALUES (5), (-7), (-9), (50);
         INSERT INTO sales.customers VALUES (1, NULL), (2, 'b@example.com');",
    )
    .await;
    let orders = common::checks::container_id(&api, ds, "orders").await;
    let customers = common::checks::container_id(&api, ds, "customers").await;
    common::checks::create(&api, orders, "notNegative", &["total"], json!({})).await;
    common::checks::create(&api, customers, "notNull", &["email"], json!({})).await;
    (api, ds, orders)
}

/// A flow's executions once none of their deliveries is pending (a receiver has a message a moment before the
/// dispatcher records its answer).
async fn settled(api: &common::Api, flow: i64) -> Vec<Value> {
    let pending = |x: &[Value]| {
        x.iter().any(|e| {
            e["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["status"] == "pending")
        })
    };
    let mut x = executions(api, flow).await;
    for _ in 0..50 {
        if !pending(&x) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        x = executions(api, flow).await;
    }
    x
}

async fn executions(api: &common::Api, flow: i64) -> Vec<Value> {
    let r = api.get(&format!("/flows/{flow}/executions")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_scan_sends_one_message_per_action_with_all_its_anomalies() {
    let (api, ds, _) = setup("flowscan").await;
    let rx = Receiver::start().await;
    let r = api
        .post(
            "/flows",
            json!({"name": "quality alerts", "trigger": {"type": "anomaly"},
                   "actions": [{"type": "webhook", "url": rx.url("/hook"), "secret": SECRET},
                               {"type": "slack", "url": rx.url("/slack")},
                               {"type": "teams", "url": rx.url("/teams")}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let flow = r.body["id"].as_i64().unwrap();
    let quiet = api
        .post(
            "/flows",
            json!({"name": "new only", "trigger": {"type": "anomaly"}, "filters": {"only_new": true},
                   "actions": [{"type": "webhook", "url": rx.url("/new")}]}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    // nothing secret is shown
    for body in [
        api.get(&format!("/flows/{flow}")).await.body,
        api.get("/flows").await.body,
    ] {
        let text = body.to_string();
        assert!(
            !text.contains(SECRET) && !text.contains(&rx.addr.to_string()),
            "{text}"
        );
    }

    let scan = common::checks::run(&api, ds, "scan", json!({})).await;
    let found = scan["status"]["anomalies_identified"].as_u64().unwrap();
    assert!(found >= 2, "{scan}");
    let got = rx.wait_for(4, 30).await;
    let on = |path: &str| -> Vec<_> { got.iter().filter(|r| r.path == path).collect() };
    let (hook, slack, teams) = (on("/hook"), on("/slack"), on("/teams"));
    assert_eq!(
        (hook.len(), slack.len(), teams.len(), on("/new").len()),
        (1, 1, 1, 1),
        "{got:?}"
    );
    // the webhook: the versioned payload, signed over the exact body, with its delivery id
    let h = hook[0];
    let expected = format!("sha256={}", assay_ops::flows::sign(SECRET, &h.body));
    assert_eq!(h.header("x-assay-signature"), Some(expected.as_str()));
    assert_ne!(
        Some(
            format!(
                "sha256={}",
                assay_ops::flows::sign("another secret!!", &h.body)
            )
            .as_str()
        ),
        h.header("x-assay-signature")
    );
    let m = h.json();
    assert_eq!(m["version"], 1);
    assert_eq!(m["delivery_id"].as_str(), h.header("x-assay-delivery"));
    assert_eq!(m["operation"]["id"], scan["id"]);
    assert_eq!(m["anomalies"]["count"].as_u64(), Some(found), "{m}");
    let rules: Vec<&str> = m["anomalies"]["top_failed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["rule_type"].as_str())
        .collect();
    assert!(
        rules.contains(&"notNegative") && rules.contains(&"notNull"),
        "{m}"
    );
    let first = &m["anomalies"]["items"][0];
    assert!(
        first["url"]
            .as_str()
            .unwrap()
            .starts_with("http://assay.test/anomalies/"),
        "{m}"
    );
    // Slack: Block Kit with the summary; Teams: an adaptive card
    let s = slack[0].json();
    assert_eq!(s["text"], m["summary"]);
    assert!(s["blocks"].as_array().unwrap().len() >= 2, "{s}");
    let t = teams[0].json();
    assert_eq!(
        t["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(
        t["attachments"][0]["content"]["body"][0]["text"],
        m["summary"]
    );
    // the time from the scan's end to the webhook's arrival, for the record
    eprintln!(
        "scan end to webhook: {} ms",
        (chrono::Utc::now()
            - scan["end_time"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap())
        .num_milliseconds()
    );

    // one execution, each delivery delivered at the first attempt
    let x = settled(&api, flow).await;
    assert_eq!(x.len(), 1, "{x:?}");
    let actions = x[0]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 3);
    assert!(
        actions
            .iter()
            .all(|a| a["status"] == "delivered" && a["attempts"] == 1),
        "{x:?}"
    );

    // the same anomalies again: the flow tells again, the new-only flow does not
    common::checks::run(&api, ds, "scan", json!({})).await;
    rx.wait_for(7, 30).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let got = rx.received();
    assert_eq!(got.iter().filter(|r| r.path == "/hook").count(), 2);
    assert_eq!(
        got.iter().filter(|r| r.path == "/new").count(),
        1,
        "{got:?}"
    );
    assert_eq!(executions(&api, quiet).await.len(), 1);
}

#[tokio::test]
async fn a_receiver_that_comes_back_gets_the_message_once_and_one_that_fails_is_reported() {
    let (api, ds, _) = setup("flowretry").await;
    let rx = Receiver::start().await;
    let flow = api
        .post(
            "/flows",
            json!({"name": "syncs", "trigger": {"type": "operation", "operation_types": ["sync"]},
                   "actions": [{"type": "webhook", "url": rx.url("/hook")}]}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    rx.down().await;
    api.sync(ds, json!({})).await;
    // refused a few times (backoff from 0.3 s in the test servers), then the receiver is back
    let mut refused = 0;
    for _ in 0..100 {
        let x = executions(&api, flow).await;
        refused = x
            .first()
            .map(|x| x["actions"][0]["attempts"].as_i64().unwrap_or(0))
            .unwrap_or(0);
        if refused >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused >= 3, "{:?}", executions(&api, flow).await);
    rx.up().await;
    let got = rx.wait_for(1, 30).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(rx.received().len(), 1, "delivered once: {got:?}");
    let x = executions(&api, flow).await;
    let a = &x[0]["actions"][0];
    assert_eq!(a["status"], "delivered", "{a}");
    assert_eq!(got[0].header("x-assay-delivery"), a["delivery_id"].as_str());
    let history = a["history"].as_array().unwrap();
    assert_eq!(history.len() as i64, a["attempts"].as_i64().unwrap());
    assert!(
        history[0]["message"].as_str().unwrap().contains("refused"),
        "{history:?}"
    );
    assert!(
        !a.to_string().contains(&rx.addr.to_string()),
        "no URL in the record: {a}"
    );

    // a receiver that keeps answering 500: failed after six attempts, each recorded with its status
    rx.set(Mode::Fail);
    api.sync(ds, json!({})).await;
    let mut last = Value::Null;
    for _ in 0..300 {
        let x = executions(&api, flow).await;
        last = x[0]["actions"][0].clone();
        if last["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "failed", "{last}");
    assert_eq!(last["attempts"], 6, "{last}");
    assert!(
        last["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["code"] == 500 && h["ok"] == false)
    );
    assert!(
        last["last_result"]
            .as_str()
            .unwrap()
            .contains("gave up after 6 attempts"),
        "{last}"
    );
}

#[tokio::test]
async fn flows_are_validated_tested_and_an_administrators() {
    let (api, _, _) = setup("flowapi").await;
    let rx = Receiver::start().await;
    let r = api
        .post(
            "/flows",
            json!({"name": "", "trigger": {"type": "operation", "results": ["exploded"]},
                   "actions": [{"type": "webhook", "url": "ftp://x", "secret": "short"}]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "trigger.results",
            "actions[0].url",
            "actions[0].secret"
        ]
    );
    let r = api
        .post(
            "/flows",
            json!({"name": "x", "trigger": {"type": "sometimes"}, "actions": []}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);

    let flow = api
        .post(
            "/flows",
            json!({"name": "tested", "trigger": {"type": "anomaly"},
                   "actions": [{"type": "slack", "url": rx.url("/slack")},
                               {"type": "webhook", "url": "http://127.0.0.1:1/never"}]}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let r = api.post(&format!("/flows/{flow}/test"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"][0]["ok"], true, "{}", r.body);
    assert_eq!(r.body["results"][1]["ok"], false, "{}", r.body);
    let got = rx.wait_for(1, 10).await;
    assert!(
        got[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("Test message")
    );
    // an update without URLs keeps them; deactivation stops the flow
    let r = api
        .put(
            &format!("/flows/{flow}"),
            json!({"actions": [{"type": "slack"}, {"type": "webhook"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.post(&format!("/flows/{flow}/test"), json!({})).await;
    assert_eq!(
        r.body["results"][0]["ok"], true,
        "the stored URL was kept: {}",
        r.body
    );
    let r = api
        .post(&format!("/flows/{flow}/deactivate"), json!({}))
        .await;
    assert_eq!(r.body["active"], false);

    // a member may not read or write flows
    api.ok(
        "/users",
        json!({"username": "mo", "password": "mo-password-1", "role": "Member"}),
    )
    .await;
    let token = api
        .ok(
            "/auth/login",
            json!({"username": "mo", "password": "mo-password-1"}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    for (m, p) in [
        ("GET", "/flows".to_string()),
        ("GET", format!("/flows/{flow}")),
        ("POST", format!("/flows/{flow}/test")),
    ] {
        let r = api.call_as(Some(&token), m, &p, Some(json!({}))).await;
        assert_eq!(r.status, 403, "{m} {p}: {}", r.body);
    }
    assert_eq!(
        api.call("DELETE", &format!("/flows/{flow}"), None)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn status_changes_of_one_request_are_one_message() {
    let (api, ds, _) = setup("flowstatus").await;
    let rx = Receiver::start().await;
    common::checks::run(&api, ds, "scan", json!({})).await;
    let flow = api
        .post(
            "/flows",
            json!({"name": "triage", "trigger": {"type": "anomaly_status", "statuses": ["Acknowledged"]},
                   "actions": [{"type": "webhook", "url": rx.url("/triage")}]}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let all = api.get(&format!("/anomalies?datastore={ds}")).await.body;
    let ids: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .collect();
    assert!(ids.len() >= 2, "{all}");
    let body: Vec<Value> = ids
        .iter()
        .map(|i| json!({"id": i, "status": "Acknowledged"}))
        .collect();
    let r = api.call("PATCH", "/anomalies", Some(json!(body))).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let got = rx.wait_for(1, 20).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        rx.received().len(),
        1,
        "one message for one request: {got:?}"
    );
    let m = got[0].json();
    assert_eq!(m["event"], "anomaly_status_changed");
    assert_eq!(m["changes"].as_array().unwrap().len(), ids.len(), "{m}");
    assert!(
        m["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["to"] == "Acknowledged" && c["from"] == "Active")
    );
    // a change to a status the flow does not watch says nothing
    let r = api
        .call(
            "PATCH",
            "/anomalies",
            Some(json!([{"id": ids[0], "description": "looked at"}])),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .call(
            "DELETE",
            &format!("/anomalies/{}?archive=true&status=Resolved", ids[0]),
            None,
        )
        .await;
    assert!(r.status < 300, "{}", r.body);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(rx.received().len(), 1);
    assert_eq!(executions(&api, flow).await.len(), 1);

    // a bulk archive is one message too
    let resolved = api
        .post(
            "/flows",
            json!({"name": "resolved", "trigger": {"type": "anomaly_status", "statuses": ["Invalid"]},
                   "actions": [{"type": "webhook", "url": rx.url("/resolved")}]}),
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    let body: Vec<Value> = ids[1..]
        .iter()
        .map(|i| json!({"id": i, "archive": true, "status": "Invalid"}))
        .collect();
    let r = api.call("DELETE", "/anomalies", Some(json!(body))).await;
    assert!(r.status < 300, "{}", r.body);
    let got = rx.wait_for(2, 20).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let archived: Vec<_> = rx
        .received()
        .into_iter()
        .filter(|r| r.path == "/resolved")
        .collect();
    assert_eq!(archived.len(), 1, "{got:?}");
    assert_eq!(
        archived[0].json()["changes"].as_array().unwrap().len(),
        ids.len() - 1
    );
}

#[tokio::test]
async fn a_scan_is_one_e_mail_over_starttls_with_text_and_html() {
    let (api, ds, _) = setup("flowmail").await;
    let smtp = assay_testkit::TestSmtp::start("mailer", "smtp-password-31");
    let r = api
        .post(
            "/flows",
            json!({"name": "mail the team", "trigger": {"type": "anomaly"},
                   "actions": [{"type": "email", "to": ["dq-team@example.com", "lead@example.com"],
                                "smtp": {"host": "127.0.0.1", "port": smtp.port, "from": "assay@example.com",
                                         "username": "mailer", "password": "smtp-password-31",
                                         "ca_certificate": smtp.ca_pem}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let flow = r.body["id"].as_i64().unwrap();
    assert!(
        !r.body.to_string().contains("smtp-password-31"),
        "{}",
        r.body
    );
    assert_eq!(r.body["actions"][0]["password_set"], true);
    let scan = common::checks::run(&api, ds, "scan", json!({})).await;
    for _ in 0..100 {
        if !smtp.messages().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{:?}", executions(&api, flow).await);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "one e-mail for the scan");
    let m = &mails[0];
    assert!(m.contains("From: assay@example.com"), "{m}");
    assert!(
        m.contains("dq-team@example.com") && m.contains("lead@example.com"),
        "{m}"
    );
    assert!(m.contains("Subject: [Assay] scan of flowmail ended"), "{m}");
    assert!(
        m.contains("Content-Type: text/plain") && m.contains("Content-Type: text/html"),
        "{m}"
    );
    assert!(
        m.contains("notNegative") && m.contains("http://assay.test/anomalies/"),
        "{m}"
    );
    // the server required STARTTLS before it took the message, so the e-mail crossed TLS
    let x = settled(&api, flow).await;
    let a = &x[0]["actions"][0];
    assert_eq!(
        (a["status"].clone(), a["history"][0]["code"].clone()),
        (json!("delivered"), json!(250)),
        "{a}"
    );
    assert_eq!(scan["result"], "success");

    // without the test CA the server's certificate is refused, and the attempt says so
    let r = api
        .put(
            &format!("/flows/{flow}"),
            json!({"actions": [{"type": "email", "to": ["dq-team@example.com"],
                                "smtp": {"host": "127.0.0.1", "port": smtp.port, "from": "assay@example.com",
                                         "username": "mailer"}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["actions"][0]["password_set"], true,
        "the password was kept"
    );
    let r = api.post(&format!("/flows/{flow}/test"), json!({})).await;
    assert_eq!(r.body["results"][0]["ok"], false, "{}", r.body);
    assert!(
        r.body["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("SMTP"),
        "{}",
        r.body
    );
    assert!(!r.body.to_string().contains("smtp-password-31"));
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn an_operation_end_wakes_the_dispatcher_instead_of_waiting_for_its_tick() {
    let pg = assay_testkit::TestPg::shared();
    let db = pg.create_database("flowwake").await;
    // a server that would look for notifications only once a minute
    let settings = assay_ops::Settings {
        flows_tick: std::time::Duration::from_secs(60),
        ..common::Api::test_settings()
    };
    let api = common::Api::start_with(&db, [9; 32], settings).await;
    let (src, reader, _) = common::shop("flowwakesrc").await;
    let ds = common::checks::source(&api, "flowwake", &reader, &src).await;
    let rx = Receiver::start().await;
    api.post(
        "/flows",
        json!({"name": "syncs", "trigger": {"type": "operation", "operation_types": ["sync"]},
               "actions": [{"type": "webhook", "url": rx.url("/hook")}]}),
    )
    .await;
    let t0 = std::time::Instant::now();
    api.sync(ds, json!({})).await;
    rx.wait_for(1, 10).await;
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn action_urls_and_secrets_may_come_from_openbao_at_each_delivery() {
    let (api, _, _) = setup("flowvault").await;
    let rx = Receiver::start().await;
    let bao = assay_testkit::TestBao::shared();
    bao.put_secret(
        "dq/flowhook",
        json!({"hook_url": rx.url("/vault"), "signing": "vault-signing-secret-1"}),
    )
    .await;
    // a reference without a secrets manager is refused by field
    let r = api
        .post(
            "/flows",
            json!({"name": "refs", "trigger": {"type": "anomaly"},
                   "actions": [{"type": "webhook", "url": "${hook_url}"}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].clone()),
        (422, json!("actions[0]")),
        "{}",
        r.body
    );
    let r = api
        .post(
            "/flows",
            json!({"name": "refs", "trigger": {"type": "anomaly"},
                   "secrets_manager": bao.userpass_manager("dq/flowhook"),
                   "actions": [{"type": "webhook", "url": "${hook_url}", "secret": "${signing}"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let flow = r.body["id"].as_i64().unwrap();
    assert!(
        r.body["secrets_manager"]["credentials_payload"].is_null(),
        "{}",
        r.body
    );
    assert_eq!(r.body["secrets_manager"]["credentials_payload_set"], true);
    let r = api.post(&format!("/flows/{flow}/test"), json!({})).await;
    assert_eq!(r.body["results"][0]["ok"], true, "{}", r.body);
    let got = rx.wait_for(1, 10).await;
    assert_eq!(got[0].path, "/vault");
    assert_eq!(
        got[0].header("x-assay-signature"),
        Some(
            format!(
                "sha256={}",
                assay_ops::flows::sign("vault-signing-secret-1", &got[0].body)
            )
            .as_str()
        )
    );
    // a rotated secret is used at the next delivery; a renamed key is named, not guessed
    bao.put_secret(
        "dq/flowhook",
        json!({"hook_url": rx.url("/rotated"), "signing": "vault-signing-secret-2"}),
    )
    .await;
    api.post(&format!("/flows/{flow}/test"), json!({})).await;
    let got = rx.wait_for(2, 10).await;
    assert_eq!(got[1].path, "/rotated");
    bao.put_secret("dq/flowhook", json!({"url": rx.url("/x")}))
        .await;
    let r = api.post(&format!("/flows/{flow}/test"), json!({})).await;
    let msg = r.body["results"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("${hook_url}") && !msg.contains(&rx.addr.to_string()),
        "{msg}"
    );
}
