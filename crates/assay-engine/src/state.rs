//! Mergeable per-field states: `merge(state(a), state(b))` describes `a ++ b`. Memory depends on the number of
//! fields, never on the number of rows.

use crate::error::EngineError;
use crate::kind::{decode, Family, Kind, Value};
use crate::textkind::{classify, TextKind};
use base64::Engine;
use datasketches::common::SearchCriteria;
use datasketches::hll::{HllSketch, HllType, HllUnion};
use datasketches::kll::{KllFloat, KllSketch};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

/// HLL precision: 2^14 registers, relative standard error 1.04/128 ≈ 0.8 %.
pub const HLL_LG_K: u8 = 14;
/// KLL accuracy parameter: normalised rank error about 0.7 % (single-sided, 99 % confidence).
pub const KLL_K: u16 = 400;
/// Exact value counts are kept while a field has at most this many distinct values.
pub const TOP_LIMIT: usize = 64;

/// Streaming moments (count, mean and central moments up to the 4th), mergeable (Chan, Terriberry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    pub m2: f64,
    pub m3: f64,
    pub m4: f64,
}

impl Moments {
    #[inline]
    pub fn add(&mut self, x: f64) {
        let n1 = self.n;
        self.n += 1.0;
        let n = self.n;
        let delta = x - self.mean;
        let dn = delta / n;
        let dn2 = dn * dn;
        let term1 = delta * dn * n1;
        self.mean += dn;
        self.m4 += term1 * dn2 * (n * n - 3.0 * n + 3.0) + 6.0 * dn2 * self.m2 - 4.0 * dn * self.m3;
        self.m3 += term1 * dn * (n - 2.0) - 3.0 * dn * self.m2;
        self.m2 += term1;
    }

    pub fn merge(&mut self, o: &Moments) {
        if o.n == 0.0 {
            return;
        }
        if self.n == 0.0 {
            *self = *o;
            return;
        }
        let (na, nb) = (self.n, o.n);
        let n = na + nb;
        let d = o.mean - self.mean;
        let d2 = d * d;
        let m2 = self.m2 + o.m2 + d2 * na * nb / n;
        let m3 = self.m3
            + o.m3
            + d2 * d * na * nb * (na - nb) / (n * n)
            + 3.0 * d * (na * o.m2 - nb * self.m2) / n;
        let m4 = self.m4
            + o.m4
            + d2 * d2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6.0 * d2 * (na * na * o.m2 + nb * nb * self.m2) / (n * n)
            + 4.0 * d * (na * o.m3 - nb * self.m3) / n;
        self.mean += d * nb / n;
        self.n = n;
        self.m2 = m2;
        self.m3 = m3;
        self.m4 = m4;
    }

    pub fn variance(&self) -> Option<f64> {
        (self.n > 1.0).then(|| self.m2 / (self.n - 1.0))
    }
    pub fn skewness(&self) -> Option<f64> {
        (self.n > 2.0 && self.m2 > 0.0).then(|| self.n.sqrt() * self.m3 / self.m2.powf(1.5))
    }
    /// Excess kurtosis.
    pub fn kurtosis(&self) -> Option<f64> {
        (self.n > 3.0 && self.m2 > 0.0).then(|| self.n * self.m4 / (self.m2 * self.m2) - 3.0)
    }
}

/// Exact counts of the values of a field while it has few distinct ones: numbers, instants and booleans by
/// their bits, text by value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Top {
    pub bits: HashMap<u64, u64>,
    pub text: HashMap<Box<str>, u64>,
}

impl Top {
    pub fn len(&self) -> usize {
        self.bits.len() + self.text.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything Assay keeps about one field while reading it.
pub struct FieldState {
    pub kind: Kind,
    /// Rows seen (null or not).
    pub count: u64,
    pub nulls: u64,
    /// Values that could not be decoded, NaN/Infinity numbers, infinite dates.
    pub non_finite: u64,
    pub invalid: u64,
    pub moments: Moments,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub sum: f64,
    pub negatives: u64,
    pub zeros: u64,
    pub trues: u64,
    pub len_min: Option<u64>,
    pub len_max: Option<u64>,
    pub len_sum: u64,
    pub text_kinds: [u64; 8],
    pub top: Option<Top>,
    pub hll: HllSketch,
    pub kll: KllSketch<KllFloat<f64>>,
}

impl std::fmt::Debug for FieldState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldState")
            .field("kind", &self.kind)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

fn new_hll() -> HllSketch {
    HllSketch::new(HLL_LG_K, HllType::Hll8).expect("valid HLL parameters")
}

fn new_kll() -> KllSketch<KllFloat<f64>> {
    KllSketch::new(KLL_K).expect("valid KLL parameter")
}

impl FieldState {
    pub fn new(kind: Kind) -> Self {
        FieldState {
            kind,
            count: 0,
            nulls: 0,
            non_finite: 0,
            invalid: 0,
            moments: Moments::default(),
            min: None,
            max: None,
            sum: 0.0,
            negatives: 0,
            zeros: 0,
            trues: 0,
            len_min: None,
            len_max: None,
            len_sum: 0,
            text_kinds: [0; 8],
            top: Some(Top::default()),
            hll: new_hll(),
            kll: new_kll(),
        }
    }

    #[inline]
    fn count_bits(&mut self, bits: u64) {
        let Some(top) = self.top.as_mut() else { return };
        if let Some(c) = top.bits.get_mut(&bits) {
            *c += 1;
        } else if top.len() >= TOP_LIMIT {
            self.top = None;
        } else {
            top.bits.insert(bits, 1);
        }
    }

    #[inline]
    fn count_text(&mut self, s: &str) {
        let Some(top) = self.top.as_mut() else { return };
        if let Some(c) = top.text.get_mut(s) {
            *c += 1;
        } else if top.len() >= TOP_LIMIT {
            self.top = None;
        } else {
            top.text.insert(s.into(), 1);
        }
    }

    #[inline]
    fn number(&mut self, x: f64) {
        self.moments.add(x);
        self.min = Some(self.min.map_or(x, |m| m.min(x)));
        self.max = Some(self.max.map_or(x, |m| m.max(x)));
        self.sum += x;
        if x < 0.0 {
            self.negatives += 1;
        } else if x == 0.0 {
            self.zeros += 1;
        }
        let bits = if x == 0.0 { 0 } else { x.to_bits() };
        self.hll.update(bits);
        if let Ok(v) = KllFloat::<f64>::new(x) {
            self.kll.update(v);
        }
        self.count_bits(bits);
    }

    /// Adds one binary COPY field (`None` is SQL NULL).
    #[inline]
    pub fn add(&mut self, raw: Option<&[u8]>) {
        self.count += 1;
        let Some(raw) = raw else {
            self.nulls += 1;
            return;
        };
        match decode(self.kind, raw) {
            Value::Number(x) => self.number(x),
            Value::Temporal(us) => {
                let x = us as f64;
                self.moments.add(x);
                self.min = Some(self.min.map_or(x, |m| m.min(x)));
                self.max = Some(self.max.map_or(x, |m| m.max(x)));
                self.hll.update(us);
                if let Ok(v) = KllFloat::<f64>::new(x) {
                    self.kll.update(v);
                }
                self.count_bits(us as u64);
            }
            Value::Bool(b) => {
                if b {
                    self.trues += 1;
                }
                self.hll.update(b);
                self.count_bits(b as u64);
            }
            Value::Text(s) => {
                let len = if s.is_ascii() {
                    s.len()
                } else {
                    s.chars().count()
                } as u64;
                self.len_min = Some(self.len_min.map_or(len, |m| m.min(len)));
                self.len_max = Some(self.len_max.map_or(len, |m| m.max(len)));
                self.len_sum += len;
                self.text_kinds[classify(s) as usize] += 1;
                self.hll.update(s);
                self.count_text(s);
            }
            Value::Bytes(b) => {
                self.hll.update(b);
                self.top = None;
            }
            Value::NonFinite | Value::TemporalInfinite => self.non_finite += 1,
            Value::Invalid => self.invalid += 1,
        }
    }

    /// Folds `other` (the same field over other rows) into `self`.
    pub fn merge(&mut self, other: &FieldState) {
        self.count += other.count;
        self.nulls += other.nulls;
        self.non_finite += other.non_finite;
        self.invalid += other.invalid;
        self.moments.merge(&other.moments);
        self.min = opt(self.min, other.min, f64::min);
        self.max = opt(self.max, other.max, f64::max);
        self.sum += other.sum;
        self.negatives += other.negatives;
        self.zeros += other.zeros;
        self.trues += other.trues;
        self.len_min = opt(self.len_min, other.len_min, u64::min);
        self.len_max = opt(self.len_max, other.len_max, u64::max);
        self.len_sum += other.len_sum;
        for (a, b) in self.text_kinds.iter_mut().zip(other.text_kinds) {
            *a += b;
        }
        self.top = match (self.top.take(), &other.top) {
            (Some(mut a), Some(b)) => {
                for (k, v) in &b.bits {
                    *a.bits.entry(*k).or_insert(0) += v;
                }
                for (k, v) in &b.text {
                    *a.text.entry(k.clone()).or_insert(0) += v;
                }
                (a.len() <= TOP_LIMIT).then_some(a)
            }
            _ => None,
        };
        let mut u = HllUnion::new(HLL_LG_K).expect("valid HLL parameters");
        u.update(&self.hll);
        u.update(&other.hll);
        self.hll = u.to_sketch(HllType::Hll8);
        let _ = self.kll.merge(&other.kll);
    }

    /// Non-null values (finite or not).
    pub fn values(&self) -> u64 {
        self.count - self.nulls
    }

    /// The value at normalised rank `q`, from the quantile sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.kll
            .quantile(q, SearchCriteria::Inclusive)
            .ok()
            .flatten()
            .map(|v| *v)
    }

    /// Approximate share of values ≤ each split point.
    pub fn cdf(&self, splits: &[f64]) -> Option<Vec<f64>> {
        let pts: Vec<KllFloat<f64>> = splits
            .iter()
            .filter_map(|s| KllFloat::<f64>::new(*s).ok())
            .collect();
        self.kll.cdf(&pts, SearchCriteria::Inclusive).ok().flatten()
    }

    pub fn distinct_estimate(&self) -> f64 {
        self.hll.estimate()
    }

    pub fn family(&self) -> Family {
        self.kind.family()
    }

    /// Serialises the state for storage (to merge with later increments).
    pub fn to_bytes(&self) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let stored = Stored {
            kind: self.kind,
            count: self.count,
            nulls: self.nulls,
            non_finite: self.non_finite,
            invalid: self.invalid,
            moments: self.moments,
            min: self.min,
            max: self.max,
            sum: self.sum,
            negatives: self.negatives,
            zeros: self.zeros,
            trues: self.trues,
            len_min: self.len_min,
            len_max: self.len_max,
            len_sum: self.len_sum,
            text_kinds: self.text_kinds,
            top: self.top.clone(),
            hll: b64.encode(self.hll.serialize()),
            kll: b64.encode(self.kll.serialize()),
        };
        serde_json::to_vec(&stored).expect("a state serialises")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<FieldState, EngineError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let s: Stored =
            serde_json::from_slice(bytes).map_err(|e| EngineError::State(e.to_string()))?;
        let hll = HllSketch::deserialize(
            &b64.decode(&s.hll)
                .map_err(|e| EngineError::State(e.to_string()))?,
        )
        .map_err(|e| EngineError::State(e.to_string()))?;
        let kll = KllSketch::deserialize(
            &b64.decode(&s.kll)
                .map_err(|e| EngineError::State(e.to_string()))?,
        )
        .map_err(|e| EngineError::State(e.to_string()))?;
        Ok(FieldState {
            kind: s.kind,
            count: s.count,
            nulls: s.nulls,
            non_finite: s.non_finite,
            invalid: s.invalid,
            moments: s.moments,
            min: s.min,
            max: s.max,
            sum: s.sum,
            negatives: s.negatives,
            zeros: s.zeros,
            trues: s.trues,
            len_min: s.len_min,
            len_max: s.len_max,
            len_sum: s.len_sum,
            text_kinds: s.text_kinds,
            top: s.top,
            hll,
            kll,
        })
    }

    /// The share of each text kind among text values.
    pub fn text_kind_shares(&self) -> Vec<(&'static str, f64)> {
        let total: u64 = self.text_kinds.iter().sum();
        if total == 0 {
            return Vec::new();
        }
        TextKind::ALL
            .iter()
            .zip(self.text_kinds)
            .filter(|(_, c)| *c > 0)
            .map(|(k, c)| (k.name(), c as f64 / total as f64))
            .collect()
    }
}

fn opt<T: Copy>(a: Option<T>, b: Option<T>, f: impl Fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    kind: Kind,
    count: u64,
    nulls: u64,
    non_finite: u64,
    invalid: u64,
    moments: Moments,
    min: Option<f64>,
    max: Option<f64>,
    sum: f64,
    negatives: u64,
    zeros: u64,
    trues: u64,
    len_min: Option<u64>,
    len_max: Option<u64>,
    len_sum: u64,
    text_kinds: [u64; 8],
    top: Option<Top>,
    hll: String,
    kll: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn int8(v: i64) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    fn state_of(kind: Kind, vals: &[Option<Vec<u8>>]) -> FieldState {
        let mut s = FieldState::new(kind);
        for v in vals {
            s.add(v.as_deref());
        }
        s
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    proptest! {
        #[test]
        fn merge_equals_one_pass(xs in proptest::collection::vec(proptest::option::of(-1_000_000i64..1_000_000), 0..400),
                                 split in 0usize..400) {
            let vals: Vec<Option<Vec<u8>>> = xs.iter().map(|x| x.map(int8)).collect();
            let split = split.min(vals.len());
            let whole = state_of(Kind::Int8, &vals);
            let mut a = state_of(Kind::Int8, &vals[..split]);
            let b = state_of(Kind::Int8, &vals[split..]);
            a.merge(&b);
            prop_assert_eq!(a.count, whole.count);
            prop_assert_eq!(a.nulls, whole.nulls);
            prop_assert_eq!(a.min, whole.min);
            prop_assert_eq!(a.max, whole.max);
            prop_assert_eq!(a.negatives, whole.negatives);
            prop_assert_eq!(a.zeros, whole.zeros);
            prop_assert_eq!(&a.top, &whole.top);
            prop_assert!(close(a.sum, whole.sum));
            prop_assert!(close(a.moments.mean, whole.moments.mean));
            prop_assert!(close(a.moments.m2, whole.moments.m2));
            prop_assert!(close(a.moments.m3, whole.moments.m3) || a.moments.m3.abs() < 1e-3 * whole.moments.m2.powf(1.5).max(1.0));
            // small sets: the sketches are exact
            prop_assert!((a.distinct_estimate() - whole.distinct_estimate()).abs() < 1e-6 * whole.distinct_estimate().max(1.0) + 0.5);
            prop_assert_eq!(a.kll.n(), whole.kll.n());
        }

        #[test]
        fn text_merge_equals_one_pass(xs in proptest::collection::vec(proptest::option::of("[a-c@.]{0,6}"), 0..300), split in 0usize..300) {
            let vals: Vec<Option<Vec<u8>>> = xs.iter().map(|x| x.as_ref().map(|s| s.as_bytes().to_vec())).collect();
            let split = split.min(vals.len());
            let whole = state_of(Kind::Text, &vals);
            let mut a = state_of(Kind::Text, &vals[..split]);
            a.merge(&state_of(Kind::Text, &vals[split..]));
            prop_assert_eq!(a.len_min, whole.len_min);
            prop_assert_eq!(a.len_max, whole.len_max);
            prop_assert_eq!(a.len_sum, whole.len_sum);
            prop_assert_eq!(a.text_kinds, whole.text_kinds);
            prop_assert_eq!(&a.top, &whole.top);
        }
    }

    #[test]
    fn moments_match_the_textbook() {
        let mut m = Moments::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            m.add(x);
        }
        assert!((m.mean - 5.0).abs() < 1e-12);
        assert!((m.m2 / m.n - 4.0).abs() < 1e-12, "population variance 4");
        assert!(m.skewness().unwrap() > 0.0);
    }

    #[test]
    fn state_survives_storage() {
        let vals: Vec<Option<Vec<u8>>> = (0..5000)
            .map(|i| {
                if i % 10 == 0 {
                    None
                } else {
                    Some(int8(i % 700))
                }
            })
            .collect();
        let s = state_of(Kind::Int8, &vals);
        let back = FieldState::from_bytes(&s.to_bytes()).unwrap();
        assert_eq!(back.count, s.count);
        assert_eq!(back.distinct_estimate(), s.distinct_estimate());
        assert_eq!(back.quantile(0.5), s.quantile(0.5));
        assert!(
            s.top.is_none(),
            "700 distinct values exceed the exact-count limit"
        );
        assert!(FieldState::from_bytes(b"{}").is_err());
    }

    #[test]
    fn infinities_and_invalid_values_are_counted_apart() {
        let mut s = FieldState::new(Kind::Float8);
        s.add(Some(&f64::NAN.to_be_bytes()));
        s.add(Some(&f64::INFINITY.to_be_bytes()));
        s.add(Some(&1.5f64.to_be_bytes()));
        s.add(Some(&[1, 2, 3]));
        assert_eq!((s.non_finite, s.invalid, s.moments.n as u64), (2, 1, 1));
        assert_eq!(s.max, Some(1.5));
    }
}
