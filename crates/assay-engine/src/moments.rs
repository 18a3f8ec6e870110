//! Streaming moments (count, mean and central moments up to the 4th), mergeable (Chan; Terriberry for the
//! higher moments). Values arrive in batches: a batch's own moments take two passes and no division per value,
//! then merge into the running ones.

use serde::{Deserialize, Serialize};

/// Count, mean and central moment sums of a set of values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    pub m2: f64,
    pub m3: f64,
    pub m4: f64,
}

impl Moments {
    /// The moments of `xs`, whose sum is `sum`: deviations from the batch's own mean, so no cancellation.
    pub fn of_batch(xs: &[f64], sum: f64) -> Moments {
        if xs.is_empty() {
            return Moments::default();
        }
        let n = xs.len() as f64;
        let mean = sum / n;
        let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
        for &x in xs {
            let d = x - mean;
            let d2 = d * d;
            m2 += d2;
            m3 += d2 * d;
            m4 += d2 * d2;
        }
        Moments {
            n,
            mean,
            m2,
            m3,
            m4,
        }
    }

    /// Folds `o` (the moments of other values) into `self`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn of(xs: &[f64]) -> Moments {
        Moments::of_batch(xs, xs.iter().sum())
    }

    #[test]
    fn moments_match_the_textbook() {
        let m = of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert!((m.mean - 5.0).abs() < 1e-12);
        assert!((m.m2 / m.n - 4.0).abs() < 1e-12, "population variance 4");
        assert!(m.skewness().unwrap() > 0.0);
        assert_eq!(of(&[]), Moments::default());
    }

    #[test]
    fn merged_batches_equal_one_batch() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f64 - 300.0)
            .collect();
        let whole = of(&xs);
        let mut merged = Moments::default();
        for chunk in xs.chunks(37) {
            merged.merge(&of(chunk));
        }
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
        assert_eq!(merged.n, whole.n);
        assert!(close(merged.mean, whole.mean));
        assert!(close(merged.m2, whole.m2));
        assert!(close(merged.m3, whole.m3));
        assert!(close(merged.m4, whole.m4));
    }
}
