//! The validation error of the core crate: every problem found in one input, reported at once.

use std::fmt;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `secrets_manager.token_jsonpath`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    /// One or more fields of an input are invalid.
    #[error("invalid input: {}", join(.0))]
    Invalid(Vec<FieldError>),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl CoreError {
    /// Turns a list of problems into `Ok(())` when it is empty.
    pub fn check(errors: Vec<FieldError>) -> Result<(), CoreError> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CoreError::Invalid(errors))
        }
    }
}
