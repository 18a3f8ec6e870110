//! JSONPath parsing and evaluation (RFC 9535) for the token and data paths.

use crate::error::SecretsError;
use assay_core::FieldError;
use assay_core::connection::SecretsManager;
use serde_json::Value;
use serde_json_path::JsonPath;

/// Checks the syntax of both JSONPaths of a secrets manager.
pub fn validate(sm: &SecretsManager) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, path) in [
        ("token_jsonpath", &sm.token_jsonpath),
        ("data_jsonpath", &sm.data_jsonpath),
    ] {
        if let Err(e) = parse(field, path) {
            errors.push(FieldError::new(
                format!("secrets_manager.{field}"),
                e.to_string(),
            ));
        }
    }
    errors
}

pub(crate) fn parse(field: &str, path: &str) -> Result<JsonPath, SecretsError> {
    JsonPath::parse(path).map_err(|e| SecretsError::InvalidJsonPath {
        field: field.to_string(),
        path: path.to_string(),
        cause: e.to_string(),
    })
}

/// The first node `path` matches in `doc`.
pub(crate) fn first<'a>(path: &JsonPath, doc: &'a Value) -> Option<&'a Value> {
    path.query(doc).all().into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_vault_token_and_data() {
        let login = json!({"auth": {"client_token": "s.abc", "policies": ["default"]}});
        let p = parse("token_jsonpath", "$.auth.client_token").unwrap();
        assert_eq!(first(&p, &login), Some(&json!("s.abc")));
        let secret = json!({"data": {"data": {"password": "pw"}, "metadata": {"version": 1}}});
        let d = parse("data_jsonpath", "$.data.data").unwrap();
        assert_eq!(first(&d, &secret), Some(&json!({"password": "pw"})));
        let miss = parse("token_jsonpath", "$.auth.nothing").unwrap();
        assert_eq!(first(&miss, &login), None);
    }

    #[test]
    fn rejects_bad_syntax() {
        assert!(parse("token_jsonpath", "auth.client_token").is_err());
        assert!(parse("token_jsonpath", "$.auth[").is_err());
    }
}
