//! The shapes of a text field's values, for inferring format checks (`PR-000123456` → `^[A-Z]{2}-[0-9]{9}$`).
//!
//! A value's shape is its sequence of runs: a run of upper-case letters, of lower-case letters, of digits, or of
//! one punctuation or space character repeated. Values with the same sequence of run classes share a *skeleton*,
//! which keeps the shortest and longest length seen of each run. A field keeps at most [`MAX_SKELETONS`]
//! skeletons of at most [`MAX_RUNS`] runs; a value beyond either (free text, names, mixed hex), or with a
//! character outside printable ASCII, ends the tracking for the field (`Shapes::Many`), after which values cost
//! nothing more. Mergeable: the skeletons of `a ++ b` are those of `a` and `b` joined.
//!
//! The pattern is written for both PostgreSQL's ARE regular expressions (where scans run it) and Rust's `regex`
//! (where tests check it): bracket classes of ASCII ranges, `{n}` / `{n,m}` / `{n,}` counts, and punctuation
//! escaped with a backslash, which both read as the literal character.

use serde::{Deserialize, Serialize};

/// The most skeletons a field keeps before it is taken for free text.
pub const MAX_SKELETONS: usize = 4;
/// The most runs one value may have.
pub const MAX_RUNS: usize = 12;

/// One sequence of run classes and the length range of each run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skeleton {
    /// `A` upper-case letters, `a` lower-case letters, `9` digits, or the punctuation character itself.
    pub classes: String,
    pub min: Vec<u16>,
    pub max: Vec<u16>,
    pub count: u64,
}

/// The shapes seen so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shapes {
    Few(Vec<Skeleton>),
    /// Too many shapes, or values with no shape: nothing is inferred.
    Many,
}

impl Default for Shapes {
    fn default() -> Self {
        Shapes::Few(Vec::new())
    }
}

fn class(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b'A'),
        b'a'..=b'z' => Some(b'a'),
        b'0'..=b'9' => Some(b'9'),
        b' '..=b'~' => Some(b),
        _ => None,
    }
}

/// The runs of `s` as (class, length), or `None` when it has no shape.
fn runs(s: &str) -> Option<([(u8, u16); MAX_RUNS], usize)> {
    let mut out = [(0u8, 0u16); MAX_RUNS];
    let mut n = 0;
    for &b in s.as_bytes() {
        let c = class(b)?;
        if n > 0 && out[n - 1].0 == c {
            out[n - 1].1 = out[n - 1].1.saturating_add(1);
        } else {
            if n == MAX_RUNS {
                return None;
            }
            out[n] = (c, 1);
            n += 1;
        }
    }
    (n > 0).then_some((out, n))
}

impl Shapes {
    /// Adds `count` occurrences of `s`.
    pub fn add(&mut self, s: &str, count: u64) {
        let Shapes::Few(skeletons) = self else { return };
        let Some((runs, n)) = runs(s) else {
            *self = Shapes::Many;
            return;
        };
        let runs = &runs[..n];
        let same = |k: &Skeleton| {
            k.classes.len() == n && k.classes.bytes().zip(runs).all(|(c, r)| c == r.0)
        };
        if let Some(k) = skeletons.iter_mut().find(|k| same(k)) {
            for (i, r) in runs.iter().enumerate() {
                k.min[i] = k.min[i].min(r.1);
                k.max[i] = k.max[i].max(r.1);
            }
            k.count += count;
        } else if skeletons.len() == MAX_SKELETONS {
            *self = Shapes::Many;
        } else {
            skeletons.push(Skeleton {
                classes: runs.iter().map(|r| r.0 as char).collect(),
                min: runs.iter().map(|r| r.1).collect(),
                max: runs.iter().map(|r| r.1).collect(),
                count,
            });
        }
    }

    /// Folds `other` (the same field over other rows) into `self`.
    pub fn merge(&mut self, other: &Shapes) {
        let Shapes::Few(theirs) = other else {
            *self = Shapes::Many;
            return;
        };
        for k in theirs {
            let Shapes::Few(mine) = self else { return };
            if let Some(m) = mine.iter_mut().find(|m| m.classes == k.classes) {
                for i in 0..m.min.len() {
                    m.min[i] = m.min[i].min(k.min[i]);
                    m.max[i] = m.max[i].max(k.max[i]);
                }
                m.count += k.count;
            } else if mine.len() == MAX_SKELETONS {
                *self = Shapes::Many;
            } else {
                mine.push(k.clone());
            }
        }
    }

    /// The one skeleton every value has, if there is exactly one.
    pub fn single(&self) -> Option<&Skeleton> {
        match self {
            Shapes::Few(k) if k.len() == 1 => Some(&k[0]),
            _ => None,
        }
    }
}

impl Skeleton {
    /// Whether the skeleton has something besides letters: a digit or a punctuation run (a code, not a word).
    pub fn is_code(&self) -> bool {
        self.classes.bytes().any(|c| c != b'A' && c != b'a')
    }

    /// The anchored pattern matching every value of this skeleton. A run whose length varied gets an open upper
    /// bound, so codes that grow a digit (`INV-999` → `INV-1000`) still match; a fixed length stays exact.
    pub fn pattern(&self) -> String {
        let mut p = String::from("^");
        for (i, c) in self.classes.bytes().enumerate() {
            let (lo, hi) = (self.min[i], self.max[i]);
            let count = if lo == hi {
                if lo == 1 {
                    String::new()
                } else {
                    format!("{{{lo}}}")
                }
            } else {
                format!("{{{lo},}}")
            };
            match c {
                b'A' => p.push_str("[A-Z]"),
                b'a' => p.push_str("[a-z]"),
                b'9' => p.push_str("[0-9]"),
                b' ' => p.push(' '),
                other => {
                    p.push('\\');
                    p.push(other as char);
                }
            }
            p.push_str(&count);
        }
        p.push('$');
        p
    }

    /// Whether every value of `other` matches this skeleton's pattern.
    pub fn admits(&self, other: &Skeleton) -> bool {
        self.classes == other.classes
            && (0..self.min.len()).all(|i| {
                let open = self.min[i] != self.max[i];
                other.min[i] >= self.min[i]
                    && if open {
                        true
                    } else {
                        other.max[i] == self.max[i]
                    }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(values: &[&str]) -> Shapes {
        let mut s = Shapes::default();
        for v in values {
            s.add(v, 1);
        }
        s
    }

    #[test]
    fn codes_get_one_pattern_that_both_regex_dialects_read_alike() {
        let s = shapes(&["PR-000123456", "PR-000999999", "QX-123456789"]);
        let k = s.single().unwrap();
        assert!(k.is_code());
        assert_eq!(k.pattern(), r"^[A-Z]{2}\-[0-9]{9}$");
        let re = regex::Regex::new(&k.pattern()).unwrap();
        assert!(re.is_match("ZZ-000000001"));
        assert!(!re.is_match("PR-00012345"));
        assert!(!re.is_match("pr-000123456"));
        assert!(!re.is_match("PR-000123456 "));
    }

    #[test]
    fn a_run_whose_length_varies_is_open_above() {
        let s = shapes(&["INV-7", "INV-42", "INV-999"]);
        let k = s.single().unwrap();
        assert_eq!(k.pattern(), r"^[A-Z]{3}\-[0-9]{1,}$");
        assert!(
            regex::Regex::new(&k.pattern())
                .unwrap()
                .is_match("INV-1000")
        );
        let later = shapes(&["INV-1000"]);
        assert!(k.admits(later.single().unwrap()));
        let fixed = shapes(&["AB-12"]);
        assert!(
            !fixed
                .single()
                .unwrap()
                .admits(shapes(&["AB-123"]).single().unwrap())
        );
    }

    #[test]
    fn free_text_and_non_ascii_end_the_tracking() {
        let s = shapes(&["Ann Lee", "Bob", "x-1", "9 a", "Q.", "zz zz zz"]);
        assert_eq!(s, Shapes::Many);
        assert_eq!(shapes(&["Zoë-1"]), Shapes::Many);
        assert_eq!(shapes(&[&"a-".repeat(20)]), Shapes::Many);
    }

    #[test]
    fn merging_joins_skeletons_and_ranges() {
        let mut a = shapes(&["AB-1"]);
        a.merge(&shapes(&["CD-123"]));
        let k = a.single().unwrap();
        assert_eq!((k.min[2], k.max[2], k.count), (1, 3, 2));
        a.merge(&Shapes::Many);
        assert_eq!(a, Shapes::Many);
    }
}
