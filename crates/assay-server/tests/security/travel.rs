//! Stored secrets only go where they were saved for: an edit or a Test Connection with overrides that points a
//! connection at another server (a fault injector that speaks just enough of the PostgreSQL protocol to ask for
//! a cleartext password, or a bare TCP listener standing in for a foreign secrets manager) is refused unless the
//! secret is given again, and the injector never sees the stored one. A connection that another team's
//! datastore also uses is visible to a member, but only an admin may change, delete or override-test it.

use crate::common::Api;
use assay_testkit::{TestBao, TestPg};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOME_PW: &str = "zq-home-pw-2201";

/// A server that declines TLS, asks every client for a cleartext password and keeps what it gets.
async fn password_catcher() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let caught = Arc::new(Mutex::new(Vec::new()));
    let out = caught.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let caught = caught.clone();
            tokio::spawn(async move {
                loop {
                    let Ok(len) = s.read_i32().await else { return };
                    let mut rest = vec![0u8; (len as usize).saturating_sub(4)];
                    if s.read_exact(&mut rest).await.is_err() {
                        return;
                    }
                    if len == 8 && rest == 80877103i32.to_be_bytes() {
                        let _ = s.write_all(b"N").await; // no TLS; the startup message follows
                        continue;
                    }
                    break;
                }
                // AuthenticationCleartextPassword, then the client's PasswordMessage
                let _ = s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await;
                let Ok(b'p') = s.read_u8().await else { return };
                let Ok(len) = s.read_i32().await else { return };
                let mut pw = vec![0u8; (len as usize).saturating_sub(4)];
                if s.read_exact(&mut pw).await.is_ok() {
                    let pw = String::from_utf8_lossy(&pw)
                        .trim_end_matches('\0')
                        .to_string();
                    caught.lock().unwrap().push(pw);
                }
            });
        }
    });
    (port, out)
}

/// A listener that only counts connections.
async fn counter() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let out = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            n.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (port, out)
}

fn field_error(body: &serde_json::Value, field: &str) -> bool {
    body["errors"]
        .as_array()
        .is_some_and(|e| e.iter().any(|e| e["field"] == field))
}

#[tokio::test]
async fn stored_secrets_are_not_sent_to_another_server() {
    let api = Api::start().await;
    let pg = TestPg::shared();
    let role = assay_testkit::unique("home");
    pg.create_role(&role, HOME_PW).await;
    let c = api
        .ok("/connections", Api::conn_body("home", &role, HOME_PW))
        .await;
    let cid = c["id"].as_i64().unwrap();
    let (port, caught) = password_catcher().await;

    // a test or an edit that moves the connection needs the password again
    for body in [
        json!({"port": port, "database": "postgres"}),
        json!({"host": "localhost", "database": "postgres"}),
    ] {
        let r = api
            .post(&format!("/connections/{cid}/test"), body.clone())
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert!(field_error(&r.body, "password"), "{}", r.body);
    }
    let r = api
        .put(&format!("/connections/{cid}"), json!({"port": port}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(field_error(&r.body, "password"), "{}", r.body);
    let stored = api.state.store.connection(cid).await.unwrap().spec;
    assert_eq!(
        stored.port.as_text(),
        pg.port().to_string(),
        "nothing saved"
    );
    // with a password of its own the test goes there, which shows the catcher would have caught the stored one
    let r = api
        .post(
            &format!("/connections/{cid}/test"),
            json!({"port": port, "password": "typed-for-this-test", "database": "postgres"}),
        )
        .await;
    assert_eq!(r.body["connected"], false, "{}", r.body);
    assert_eq!(*caught.lock().unwrap(), ["typed-for-this-test"]);
    // the unchanged destination still uses the stored password
    let r = api
        .post(
            &format!("/connections/{cid}/test"),
            json!({"database": "postgres"}),
        )
        .await;
    assert_eq!(r.body["connected"], true, "{}", r.body);

    // a secrets manager pointed elsewhere needs the credentials payload again
    let bao = TestBao::shared();
    bao.put_secret("dq/travel", json!({"password": HOME_PW}))
        .await;
    let mut body = Api::conn_body("home-vault", &role, "${password}");
    body["secrets_manager"] = bao.userpass_manager("dq/travel");
    let v = api.ok("/connections", body).await;
    let vid = v["id"].as_i64().unwrap();
    let (elsewhere, hits) = counter().await;
    for key in ["login_url", "secret_url"] {
        let mut sm = v["secrets_manager"].clone();
        sm[key] = json!(format!("http://127.0.0.1:{elsewhere}/v1/x"));
        let r = api
            .post(
                &format!("/connections/{vid}/test"),
                json!({"secrets_manager": sm, "database": "postgres"}),
            )
            .await;
        assert_eq!(r.status, 422, "{key}: {}", r.body);
        assert!(
            field_error(&r.body, "secrets_manager.credentials_payload"),
            "{}",
            r.body
        );
        let r = api
            .put(
                &format!("/connections/{vid}"),
                json!({"secrets_manager": sm}),
            )
            .await;
        assert_eq!(r.status, 422, "{key}: {}", r.body);
    }
    // a reference given again would send the secret it resolves to to the other host
    let r = api
        .post(
            &format!("/connections/{vid}/test"),
            json!({"port": port, "password": "${password}", "database": "postgres"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(field_error(&r.body, "password"), "{}", r.body);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the other server"
    );
    let r = api
        .post(
            &format!("/connections/{vid}/test"),
            json!({"database": "postgres"}),
        )
        .await;
    assert_eq!(r.body["connected"], true, "{}", r.body);
    assert!(!caught.lock().unwrap().iter().any(|p| p == HOME_PW));
}

#[tokio::test]
async fn a_connection_shared_with_another_team_is_an_admins_to_change() {
    let api = Api::start().await;
    let (db, reader, _) = crate::common::shop("shared").await;
    api.ok("/teams", json!({"name": "Left"})).await;
    api.ok("/teams", json!({"name": "Right"})).await;
    api.ok("/users", json!({"username": "lena", "password": "lena-password", "role": "Member", "teams": ["Left"]}))
        .await;
    let c = api
        .ok(
            "/connections",
            Api::conn_body("shared", &reader, "readerpw"),
        )
        .await;
    let cid = c["id"].as_i64().unwrap();
    for (name, team) in [("left-ds", "Left"), ("right-ds", "Right")] {
        api.ok(
            "/datastores",
            json!({"name": name, "connection_id": cid, "database": db, "schema": "sales",
                                     "teams": [team], "trigger_sync": false}),
        )
        .await;
    }
    let lena = api
        .ok(
            "/auth/login",
            json!({"username": "lena", "password": "lena-password"}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let as_lena = |m: &'static str, p: String, b: Option<serde_json::Value>| {
        let (api, lena) = (&api, lena.clone());
        async move { api.call_as(Some(&lena), m, &p, b).await }
    };
    // visible, listing only her team's datastore
    let r = as_lena("GET", format!("/connections/{cid}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["datastores"],
        json!([{"id": 1, "name": "left-ds"}]),
        "{}",
        r.body
    );
    let list = as_lena("GET", "/connections".into(), None).await.body;
    assert_eq!(
        list["items"][0]["datastores"].as_array().unwrap().len(),
        1,
        "{list}"
    );
    // a plain test is fine; changes, deletes and tests with overrides are an admin's
    let r = as_lena(
        "POST",
        format!("/connections/{cid}/test"),
        Some(json!({"database": db})),
    )
    .await;
    assert_eq!(r.body["connected"], true, "{}", r.body);
    for (m, p, b) in [
        (
            "PUT",
            format!("/connections/{cid}"),
            Some(json!({"name": "mine"})),
        ),
        ("DELETE", format!("/connections/{cid}"), None),
        (
            "POST",
            format!("/connections/{cid}/test"),
            Some(json!({"username": "postgres"})),
        ),
    ] {
        let r = as_lena(m, p.clone(), b).await;
        assert_eq!(r.status, 403, "{m} {p}: {}", r.body);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("ask an admin") && !detail.contains("right-ds"),
            "{detail}"
        );
    }
    assert_eq!(
        api.get(&format!("/connections/{cid}")).await.body["name"],
        "shared"
    );
    let r = api
        .put(&format!("/connections/{cid}"), json!({"name": "renamed"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
