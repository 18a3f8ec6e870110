//! The one place identifiers are quoted for SQL text. Values are never quoted: they are bound as parameters.

/// Quotes an identifier the way PostgreSQL's `quote_ident` does when in doubt: always in double quotes, with
/// embedded double quotes doubled. NUL characters cannot occur in identifiers and are dropped.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_everything_safely() {
        assert_eq!(quote_ident("orders"), "\"orders\"");
        assert_eq!(quote_ident("we\"ird; DROP"), "\"we\"\"ird; DROP\"");
        assert_eq!(quote_ident("Ünï code"), "\"Ünï code\"");
        assert_eq!(qualified("s", "t"), "\"s\".\"t\"");
    }
}
