//! The HTTP client of the `assay` CLI: server URL and token from `ASSAY_URL`/`ASSAY_TOKEN` or the config file
//! (`$ASSAY_CONFIG_HOME/config.yaml`, default `~/.assay/config.yaml`), and errors that carry the server's message.

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub url: String,
    pub token: String,
    #[serde(default = "yes")]
    pub ssl_verify: bool,
}

fn yes() -> bool {
    true
}

pub fn config_dir() -> PathBuf {
    if let Ok(d) = std::env::var("ASSAY_CONFIG_HOME") {
        return PathBuf::from(d);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".assay")
}

/// `http://host:port`, `http://host:port/` and `http://host:port/api` all become `http://host:port/api`.
pub fn normalize_url(url: &str) -> String {
    let mut u = url.trim().to_string();
    if !u.starts_with("http://") && !u.starts_with("https://") {
        u = format!("https://{u}");
    }
    let u = u.trim_end_matches('/');
    let u = u.strip_suffix("/api").unwrap_or(u);
    format!("{u}/api")
}

impl Config {
    pub fn load() -> Result<Config> {
        match (
            std::env::var("ASSAY_URL").ok(),
            std::env::var("ASSAY_TOKEN").ok(),
        ) {
            (Some(url), Some(token)) => {
                return Ok(Config {
                    url: normalize_url(&url),
                    token,
                    ssl_verify: true,
                });
            }
            (Some(_), None) | (None, Some(_)) => {
                crate::usage!("set both ASSAY_URL and ASSAY_TOKEN, or neither")
            }
            (None, None) => {}
        }
        let path = config_dir().join("config.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            crate::usage!(
                "no configuration at {}: run `assay auth init --url URL --token TOKEN` or set ASSAY_URL and ASSAY_TOKEN",
                path.display()
            )
        };
        let mut cfg: Config = match serde_yaml::from_str(&text) {
            Ok(c) => c,
            Err(e) => crate::usage!(
                "{} is not valid: {e}; run `assay auth init` again",
                path.display()
            ),
        };
        cfg.url = normalize_url(&cfg.url);
        Ok(cfg)
    }

    pub fn save(&self) -> Result<PathBuf> {
        let dir = config_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("config.yaml");
        std::fs::write(&path, serde_yaml::to_string(self)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(path)
    }
}

/// An API error: the status and the server's `detail`.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub detail: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.detail)
    }
}

impl std::error::Error for ApiFailure {}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(cfg: &Config) -> Result<Client> {
        assay_secrets_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .danger_accept_invalid_certs(!cfg.ssl_verify)
            .build()?;
        Ok(Client {
            http,
            base: cfg.url.clone(),
            token: cfg.token.clone(),
        })
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .query(query);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach the Assay server at {}: is `assay serve` running there?",
                    self.base
                )
            } else {
                anyhow!("request to {url} failed: {e}")
            }
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("detail").map(|d| {
                        d.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| d.to_string())
                    })
                })
                .unwrap_or(text);
            return Err(ApiFailure { status, detail }.into());
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the server's answer to {path} is not JSON"))
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.request(reqwest::Method::GET, path, query, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.request(reqwest::Method::POST, path, &[], Some(body))
            .await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.request(reqwest::Method::PUT, path, &[], Some(body))
            .await
    }
    pub async fn patch(&self, path: &str, body: Option<&Value>) -> Result<Value> {
        self.request(reqwest::Method::PATCH, path, &[], body).await
    }
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.request(reqwest::Method::DELETE, path, &[], None).await
    }

    /// Every item of a paged list.
    pub async fn all(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let mut q = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("size", "100".to_string()));
            let v = self.get(path, &q).await?;
            let items = v["items"].as_array().cloned().unwrap_or_default();
            let total = v["total"].as_i64().unwrap_or(0);
            out.extend(items);
            if page * 100 >= total {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// The item of a list route whose name is exactly `name` (the route's `name` filter narrows the list;
    /// `query` adds others), if there is one.
    pub async fn named(
        &self,
        path: &str,
        mut query: Vec<(&str, String)>,
        name: &str,
    ) -> Result<Option<Value>> {
        query.push(("name", name.to_string()));
        Ok(self
            .all(path, &query)
            .await?
            .into_iter()
            .find(|v| v["name"] == name))
    }

    /// A connection id by exact name.
    pub async fn connection_id(&self, name: &str) -> Result<i64> {
        self.named("/connections", vec![], name)
            .await?
            .and_then(|c| c["id"].as_i64())
            .ok_or_else(|| {
                anyhow!("no connection named '{name}' (assay connections list shows them)")
            })
    }

    /// A datastore id by exact name.
    pub async fn datastore_id(&self, name: &str) -> Result<i64> {
        self.named("/datastores", vec![], name)
            .await?
            .and_then(|c| c["id"].as_i64())
            .ok_or_else(|| {
                anyhow!("no datastore named '{name}' (assay datastores list shows them)")
            })
    }
}

fn assay_secrets_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::normalize_url;

    #[test]
    fn urls_end_in_api() {
        for u in [
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/",
            "http://127.0.0.1:8000/api",
            "http://127.0.0.1:8000/api/",
        ] {
            assert_eq!(normalize_url(u), "http://127.0.0.1:8000/api");
        }
        assert_eq!(normalize_url("assay.example"), "https://assay.example/api");
    }
}
