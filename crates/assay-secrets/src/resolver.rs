//! The HTTP side of secret resolution: log in, read the secret, pick out the key/value map.

use crate::error::{SecretsError, Step};
use crate::jsonpath::{first, parse};
use assay_core::connection::SecretsManager;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Once;
use std::time::Duration;

const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Installs the `ring` rustls provider for the process (needed once before any TLS client is built).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Told of each resolution's outcome (`true`: the values were read), for the host's metrics.
pub type Observer = std::sync::Arc<dyn Fn(bool) + Send + Sync>;

/// Fetches secrets over HTTP. Cheap to clone; one per process is enough.
#[derive(Clone)]
pub struct Resolver {
    http: reqwest::Client,
    timeout: Duration,
    observer: Option<Observer>,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

impl Resolver {
    /// A resolver whose every request gives up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .expect("the HTTP client builds with the ring provider installed");
        Self {
            http,
            timeout,
            observer: None,
        }
    }

    /// This resolver, telling `observer` the outcome of every resolution.
    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Logs in (when a login URL is set), reads the secret and returns its key/value map.
    /// Non-string values are given as their JSON text.
    pub async fn fetch(
        &self,
        sm: &SecretsManager,
    ) -> Result<BTreeMap<String, String>, SecretsError> {
        let out = self.read(sm).await;
        if let Some(o) = &self.observer {
            o(out.is_ok());
        }
        out
    }

    async fn read(&self, sm: &SecretsManager) -> Result<BTreeMap<String, String>, SecretsError> {
        let token_path = parse("token_jsonpath", &sm.token_jsonpath)?;
        let data_path = parse("data_jsonpath", &sm.data_jsonpath)?;
        // values an error body might echo back, kept out of every message
        let mut secrets: Vec<String> = Vec::new();
        let token = match &sm.login_url {
            Some(url) => {
                let payload: Value = match &sm.credentials_payload {
                    Some(p) => serde_json::from_str(p).map_err(|_| SecretsError::InvalidPayload)?,
                    None => Value::Object(Default::default()),
                };
                if !payload.is_object() {
                    return Err(SecretsError::InvalidPayload);
                }
                string_leaves(&payload, &mut secrets);
                let (status, body) = self
                    .send(Step::Login, url, |c| c.post(url).json(&payload))
                    .await?;
                if status >= 500 {
                    // a sealed or failing server, not a refusal of the credentials
                    return Err(SecretsError::HttpStatus {
                        step: Step::Login,
                        url: url.clone(),
                        status,
                        message: vault_message(&body, &secrets),
                    });
                }
                if !(200..300).contains(&status) {
                    return Err(SecretsError::LoginRejected {
                        url: url.clone(),
                        status,
                        message: vault_message(&body, &secrets),
                    });
                }
                let doc = json_of(Step::Login, url, &body)?;
                match first(&token_path, &doc) {
                    Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
                    _ => {
                        return Err(SecretsError::TokenNotFound {
                            path: sm.token_jsonpath.clone(),
                        });
                    }
                }
            }
            None => None,
        };
        secrets.extend(token.iter().cloned());
        let url = &sm.secret_url;
        let header = sm.token_header_name.as_str();
        let (status, body) = self
            .send(Step::ReadSecret, url, |c| {
                let req = c.get(url);
                match &token {
                    Some(t) if header.eq_ignore_ascii_case("authorization") => {
                        req.header(header, format!("Bearer {t}"))
                    }
                    Some(t) => req.header(header, t),
                    None => req,
                }
            })
            .await?;
        match status {
            200..=299 => {}
            404 => return Err(SecretsError::SecretNotFound { url: url.clone() }),
            401 | 403 => {
                return Err(SecretsError::SecretForbidden {
                    url: url.clone(),
                    status,
                    message: vault_message(&body, &secrets),
                });
            }
            _ => {
                return Err(SecretsError::HttpStatus {
                    step: Step::ReadSecret,
                    url: url.clone(),
                    status,
                    message: vault_message(&body, &secrets),
                });
            }
        }
        let doc = json_of(Step::ReadSecret, url, &body)?;
        let Some(Value::Object(map)) = first(&data_path, &doc) else {
            return Err(SecretsError::DataNotFound {
                path: sm.data_jsonpath.clone(),
            });
        };
        Ok(map
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect())
    }

    /// Sends a request with bounded retries (refused or failed connections and 5xx answers), backing off between
    /// tries. A timeout is not retried: a server that takes the whole timeout to not answer would only take it
    /// again, so the caller waits one timeout, not three.
    async fn send(
        &self,
        step: Step,
        url: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(u16, String), SecretsError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let outcome = build(&self.http).send().await;
            let retryable = match &outcome {
                Ok(resp) => resp.status().is_server_error(),
                Err(e) => e.is_connect() && !e.is_timeout(),
            };
            if retryable && attempt < ATTEMPTS {
                tracing::debug!(%step, attempt, "secrets manager request failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
                continue;
            }
            return match outcome {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.text().await.map_err(|e| {
                        if e.is_timeout() {
                            SecretsError::Timeout {
                                step,
                                url: url.to_string(),
                                seconds: self.timeout.as_secs().max(1),
                            }
                        } else {
                            SecretsError::Unreachable {
                                step,
                                url: url.to_string(),
                                cause: describe(&e),
                            }
                        }
                    })?;
                    Ok((status, body))
                }
                Err(e) if e.is_timeout() && !e.is_connect() => Err(SecretsError::Timeout {
                    step,
                    url: url.to_string(),
                    seconds: self.timeout.as_secs().max(1),
                }),
                Err(e) => Err(SecretsError::Unreachable {
                    step,
                    url: url.to_string(),
                    cause: describe(&e),
                }),
            };
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    if e.is_connect() {
        return format!("connection failed ({last})");
    }
    if e.is_builder() {
        return "the URL is not valid".to_string();
    }
    if last.is_empty() {
        "the request failed".to_string()
    } else {
        format!("the request failed ({last})")
    }
}

fn json_of(step: Step, url: &str, body: &str) -> Result<Value, SecretsError> {
    serde_json::from_str(body).map_err(|e| SecretsError::MalformedResponse {
        step,
        url: url.to_string(),
        cause: format!("{e}"),
    })
}

/// Every string of `v` long enough to be a credential.
fn string_leaves(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.chars().count() >= 4 => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| string_leaves(x, out)),
        Value::Object(o) => o.values().for_each(|x| string_leaves(x, out)),
        _ => {}
    }
}

/// The message of an error body with every value of `secrets` (the credentials payload's strings, the token)
/// masked, in case a server or a proxy in front of it echoes the request.
fn vault_message(body: &str, secrets: &[String]) -> String {
    let mut text = body_message(body);
    for s in secrets {
        text = text.replace(s.as_str(), "[redacted]");
    }
    text
}

/// The `errors` of a Vault error body joined into one line, or a short excerpt of the body.
fn body_message(body: &str) -> String {
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(body)
        && let Some(Value::Array(errs)) = o.get("errors")
    {
        let texts: Vec<String> = errs
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        return if texts.is_empty() {
            "no message".to_string()
        } else {
            texts.join("; ")
        };
    }
    let excerpt: String = body.chars().take(200).collect();
    if excerpt.trim().is_empty() {
        "no message".to_string()
    } else {
        excerpt
    }
}

#[cfg(test)]
mod tests {
    use super::{body_message, vault_message};

    #[test]
    fn vault_messages_are_flattened() {
        assert_eq!(
            body_message(r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#),
            "1 error occurred: * permission denied"
        );
        assert_eq!(body_message(r#"{"errors":[]}"#), "no message");
        assert_eq!(body_message("oops"), "oops");
    }

    #[test]
    fn echoed_credentials_are_masked() {
        let secrets = ["hunter22".to_string(), "s.tok3n".to_string()];
        assert_eq!(
            vault_message("bad request: password=hunter22 token s.tok3n", &secrets),
            "bad request: password=[redacted] token [redacted]"
        );
    }
}
