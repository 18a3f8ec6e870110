//! Query strings: repeated keys (`datastore=4&datastore=5`), booleans in any case (`True`, `true`), and exact
//! pagination (`page` is 1-based; `size` is honoured up to 1000).

use crate::error::ApiError;
use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;

pub const DEFAULT_SIZE: i64 = 50;
pub const MAX_SIZE: i64 = 1000;

/// The strings of a JSON array (nothing for anything else).
pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The decoded query pairs, in order.
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(q) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        let pairs = q.map(|q| form_urlencoded_pairs(&q)).unwrap_or_default();
        if let Some((k, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::invalid(format!(
                "query parameter {}: contains a NUL character (%00), which no field can hold",
                k.replace('\0', "%00")
            )));
        }
        Ok(Params(pairs))
    }
}

/// `a=1&b=2` decoded into pairs (also the body of an HTML form).
pub(crate) fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key; comma lists are split too.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_bool(v).map(Some).ok_or_else(|| {
                ApiError::invalid(format!("query parameter {key}: '{v}' is not true or false"))
            }),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::invalid(format!("query parameter {key}: '{v}' is not an integer"))
            }),
        }
    }

    /// A `YYYY-MM-DD` day.
    pub fn date(&self, key: &str) -> Result<Option<chrono::NaiveDate>, ApiError> {
        self.get(key)
            .map(|d| {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                    ApiError::invalid(format!("query parameter {key}: '{d}' is not YYYY-MM-DD"))
                })
            })
            .transpose()
    }

    pub fn ints(&self, key: &str) -> Result<Vec<i64>, ApiError> {
        self.all(key)
            .iter()
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::invalid(format!("query parameter {key}: '{v}' is not an integer"))
                })
            })
            .collect()
    }

    /// `(page, size)` with page ≥ 1 and 1 ≤ size ≤ 1000.
    pub fn page(&self) -> Result<(i64, i64), ApiError> {
        let page = self.int("page")?.unwrap_or(1);
        let size = self.int("size")?.unwrap_or(DEFAULT_SIZE);
        if page < 1 {
            return Err(ApiError::invalid("query parameter page: must be 1 or more"));
        }
        if !(1..=MAX_SIZE).contains(&size) {
            return Err(ApiError::invalid(format!(
                "query parameter size: must be between 1 and {MAX_SIZE}"
            )));
        }
        // the offset (page - 1) * size must be a number PostgreSQL can take
        if (page - 1).checked_mul(size).is_none() {
            return Err(ApiError::invalid(format!(
                "query parameter page: {page} is past any possible result at size {size}"
            )));
        }
        Ok((page, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_keys_and_both_boolean_spellings() {
        let p = Params(form_urlencoded_pairs(
            "datastore=4&datastore=5&enrichment_only=True&x=a%20b+c&archive=false",
        ));
        assert_eq!(p.ints("datastore").unwrap(), vec![4, 5]);
        assert_eq!(p.bool("enrichment_only").unwrap(), Some(true));
        assert_eq!(p.bool("archive").unwrap(), Some(false));
        assert_eq!(p.get("x"), Some("a b c"));
        assert!(Params(form_urlencoded_pairs("size=0")).page().is_err());
        assert_eq!(
            Params(form_urlencoded_pairs("page=2&size=100"))
                .page()
                .unwrap(),
            (2, 100)
        );
        assert!(Params(form_urlencoded_pairs("page=x")).page().is_err());
        assert!(
            Params(form_urlencoded_pairs("page=9223372036854775807&size=2"))
                .page()
                .is_err()
        );
        assert_eq!(decode("%zz%4"), "%zz%4");
    }
}
