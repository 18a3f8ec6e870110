//! `${key}` resolution through Vault, OpenBao or any service with a POST login and a GET secret:
//! login URL + credentials payload → token (JSONPath) → secret URL with a token header → data (JSONPath).
//! Values are fetched afresh at every resolution and never cached, logged or put into an error message.

mod error;
mod jsonpath;
mod resolver;

pub use error::{SecretsError, Step};
pub use jsonpath::validate;
pub use resolver::{Observer, Resolver, install_crypto_provider};
