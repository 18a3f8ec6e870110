//! E-mail delivery through SMTP with `lettre`: STARTTLS required by default (or TLS from the start, or none, as
//! the action says), the public roots plus an optional CA of the action's, a plain-text and an HTML body built
//! from the message, and the delivery id as a header. The server's reply code is what an attempt records.

use assay_core::flow::Smtp;
use lettre::message::MultiPart;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The plain-text and HTML bodies of a message.
pub fn bodies(m: &Value) -> (String, String) {
    let summary = m["summary"].as_str().unwrap_or("");
    let mut text = format!("{summary}\n");
    let mut html = format!("<h2>{}</h2>", escape(summary));
    let top = super::message::top_failed_checks(m);
    if !top.is_empty() {
        text.push_str(&format!("\nTop failed checks: {}\n", top.join(", ")));
        html.push_str(&format!(
            "<p>Top failed checks: {}</p>",
            escape(&top.join(", "))
        ));
    }
    let items = m["anomalies"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !items.is_empty() {
        text.push('\n');
        html.push_str("<ul>");
        for a in &items {
            let line = format!(
                "#{} {}: {}",
                a["id"],
                a["table"].as_str().unwrap_or(""),
                a["message"].as_str().unwrap_or("")
            );
            let url = a["url"].as_str().unwrap_or("");
            text.push_str(&format!("- {line}\n  {url}\n"));
            html.push_str(&format!(
                "<li><a href=\"{}\">{}</a></li>",
                escape(url),
                escape(&line)
            ));
        }
        html.push_str("</ul>");
    }
    if let Some(url) = m["datastore"]["url"].as_str() {
        text.push_str(&format!("\nOpen in Assay: {url}\n"));
        html.push_str(&format!(
            "<p><a href=\"{}\">Open in Assay</a></p>",
            escape(url)
        ));
    }
    (text, html)
}

/// Sends the message to `to`; `Ok` carries the server's reply code.
pub async fn send(
    to: &[String],
    smtp: &Smtp,
    m: &Value,
    delivery_id: &str,
) -> Result<u16, (Option<u16>, String)> {
    let bad = |what: &str, e: &dyn std::fmt::Display| (None, format!("{what}: {e}"));
    let mut b = Message::builder()
        .from(
            smtp.from
                .parse()
                .map_err(|e| bad("the sender address", &e))?,
        )
        .subject(format!("[Assay] {}", m["summary"].as_str().unwrap_or("")))
        .message_id(Some(format!("<{delivery_id}@assay>")));
    for a in to {
        b = b.to(a.parse().map_err(|e| bad("a recipient address", &e))?);
    }
    let (text, html) = bodies(m);
    let mail = b
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| bad("cannot build the e-mail", &e))?;
    let mut tls = TlsParameters::builder(smtp.host.clone());
    if let Some(pem) = &smtp.ca_certificate {
        tls = tls.add_root_certificate(
            Certificate::from_pem(pem.as_bytes()).map_err(|e| bad("the CA certificate", &e))?,
        );
    }
    let params = || tls.clone().build_rustls();
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .timeout(Some(super::ATTEMPT_TIMEOUT));
    t = match smtp.security.as_str() {
        "none" => t.tls(Tls::None),
        "tls" => t.tls(Tls::Wrapper(params().map_err(|e| bad("TLS", &e))?)),
        _ => t.tls(Tls::Required(params().map_err(|e| bad("TLS", &e))?)),
    };
    if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
        t = t.credentials(Credentials::new(u.clone(), p.clone()));
    }
    // lettre's timeout bounds each read and write; this bounds the whole conversation
    let whole = super::ATTEMPT_TIMEOUT * 2;
    match tokio::time::timeout(whole, t.build().send(mail)).await {
        Ok(Ok(r)) => Ok(u16::from(r.code())),
        Ok(Err(e)) => Err((
            e.status().map(u16::from),
            format!("the SMTP server did not take the e-mail: {e}"),
        )),
        Err(_) => Err((
            None,
            format!(
                "the SMTP server did not finish within {} s",
                whole.as_secs()
            ),
        )),
    }
}
