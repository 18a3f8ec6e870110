//! A KLL quantile sketch of `f64` values (Karnin, Lang, Liberty, "Optimal Quantile Approximation in Streams",
//! 2016) with the paper's sampler below the compactors, mergeable and serialisable.
//!
//! Level `h` holds items of weight 2^h. When the sketch holds more items than its levels' capacities allow
//! (capacity `max(8, k·(2/3)^(H-1-h))` with `H` levels, the lazy schedule of the reference implementation),
//! the lowest level over its capacity is sorted and every other item (random offset) moves up one level.
//!
//! Once `n` passes 2^16 · 2^s, new values no longer enter level `s` one by one: a sampler keeps one value chosen
//! uniformly from each block of 2^s consecutive values and adds it to level `s` with weight 2^s, and the block
//! doubles each time `n` doubles. The sampler replaces the bottom compactors, whose capacity has reached the
//! minimum width by then, so 2^16 values enter the levels per doubling of `n` instead of all of them. Its own
//! error is zero on average with a relative standard deviation of at most 1/(2^9·√(3/4)) ≈ 0.23 % of `n` (2^16
//! blocks per doubling, each off by at most its size), beside the compactors' error.

/// Items a level may hold at least.
const MIN_WIDTH: usize = 8;
/// The sampler starts when `n` reaches 2^(s + SAMPLER_LG) and doubles its block each time `n` doubles.
const SAMPLER_LG: u32 = 16;
/// The layout version of [`Kll::to_bytes`].
const FORMAT: u8 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct Kll {
    k: u16,
    n: u64,
    min: f64,
    max: f64,
    /// Items per level as order-preserving keys ([`key`]), unsorted; level `h` weighs 2^h each.
    levels: Vec<Vec<u64>>,
    retained: usize,
    /// The sum of the levels' capacities (it changes only with the number of levels).
    cap_total: usize,
    /// The sampler's level: values enter level `s`, one per block of 2^s.
    s: u8,
    /// Values of the current block seen so far, and the position in it that is kept.
    seen: u64,
    pick: u64,
    candidate: f64,
    rng: u64,
}

/// An order-preserving map of doubles to integers (IEEE 754 total order), so levels sort as plain integers.
#[inline(always)]
fn key(x: f64) -> u64 {
    let b = x.to_bits();
    b ^ ((((b as i64) >> 63) as u64) | (1 << 63))
}

fn value(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k ^ (1 << 63) } else { !k })
}

/// A seed per sketch, so that sketches merged from parallel partitions draw independent offsets.
fn seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    crate::hll::mix64(NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed))
}

impl Kll {
    /// A sketch with accuracy parameter `k` (400: about 0.5 % normalised rank error at 99 % confidence).
    pub fn new(k: u16) -> Kll {
        Kll {
            k: k.max(MIN_WIDTH as u16),
            n: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            levels: vec![Vec::new()],
            retained: 0,
            cap_total: (k.max(MIN_WIDTH as u16)) as usize,
            s: 0,
            seen: 0,
            pick: 0,
            candidate: 0.0,
            rng: seed(),
        }
    }

    /// Values seen.
    pub fn n(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    #[inline(always)]
    fn next_random(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        crate::hll::mix64(self.rng)
    }

    /// Adds one value; NaN is ignored.
    #[inline]
    pub fn update(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.n += 1;
        if x < self.min {
            self.min = x;
        }
        if x > self.max {
            self.max = x;
        }
        if self.s == 0 {
            self.insert(0, x);
        } else {
            if self.seen == self.pick {
                self.candidate = x;
            }
            self.seen += 1;
            if self.seen == 1 << self.s {
                let kept = self.candidate;
                self.start_block();
                self.insert(self.s as usize, kept);
            }
        }
        if self.n >> (self.s as u32 + SAMPLER_LG) != 0 {
            self.raise_sampler();
        }
    }

    /// Adds a batch of values none of which is NaN, whose least and greatest are `lo` and `hi`: while the
    /// sampler is in use only the values it keeps are touched, one per block.
    pub fn update_batch(&mut self, xs: &[f64], lo: f64, hi: f64) {
        debug_assert!(xs.iter().all(|x| !x.is_nan()));
        if xs.is_empty() {
            return;
        }
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        let mut rest = xs;
        while !rest.is_empty() {
            if self.s == 0 {
                // the levels take values one by one until the sampler starts
                let until = (1u64 << SAMPLER_LG).saturating_sub(self.n) as usize;
                let (now, later) = rest.split_at(until.min(rest.len()));
                for &x in now {
                    self.n += 1;
                    self.insert(0, x);
                }
                rest = later;
            } else {
                // values left in this block, and values until the sampler's level next rises
                let block = 1u64 << self.s;
                let in_block = (block - self.seen) as usize;
                let until_raise = ((1u64 << (self.s as u32 + SAMPLER_LG)) - self.n) as usize;
                let take = in_block.min(until_raise).min(rest.len());
                let (now, later) = rest.split_at(take);
                if self.pick >= self.seen && self.pick < self.seen + take as u64 {
                    self.candidate = now[(self.pick - self.seen) as usize];
                }
                self.seen += take as u64;
                self.n += take as u64;
                rest = later;
                if self.seen == block {
                    let kept = self.candidate;
                    self.start_block();
                    self.insert(self.s as usize, kept);
                }
            }
            if self.n >> (self.s as u32 + SAMPLER_LG) != 0 {
                self.raise_sampler();
            }
        }
    }

    fn start_block(&mut self) {
        self.seen = 0;
        self.pick = self.next_random() & ((1u64 << self.s) - 1);
    }

    /// Ends the current block early: its candidate (present with probability seen/2^s) goes to level `s` with
    /// weight 2^s, which keeps the expected weight equal to the values seen.
    fn flush_block(&mut self) {
        if self.s > 0 && self.seen > self.pick {
            let kept = self.candidate;
            self.insert(self.s as usize, kept);
        }
        self.seen = 0;
    }

    fn raise_sampler(&mut self) {
        self.flush_block();
        self.s += 1;
        self.start_block();
    }

    #[inline]
    fn insert(&mut self, level: usize, x: f64) {
        if self.levels.len() <= level {
            self.grow(level + 1);
        }
        self.levels[level].push(key(x));
        self.retained += 1;
        if self.retained > self.cap_total {
            self.compress();
        }
    }

    /// Adds empty levels up to `len`.
    fn grow(&mut self, len: usize) {
        while self.levels.len() < len {
            self.levels.push(Vec::new());
        }
        self.cap_total = self.capacity_total();
    }

    fn capacity(&self, h: usize) -> usize {
        let depth = (self.levels.len() - 1 - h) as i32;
        ((self.k as f64 * (2.0f64 / 3.0).powi(depth)) as usize).max(MIN_WIDTH)
    }

    fn capacity_total(&self) -> usize {
        (0..self.levels.len()).map(|h| self.capacity(h)).sum()
    }

    /// Compacts the lowest level over its capacity into the next one.
    fn compress(&mut self) {
        let Some(h) = (0..self.levels.len()).find(|&h| self.levels[h].len() >= self.capacity(h))
        else {
            return;
        };
        if h + 1 == self.levels.len() {
            self.grow(h + 2);
        }
        let offset = (self.next_random() & 1) as usize;
        let mut items = std::mem::take(&mut self.levels[h]);
        items.sort_unstable();
        // an odd item stays behind, so the pairs are compacted exactly
        let stay = if items.len() % 2 == 1 {
            items.pop()
        } else {
            None
        };
        let before = items.len();
        let kept = items.iter().skip(offset).step_by(2).copied();
        self.levels[h + 1].extend(kept);
        items.clear();
        if let Some(x) = stay {
            items.push(x);
        }
        self.levels[h] = items;
        self.retained -= before / 2;
    }

    /// Folds `other` (a sketch of other values) into `self`.
    pub fn merge(&mut self, other: &Kll) {
        if other.n == 0 {
            return;
        }
        let mut other = other.clone();
        // one sampler level for both: the lower one ends its block and moves up
        while self.s < other.s {
            self.raise_sampler();
        }
        other.flush_block();
        self.n += other.n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if self.levels.len() < other.levels.len() {
            self.grow(other.levels.len());
        }
        for (h, items) in other.levels.iter().enumerate() {
            self.levels[h].extend_from_slice(items);
            self.retained += items.len();
        }
        while self.retained > self.cap_total {
            let before = self.retained;
            self.compress();
            if self.retained == before {
                break;
            }
        }
        while self.n >> (self.s as u32 + SAMPLER_LG) != 0 {
            self.raise_sampler();
        }
    }

    /// Retained (value, weight) pairs sorted by value, the open block's candidate included.
    fn weighted(&self) -> (Vec<(f64, u64)>, u64) {
        let mut v: Vec<(f64, u64)> = Vec::with_capacity(self.retained + 1);
        for (h, items) in self.levels.iter().enumerate() {
            v.extend(items.iter().map(|k| (value(*k), 1u64 << h)));
        }
        if self.s > 0 && self.seen > self.pick {
            v.push((self.candidate, 1u64 << self.s));
        }
        v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let total = v.iter().map(|p| p.1).sum();
        (v, total)
    }

    /// The smallest retained value whose inclusive normalised rank is at least `q`; the minimum for `q ≤ 0`
    /// and the maximum for `q ≥ 1`. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.n == 0 || q.is_nan() {
            return None;
        }
        if q <= 0.0 {
            return Some(self.min);
        }
        if q >= 1.0 {
            return Some(self.max);
        }
        let (v, total) = self.weighted();
        let target = q * total as f64;
        let mut seen = 0u64;
        for (x, w) in &v {
            seen += w;
            if seen as f64 >= target {
                return Some(*x);
            }
        }
        Some(self.max)
    }

    /// The share of values ≤ each split point, with 1.0 appended. `None` when empty.
    pub fn cdf(&self, splits: &[f64]) -> Option<Vec<f64>> {
        if self.n == 0 {
            return None;
        }
        let (v, total) = self.weighted();
        let mut out = Vec::with_capacity(splits.len() + 1);
        for s in splits {
            let below: u64 = v.iter().take_while(|p| p.0 <= *s).map(|p| p.1).sum();
            out.push(below as f64 / total as f64);
        }
        out.push(1.0);
        Some(out)
    }

    /// A little-endian layout: format, k, s, n, min, max, seen, pick, candidate, rng, then each level's length
    /// and items.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + 8 * self.retained + 4 * self.levels.len());
        b.push(FORMAT);
        b.extend(self.k.to_le_bytes());
        b.push(self.s);
        b.extend(self.n.to_le_bytes());
        b.extend(self.min.to_le_bytes());
        b.extend(self.max.to_le_bytes());
        b.extend(self.seen.to_le_bytes());
        b.extend(self.pick.to_le_bytes());
        b.extend(self.candidate.to_le_bytes());
        b.extend(self.rng.to_le_bytes());
        b.extend((self.levels.len() as u32).to_le_bytes());
        for items in &self.levels {
            b.extend((items.len() as u32).to_le_bytes());
            for k in items {
                b.extend(value(*k).to_le_bytes());
            }
        }
        b
    }

    /// Reads [`Kll::to_bytes`]; `None` for anything else.
    pub fn from_bytes(b: &[u8]) -> Option<Kll> {
        let mut r = Reader(b);
        if r.take(1)?[0] != FORMAT {
            return None;
        }
        let k = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
        let s = r.take(1)?[0];
        let n = r.u64()?;
        let min = f64::from_bits(r.u64()?);
        let max = f64::from_bits(r.u64()?);
        let seen = r.u64()?;
        let pick = r.u64()?;
        let candidate = f64::from_bits(r.u64()?);
        let rng = r.u64()?;
        let count = r.u32()? as usize;
        if s >= 63
            || count > 64
            || k < MIN_WIDTH as u16
            || (s > 0 && (seen >= 1 << s || pick >= 1 << s))
        {
            return None;
        }
        let mut levels = Vec::with_capacity(count);
        let mut retained = 0;
        for _ in 0..count {
            let len = r.u32()? as usize;
            let raw = r.take(len.checked_mul(8)?)?;
            let items: Vec<u64> = raw
                .chunks_exact(8)
                .map(|c| key(f64::from_le_bytes(c.try_into().expect("8 bytes"))))
                .collect();
            retained += items.len();
            levels.push(items);
        }
        if !r.0.is_empty() || levels.is_empty() {
            return None;
        }
        let mut kll = Kll {
            k,
            n,
            min,
            max,
            levels,
            retained,
            cap_total: 0,
            s,
            seen,
            pick,
            candidate,
            rng,
        };
        kll.cap_total = kll.capacity_total();
        Some(kll)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest distance between the requested rank and the rank range the answer covers (ties included).
    fn rank_error(sorted: &[f64], k: &Kll) -> f64 {
        let n = sorted.len() as f64;
        let mut worst: f64 = 0.0;
        for i in 1..100 {
            let q = i as f64 / 100.0;
            let v = k.quantile(q).unwrap();
            let lo = sorted.partition_point(|x| *x < v) as f64 / n;
            let hi = sorted.partition_point(|x| *x <= v) as f64 / n;
            let err = if q < lo {
                lo - q
            } else if q > hi {
                q - hi
            } else {
                0.0
            };
            worst = worst.max(err);
        }
        worst
    }

    fn values(n: u64, salt: u64) -> Vec<f64> {
        (0..n)
            .map(|i| (crate::hll::mix64(i ^ salt) % 1_000_000_007) as f64 / 7.0)
            .collect()
    }

    #[test]
    fn small_inputs_are_exact() {
        let mut k = Kll::new(400);
        assert_eq!(k.quantile(0.5), None);
        for x in [5.0, 1.0, 3.0, 2.0, 4.0] {
            k.update(x);
        }
        assert_eq!(k.quantile(0.5), Some(3.0));
        assert_eq!(k.quantile(0.0), Some(1.0));
        assert_eq!(k.quantile(1.0), Some(5.0));
        assert_eq!(k.quantile(0.2), Some(1.0));
        assert_eq!(k.quantile(0.21), Some(2.0));
        assert_eq!(k.cdf(&[2.0, 10.0]), Some(vec![0.4, 1.0, 1.0]));
    }

    #[test]
    fn rank_error_stays_within_one_percent_with_and_without_the_sampler() {
        for (n, salt) in [
            (1_000u64, 17),
            (50_000, 17),
            (600_000, 17),
            (3_000_000, 17),
            (3_000_000, 5),
            (5_000_000, 8),
        ] {
            let xs = values(n, salt);
            let mut k = Kll::new(400);
            for x in &xs {
                k.update(*x);
            }
            let mut sorted = xs.clone();
            sorted.sort_by(f64::total_cmp);
            let err = rank_error(&sorted, &k);
            eprintln!("n = {n}: rank error {err:.5}, sampler level {}", k.s);
            assert!(err < 0.01, "n = {n}: rank error {err}");
            assert_eq!(k.n(), n);
            if n >= 1 << (SAMPLER_LG + 2) {
                assert!(k.s >= 2, "the sampler is in use at n = {n}");
            }
            assert!(
                k.retained < 3 * 400 + 8 * 24,
                "memory is bounded: {}",
                k.retained
            );
        }
    }

    #[test]
    fn sorted_and_skewed_streams_stay_accurate() {
        // ascending input is the hardest order for a block sampler; heavy ties test rank ranges
        let n = 2_000_000u64;
        let mut k = Kll::new(400);
        let mut xs = Vec::with_capacity(n as usize);
        for i in 0..n {
            let x = if i % 3 == 0 { 7.0 } else { i as f64 };
            xs.push(x);
            k.update(x);
        }
        xs.sort_by(f64::total_cmp);
        let err = rank_error(&xs, &k);
        assert!(err < 0.01, "rank error {err}");
        // row 0 is one of the ties, so the smallest value is 1
        assert_eq!(
            (k.quantile(0.0), k.quantile(1.0)),
            (Some(1.0), Some((n - 1) as f64))
        );
    }

    #[test]
    fn merged_partitions_equal_one_stream_within_the_error() {
        let xs = values(2_500_000, 99);
        let mut parts: Vec<Kll> = (0..3).map(|_| Kll::new(400)).collect();
        for (i, x) in xs.iter().enumerate() {
            // uneven partitions, so the sampler levels differ
            let p = if i < 200_000 {
                0
            } else if i < 700_000 {
                1
            } else {
                2
            };
            parts[p].update(*x);
        }
        let mut merged = Kll::new(400);
        for p in &parts {
            merged.merge(p);
        }
        assert_eq!(merged.n(), xs.len() as u64);
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        let err = rank_error(&sorted, &merged);
        assert!(err < 0.01, "rank error {err}");
        // merging in the other order too
        let mut other = parts[2].clone();
        other.merge(&parts[0]);
        other.merge(&parts[1]);
        assert!(rank_error(&sorted, &other) < 0.01);
    }

    #[test]
    fn storage_round_trips_and_refuses_garbage() {
        let mut k = Kll::new(400);
        for x in values(400_000, 3) {
            k.update(x);
        }
        let back = Kll::from_bytes(&k.to_bytes()).expect("round trip");
        assert_eq!(back, k);
        assert_eq!(back.quantile(0.3), k.quantile(0.3));
        assert!(Kll::from_bytes(&[]).is_none());
        assert!(Kll::from_bytes(&[9, 1, 2, 3]).is_none());
        let mut cut = k.to_bytes();
        cut.pop();
        assert!(Kll::from_bytes(&cut).is_none());
        // a stored state keeps sampling where it stopped
        let mut a = back;
        a.update(1.0);
        assert_eq!(a.n(), 400_001);
    }

    #[test]
    fn keys_keep_the_order_of_doubles() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.0,
            1e300,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} < {}", w[0], w[1]);
        }
        for x in xs {
            assert_eq!(value(key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn batches_sample_like_single_updates() {
        // same seeds, same values: a batch update keeps exactly what single updates keep
        let xs = values(700_000, 41);
        let mut one = Kll::new(400);
        let mut many = one.clone();
        for x in &xs {
            one.update(*x);
        }
        for chunk in xs.chunks(256) {
            let lo = chunk.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = chunk.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            many.update_batch(chunk, lo, hi);
        }
        assert_eq!(one, many);
        many.update_batch(&[], 0.0, 0.0);
        assert_eq!(one, many);
    }

    #[test]
    fn nan_is_ignored() {
        let mut k = Kll::new(400);
        k.update(f64::NAN);
        k.update(2.0);
        assert_eq!((k.n(), k.quantile(0.5)), (1, Some(2.0)));
    }
}
