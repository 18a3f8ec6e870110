//! How a column travels in a binary COPY and which metrics apply to it.

use serde::{Deserialize, Serialize};

/// The wire representation Assay decodes. Types without one of these are cast to `text` in the SELECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Bool,
    Text,
    Date,
    Timestamp,
    Uuid,
}

/// The metric family of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    Number,
    Temporal,
    Boolean,
    Text,
    Identifier,
}

impl Kind {
    /// The kind for a PostgreSQL base type name, and how to select it: `None` selects the column as is,
    /// `Some(cast)` wraps it (`money` → numeric, everything unknown → text).
    pub fn for_type(typname: &str, typcategory: &str) -> (Kind, Option<&'static str>) {
        match typname {
            "int2" => (Kind::Int2, None),
            "int4" => (Kind::Int4, None),
            "int8" => (Kind::Int8, None),
            "float4" => (Kind::Float4, None),
            "float8" => (Kind::Float8, None),
            "numeric" => (Kind::Numeric, None),
            "money" => (Kind::Numeric, Some("numeric")),
            "bool" => (Kind::Bool, None),
            "text" | "varchar" | "bpchar" | "name" => (Kind::Text, None),
            "date" => (Kind::Date, None),
            "timestamp" | "timestamptz" => (Kind::Timestamp, None),
            "uuid" => (Kind::Uuid, None),
            _ if typcategory == "E" => (Kind::Text, Some("text")),
            _ => (Kind::Text, Some("text")),
        }
    }

    pub fn family(self) -> Family {
        match self {
            Kind::Int2 | Kind::Int4 | Kind::Int8 | Kind::Float4 | Kind::Float8 | Kind::Numeric => {
                Family::Number
            }
            Kind::Date | Kind::Timestamp => Family::Temporal,
            Kind::Bool => Family::Boolean,
            Kind::Text => Family::Text,
            Kind::Uuid => Family::Identifier,
        }
    }
}

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A decoded, non-null value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A finite number.
    Number(f64),
    /// NaN or ±Infinity (floats and numerics).
    NonFinite,
    Bool(bool),
    Text(&'a str),
    /// Microseconds since the Unix epoch.
    Temporal(i64),
    /// `infinity` / `-infinity` dates and timestamps.
    TemporalInfinite,
    Bytes(&'a [u8]),
    /// Bytes that do not decode as the kind says (never expected from PostgreSQL).
    Invalid,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Decodes one binary field of `kind`.
#[inline]
pub fn decode(kind: Kind, b: &[u8]) -> Value<'_> {
    match kind {
        Kind::Int2 if b.len() == 2 => Value::Number(be_i16(b, 0) as f64),
        Kind::Int4 if b.len() == 4 => {
            Value::Number(i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64)
        }
        Kind::Int8 if b.len() == 8 => {
            Value::Number(i64::from_be_bytes(b.try_into().unwrap_or([0; 8])) as f64)
        }
        Kind::Float4 if b.len() == 4 => finite(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64),
        Kind::Float8 if b.len() == 8 => finite(f64::from_be_bytes(b.try_into().unwrap_or([0; 8]))),
        Kind::Numeric => numeric(b),
        Kind::Bool if b.len() == 1 => Value::Bool(b[0] != 0),
        Kind::Text => match std::str::from_utf8(b) {
            Ok(s) => Value::Text(s),
            Err(_) => Value::Invalid,
        },
        Kind::Date if b.len() == 4 => {
            let days = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if days == i32::MAX || days == i32::MIN {
                Value::TemporalInfinite
            } else {
                Value::Temporal(days as i64 * 86_400_000_000 + PG_EPOCH_MICROS)
            }
        }
        Kind::Timestamp if b.len() == 8 => {
            let us = i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
            if us == i64::MAX || us == i64::MIN {
                Value::TemporalInfinite
            } else {
                Value::Temporal(us.saturating_add(PG_EPOCH_MICROS))
            }
        }
        Kind::Uuid if b.len() == 16 => Value::Bytes(b),
        _ => Value::Invalid,
    }
}

fn finite(v: f64) -> Value<'static> {
    if v.is_finite() {
        Value::Number(v)
    } else {
        Value::NonFinite
    }
}

/// PostgreSQL's binary numeric: ndigits, weight, sign, dscale, then base-10000 digits.
fn numeric(b: &[u8]) -> Value<'static> {
    if b.len() < 8 {
        return Value::Invalid;
    }
    let ndigits = be_i16(b, 0) as usize;
    let weight = be_i16(b, 2) as i32;
    let sign = u16::from_be_bytes([b[4], b[5]]);
    if matches!(sign, 0xC000 | 0xD000 | 0xF000) {
        return Value::NonFinite;
    }
    if b.len() < 8 + 2 * ndigits {
        return Value::Invalid;
    }
    let mut v = 0.0f64;
    for i in 0..ndigits {
        v = v * 10_000.0 + be_i16(b, 8 + 2 * i) as f64;
    }
    let exp = weight - (ndigits as i32 - 1);
    let v = v * pow10000(exp);
    let v = if sign == 0x4000 { -v } else { v };
    finite(v)
}

/// 10000^e, from a table for the exponents money and everyday numerics have.
#[inline]
fn pow10000(e: i32) -> f64 {
    const TABLE: [f64; 17] = [
        1e-32, 1e-28, 1e-24, 1e-20, 1e-16, 1e-12, 1e-8, 1e-4, 1.0, 1e4, 1e8, 1e12, 1e16, 1e20,
        1e24, 1e28, 1e32,
    ];
    match usize::try_from(e + 8) {
        Ok(i) if i < TABLE.len() => TABLE[i],
        _ => 10_000f64.powi(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: i16, weight: i16, sign: u16, digits: &[i16]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(ndigits.to_be_bytes());
        b.extend(weight.to_be_bytes());
        b.extend(sign.to_be_bytes());
        b.extend(2i16.to_be_bytes());
        for d in digits {
            b.extend(d.to_be_bytes());
        }
        b
    }

    #[test]
    fn the_power_table_matches_powi() {
        for e in -12..12 {
            let (t, p) = (pow10000(e), 10_000f64.powi(e));
            assert!((t - p).abs() <= p * 1e-15, "{e}: {t} vs {p}");
        }
    }

    #[test]
    fn decodes_numerics() {
        // 12345.67 = [1, 2345, 6700] with weight 1
        assert_eq!(
            decode(Kind::Numeric, &num(3, 1, 0, &[1, 2345, 6700])),
            Value::Number(12345.67)
        );
        assert_eq!(
            decode(Kind::Numeric, &num(1, -1, 0x4000, &[5000])),
            Value::Number(-0.5)
        );
        assert_eq!(
            decode(Kind::Numeric, &num(0, 0, 0, &[])),
            Value::Number(0.0)
        );
        assert_eq!(
            decode(Kind::Numeric, &num(0, 0, 0xC000, &[])),
            Value::NonFinite
        );
        assert_eq!(decode(Kind::Numeric, &[1, 2]), Value::Invalid);
    }

    #[test]
    fn decodes_temporal_and_infinities() {
        assert_eq!(
            decode(Kind::Date, &0i32.to_be_bytes()),
            Value::Temporal(PG_EPOCH_MICROS)
        );
        assert_eq!(
            decode(Kind::Date, &i32::MAX.to_be_bytes()),
            Value::TemporalInfinite
        );
        assert_eq!(
            decode(Kind::Timestamp, &(-PG_EPOCH_MICROS).to_be_bytes()),
            Value::Temporal(0)
        );
        assert_eq!(
            decode(Kind::Float8, &f64::NAN.to_be_bytes()),
            Value::NonFinite
        );
        assert_eq!(decode(Kind::Int4, &[0, 0, 1]), Value::Invalid);
    }
}
