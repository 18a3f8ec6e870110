//! Mergeable per-field states: `merge(state(a), state(b))` describes `a ++ b`. Memory depends on the number of
//! fields, never on the number of rows.

use crate::error::EngineError;
use crate::hll::Hll;
use crate::kind::{Family, Kind, Value, decode};
use crate::kll::Kll;
pub use crate::moments::Moments;
use crate::shape::Shapes;
use crate::textkind::{TextKind, classify};
use base64::Engine;
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

/// HLL precision: 2^15 registers, relative standard error 1.04/181 ≈ 0.57 %.
pub const HLL_LG_K: u8 = crate::hll::LG_K as u8;
/// KLL accuracy parameter: normalised rank error about 0.7 % (single-sided, 99 % confidence).
pub const KLL_K: u16 = 400;
/// Exact value counts are kept while a field has at most this many distinct values.
pub const TOP_LIMIT: usize = 64;

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
#[derive(Clone)]
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
    pub hll: Hll,
    pub kll: Kll,
    /// The shapes of text values not counted exactly (those are shaped when the profile is finalised).
    pub shapes: Shapes,
    /// Adjacent pairs of numbers or instants in reading order (physical order within a partition), and how
    /// many of them did not decrease: a field that grows as rows are inserted has nearly all pairs ascending.
    pub pairs: u64,
    pub ascending: u64,
    last: Option<f64>,
}

impl std::fmt::Debug for FieldState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldState")
            .field("kind", &self.kind)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

fn new_kll() -> Kll {
    Kll::new(KLL_K)
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
            hll: Hll::default(),
            kll: new_kll(),
            shapes: Shapes::default(),
            pairs: 0,
            ascending: 0,
            last: None,
        }
    }

    /// Counts a value exactly while the field has few distinct values; returns false once the sketches are in
    /// use (the exact counts were replayed into them when they overflowed).
    #[inline]
    fn count_bits(&mut self, bits: u64) -> bool {
        let Some(top) = self.top.as_mut() else {
            return false;
        };
        if let Some(c) = top.bits.get_mut(&bits) {
            *c += 1;
            true
        } else if top.len() >= TOP_LIMIT {
            self.spill();
            false
        } else {
            top.bits.insert(bits, 1);
            true
        }
    }

    #[inline]
    fn count_text(&mut self, s: &str) -> bool {
        let Some(top) = self.top.as_mut() else {
            return false;
        };
        if let Some(c) = top.text.get_mut(s) {
            *c += 1;
            true
        } else if top.len() >= TOP_LIMIT {
            self.spill();
            false
        } else {
            top.text.insert(s.into(), 1);
            true
        }
    }

    /// The number an exact-count key stands for (numbers and instants; booleans have none).
    fn key_value(&self, bits: u64) -> Option<f64> {
        match self.kind.family() {
            Family::Number => Some(f64::from_bits(bits)),
            Family::Temporal => Some(bits as i64 as f64),
            _ => None,
        }
    }

    /// Leaves exact counting: feeds the distinct values into the HLL sketch and every counted value into the
    /// quantile sketch, which then take over. The sketches end up as if they had seen every value.
    fn spill(&mut self) {
        let Some(top) = self.top.take() else { return };
        for (bits, count) in &top.bits {
            self.hll.add_u64(*bits);
            if let Some(x) = self.key_value(*bits) {
                for _ in 0..*count {
                    self.kll.update(x);
                }
            }
        }
        for (s, count) in &top.text {
            self.hll.add_bytes(s.as_bytes());
            self.text_kinds[classify(s) as usize] += count;
            self.shapes.add(s, *count);
        }
    }

    /// Whether values are still counted exactly (the sketches are not in use yet).
    pub fn is_exact(&self) -> bool {
        self.top.is_some()
    }

    /// Sorted (value, count) pairs of the exact counts, for numbers and instants.
    fn exact_values(&self) -> Option<Vec<(f64, u64)>> {
        let top = self.top.as_ref()?;
        let mut v: Vec<(f64, u64)> = top
            .bits
            .iter()
            .filter_map(|(b, c)| Some((self.key_value(*b)?, *c)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(v)
    }

    /// Folds a batch of finite values (not yet counted in `count`) whose exact-count keys are `key(i)`: min/max,
    /// sum and signs in one loop, the batch's own moments merged into the running ones, then each value is
    /// counted exactly or goes to the sketches, in order (the whole batch at once once the sketches are in use).
    fn fold_batch(&mut self, xs: &[f64], key: impl Fn(usize) -> u64) {
        if xs.is_empty() {
            return;
        }
        let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        let (mut negatives, mut zeros) = (0u64, 0u64);
        // NaN before the first value of a stream: that value makes no pair
        let (mut prev, mut ascending) = (self.last.unwrap_or(f64::NAN), 0u64);
        for &x in xs {
            lo = lo.min(x);
            hi = hi.max(x);
            sum += x;
            negatives += (x < 0.0) as u64;
            zeros += (x == 0.0) as u64;
            ascending += (x >= prev) as u64;
            prev = x;
        }
        self.pairs += xs.len() as u64 - u64::from(self.last.is_none());
        self.ascending += ascending;
        self.last = Some(prev);
        self.moments.merge(&Moments::of_batch(xs, sum));
        self.min = Some(self.min.map_or(lo, |m| m.min(lo)));
        self.max = Some(self.max.map_or(hi, |m| m.max(hi)));
        if self.kind.family() == Family::Number {
            self.sum += sum;
            self.negatives += negatives;
            self.zeros += zeros;
        }
        if self.top.is_none() {
            self.hll.add_u64s((0..xs.len()).map(&key));
            self.kll.update_batch(xs, lo, hi);
            return;
        }
        for (i, &x) in xs.iter().enumerate() {
            let bits = key(i);
            if !self.count_bits(bits) {
                self.hll.add_u64(bits);
                self.kll.update(x);
            }
        }
    }

    /// Folds finite numbers, counted exactly by their bits (one zero).
    fn fold_numbers(&mut self, xs: &[f64]) {
        self.fold_batch(xs, |i| if xs[i] == 0.0 { 0 } else { xs[i].to_bits() });
    }

    /// Folds instants (microseconds since the Unix epoch), counted exactly by their microseconds (an `f64`
    /// cannot hold every instant exactly).
    fn fold_instants(&mut self, us: &[i64]) {
        let mut xs = [0f64; 256];
        for chunk in us.chunks(xs.len()) {
            for (x, u) in xs.iter_mut().zip(chunk) {
                *x = *u as f64;
            }
            self.fold_batch(&xs[..chunk.len()], |i| chunk[i] as u64);
        }
    }

    /// Adds finite numbers of a number field in one batch; each counts as a row.
    pub fn add_numbers(&mut self, xs: &[f64]) {
        self.count += xs.len() as u64;
        self.fold_numbers(xs);
    }

    /// Adds instants (microseconds since the Unix epoch) of a temporal field in one batch; each counts as a row.
    pub fn add_instants(&mut self, us: &[i64]) {
        self.count += us.len() as u64;
        self.fold_instants(us);
    }

    /// Adds one binary COPY field (`None` is SQL NULL).
    #[inline]
    pub fn add(&mut self, raw: Option<&[u8]>) {
        self.count += 1;
        let Some(raw) = raw else {
            self.nulls += 1;
            return;
        };
        self.add_value(decode(self.kind, raw));
    }

    /// Adds a decoded, non-null value already counted in `count`.
    #[inline]
    pub(crate) fn add_value(&mut self, v: Value<'_>) {
        match v {
            Value::Number(x) => self.fold_numbers(&[x]),
            Value::Temporal(us) => self.fold_instants(&[us]),
            Value::Bool(b) => {
                if b {
                    self.trues += 1;
                }
                if !self.count_bits(b as u64) {
                    self.hll.add_u64(b as u64);
                }
            }
            Value::Text(s) => {
                let chars = if s.is_ascii() {
                    s.len()
                } else {
                    s.chars().count()
                };
                self.add_text(s, chars as u64);
            }
            Value::Bytes(b) => {
                self.spill();
                self.hll.add_bytes(b);
            }
            Value::NonFinite | Value::TemporalInfinite => self.non_finite += 1,
            Value::Invalid => self.invalid += 1,
        }
    }

    /// Adds a text value of `chars` characters, already counted in `count`.
    #[inline]
    pub(crate) fn add_text(&mut self, s: &str, chars: u64) {
        self.len_min = Some(self.len_min.map_or(chars, |m| m.min(chars)));
        self.len_max = Some(self.len_max.map_or(chars, |m| m.max(chars)));
        self.len_sum += chars;
        // while values are counted exactly, each distinct value is classified once, when needed
        if !self.count_text(s) {
            self.text_kinds[classify(s) as usize] += 1;
            self.hll.add_bytes(s.as_bytes());
            self.shapes.add(s, 1);
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
        // pairs within each side; the pair across the boundary is not known
        self.pairs += other.pairs;
        self.ascending += other.ascending;
        self.last = other.last.or(self.last);
        self.shapes.merge(&other.shapes);
        match (self.top.as_mut(), &other.top) {
            (Some(a), Some(b)) => {
                // both exact: add the counts; too many distinct values between them moves to the sketches
                for (k, v) in &b.bits {
                    *a.bits.entry(*k).or_insert(0) += v;
                }
                for (k, v) in &b.text {
                    *a.text.entry(k.clone()).or_insert(0) += v;
                }
                if a.len() > TOP_LIMIT {
                    self.spill();
                }
            }
            (_, Some(b)) => {
                self.spill();
                let mut replayed = FieldState::new(self.kind);
                replayed.top = Some(b.clone());
                replayed.spill();
                self.merge_sketches(&replayed);
                self.shapes.merge(&replayed.shapes);
                for (a, k) in self.text_kinds.iter_mut().zip(replayed.text_kinds) {
                    *a += k;
                }
            }
            (_, None) => {
                self.spill();
                self.merge_sketches(other);
            }
        }
    }

    fn merge_sketches(&mut self, other: &FieldState) {
        self.hll.merge(&other.hll);
        self.kll.merge(&other.kll);
    }

    /// Non-null values (finite or not).
    pub fn values(&self) -> u64 {
        self.count - self.nulls
    }

    /// The value at normalised rank `q`: exact while values are counted exactly, else from the quantile sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if let Some(values) = self.exact_values() {
            let n: u64 = values.iter().map(|v| v.1).sum();
            if n == 0 {
                return None;
            }
            let target = (q * n as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (v, c) in &values {
                seen += c;
                if seen >= target {
                    return Some(*v);
                }
            }
            return values.last().map(|v| v.0);
        }
        self.kll.quantile(q)
    }

    /// Share of values ≤ each split point (exact, or from the sketch), with 1.0 appended.
    pub fn cdf(&self, splits: &[f64]) -> Option<Vec<f64>> {
        if let Some(values) = self.exact_values() {
            let n: u64 = values.iter().map(|v| v.1).sum();
            if n == 0 {
                return None;
            }
            let mut out: Vec<f64> = splits
                .iter()
                .map(|s| {
                    values
                        .iter()
                        .filter(|v| v.0 <= *s)
                        .map(|v| v.1)
                        .sum::<u64>() as f64
                        / n as f64
                })
                .collect();
            out.push(1.0);
            return Some(out);
        }
        self.kll.cdf(splits)
    }

    /// The number of distinct values: exact while counted exactly, else the HLL estimate.
    pub fn distinct_estimate(&self) -> f64 {
        match &self.top {
            Some(t) => t.len() as f64,
            None => self.hll.estimate(),
        }
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
            hll: None,
            hll_registers: (!self.is_exact()).then(|| b64.encode(self.hll.to_bytes())),
            kll: None,
            quantiles: (!self.is_exact()).then(|| b64.encode(self.kll.to_bytes())),
            shapes: Some(self.shapes.clone()),
            pairs: self.pairs,
            ascending: self.ascending,
        };
        serde_json::to_vec(&stored).expect("a state serialises")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<FieldState, EngineError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let s: Stored =
            serde_json::from_slice(bytes).map_err(|e| EngineError::State(e.to_string()))?;
        let err = |e: &dyn std::fmt::Display| EngineError::State(e.to_string());
        if s.hll.is_some() || s.kll.is_some() {
            return Err(EngineError::State(
                "the state's sketches are from an earlier Assay; a full profile replaces them"
                    .into(),
            ));
        }
        let hll = match &s.hll_registers {
            Some(h) => Hll::from_bytes(&b64.decode(h).map_err(|e| err(&e))?)
                .ok_or_else(|| EngineError::State("malformed distinct-count registers".into()))?,
            None => Hll::default(),
        };
        let kll = match &s.quantiles {
            Some(k) => Kll::from_bytes(&b64.decode(k).map_err(|e| err(&e))?)
                .ok_or_else(|| EngineError::State("malformed quantile sketch".into()))?,
            None => new_kll(),
        };
        if s.top.is_none() && s.hll_registers.is_none() {
            return Err(EngineError::State(
                "neither exact counts nor sketches".into(),
            ));
        }
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
            // a state stored before shapes were kept has unknown shapes: none are inferred from it
            shapes: s.shapes.unwrap_or(Shapes::Many),
            pairs: s.pairs,
            ascending: s.ascending,
            last: None,
        })
    }

    /// The shapes of every text value: those shaped one by one plus the exactly counted values.
    pub fn all_shapes(&self) -> Shapes {
        let mut shapes = self.shapes.clone();
        if let Some(top) = &self.top {
            for (s, count) in &top.text {
                shapes.add(s, *count);
            }
        }
        shapes
    }

    /// The share of adjacent pairs (in reading order) that did not decrease, once there are enough to tell.
    pub fn ascending_ratio(&self) -> Option<f64> {
        (self.pairs >= 20).then(|| self.ascending as f64 / self.pairs as f64)
    }

    /// Counts per text kind: those classified one by one plus the exactly counted values.
    pub fn text_kinds(&self) -> [u64; 8] {
        let mut kinds = self.text_kinds;
        if let Some(top) = &self.top {
            for (s, count) in &top.text {
                kinds[classify(s) as usize] += count;
            }
        }
        kinds
    }

    /// The share of each text kind among text values.
    pub fn text_kind_shares(&self) -> Vec<(&'static str, f64)> {
        let kinds = self.text_kinds();
        let total: u64 = kinds.iter().sum();
        if total == 0 {
            return Vec::new();
        }
        TextKind::ALL
            .iter()
            .zip(kinds)
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
    /// The sketch format before 2^14 one-byte registers (never written now; refused when read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hll: Option<String>,
    #[serde(default)]
    hll_registers: Option<String>,
    /// The quantile sketch of an earlier layout (never written now; refused when read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kll: Option<String>,
    #[serde(default)]
    quantiles: Option<String>,
    #[serde(default)]
    shapes: Option<Shapes>,
    #[serde(default)]
    pairs: u64,
    #[serde(default)]
    ascending: u64,
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
            prop_assert_eq!(a.quantile(0.5), whole.quantile(0.5));
            prop_assert_eq!(a.is_exact(), whole.is_exact());
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
            prop_assert_eq!(a.text_kinds(), whole.text_kinds());
            prop_assert_eq!(&a.top, &whole.top);
        }
    }

    #[test]
    fn exact_counts_spill_into_sketches_without_losing_values() {
        // 100 distinct values, each twice: exact until the 65th distinct value, sketches afterwards
        let vals: Vec<Option<Vec<u8>>> = (0..200).map(|i| Some(int8(i % 100))).collect();
        let s = state_of(Kind::Int8, &vals);
        assert!(!s.is_exact());
        assert!(
            (s.distinct_estimate() - 100.0).abs() < 1.0,
            "{}",
            s.distinct_estimate()
        );
        assert_eq!(s.quantile(0.5), Some(49.0));
        assert_eq!(
            s.kll.n(),
            200,
            "the replayed counts reach the quantile sketch"
        );
        // two exact halves whose union overflows
        let a_vals: Vec<Option<Vec<u8>>> = (0..60).map(|i| Some(int8(i))).collect();
        let b_vals: Vec<Option<Vec<u8>>> = (40..100).map(|i| Some(int8(i))).collect();
        let mut a = state_of(Kind::Int8, &a_vals);
        let b = state_of(Kind::Int8, &b_vals);
        assert!(a.is_exact() && b.is_exact());
        a.merge(&b);
        assert!(!a.is_exact());
        assert!((a.distinct_estimate() - 100.0).abs() < 1.0);
        assert_eq!(a.kll.n(), 120);
        // exact one side, sketched other side
        let mut c = state_of(Kind::Int8, &a_vals);
        c.merge(&s);
        assert!((c.distinct_estimate() - 100.0).abs() < 1.0);
        assert_eq!(c.kll.n(), 260);
        // exact quantiles for few distinct values
        let few: Vec<Option<Vec<u8>>> = [1, 1, 1, 2, 9].iter().map(|v| Some(int8(*v))).collect();
        let f = state_of(Kind::Int8, &few);
        assert!(f.is_exact());
        assert_eq!(
            (f.quantile(0.5), f.quantile(1.0), f.quantile(0.0)),
            (Some(1.0), Some(9.0), Some(1.0))
        );
        assert_eq!(f.distinct_estimate(), 3.0);
        let back = FieldState::from_bytes(&f.to_bytes()).unwrap();
        assert!(back.is_exact());
        assert_eq!(back.quantile(0.9), Some(9.0));
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
        // a state whose distinct-count sketch is in the earlier format is refused (the profile re-bases)
        let mut old: serde_json::Value = serde_json::from_slice(&s.to_bytes()).unwrap();
        old["hll"] = serde_json::json!("AgEHDAMIAQA=");
        old.as_object_mut().unwrap().remove("hll_registers");
        let err = FieldState::from_bytes(&serde_json::to_vec(&old).unwrap()).unwrap_err();
        assert!(err.to_string().contains("earlier Assay"), "{err}");
        // so is one whose quantile sketch is in the earlier layout
        let mut old: serde_json::Value = serde_json::from_slice(&s.to_bytes()).unwrap();
        old["kll"] = old["quantiles"].take();
        let err = FieldState::from_bytes(&serde_json::to_vec(&old).unwrap()).unwrap_err();
        assert!(err.to_string().contains("earlier Assay"), "{err}");
    }

    #[test]
    fn order_and_shapes_are_counted_merged_and_stored() {
        // 0..100 then 50..100: one step back between the halves, inside one stream
        let vals: Vec<Option<Vec<u8>>> = (0..100).chain(50..100).map(|i| Some(int8(i))).collect();
        let s = state_of(Kind::Int8, &vals);
        assert_eq!((s.pairs, s.ascending), (149, 148));
        // merged from two partitions: the pair across the boundary is not counted
        let mut a = state_of(Kind::Int8, &vals[..100]);
        a.merge(&state_of(Kind::Int8, &vals[100..]));
        assert_eq!((a.pairs, a.ascending), (148, 148));
        let back = FieldState::from_bytes(&s.to_bytes()).unwrap();
        assert_eq!((back.pairs, back.ascending), (149, 148));
        // shapes of spilled text and of exactly counted text alike
        let codes: Vec<Option<Vec<u8>>> = (0..300)
            .map(|i| Some(format!("AB-{i:04}").into_bytes()))
            .collect();
        let t = state_of(Kind::Text, &codes);
        assert!(t.top.is_none());
        let few = state_of(Kind::Text, &codes[..10]);
        assert!(few.top.is_some());
        for st in [&t, &few] {
            assert_eq!(
                st.all_shapes().single().unwrap().pattern(),
                r"^[A-Z]{2}\-[0-9]{4}$"
            );
        }
        let back = FieldState::from_bytes(&t.to_bytes()).unwrap();
        assert_eq!(back.all_shapes(), t.all_shapes());
        // a state stored before shapes were kept knows none
        let mut old: serde_json::Value = serde_json::from_slice(&t.to_bytes()).unwrap();
        old.as_object_mut().unwrap().remove("shapes");
        let back = FieldState::from_bytes(&serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(back.all_shapes(), crate::shape::Shapes::Many);
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
