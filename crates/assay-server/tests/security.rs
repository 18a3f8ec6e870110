//! The security suite: secrets never leave the server in clear (responses, logs, operations, enrichment tables,
//! the metadata store at rest) nor travel to a server they were not saved for, every way a bearer token can be
//! wrong is a 401, and another team's records are a 404 on every route of the OpenAPI route table and every web
//! UI page.

mod common;
#[path = "security/routes.rs"]
mod routes;
#[path = "security/secrets.rs"]
mod secrets;
#[path = "security/teams.rs"]
mod teams;
#[path = "security/tokens.rs"]
mod tokens;
#[path = "security/travel.rs"]
mod travel;

use common::{Api, Resp};
use serde_json::Value;
use std::sync::Mutex;

/// Every response body the tests saw, so a test can search all of them at once.
pub(crate) struct Recorder<'a> {
    pub api: &'a Api,
    bodies: Mutex<Vec<String>>,
}

impl<'a> Recorder<'a> {
    pub fn new(api: &'a Api) -> Self {
        Recorder {
            api,
            bodies: Mutex::new(Vec::new()),
        }
    }

    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let r = self.api.call_as(token, method, path, body).await;
        self.bodies
            .lock()
            .unwrap()
            .push(format!("{method} {path} -> {} {}", r.status, r.body));
        r
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let t = self.api.token.clone();
        self.call_as(Some(&t), method, path, body).await
    }

    /// A call that must answer 2xx; returns the body.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        r.body
    }

    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// The routes of the OpenAPI document the server serves: (method in upper case, path template under `/api`).
pub(crate) async fn route_table(api: &Api) -> Vec<(String, String)> {
    let doc = api.call_as(None, "GET", "/openapi.json", None).await;
    assert_eq!(doc.status, 200, "{}", doc.body);
    let mut routes = Vec::new();
    for (path, methods) in doc.body["paths"].as_object().expect("paths") {
        let path = path.strip_prefix("/api").expect("paths start with /api");
        for method in methods.as_object().expect("methods").keys() {
            routes.push((method.to_ascii_uppercase(), path.to_string()));
        }
    }
    assert!(
        routes.len() > 50,
        "the route table lists every route: {routes:?}"
    );
    routes
}

/// Routes anyone may call without a token: the service status, the liveness probe, this document (and Swagger UI
/// over it), the rule
/// catalogue (static, the same for everyone) and the login itself.
pub(crate) fn is_public(method: &str, path: &str) -> bool {
    matches!(
        (method, path),
        (
            "GET",
            "/status"
                | "/health"
                | "/health/ready"
                | "/openapi.json"
                | "/docs"
                | "/quality-checks/spec"
        ) | ("POST", "/auth/login")
    )
}
