//! Delivering a message to one action: an HTTP POST of JSON with a timeout, the delivery id and, for a webhook
//! with a secret, an HMAC-SHA256 signature of the body (`X-Assay-Signature: sha256=<hex>`), which receivers check
//! with the same secret. A 2xx is delivered; anything else is recorded with the status or the transport error
//! (never the URL, which is a secret) and retried with backoff until the attempts run out.

use super::{ATTEMPT_TIMEOUT, MAX_ATTEMPTS, backoff, message};
use crate::Context;
use assay_core::flow::Action;
use assay_store::StoreError;
use assay_store::flows::{Delivery, FlowRecord};
use hmac::{KeyInit, Mac};

/// The hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a host is this machine (`localhost` or 127.0.0.0/8), without resolving it.
fn loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Sends `body` to an action. `Ok` carries the HTTP status of a 2xx answer; `Err` the status (if any) and what
/// went wrong, in words that hold no secret. With `loopback_only` (test servers), any other host is refused
/// before anything leaves the machine.
pub async fn send(
    action: &Action,
    body: &serde_json::Value,
    delivery_id: &str,
    loopback_only: bool,
) -> Result<u16, (Option<u16>, String)> {
    if loopback_only && !loopback(action.host()) {
        return Err((
            None,
            "this server delivers only to loopback addresses (its settings say so)".into(),
        ));
    }
    if let Action::Email { to, smtp } = action {
        return super::email::send(to, smtp, body, delivery_id).await;
    }
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let client = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| (None, format!("cannot build the HTTP client: {e}")))?;
    let mut req = client
        .post(action.url().unwrap_or_default())
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("Assay/", env!("CARGO_PKG_VERSION")))
        .header("X-Assay-Delivery", delivery_id)
        .header("X-Assay-Payload-Version", message::VERSION.to_string());
    if let Action::Webhook {
        secret: Some(s), ..
    } = action
    {
        req = req.header("X-Assay-Signature", format!("sha256={}", sign(s, &bytes)));
    }
    match req.body(bytes).send().await {
        Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
        Ok(r) => Err((
            Some(r.status().as_u16()),
            format!("the receiver answered HTTP {}", r.status()),
        )),
        Err(e) if e.is_timeout() => Err((
            None,
            format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        )),
        Err(e) if e.is_connect() => Err((
            None,
            "the receiver refused the connection or could not be reached".into(),
        )),
        Err(e) if e.is_builder() => Err((None, "the action's URL is not a valid URL".into())),
        Err(_) => Err((None, "the request failed on the way".into())),
    }
}

/// The action with its `${key}` references resolved through the flow's secrets manager, looked up now (never
/// cached); `Err` names the step that failed, never a value.
pub async fn resolved(
    ctx: &Context,
    sm: Option<&assay_core::connection::SecretsManager>,
    action: &Action,
) -> Result<Action, String> {
    let (true, Some(sm)) = (action.has_references(), sm) else {
        return Ok(action.clone());
    };
    let values = ctx
        .resolver
        .fetch(sm)
        .await
        .map_err(|e| format!("the flow's secrets manager: {e}"))?;
    action
        .resolve(&values)
        .map_err(|key| format!("the flow's secrets manager has no value for ${{{key}}}"))
}

/// One attempt of a claimed delivery, recorded.
pub(super) async fn attempt(
    ctx: &Context,
    flow: Option<&FlowRecord>,
    d: Delivery,
) -> Result<(), StoreError> {
    let failed = d.attempts + 1;
    let retry = |failed: i32| {
        (failed < MAX_ATTEMPTS).then(|| backoff(ctx.settings.retry_base, failed).as_secs_f64())
    };
    let action = flow.and_then(|f| f.spec.actions.get(d.action_index as usize));
    let (Some(flow), Some(action)) = (flow, action) else {
        return ctx
            .store
            .record_attempt(
                d.id,
                false,
                None,
                "the flow or its action was deleted",
                None,
            )
            .await;
    };
    let id = d.delivery_id.to_string();
    let body = message::render(&d.action_type, &d.message, &id);
    let started = std::time::Instant::now();
    let sent = match resolved(ctx, flow.spec.secrets_manager.as_ref(), action).await {
        Ok(a) => send(&a, &body, &id, ctx.settings.loopback_only).await,
        Err(why) => Err((None, why)),
    };
    match sent {
        Ok(code) => {
            let took = started.elapsed().as_secs_f64();
            ctx.metrics.delivery(&d.action_type, "delivered", took);
            tracing::info!(delivery_id = %id, action = d.action_type, code, "NotificationDelivered");
            ctx.store
                .record_attempt(
                    d.id,
                    true,
                    Some(i32::from(code)),
                    &format!("delivered (HTTP {code})"),
                    None,
                )
                .await
        }
        Err((code, why)) => {
            // an SMTP server's permanent refusal (5xx) does not change with time
            let permanent = d.action_type == "email" && code.is_some_and(|c| c >= 500);
            let next = if permanent { None } else { retry(failed) };
            let outcome = if next.is_some() { "retrying" } else { "failed" };
            let took = started.elapsed().as_secs_f64();
            ctx.metrics.delivery(&d.action_type, outcome, took);
            tracing::warn!(delivery_id = %id, action = d.action_type, attempt = failed, reason = %why,
                           final_attempt = next.is_none(), "NotificationFailed");
            let note = match next {
                Some(s) => format!("{why}; retrying in {s:.1} s"),
                None if permanent => format!("{why}; a permanent refusal, not retried"),
                None => format!("{why}; gave up after {failed} attempts"),
            };
            ctx.store
                .record_attempt(d.id, false, code.map(i32::from), &note, next)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts_are_read_from_the_url_alone() {
        let host = |url: &str| {
            assay_core::flow::Action::Slack { url: url.into() }
                .host()
                .to_string()
        };
        for url in [
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "https://u:p@127.0.0.2:8443/x?y",
        ] {
            assert!(super::loopback(&host(url)), "{url}");
        }
        for url in [
            "http://example.com/x",
            "http://10.0.0.1/x",
            "http://127.0.0.1.example.com/x",
            "ftp",
        ] {
            assert!(!super::loopback(&host(url)), "{url}");
        }
    }
}
