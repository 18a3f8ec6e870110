//! Tokens: expired (the row and the JWT's own `exp`), a tampered payload, a wrong signature, `alg: none`, another
//! algorithm, a wrong issuer, a subject that is not the token row's user, a revoked token, a deleted user's
//! token, garbage and a missing `Bearer` scheme: every protected route of the route table answers 401 with a JSON
//! `detail`, and the web UI sends such a session to the login page. Passwords are stored as Argon2id. (Login
//! throttling is tested in `datastores.rs`, `teams_decide_who_sees_a_datastore`.)

use super::{is_public, route_table};
use crate::common::Api;
use assay_testkit::TestPg;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn sign(claims: &Value, alg: Algorithm, key: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).unwrap()
}

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
}

/// The token with its payload replaced, header and signature kept.
fn with_payload(jwt: &str, claims: &Value) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    )
}

async fn raw(api: &Api, method: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = api
        .http
        .request(m.clone(), format!("{}{path}", api.base))
        .header("Content-Type", "application/json");
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if m != reqwest::Method::GET {
        req = req.body("{}");
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn every_bad_token_is_refused_on_every_protected_route() {
    let api = Api::start().await;
    let state = &api.state;
    let member = api
        .ok(
            "/users",
            json!({"username": "tok-member", "password": "tok-member-password", "role": "Member"}),
        )
        .await;
    let uid = member["id"].as_i64().unwrap();
    let admin_id = api.get("/users/me").await.body["id"].as_i64().unwrap();
    let login = api
        .ok(
            "/auth/login",
            json!({"username": "tok-member", "password": "tok-member-password"}),
        )
        .await;
    let good = login["token"].as_str().unwrap().to_string();
    let claims = payload(&good);
    assert_eq!(claims["sub"], uid.to_string());
    let secret = state
        .store
        .secret_setting("jwt_secret")
        .await
        .unwrap()
        .unwrap();
    let now = chrono::Utc::now().timestamp();

    let (_, expired_row, _) = assay_server::auth::issue_token(state, uid, "old", Some(-2))
        .await
        .unwrap();
    let (_, live, _) = assay_server::auth::issue_token(state, uid, "live", Some(30))
        .await
        .unwrap();
    let mut c = payload(&live);
    c["exp"] = json!(now - 3600);
    let expired_jwt = sign(&c, Algorithm::HS256, secret.as_bytes());
    let mut c = claims.clone();
    c["sub"] = json!(admin_id.to_string());
    let tampered_sub = with_payload(&good, &c);
    let mut c = claims.clone();
    c["tid"] = json!(c["tid"].as_i64().unwrap() - 1);
    let tampered_tid = with_payload(&good, &c);
    let mut c = claims.clone();
    c["exp"] = json!(now + 10 * 365 * 86400);
    let tampered_exp = with_payload(&good, &c);
    let wrong_key = sign(
        &claims,
        Algorithm::HS256,
        b"another-signing-secret-of-some-length",
    );
    let alg_none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims.to_string())
    );
    let hs512 = sign(&claims, Algorithm::HS512, secret.as_bytes());
    let mut c = claims.clone();
    c["iss"] = json!("someone-else");
    let wrong_issuer = sign(&c, Algorithm::HS256, secret.as_bytes());
    // signed with the right key, but the token row belongs to the member while the subject is the admin
    let mut c = payload(&live);
    c["sub"] = json!(admin_id.to_string());
    let foreign_sub = sign(&c, Algorithm::HS256, secret.as_bytes());
    let (revoked_tid, revoked, _) = assay_server::auth::issue_token(state, uid, "revoked", None)
        .await
        .unwrap();
    state.store.revoke_token(revoked_tid).await.unwrap();
    let gone = api
        .ok(
            "/users",
            json!({"username": "tok-gone", "password": "tok-gone-password"}),
        )
        .await;
    let gone_id = gone["id"].as_i64().unwrap();
    let (_, deleted_user, _) = assay_server::auth::issue_token(state, gone_id, "t", None)
        .await
        .unwrap();
    TestPg::shared()
        .superuser(&api.metadata_db)
        .await
        .execute("DELETE FROM users WHERE id = $1", &[&gone_id])
        .await
        .unwrap();

    // the controls: the live tokens work, each through the same check as the bad ones
    for t in [&good, &live] {
        let (status, body) = raw(&api, "GET", "/users/me", Some(&format!("Bearer {t}"))).await;
        assert_eq!(status, 200, "{body}");
    }

    let bearer = |t: &str| Some(format!("Bearer {t}"));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("a token without the Bearer scheme", Some(good.clone())),
        (
            "Basic credentials",
            Some("Basic dG9rLW1lbWJlcjp0b2stbWVtYmVyLXBhc3N3b3Jk".into()),
        ),
        ("an empty bearer token", Some("Bearer ".into())),
        ("garbage", bearer("garbage")),
        ("three garbage parts", bearer("a.b.c")),
        ("a JWT cut short", bearer(&good[..good.len() - 5])),
        ("an expired token row", bearer(&expired_row)),
        ("an expired JWT", bearer(&expired_jwt)),
        ("a tampered subject", bearer(&tampered_sub)),
        ("a tampered token id", bearer(&tampered_tid)),
        ("a tampered expiry", bearer(&tampered_exp)),
        ("a wrong signature", bearer(&wrong_key)),
        ("alg none", bearer(&alg_none)),
        ("HS512", bearer(&hs512)),
        ("a wrong issuer", bearer(&wrong_issuer)),
        (
            "a subject that is not the token's user",
            bearer(&foreign_sub),
        ),
        ("a revoked token", bearer(&revoked)),
        ("a deleted user's token", bearer(&deleted_user)),
    ];
    let mut checked = 0;
    for (method, template) in route_table(&api).await {
        if is_public(&method, &template) {
            continue;
        }
        let path = template
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for (what, auth) in &cases {
            let (status, body) = raw(&api, &method, &path, auth.as_deref()).await;
            assert_eq!(
                status, 401,
                "{what}: {method} {path} answered {status} {body}"
            );
            let v: Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("{what}: {method} {path}: not JSON: {body}"));
            let detail = v["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains("token") || detail.contains("Authorization"),
                "{what}: {method} {path}: {v}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} requests");
    eprintln!("bad tokens: {checked} requests, {} cases", cases.len());

    // the web UI treats such a session cookie like none: back to the login page
    let ui = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = api.base.trim_end_matches("/api");
    for (what, auth) in &cases {
        let Some(token) = auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")) else {
            continue;
        };
        let r = ui
            .get(format!("{root}/datastores"))
            .header("Cookie", format!("assay_session={token}"))
            .send()
            .await
            .unwrap();
        assert!(matches!(r.status().as_u16(), 303 | 307), "{what}");
        let location = r.headers()["location"].to_str().unwrap();
        assert!(location.starts_with("/login"), "{what}: {location}");
    }
    let r = ui
        .get(format!("{root}/datastores"))
        .header("Cookie", format!("assay_session={good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the good session is a control");

    // passwords are Argon2id hashes, never the password
    let rows = TestPg::shared()
        .superuser(&api.metadata_db)
        .await
        .query(
            "SELECT username, password_hash FROM users WHERE password_hash IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() >= 2);
    for r in rows {
        let (user, hash): (String, String) = (r.get(0), r.get(1));
        assert!(hash.starts_with("$argon2id$"), "{user}: {hash}");
        assert!(!hash.contains("tok-member-password"));
    }
}
