//! Lenient request bodies: an empty body is allowed wherever the body is optional (the Qualytics CLI sends
//! `Content-Type: application/json` with no body), unknown fields are ignored, `null` means "not given" for
//! optional fields, and type errors are collected per field into one 422.

use crate::error::ApiError;
use assay_core::FieldError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

/// A JSON body as a value; `None` when the body is empty.
pub struct JsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body could not be read: {e}"),
            )
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(None));
        }
        if let Some(ct) = content_type {
            let ct = ct.to_ascii_lowercase();
            if !ct.starts_with("application/json") && !ct.contains("+json") {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("the body must be JSON with Content-Type: application/json, not {ct}"),
                ));
            }
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::invalid("the body is not valid UTF-8"))?;
        let value: Value = serde_json::from_str(text).map_err(|e| {
            ApiError::invalid(format!(
                "the body is not valid JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if let Some(at) = nul_at(&value, "") {
            return Err(ApiError::invalid(format!(
                "the body holds a NUL character (\\u0000) in {at}; PostgreSQL stores no text with it"
            )));
        }
        Ok(JsonBody(Some(value)))
    }
}

/// Where the first string (key or value) with a NUL character is, as a path like `properties.list[2]`.
fn nul_at(v: &Value, at: &str) -> Option<String> {
    let name = |at: &str| {
        if at.is_empty() {
            "the body".to_string()
        } else {
            at.to_string()
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => Some(name(at)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_at(x, &format!("{at}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                Some(format!("a key of {}", name(at)))
            } else {
                nul_at(x, &path)
            }
        }),
        _ => None,
    }
}

impl JsonBody {
    /// The body as an object; an empty body is an empty object.
    pub fn object(self) -> Result<Map<String, Value>, ApiError> {
        match self.0 {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(_) => Err(ApiError::invalid("the body must be a JSON object")),
        }
    }
}

/// Typed access to a body's fields, collecting every type error.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
    pub errors: Vec<FieldError>,
}

/// A field that may be absent, explicitly null, or set.
#[derive(Debug, Clone, PartialEq)]
pub enum Opt<T> {
    Absent,
    Null,
    Set(T),
}

impl<T> Opt<T> {
    /// The value when set; `None` for absent or null.
    pub fn value(self) -> Option<T> {
        match self {
            Opt::Set(v) => Some(v),
            _ => None,
        }
    }
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            prefix: String::new(),
            errors: Vec::new(),
        }
    }

    pub fn nested(map: &'a Map<String, Value>, prefix: &str) -> Self {
        Self {
            map,
            prefix: format!("{prefix}."),
            errors: Vec::new(),
        }
    }

    fn err(&mut self, key: &str, msg: &str) {
        self.errors
            .push(FieldError::new(format!("{}{key}", self.prefix), msg));
    }

    pub fn string(&mut self, key: &str) -> Opt<String> {
        match self.map.get(key) {
            None => Opt::Absent,
            Some(Value::Null) => Opt::Null,
            Some(Value::String(s)) => Opt::Set(s.clone()),
            Some(Value::Number(n)) => Opt::Set(n.to_string()),
            Some(_) => {
                self.err(key, "must be a string");
                Opt::Absent
            }
        }
    }

    pub fn int(&mut self, key: &str) -> Opt<i64> {
        match self.map.get(key) {
            None => Opt::Absent,
            Some(Value::Null) => Opt::Null,
            Some(Value::Number(n)) if n.as_i64().is_some() => {
                Opt::Set(n.as_i64().unwrap_or_default())
            }
            Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
                Opt::Set(s.trim().parse().unwrap_or_default())
            }
            Some(_) => {
                self.err(key, "must be an integer");
                Opt::Absent
            }
        }
    }

    pub fn boolean(&mut self, key: &str) -> Opt<bool> {
        match self.map.get(key) {
            None => Opt::Absent,
            Some(Value::Null) => Opt::Null,
            Some(Value::Bool(b)) => Opt::Set(*b),
            Some(Value::String(s)) if crate::params::parse_bool(s).is_some() => {
                Opt::Set(crate::params::parse_bool(s).unwrap_or_default())
            }
            Some(_) => {
                self.err(key, "must be true or false");
                Opt::Absent
            }
        }
    }

    pub fn strings(&mut self, key: &str) -> Opt<Vec<String>> {
        match self.map.get(key) {
            None => Opt::Absent,
            Some(Value::Null) => Opt::Null,
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => Opt::Set(
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            Some(Value::String(s)) => Opt::Set(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            Some(_) => {
                self.err(key, "must be a list of strings");
                Opt::Absent
            }
        }
    }

    pub fn object(&mut self, key: &str) -> Opt<&'a Map<String, Value>> {
        match self.map.get(key) {
            None => Opt::Absent,
            Some(Value::Null) => Opt::Null,
            Some(Value::Object(m)) => Opt::Set(m),
            Some(_) => {
                self.err(key, "must be an object");
                Opt::Absent
            }
        }
    }

    /// Adds a semantic error.
    pub fn invalid(&mut self, key: &str, msg: impl AsRef<str>) {
        self.err(key, msg.as_ref());
    }
}
