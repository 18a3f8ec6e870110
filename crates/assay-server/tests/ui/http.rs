//! The web UI over plain HTTP: sessions and redirects, escaping, team visibility, the same-origin rule, forms
//! that keep what was typed, Secrets Management, and aborting a running scan.

use super::{form, http, page, post_form, root, sign_in};
use crate::common::{self, Api};
use serde_json::json;
use std::time::{Duration, Instant};

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
    let r = http()
        .get(format!("{}/login", root(&api)))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
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
    // without an Origin header, the browser's Sec-Fetch-Site decides: another site is refused, the same origin
    // is let through
    for (site, status, queued) in [
        ("cross-site", 403, 0),
        ("same-site", 403, 0),
        ("same-origin", 303, 1),
    ] {
        let r = http()
            .post(format!("{}/datastores/{id}/run", root(&api)))
            .header("Cookie", &rita)
            .header("Sec-Fetch-Site", site)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("type=sync")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{site}");
        let ops = api.get(&format!("/operations?datastore={id}")).await.body;
        assert_eq!(ops["total"], queued, "{site}: {ops}");
    }

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

    // names already taken are reported next to their fields
    let port = assay_testkit::TestPg::shared().port().to_string();
    for (name, conn_name, field) in [
        ("Reused", "fresh-conn", "name"),
        ("Fresh", "shared-conn", "connection_name"),
    ] {
        let (status, body, _) = post_form(
            &api,
            &gus,
            "/datastores/new",
            &[
                ("name", name),
                ("mode", "new"),
                ("connection_name", conn_name),
                ("host", "127.0.0.1"),
                ("port", &port),
                ("username", &reader),
                ("password", "readerpw"),
                ("database", &db),
                ("schema", "sales"),
                ("teams", "Green"),
                ("action", "finish"),
            ],
        )
        .await;
        assert_eq!(status, 422, "{body}");
        let after = body.split(&format!(r#"id="{field}""#)).nth(1).unwrap();
        assert!(
            after
                .split("</p>")
                .next()
                .unwrap()
                .contains("already exists"),
            "{field}: {body}"
        );
    }
    assert_eq!(
        api.get("/connections").await.body["total"],
        1,
        "no connection is left behind"
    );

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

    // Run through htmx answers the operations fragment with a flash; a refused run says why
    for (kind, flash) in [("bogus", "flash error"), ("sync", "flash success")] {
        let r = http()
            .post(format!("{}/datastores/{id}/run", root(&api)))
            .header("Cookie", &gus)
            .header("HX-Request", "true")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&[("type", kind)]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let fragment = r.text().await.unwrap();
        assert!(fragment.starts_with("<div id=\"ops\""), "{fragment}");
        assert!(fragment.contains(flash), "{kind}: {fragment}");
        if kind == "sync" {
            assert!(fragment.contains("Sync queued (operation"));
        } else {
            assert!(fragment.contains("Could not start bogus"));
        }
    }
    let ops = api.get(&format!("/operations?datastore={id}")).await.body;
    assert_eq!(ops["total"], 1);
    api.wait(ops["items"][0]["id"].as_i64().unwrap()).await;

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
        json!({"expression": "(SELECT count(*) FROM generate_series(1, 1000000 + 0 * id)) > 0"}),
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
