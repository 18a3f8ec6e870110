//! The error enum of the secrets crate. Messages name the step, the URL and the cause, never a secret value.

use std::fmt;

/// The step of the secret resolution that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Login,
    ReadSecret,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Login => "logging in to the secrets manager",
            Step::ReadSecret => "reading the secret",
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error(
        "secrets manager unreachable while {step} at {url}: {cause}. Check the URL, that the server is up and \
             that this host may reach it"
    )]
    Unreachable {
        step: Step,
        url: String,
        cause: String,
    },
    #[error(
        "secrets manager rejected the login at {url} (HTTP {status}: {message}). Check the credentials payload \
             and the login URL's auth method path"
    )]
    LoginRejected {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "the token JSONPath {path} matched no string in the login response. Check the path (for Vault and \
             OpenBao it is $.auth.client_token)"
    )]
    TokenNotFound { path: String },
    #[error(
        "secret not found at {url} (HTTP 404). Check the secret URL (for KV v2 it reads /v1/<mount>/data/<path>)"
    )]
    SecretNotFound { url: String },
    #[error(
        "access to the secret at {url} was refused (HTTP {status}: {message}). Check that the token's policy \
             grants read on this path and the token header name"
    )]
    SecretForbidden {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "the secrets manager did not answer within {seconds} s while {step} at {url}; the request was not \
             repeated. Check that the server is up and not overloaded, and that the URL points at its API"
    )]
    Timeout {
        step: Step,
        url: String,
        seconds: u64,
    },
    #[error("the secrets manager answered HTTP {status} while {step} at {url}: {message}. {}", status_fix(*.status))]
    HttpStatus {
        step: Step,
        url: String,
        status: u16,
        message: String,
    },
    #[error("the secrets manager's answer while {step} at {url} is not JSON: {cause}")]
    MalformedResponse {
        step: Step,
        url: String,
        cause: String,
    },
    #[error(
        "the data JSONPath {path} matched no object in the secret. Check the path (for KV v2 it is $.data.data)"
    )]
    DataNotFound { path: String },
    #[error(
        "the key '{key}' is not in the secret (keys present: {available}). Add it to the secret or fix the \
             ${{{key}}} reference"
    )]
    MissingKey { key: String, available: String },
    #[error("{field}: '{path}' is not a valid JSONPath: {cause}")]
    InvalidJsonPath {
        field: String,
        path: String,
        cause: String,
    },
    #[error(
        "the credentials payload is not a JSON object. Give one, e.g. {{\"password\": \"...\"}}"
    )]
    InvalidPayload,
}

/// What to do about an unexpected HTTP status from the secrets manager.
fn status_fix(status: u16) -> &'static str {
    match status {
        503 => {
            "A sealed Vault or OpenBao (or a standby node) answers 503: unseal it or point the URL at the active node"
        }
        500..=599 => "The server failed; check its logs and status",
        _ => "Check the URL and the secrets manager's API",
    }
}
