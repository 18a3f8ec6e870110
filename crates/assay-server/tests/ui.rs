//! The web UI: plain HTTP checks of the login, escaping, team visibility, error pages and the same-origin rule,
//! and one browser scenario (Debian's chromium through chromedriver, driven with fantoccini) from login to an
//! anomaly's source records, with a screenshot of every main page.

mod common;

use common::Api;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's root (`Api::base` ends in `/api`).
fn root(api: &Api) -> String {
    api.base.trim_end_matches("/api").to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in through the login form; returns the session cookie (`name=value`).
async fn sign_in(api: &Api, user: &str, password: &str) -> String {
    let r = http()
        .post(format!("{}/login", root(api)))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("username", user),
            ("password", password),
            ("next", "/datastores"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "login of {user}");
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_string()
}

async fn page(api: &Api, cookie: Option<&str>, path: &str) -> (u16, String, Option<String>) {
    let mut req = http().get(format!("{}{path}", root(api)));
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    (status, r.text().await.unwrap(), location)
}

#[tokio::test]
async fn pages_need_a_session_escape_names_and_respect_teams() {
    let api = Api::start().await;
    let (db, reader, _) = common::shop("uihttp").await;
    api.ok("/teams", json!({"name": "Red"})).await;
    api.ok("/teams", json!({"name": "Blue"})).await;
    api.ok("/users", json!({"username": "rita", "name": "Rita Red", "password": "rita-password", "role": "Member", "teams": ["Red"]})).await;
    api.ok("/users", json!({"username": "bob", "name": "Bob Blue", "password": "bob-password", "role": "Member", "teams": ["Blue"]})).await;
    let c = api
        .ok(
            "/connections",
            Api::conn_body("ui-http", &reader, "readerpw"),
        )
        .await;
    let hostile = "<script>alert('x')</script> & co";
    let ds = api
        .ok("/datastores", json!({"name": hostile, "connection_id": c["id"], "database": db, "schema": "sales", "teams": ["Red"], "trigger_sync": false}))
        .await;
    let id = ds["id"].as_i64().unwrap();

    // no session: every page sends the browser to the login page, remembering where it was going
    for path in [
        "/",
        "/datastores",
        &format!("/datastores/{id}"),
        "/datastores/new",
    ] {
        let (status, _, location) = page(&api, None, path).await;
        assert!(status == 303 || status == 307, "{path}: {status}");
        let location = location.unwrap();
        assert!(
            location.starts_with("/login") || location == "/datastores",
            "{path} → {location}"
        );
    }
    let (_, _, location) = page(&api, None, "/datastores").await;
    assert_eq!(location.as_deref(), Some("/login?next=/datastores"));
    let (status, body, _) = page(&api, None, "/login").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"<label for="password">Password</label>"#));

    // a wrong password shows the error on the login page, with the username kept
    let r = http()
        .post(format!("{}/login", root(&api)))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[("username", "rita"), ("password", "nope")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("Unknown user or wrong password."), "{body}");
    assert!(body.contains(r#"value="rita""#));

    // Rita (team Red) sees the datastore, its name escaped everywhere
    let rita = sign_in(&api, "rita", "rita-password").await;
    let (status, body, _) = page(&api, Some(&rita), "/datastores").await;
    assert_eq!(status, 200);
    assert!(body.contains("Rita Red"), "the header names the user");
    assert!(body.contains("Teams: Red"));
    assert!(!body.contains("<script>alert"), "unescaped name in {body}");
    assert!(
        body.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; co")
            || body.contains("&lt;script&gt;alert"),
        "{body}"
    );
    let (status, body, _) = page(&api, Some(&rita), &format!("/datastores/{id}")).await;
    assert_eq!(status, 200);
    assert!(!body.contains("<script>alert"));
    assert!(
        body.contains("<title>&#60;script&#62;") || body.contains("<title>&lt;script&gt;"),
        "{body}"
    );

    // Bob (team Blue) does not see it: not in his list, and its pages are 404 HTML pages
    let bob = sign_in(&api, "bob", "bob-password").await;
    let (status, body, _) = page(&api, Some(&bob), "/datastores").await;
    assert_eq!(status, 200);
    assert!(!body.contains("alert"));
    assert!(body.contains("No source datastores yet"));
    for path in [
        format!("/datastores/{id}"),
        format!("/datastores/{id}/tables"),
        format!("/datastores/{id}/settings"),
    ] {
        let (status, body, _) = page(&api, Some(&bob), &path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("<h1>Not found</h1>"), "{body}");
        assert!(!body.contains("alert"));
    }
    // Bob cannot delete it either, even with its name
    let r = http()
        .post(format!("{}/datastores/{id}/delete", root(&api)))
        .header("Cookie", &bob)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[("confirm", hostile)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // a POST from another site is refused, whatever its cookie
    let r = http()
        .post(format!("{}/datastores/{id}/run", root(&api)))
        .header("Cookie", &rita)
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("type=sync")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let ops = api.get(&format!("/operations?datastore={id}")).await.body;
    assert_eq!(ops["total"], 0, "nothing was queued");

    // unknown pages are HTML 404s; the API keeps its JSON
    let (status, body, _) = page(&api, Some(&rita), "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(body.starts_with("<!doctype html>"));
    assert_eq!(
        api.get("/nope").await.body["detail"],
        "Not Found: no such route"
    );
    let (status, js, _) = page(&api, None, "/static/htmx.min.js").await;
    assert_eq!(status, 200);
    assert!(js.starts_with("/*! htmx 2.0.4"));

    // signing out revokes the session's token
    let r = http()
        .post(format!("{}/logout", root(&api)))
        .header("Cookie", &rita)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (status, _, location) = page(&api, Some(&rita), "/datastores").await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with("/login"));
    assert!(!common::logs().contains("rita-password"));
}

async fn post_form(
    api: &Api,
    cookie: &str,
    path: &str,
    body: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let r = http()
        .post(format!("{}{path}", root(api)))
        .header("Cookie", cookie)
        .header("Origin", root(api))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(body))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    (status, r.text().await.unwrap(), location)
}

#[tokio::test]
async fn forms_keep_what_was_typed_reuse_connections_and_edit_settings() {
    let api = Api::start().await;
    let (db, reader, _) = common::shop("uiforms").await;
    api.ok("/teams", json!({"name": "Green"})).await;
    api.ok("/users", json!({"username": "gus", "name": "Gus", "password": "gus-password", "role": "Member", "teams": ["Green"]})).await;
    let c = api
        .ok(
            "/connections",
            Api::conn_body("shared-conn", &reader, "readerpw"),
        )
        .await;
    let cid = c["id"].as_i64().unwrap().to_string();
    let gus = sign_in(&api, "gus", "gus-password").await;

    // the form offers the existing connection, the user's teams, and the six Vault fields with ${key} hints
    let (status, body, _) = page(&api, Some(&gus), "/datastores/new").await;
    assert_eq!(status, 200);
    assert!(body.contains("shared-conn (127.0.0.1:"));
    assert!(body.contains(r#"value="Green""#) && body.contains(r#"value="Public""#));
    for label in [
        "Login URL",
        "Credentials payload",
        "Token JSONPath",
        "Secret URL",
        "Token header name",
        "Data JSONPath",
    ] {
        assert!(body.contains(label), "{label}");
    }
    assert!(body.contains("${key}"));
    // every input has a label
    let inputs = body.matches("<input id=\"").count()
        + body.matches("<select id=\"").count()
        + body.matches("<textarea id=\"").count();
    let labels = body.matches("<label for=\"").count();
    assert!(labels >= inputs, "{labels} labels for {inputs} inputs");

    // a failed save keeps every value and puts the errors next to their fields; no datastore is made
    let typed = [
        ("name", ""),
        ("mode", "new"),
        ("host", "db.invalid"),
        ("port", "70000"),
        ("username", "u1"),
        ("password", "typed-secret"),
        ("database", "d1"),
        ("schema", "pg_catalog"),
        ("teams", "Green"),
        ("sm_enabled", "on"),
        ("sm_login_url", "not a url"),
        ("sm_secret_url", ""),
        ("action", "finish"),
    ];
    let (status, body, _) = post_form(&api, &gus, "/datastores/new", &typed).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(r#"value="db.invalid""#));
    assert!(body.contains(r#"value="u1""#));
    assert!(body.contains(r#"value="not a url""#));
    assert!(body.contains(r#"name="sm_enabled" checked"#));
    let errors = body.matches(r#"<p class="field-error">"#).count();
    assert!(errors >= 3, "field errors: {errors} in {body}");
    let name_error = body.split(r#"id="name""#).nth(1).unwrap();
    assert!(
        name_error
            .trim_start()
            .split("</p>")
            .next()
            .unwrap()
            .contains("field-error"),
        "the name's error follows the name"
    );
    assert!(body.contains("system schema"));
    assert_eq!(api.get("/datastores").await.body["total"], 0);

    // with an existing connection only database, schema, teams and sync are sent; Finish goes to the new page
    let (status, _, location) = post_form(
        &api,
        &gus,
        "/datastores/new",
        &[
            ("name", "Reused"),
            ("mode", "existing"),
            ("connection_id", &cid),
            ("host", "ignored"),
            ("database", &db),
            ("schema", "sales"),
            ("teams", "Green"),
            ("action", "finish"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    let id: i64 = location
        .trim_start_matches("/datastores/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stored = api.get(&format!("/datastores/{id}")).await.body;
    assert_eq!(stored["connection_id"].to_string(), cid);
    assert_eq!(stored["teams"][0]["name"], "Green");
    let (status, body, _) = page(&api, Some(&gus), &location).await;
    assert_eq!(status, 200);
    assert!(body.contains("Datastore “Reused” was created."));

    // Test Connection without htmx re-shows the form with the outcome (htmx gets the fragment alone)
    let (status, body, _) = post_form(
        &api,
        &gus,
        "/datastores/new",
        &[
            ("name", "T"),
            ("mode", "existing"),
            ("connection_id", &cid),
            ("database", &db),
            ("schema", "sales"),
            ("action", "test"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("Connection verified.") && body.contains("<form"));
    let r = http()
        .post(format!("{}/datastores/new/test", root(&api)))
        .header("Cookie", &gus)
        .header("HX-Request", "true")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("name", "T"),
            ("mode", "new"),
            ("host", "127.0.0.1"),
            ("port", &assay_testkit::TestPg::shared().port().to_string()),
            ("username", &reader),
            ("password", "wrong"),
            ("database", &db),
            ("schema", "sales"),
        ]))
        .send()
        .await
        .unwrap();
    let fragment = r.text().await.unwrap();
    assert!(
        fragment.starts_with("<div class=\"flash error\""),
        "{fragment}"
    );
    assert!(fragment.contains("28P01") && fragment.contains("Fix:"));

    // settings: rename; the connection's secrets are never on the page
    let (status, _, location) = post_form(
        &api,
        &gus,
        &format!("/datastores/{id}/settings"),
        &[("name", "Renamed <b>"), ("teams", "Green")],
    )
    .await;
    assert_eq!(status, 303);
    let (_, body, _) = page(&api, Some(&gus), &location.unwrap()).await;
    assert!(body.contains("Saved."));
    assert!(body.contains("Renamed &#60;b&#62;") || body.contains("Renamed &lt;b&gt;"));
    assert!(!body.contains("readerpw"));
    // a team the user is not in is refused next to the field
    let (status, body, _) = post_form(
        &api,
        &gus,
        &format!("/datastores/{id}/settings"),
        &[("name", "Renamed"), ("teams", "Nope")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(body.contains("you are not a member of team"));

    // the empty tabs say what to do
    for (tab, text) in [
        ("tables", "Run a <strong>Sync</strong>"),
        ("checks", "No checks here yet"),
        ("anomalies", "No open anomalies"),
        ("activity", "No operations yet"),
    ] {
        let (status, body, _) = page(&api, Some(&gus), &format!("/datastores/{id}/{tab}")).await;
        assert_eq!(status, 200, "{tab}");
        assert!(body.contains(text), "{tab}: {body}");
    }

    // delete needs the name typed
    let (status, body, _) = post_form(
        &api,
        &gus,
        &format!("/datastores/{id}/delete"),
        &[("confirm", "Renamed?")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(body.contains("type the datastore"));
    let (status, _, location) = post_form(
        &api,
        &gus,
        &format!("/datastores/{id}/delete"),
        &[("confirm", "Renamed <b>")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/datastores"));
    assert_eq!(api.get(&format!("/datastores/{id}")).await.status, 404);
    assert!(!common::logs().contains("typed-secret"));
}

#[tokio::test]
async fn secrets_management_resolves_references_and_never_shows_secrets() {
    let api = Api::start().await;
    let pg = assay_testkit::TestPg::shared();
    let bao = assay_testkit::TestBao::shared();
    let (db, _, _) = common::shop("uivault").await;
    let role = assay_testkit::unique("uivaultrole");
    let secret_pw = "ui-vault-held-pw-5521";
    pg.create_role(&role, secret_pw).await;
    pg.superuser(&db)
        .await
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA sales TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {role}; \
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA sales TO {role}"
        ))
        .await
        .unwrap();
    let path = "dq/uivault";
    bao.put_secret(path, json!({"host": "127.0.0.1", "port": pg.port().to_string(), "username": role, "password": secret_pw}))
        .await;
    let sm = bao.userpass_manager(path);
    api.ok(
        "/users",
        json!({"username": "vic", "password": "vic-password", "role": "Member"}),
    )
    .await;
    let vic = sign_in(&api, "vic", "vic-password").await;
    let fields = |action: &'static str| -> Vec<(&'static str, String)> {
        let t = |k: &str| sm[k].as_str().unwrap().to_string();
        vec![
            ("name", "Vaulted".into()),
            ("mode", "new".into()),
            ("host", "${host}".into()),
            ("port", "${port}".into()),
            ("username", "${username}".into()),
            ("password", "${password}".into()),
            ("database", db.clone()),
            ("schema", "sales".into()),
            ("trigger_sync", "on".into()),
            ("sm_enabled", "on".into()),
            ("sm_login_url", t("login_url")),
            ("sm_credentials_payload", t("credentials_payload")),
            ("sm_token_jsonpath", t("token_jsonpath")),
            ("sm_secret_url", t("secret_url")),
            ("sm_token_header_name", t("token_header_name")),
            ("sm_data_jsonpath", t("data_jsonpath")),
            ("action", action.into()),
        ]
    };
    let body = fields("test");
    let pairs: Vec<(&str, &str)> = body.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = http()
        .post(format!("{}/datastores/new/test", root(&api)))
        .header("Cookie", &vic)
        .header("HX-Request", "true")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&pairs))
        .send()
        .await
        .unwrap();
    let fragment = r.text().await.unwrap();
    assert!(fragment.contains("Connection verified."), "{fragment}");
    assert!(!fragment.contains(secret_pw));

    let body = fields("finish");
    let pairs: Vec<(&str, &str)> = body.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, location) = post_form(&api, &vic, "/datastores/new", &pairs).await;
    assert_eq!(status, 303);
    let id: i64 = location
        .unwrap()
        .trim_start_matches("/datastores/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stored = api.get(&format!("/datastores/{id}")).await.body;
    let conn = api
        .get(&format!("/connections/{}", stored["connection_id"]))
        .await
        .body;
    assert_eq!(conn["host"], "${host}");
    assert_eq!(conn["secrets_manager"]["login_url"], sm["login_url"]);
    assert_eq!(
        stored["teams"][0]["name"], "Public",
        "no team chosen: Public"
    );
    // the sync the form asked for connects through the vault
    let ops = api.get(&format!("/operations?datastore={id}")).await.body;
    let op = api.wait(ops["items"][0]["id"].as_i64().unwrap()).await;
    assert_eq!(op["result"], "success", "{op}");
    // no page shows a secret
    for p in ["", "/settings", "/tables", "/activity"] {
        let (status, body, _) = page(&api, Some(&vic), &format!("/datastores/{id}{p}")).await;
        assert_eq!(status, 200);
        for secret in [secret_pw, assay_testkit::bao::USER_PASSWORD] {
            assert!(!body.contains(secret), "{p} shows a secret");
        }
    }
    assert!(!common::logs().contains(secret_pw));
}

#[tokio::test]
async fn a_running_scan_shows_its_abort_button_and_stops() {
    // a check that takes a while per row, so the scan is still running when the button is pressed
    let (api, ds, _) = common::checks::setup(
        "uiabort",
        "CREATE TABLE sales.slow AS SELECT g AS id FROM generate_series(1, 400) g;",
    )
    .await;
    let slow = common::checks::container_id(&api, ds, "slow").await;
    common::checks::create(
        &api,
        slow,
        "satisfiesExpression",
        &[],
        json!({"expression": "pg_sleep(0.05)::text = ''"}),
    )
    .await;
    api.ok(
        "/users",
        json!({"username": "abe", "password": "abe-password", "role": "Admin"}),
    )
    .await;
    let abe = sign_in(&api, "abe", "abe-password").await;
    let (status, _, location) = post_form(
        &api,
        &abe,
        &format!("/datastores/{ds}/run"),
        &[("type", "scan")],
    )
    .await;
    assert_eq!(status, 303, "without htmx the run answers a redirect");
    assert_eq!(location.unwrap(), format!("/datastores/{ds}/activity"));
    let ops = api
        .get(&format!("/operations?datastore={ds}&operation_type=scan"))
        .await
        .body;
    let op = ops["items"][0]["id"].as_i64().unwrap();
    // the Activity tab offers Abort while it runs
    let t0 = Instant::now();
    loop {
        let (_, body, _) = page(&api, Some(&abe), &format!("/datastores/{ds}/activity")).await;
        if body.contains(&format!(r#"action="/operations/{op}/abort""#)) {
            assert!(
                body.contains("hx-trigger=\"every 2s\""),
                "the tab polls while it runs"
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no abort button: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, location) =
        post_form(&api, &abe, &format!("/operations/{op}/abort"), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), format!("/datastores/{ds}/activity"));
    let done = api.wait(op).await;
    assert_eq!(done["result"], "aborted", "{done}");
    assert_eq!(done["aborted_by"], "abe");
    let (_, body, _) = page(&api, Some(&abe), &format!("/datastores/{ds}/activity")).await;
    assert!(body.contains("s-aborted"));
    assert!(!body.contains("/abort\""), "no abort button once it ended");
}

// ---------------------------------------------------------------------------------------------------------------
// The browser scenario

/// chromedriver on a free port, killed when dropped (also when the test panics).
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
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
    let child = Command::new("chromedriver")
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

fn shots_dir() -> PathBuf {
    let base = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| assay_testkit::workspace_root().join("target"));
    let dir = base.join("ui-screenshots");
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

    // a check on the planted defect, authored through the API
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
    api.ok(
        "/quality-checks",
        json!({"container_id": customers, "rule": "notNull", "fields": ["email"], "description": "every customer has an email"}),
    )
    .await;

    // 5. Profile, then Scan, from the Overview's buttons; progress is polled by htmx
    click(&c, "#run-profile").await;
    wait_text(&c, "#ops", "Profile queued", 10).await;
    assert_eq!(wait_op(&c, "profile").await, "success");
    click(&c, "#run-scan").await;
    wait_text(&c, "#ops", "Scan queued", 10).await;
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
