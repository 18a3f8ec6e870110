//! Type inference for text values by byte scanning (no regex on the hot path): what a value looks like.

/// Kinds a text value can look like, in the order of `TextKind::ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Integral,
    Fractional,
    Boolean,
    Date,
    Timestamp,
    Uuid,
    Email,
    String,
}

impl TextKind {
    pub const ALL: [TextKind; 8] = [
        TextKind::Integral,
        TextKind::Fractional,
        TextKind::Boolean,
        TextKind::Date,
        TextKind::Timestamp,
        TextKind::Uuid,
        TextKind::Email,
        TextKind::String,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TextKind::Integral => "integral",
            TextKind::Fractional => "fractional",
            TextKind::Boolean => "boolean",
            TextKind::Date => "date",
            TextKind::Timestamp => "timestamp",
            TextKind::Uuid => "uuid",
            TextKind::Email => "email",
            TextKind::String => "string",
        }
    }
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn integral(b: &[u8]) -> bool {
    let b = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    digits(b) && b.len() <= 19
}

fn fractional(b: &[u8]) -> bool {
    let b = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let (mantissa, exp) = match b.iter().position(|c| *c == b'e' || *c == b'E') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let ok_m = match mantissa.iter().position(|c| *c == b'.') {
        Some(i) => {
            let (l, r) = (&mantissa[..i], &mantissa[i + 1..]);
            (digits(l) || l.is_empty())
                && (digits(r) || r.is_empty())
                && !(l.is_empty() && r.is_empty())
        }
        None => digits(mantissa) && exp.is_some(),
    };
    ok_m && exp.is_none_or(integral)
}

fn boolean(b: &[u8]) -> bool {
    matches!(b.len(), 1..=5)
        && matches!(
            b.to_ascii_lowercase().as_slice(),
            b"true" | b"false" | b"t" | b"f" | b"yes" | b"no" | b"y" | b"n"
        )
}

fn date(b: &[u8]) -> bool {
    b.len() == 10
        && digits(&b[0..4])
        && b[4] == b'-'
        && digits(&b[5..7])
        && b[7] == b'-'
        && digits(&b[8..10])
        && (1..=12).contains(&((b[5] - b'0') * 10 + (b[6] - b'0')))
        && (1..=31).contains(&((b[8] - b'0') * 10 + (b[9] - b'0')))
}

fn timestamp(b: &[u8]) -> bool {
    if b.len() < 16 || !date(&b[..10]) || !(b[10] == b'T' || b[10] == b' ') {
        return false;
    }
    let t = &b[11..];
    if t.len() < 5 || !digits(&t[0..2]) || t[2] != b':' || !digits(&t[3..5]) {
        return false;
    }
    // the rest: seconds, fraction and zone in any order of the usual forms
    t[5..]
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b':' | b'.' | b'+' | b'-' | b'Z' | b'z' | b' '))
}

fn uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Characters allowed in the local part of an address besides letters and digits.
const LOCAL_SPECIALS: &[u8] = b".!#$%&'*+/=?^_`{|}~-";

const fn local_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < LOCAL_SPECIALS.len() {
        t[LOCAL_SPECIALS[i] as usize] = true;
        i += 1;
    }
    t
}

static LOCAL: [bool; 256] = local_table();

const fn domain_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric() || c as u8 == b'-' || c as u8 == b'.';
        c += 1;
    }
    t
}

static DOMAIN: [bool; 256] = domain_table();

/// `local@domain.tld`: a local part of 1 to 64 allowed characters, then a domain of letters, digits, dots and
/// hyphens that does not start with a dot and whose last dot has a label before it and at least two characters
/// after it. Each part is one tight loop over a character table.
fn email(b: &[u8]) -> bool {
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    if !(1..=64).contains(&local.len()) || !local.iter().all(|&c| LOCAL[c as usize]) {
        return false;
    }
    if domain.len() < 3 || domain[0] == b'.' || !domain.iter().all(|&c| DOMAIN[c as usize]) {
        return false;
    }
    match domain.iter().rposition(|&c| c == b'.') {
        Some(dot) => dot > 0 && domain.len() - dot > 2,
        None => false,
    }
}

/// `s` without surrounding whitespace; most values have none, which two byte tests show.
fn trimmed(s: &str) -> &[u8] {
    let b = s.as_bytes();
    let plain = |c: u8| c > b' ' && c < 0x80;
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if plain(f) && plain(l) => b,
        _ => s.trim().as_bytes(),
    }
}

/// What `s` looks like. Values longer than 128 bytes are strings (no other kind is that long in practice).
pub fn classify(s: &str) -> TextKind {
    if s.len() > 128 {
        return TextKind::String;
    }
    let b = trimmed(s);
    if b.is_empty() {
        return TextKind::String;
    }
    let first = b[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        if integral(b) {
            return TextKind::Integral;
        }
        if fractional(b) {
            return TextKind::Fractional;
        }
        if date(b) {
            return TextKind::Date;
        }
        if timestamp(b) {
            return TextKind::Timestamp;
        }
    }
    if uuid(b) {
        return TextKind::Uuid;
    }
    if boolean(b) {
        return TextKind::Boolean;
    }
    if email(b) {
        return TextKind::Email;
    }
    TextKind::String
}

#[cfg(test)]
mod tests {
    use super::{TextKind::*, classify};
    use proptest::prelude::*;

    /// The definition of an address, written plainly: the one-pass `email` must agree with it.
    fn email_reference(b: &[u8]) -> bool {
        let Some(at) = b.iter().position(|c| *c == b'@') else {
            return false;
        };
        let (local, domain) = (&b[..at], &b[at + 1..]);
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || super::LOCAL_SPECIALS.contains(c));
        let dot = domain.iter().rposition(|c| *c == b'.');
        let domain_ok = domain.len() >= 3
            && dot.is_some_and(|d| d > 0 && domain.len() - d > 2)
            && domain
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'-')
            && !domain.starts_with(b".");
        local_ok && domain_ok
    }

    proptest! {
        #[test]
        fn one_pass_email_matches_the_reference(s in "[a-c.@_ -]{0,12}(@[a-c.-]{0,6})?") {
            prop_assert_eq!(super::email(s.as_bytes()), email_reference(s.as_bytes()), "{}", s);
        }
    }

    #[test]
    fn classifies_common_shapes() {
        for (v, k) in [
            ("42", Integral),
            ("-7", Integral),
            ("3.14", Fractional),
            ("-.5", Fractional),
            ("1e10", Fractional),
            ("2026-11-25", Date),
            ("2026-13-25", String),
            ("2026-11-25T10:00:00Z", Timestamp),
            ("2026-11-25 10:00:00.123+01:00", Timestamp),
            ("true", Boolean),
            ("N", Boolean),
            ("123e4567-e89b-12d3-a456-426614174000", Uuid),
            ("alice@example.com", Email),
            ("alice@example", String),
            ("not-an-email", String),
            ("@x.com", String),
            ("a@@b.com", String),
            ("a@b.c", String),
            ("a@.bc.com", String),
            ("first.last+tag@sub.example-mail.co", Email),
            ("a b@example.com", String),
            ("", String),
            ("hello world", String),
            ("1.2.3", String),
        ] {
            assert_eq!(classify(v), k, "{v}");
        }
    }
}
