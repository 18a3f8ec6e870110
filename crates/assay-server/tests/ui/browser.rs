//! The browser scenario: chromedriver with Debian's headless chromium, driven with fantoccini, from login to an
//! anomaly's source records, with a screenshot of every main page.

use super::root;
use crate::common::{self, Api};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// chromedriver on a free port, killed when dropped (also when the test panics).
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    /// Kills chromedriver's process group: chromedriver and the chromium it started (a session a failed test
    /// never closed included).
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_chromedriver() -> Driver {
    let missing = |what: &str| -> ! {
        panic!(
            "{what} is not installed: the browser test needs Debian's chromium and chromedriver \
             (apt-get install chromium chromium-driver, or run scripts/test, which installs them)"
        )
    };
    if Command::new("chromium").arg("--version").output().is_err() {
        missing("chromium");
    }
    let port = assay_testkit::free_port().unwrap();
    // its own process group, so the browsers it starts can be killed with it
    let child = Command::new("chromedriver")
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|_| missing("chromedriver"));
    let driver = Driver { child, port };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium",
               "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                        "--window-size=1280,900", "--lang=en-US"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session")
}

/// `target/ui-screenshots/` of the workspace, where CI keeps them as artifacts (even when the build directory
/// is elsewhere).
fn shots_dir() -> PathBuf {
    let dir = assay_testkit::workspace_root()
        .join("target")
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A screenshot with `css` scrolled into the middle of the window.
async fn shot_at(c: &Client, name: &str, css: &str) {
    c.execute(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
        vec![json!(css)],
    )
    .await
    .unwrap();
    shot(c, name).await;
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

/// Waits until the element's text contains `needle`; returns the text.
async fn wait_text(c: &Client, css: &str, needle: &str, secs: u64) -> String {
    let t0 = Instant::now();
    let mut last = String::new();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if t.contains(needle) {
                return t;
            }
            last = t;
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!("'{needle}' did not appear in {css} on {url} within {secs}s; it says: {last}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn go(c: &Client, url: &str) {
    c.goto(url).await.unwrap();
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("no {css}"));
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("no {css}"))
        .click()
        .await
        .unwrap();
}

/// Chooses an option of a select by its value.
async fn choose(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("no {css}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("no option {value} in {css}: {e}"));
}

/// Waits until an element matches `css`.
async fn wait_css(c: &Client, css: &str) {
    let t0 = Instant::now();
    while c.find(Locator::Css(css)).await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{css} did not appear"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn path(c: &Client) -> String {
    let u = c.current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// Waits for the operation of `kind` in the overview's list to end; returns its result.
async fn wait_op(c: &Client, kind: &str) -> String {
    let css = format!("#ops tr[data-kind={kind}]");
    let t0 = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css(&css)).await
            && let Ok(Some(r)) = e.attr("data-result").await
            && r != "running"
            && r != "queued"
        {
            return r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{kind} did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn browser_adds_a_datastore_and_follows_it_to_an_anomaly() {
    let driver = start_chromedriver();
    let api = Api::start().await;
    let (db, reader, writer) = common::shop("uibrowser").await;
    let su = assay_testkit::TestPg::shared().superuser(&db).await;
    // known data with one planted defect: a customer without an email
    su.batch_execute(
        "INSERT INTO sales.customers SELECT g, 'c' || g || '@shop.example' FROM generate_series(1, 40) g;
         INSERT INTO sales.customers VALUES (4242, NULL);
         INSERT INTO sales.orders (total, updated_at) SELECT g * 2.5, now() FROM generate_series(1, 200) g;
         ANALYZE;",
    )
    .await
    .unwrap();
    api.ok("/teams", json!({"name": "Analysts"})).await;
    api.ok("/users", json!({"username": "ana", "name": "Ana Lyst", "password": "ana-password", "role": "Member", "teams": ["Analysts"]})).await;
    let port = assay_testkit::TestPg::shared().port().to_string();
    let base = root(&api);
    let c = browser(&driver).await;

    // 1. login
    c.goto(&format!("{base}/datastores")).await.unwrap();
    assert!(path(&c).await.starts_with("/login"));
    shot(&c, "01-login").await;
    fill(&c, "#username", "ana").await;
    fill(&c, "#password", "wrong").await;
    click(&c, ".login button[type=submit]").await;
    wait_text(&c, ".flash.error", "Unknown user or wrong password", 10).await;
    fill(&c, "#password", "ana-password").await;
    click(&c, ".login button[type=submit]").await;
    wait_text(&c, ".who", "Ana Lyst", 10).await;
    assert_eq!(path(&c).await, "/datastores");
    assert!(
        wait_text(&c, ".who", "Analysts", 5)
            .await
            .contains("Teams: Analysts")
    );
    wait_text(&c, ".empty", "No source datastores yet", 5).await;
    shot(&c, "02-datastores-empty").await;

    // 2. Add Datastore with a new connection; a wrong password first
    click(&c, ".page-head a.button.primary").await;
    wait_text(&c, "h1", "Add Datastore", 10).await;
    fill(&c, "#name", "Shop").await;
    fill(&c, "#host", "127.0.0.1").await;
    fill(&c, "#port", &port).await;
    fill(&c, "#username", &reader).await;
    fill(&c, "#password", "not-the-password").await;
    fill(&c, "#database", &db).await;
    fill(&c, "#schema", "sales").await;
    click(&c, "input[name=teams][value=Analysts]").await;
    click(&c, "#test-connection").await;
    let failed = wait_text(&c, "#test-result", "Test Connection failed", 20).await;
    assert!(failed.to_lowercase().contains("password"), "{failed}");
    assert!(
        failed.contains("Fix:"),
        "the classified fix is shown: {failed}"
    );
    // nothing typed was lost
    let name = c.find(Locator::Css("#name")).await.unwrap();
    assert_eq!(name.prop("value").await.unwrap().as_deref(), Some("Shop"));
    shot_at(&c, "03-add-datastore-test-failed", "#test-result").await;
    fill(&c, "#password", "readerpw").await;
    click(&c, "#test-connection").await;
    let ok = wait_text(&c, "#test-result", "Connection verified", 20).await;
    assert!(ok.contains("source datastore"), "{ok}");
    shot_at(&c, "04-add-datastore-test-ok", "#test-result").await;

    // 3. Next → Link Enrichment Datastore: add a new one
    click(&c, "#next").await;
    wait_text(&c, "h1", "Link Enrichment Datastore", 15).await;
    assert!(path(&c).await.contains("/link"));
    let ds_id: i64 = path(&c).await.split('/').nth(2).unwrap().parse().unwrap();
    fill(&c, "#prefix", "_shop").await;
    fill(&c, "#name", "Shop enrichment").await;
    fill(&c, "#host", "127.0.0.1").await;
    fill(&c, "#port", &port).await;
    fill(&c, "#username", &writer).await;
    fill(&c, "#password", "writerpw").await;
    fill(&c, "#database", &db).await;
    fill(&c, "#schema", "enrich").await;
    click(&c, "#test-connection").await;
    let ok = wait_text(&c, "#test-result", "Connection verified", 20).await;
    assert!(ok.contains("enrichment datastore"), "{ok}");
    shot_at(&c, "05-link-enrichment", "#test-result").await;
    click(&c, "#finish").await;
    wait_text(&c, ".flash.success", "Shop enrichment", 15).await;
    assert_eq!(path(&c).await, format!("/datastores/{ds_id}?linked=1"));
    let stored = api.get(&format!("/datastores/{ds_id}")).await.body;
    assert_eq!(stored["enrich_datastore"]["name"], "Shop enrichment");
    assert_eq!(stored["enrichment_prefix"], "_shop");
    assert_eq!(stored["teams"][0]["name"], "Analysts");

    // 4. the initial sync (Initiate sync was on) ends, then totals show the tables
    assert_eq!(wait_op(&c, "sync").await, "success");
    c.goto(&format!("{base}/datastores/{ds_id}")).await.unwrap();
    assert_eq!(wait_text(&c, "#total-tables", "3", 5).await, "3");

    // a check on the planted defect, written with the New check form: choosing the table and then the rule
    // swaps in that rule's inputs (htmx)
    let listing = api
        .get(&format!("/containers/listing?datastore={ds_id}"))
        .await
        .body;
    let customers = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "customers")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    go(&c, &format!("{base}/datastores/{ds_id}/checks")).await;
    click(&c, "#new-check").await;
    choose(&c, "#container_id", &customers.to_string()).await;
    wait_css(&c, &format!("#check-form[data-container=\"{customers}\"]")).await;
    choose(&c, "#rule", "notNull").await;
    wait_css(&c, "#check-form[data-rule=notNull] select#fields").await;
    choose(&c, "#fields", "email").await;
    fill(&c, "#description", "every customer has an email").await;
    shot(&c, "05b-new-check").await;
    click(&c, "#save-check").await;
    wait_text(&c, "table.checks", "every customer has an email", 5).await;
    assert_eq!(path(&c).await, format!("/datastores/{ds_id}/checks"));
    go(&c, &format!("{base}/datastores/{ds_id}")).await;

    // 5. Profile, then Scan, from the Overview's buttons; progress is polled by htmx
    click(&c, "#run-profile").await;
    assert_eq!(wait_op(&c, "profile").await, "success");
    click(&c, "#run-scan").await;
    let scan = wait_op(&c, "scan").await;
    assert!(scan == "success" || scan == "warning", "scan: {scan}");
    c.goto(&format!("{base}/datastores/{ds_id}")).await.unwrap();
    let open: i64 = wait_text(&c, "#total-anomalies", "", 5)
        .await
        .parse()
        .unwrap();
    assert!(open >= 1, "the planted defect is an open anomaly");
    let checks: i64 = wait_text(&c, "#total-checks", "", 5).await.parse().unwrap();
    assert!(
        checks >= 2,
        "the authored check and inferred ones: {checks}"
    );
    shot(&c, "06-overview").await;

    // the list's card counts agree
    c.goto(&format!("{base}/datastores")).await.unwrap();
    let card = format!("li.card[data-datastore=\"{ds_id}\"]");
    assert_eq!(
        wait_text(&c, &format!("{card} .n-tables"), "3", 5).await,
        "3"
    );
    assert_eq!(
        wait_text(&c, &format!("{card} .n-anomalies"), "", 5).await,
        open.to_string()
    );
    wait_text(&c, &format!("{card} .last-op"), "scan", 5).await;
    wait_text(&c, &format!("{card} .badges"), "PostgreSQL", 5).await;
    shot(&c, "07-datastores").await;
    c.goto(&format!("{base}/enrichment")).await.unwrap();
    wait_text(&c, ".cards", "Shop enrichment", 5).await;
    wait_text(&c, ".cards", "Linked sources: Shop", 5).await;
    shot(&c, "08-enrichment-datastores").await;
    // the enrichment datastore's page lists the tables the scan wrote for the source's prefix
    click(&c, ".cards h2 a").await;
    let tables = wait_text(&c, "table.enrichment-tables", "_shop_source_records", 10).await;
    assert!(tables.contains("_shop_scan_operations"), "{tables}");
    assert!(tables.contains("_shop_failed_checks"), "{tables}");
    wait_text(&c, ".linked h3", "Shop", 5).await;
    shot(&c, "08b-enrichment-datastore").await;

    // 6. Activity: the three operations with per-container results
    c.goto(&format!("{base}/datastores/{ds_id}/activity"))
        .await
        .unwrap();
    let activity = wait_text(&c, ".activity-table", "scan", 5).await;
    assert!(activity.contains("sync") && activity.contains("profile"));
    click(&c, ".activity-table tr[data-kind=scan] details summary").await;
    wait_text(
        &c,
        ".activity-table tr[data-kind=scan] .per-container",
        "customers",
        5,
    )
    .await;
    shot(&c, "09-activity").await;

    // 7. Tables → customers → a field's profile with its histogram
    c.goto(&format!("{base}/datastores/{ds_id}/tables"))
        .await
        .unwrap();
    wait_text(&c, "table.data", "orders", 5).await;
    shot(&c, "10-tables").await;
    click(&c, "tr[data-table=orders] a").await;
    wait_text(&c, "h2", "orders", 5).await;
    let checks = wait_text(&c, "table.container-checks", "inferred", 5).await;
    assert!(checks.contains("passing"), "{checks}");
    wait_text(&c, "section .empty", "No open anomalies on this table", 5).await;
    shot(&c, "11-table-orders").await;
    click(&c, "tr[data-field=total] a").await;
    wait_text(&c, "h2", "total", 5).await;
    let stats = wait_text(&c, "table.stats", "Records", 5).await;
    assert!(stats.contains("200"), "200 orders were profiled: {stats}");
    let bars = c
        .find_all(Locator::Css("svg.histogram rect.bar"))
        .await
        .unwrap();
    assert!(bars.len() >= 5, "histogram bars: {}", bars.len());
    let mut sum = 0;
    for b in &bars {
        sum += b
            .attr("data-count")
            .await
            .unwrap()
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    assert!(
        (190..=210).contains(&sum),
        "the bars hold the 200 rows: {sum}"
    );
    c.find(Locator::Css("svg.quantiles line.median"))
        .await
        .expect("the quantile bar marks the median");
    shot(&c, "12-field-profile").await;

    // 8. Checks tab
    c.goto(&format!("{base}/datastores/{ds_id}/checks?status=failing"))
        .await
        .unwrap();
    let failing = wait_text(&c, "table.checks", "notNull", 5).await;
    assert!(failing.contains("email"));
    shot(&c, "13-checks").await;

    // 9. Anomalies → the anomaly → its source records
    c.goto(&format!("{base}/datastores/{ds_id}/anomalies"))
        .await
        .unwrap();
    wait_text(&c, "table.anomalies", "customers", 5).await;
    shot(&c, "14-anomalies").await;
    let anomalies = api
        .get(&format!("/anomalies?container={customers}"))
        .await
        .body;
    let aid = anomalies["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["failed_checks"][0]["quality_check"]["rule_type"] == "notNull"
                || a["type"] == "record"
        })
        .map(|a| a["id"].as_i64().unwrap())
        .unwrap_or_else(|| panic!("no anomaly for the planted row: {anomalies}"));
    click(&c, &format!("tr[data-anomaly=\"{aid}\"] a")).await;
    let records = wait_text(&c, "table.source-records", "4242", 5).await;
    assert!(records.contains("null"), "{records}");
    let failed = wait_text(&c, "table.failed-checks", "notNull", 5).await;
    assert!(failed.contains("email"));
    let th = c
        .find(Locator::Css("table.source-records th.failed"))
        .await
        .unwrap();
    assert_eq!(th.text().await.unwrap().to_lowercase(), "email");
    shot_at(&c, "15-anomaly", "table.source-records").await;
    click(&c, "#acknowledge").await;
    wait_text(&c, "h2 .status", "Acknowledged", 5).await;
    let stored: Value = api.get(&format!("/anomalies/{aid}")).await.body;
    assert_eq!(stored["status"], "Acknowledged");

    // archive it as resolved: it leaves the open list for the archived one
    click(&c, "#archive").await;
    wait_text(&c, "h2 .status", "Resolved", 5).await;
    go(&c, &format!("{base}/datastores/{ds_id}/anomalies")).await;
    wait_text(&c, ".empty", "No open anomalies", 5).await;
    go(
        &c,
        &format!("{base}/datastores/{ds_id}/anomalies?archived=1"),
    )
    .await;
    wait_text(&c, &format!("tr[data-anomaly=\"{aid}\"]"), "Resolved", 5).await;

    // archive the failing check from the Checks tab
    go(
        &c,
        &format!("{base}/datastores/{ds_id}/checks?status=failing"),
    )
    .await;
    click(&c, "table.checks tr[data-state=failing] button").await;
    wait_text(&c, "nav.filters", "Archived", 5).await;
    go(
        &c,
        &format!("{base}/datastores/{ds_id}/checks?status=archived"),
    )
    .await;
    wait_text(&c, "table.checks", "every customer has an email", 5).await;

    // 10. Settings: unlink the enrichment datastore, then link it again as an existing one
    go(&c, &format!("{base}/datastores/{ds_id}/settings")).await;
    wait_text(&c, "main", "Shop enrichment", 5).await;
    shot(&c, "16-settings").await;
    click(
        &c,
        &format!("form[action=\"/datastores/{ds_id}/unlink\"] button"),
    )
    .await;
    wait_text(&c, "main", "No enrichment datastore is linked.", 5).await;
    assert!(api.get(&format!("/datastores/{ds_id}")).await.body["enrich_datastore"].is_null());
    click(&c, &format!("a[href=\"/datastores/{ds_id}/link\"].button")).await;
    let existing = wait_text(&c, ".existing-enrichment", "Shop enrichment", 5).await;
    assert!(existing.contains("Team: Analysts"), "{existing}");
    assert!(existing.contains("Schema: enrich"), "{existing}");
    click(&c, ".existing-enrichment input[name=enrichment_id]").await;
    click(&c, "#test-connection").await;
    wait_text(&c, "#test-result", "Connection verified", 20).await;
    shot_at(&c, "17-link-existing", "#test-result").await;
    click(&c, "#finish").await;
    wait_text(&c, ".flash.success", "Shop enrichment", 15).await;
    let stored = api.get(&format!("/datastores/{ds_id}")).await.body;
    assert_eq!(stored["enrich_datastore"]["name"], "Shop enrichment");
    assert_eq!(stored["enrichment_prefix"], "_shop");
    c.set_window_size(420, 900).await.unwrap();
    c.goto(&format!("{base}/datastores")).await.unwrap();
    wait_text(&c, ".cards", "Shop", 5).await;
    shot(&c, "18-datastores-narrow").await;
    c.goto(&format!("{base}/datastores/new")).await.unwrap();
    wait_text(&c, "h1", "Add Datastore", 5).await;
    shot(&c, "19-add-datastore-narrow").await;

    // sign out
    c.set_window_size(1280, 900).await.unwrap();
    c.goto(&format!("{base}/datastores")).await.unwrap();
    click(&c, ".who button").await;
    wait_text(&c, "h1", "Sign in", 5).await;
    c.close().await.unwrap();
    assert!(!common::logs().contains("readerpw"));
    assert!(!common::logs().contains("writerpw"));
    drop(driver);
}

/// Swagger UI at `/api/docs` renders the server's own document in chromium under its content security policy,
/// with nothing fetched from elsewhere: every resource the page loaded is on this server.
#[tokio::test]
async fn swagger_ui_renders_the_api_document_offline() {
    let driver = start_chromedriver();
    let api = Api::start().await;
    let base = root(&api);
    let c = browser(&driver).await;
    go(&c, &format!("{base}/api/docs")).await;
    wait_text(&c, ".swagger-ui .info .title", "Assay API", 30).await;
    // one block per documented operation, under their tags
    wait_css(&c, ".opblock-tag-section").await;
    let doc: Value = reqwest::get(format!("{base}/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tags: std::collections::BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| m.as_object().unwrap().values())
        .map(|op| op["tags"][0].as_str().unwrap().to_string())
        .collect();
    let shown = c
        .execute(
            "return Array.from(document.querySelectorAll('.opblock-tag')).map(e => e.getAttribute('data-tag'))",
            vec![],
        )
        .await
        .unwrap();
    let shown: std::collections::BTreeSet<String> = shown
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    assert_eq!(shown, tags, "every tag of the document is a section");
    let resources = c
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap();
    let resources: Vec<&str> = resources
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        resources.iter().any(|r| r.ends_with("/api/openapi.json")),
        "{resources:?}"
    );
    for r in &resources {
        assert!(
            r.starts_with(&base) || r.starts_with("data:"),
            "{r} is not served by Assay"
        );
    }
    shot(&c, "20-api-docs").await;
    c.close().await.unwrap();
}
