//! `${key}` references in connection properties: finding them and substituting values from a secret.
//!
//! The syntax is `${` + key + `}` where the key is any run of characters other than `}`. `$${key}` is an escape
//! that yields the literal text `${key}`.

use std::collections::BTreeMap;

/// The keys referenced in `text`, in order of appearance (duplicates kept once).
pub fn references(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for piece in scan(text) {
        if let Piece::Key(k) = piece
            && !keys.iter().any(|x: &String| x == k)
        {
            keys.push(k.to_string());
        }
    }
    keys
}

/// True when `text` holds at least one `${key}` reference.
pub fn has_references(text: &str) -> bool {
    scan(text).iter().any(|p| matches!(p, Piece::Key(_)))
}

/// Replaces every `${key}` in `text` with its value from `values`.
/// Returns the first missing key as `Err` (the key name only, never a value).
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for piece in scan(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Key(k) => match values.get(k) {
                Some(v) => out.push_str(v),
                None => return Err(k.to_string()),
            },
        }
    }
    Ok(out)
}

/// Replaces `$${key}` escapes with their literal text, for properties used without a secrets manager.
pub fn unescape(text: &str) -> String {
    substitute_with(text, |k| format!("${{{k}}}"))
}

fn substitute_with(text: &str, f: impl Fn(&str) -> String) -> String {
    scan(text)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => t.to_string(),
            Piece::Key(k) => f(k),
        })
        .collect()
}

#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Key(&'a str),
}

fn scan(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        // `$${` is an escape: emit the text up to and including the single `$`, then a literal `${`.
        if pos > 0 && rest.as_bytes()[pos - 1] == b'$' {
            pieces.push(Piece::Text(&rest[..pos - 1]));
            pieces.push(Piece::Text("${"));
            rest = &rest[pos + 2..];
            continue;
        }
        let Some(end) = rest[pos + 2..].find('}') else {
            break;
        };
        pieces.push(Piece::Text(&rest[..pos]));
        pieces.push(Piece::Key(&rest[pos + 2..pos + 2 + end]));
        rest = &rest[pos + 2 + end + 1..];
    }
    pieces.push(Piece::Text(rest));
    pieces.retain(|p| !matches!(p, Piece::Text("")));
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn finds_and_substitutes_keys() {
        let text = "postgres://${user}:${password}@${host}/${user}";
        assert_eq!(references(text), vec!["user", "password", "host"]);
        let v = map(&[("user", "u"), ("password", "p"), ("host", "h")]);
        assert_eq!(substitute(text, &v).unwrap(), "postgres://u:p@h/u");
    }

    #[test]
    fn missing_key_is_named() {
        assert_eq!(
            substitute("${a}-${b}", &map(&[("a", "1")])),
            Err("b".to_string())
        );
    }

    #[test]
    fn escape_gives_literal_reference() {
        assert!(!has_references("pa$${ss}"));
        assert_eq!(substitute("pa$${ss}", &map(&[])).unwrap(), "pa${ss}");
        assert_eq!(unescape("x$${y}z"), "x${y}z");
    }

    #[test]
    fn plain_text_and_unclosed_braces_stay() {
        assert_eq!(substitute("a$b${c", &map(&[])).unwrap(), "a$b${c");
        assert!(references("no refs").is_empty());
    }
}
