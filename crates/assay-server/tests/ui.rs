//! The web UI: plain HTTP checks of the login, escaping, team visibility, error pages, the same-origin rule and
//! the quality pages (the check form), and one browser scenario (Debian's chromium through chromedriver, driven
//! with fantoccini) from login to an anomaly's source records, with a screenshot of every main page.

#[path = "ui/browser.rs"]
mod browser;
mod common;
#[path = "ui/http.rs"]
mod http;
#[path = "ui/pages.rs"]
mod pages;
#[path = "ui/quality.rs"]
mod quality;

use common::Api;

/// The server's root (`Api::base` ends in `/api`).
pub(crate) fn root(api: &Api) -> String {
    api.base.trim_end_matches("/api").to_string()
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
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

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in through the login form; returns the session cookie (`name=value`).
pub(crate) async fn sign_in(api: &Api, user: &str, password: &str) -> String {
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

/// Creates an admin and signs them in; returns the session cookie.
pub(crate) async fn admin(api: &Api, name: &str) -> String {
    api.ok(
        "/users",
        serde_json::json!({"username": name, "password": "admin-password", "role": "Admin"}),
    )
    .await;
    sign_in(api, name, "admin-password").await
}

pub(crate) async fn page(
    api: &Api,
    cookie: Option<&str>,
    path: &str,
) -> (u16, String, Option<String>) {
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

pub(crate) async fn post_form(
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
