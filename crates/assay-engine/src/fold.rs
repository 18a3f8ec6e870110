//! Folding a stream of rows into per-field states, field by field as the COPY parser hands them out. Numbers
//! and instants wait in a small buffer per field and go into their state in batches (see
//! [`FieldState::add_numbers`]), which keeps the running moments free of a division per value and lets each
//! batch's loops run out of registers; ASCII text is measured and validated in one pass.

use crate::kind::{Kind, Value, decode};
use crate::state::FieldState;

/// Values buffered per field before they are folded.
const BATCH: usize = 256;

pub struct Folder {
    states: Vec<FieldState>,
    numbers: Vec<Vec<f64>>,
    instants: Vec<Vec<i64>>,
}

impl Folder {
    pub fn new(kinds: &[Kind]) -> Folder {
        Folder {
            states: kinds.iter().map(|k| FieldState::new(*k)).collect(),
            numbers: kinds.iter().map(|_| Vec::new()).collect(),
            instants: kinds.iter().map(|_| Vec::new()).collect(),
        }
    }

    /// Adds field `i` of a row (`None` is SQL NULL); fields past the known ones are ignored.
    #[inline(always)]
    pub fn add(&mut self, i: usize, raw: Option<&[u8]>) {
        let Some(st) = self.states.get_mut(i) else {
            return;
        };
        let Some(raw) = raw else {
            st.count += 1;
            st.nulls += 1;
            return;
        };
        if st.kind == Kind::Text && raw.is_ascii() {
            // SAFETY: ASCII bytes are valid UTF-8; the check above is the validation.
            let s = unsafe { std::str::from_utf8_unchecked(raw) };
            st.count += 1;
            st.add_text(s, raw.len() as u64);
            return;
        }
        match decode(st.kind, raw) {
            Value::Number(x) => {
                let buf = &mut self.numbers[i];
                if buf.capacity() == 0 {
                    buf.reserve_exact(BATCH);
                }
                buf.push(x);
                if buf.len() == BATCH {
                    st.add_numbers(buf);
                    buf.clear();
                }
            }
            Value::Temporal(us) => {
                let buf = &mut self.instants[i];
                if buf.capacity() == 0 {
                    buf.reserve_exact(BATCH);
                }
                buf.push(us);
                if buf.len() == BATCH {
                    st.add_instants(buf);
                    buf.clear();
                }
            }
            v => {
                st.count += 1;
                st.add_value(v);
            }
        }
    }

    /// The states with every buffered value folded in.
    pub fn finish(mut self) -> Vec<FieldState> {
        for ((st, numbers), instants) in self
            .states
            .iter_mut()
            .zip(&self.numbers)
            .zip(&self.instants)
        {
            st.add_numbers(numbers);
            st.add_instants(instants);
        }
        self.states
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of (int8, timestamp, text, float8) with nulls, non-ASCII text, NaN and undecodable bytes.
    fn rows(n: i64) -> Vec<[Option<Vec<u8>>; 4]> {
        (0..n)
            .map(|i| {
                let int = (i % 7 != 0).then(|| ((i * 7919) % 5000 - 900).to_be_bytes().to_vec());
                let ts = (i % 11 != 0).then(|| (i * 1_000_003 - 40_000_000).to_be_bytes().to_vec());
                let text = match i % 5 {
                    0 => None,
                    1 => Some(format!("ünï-{}", i % 300).into_bytes()),
                    2 => Some(vec![0xff, 0xfe]),
                    _ => Some(format!("user{}@example.com", i % 1000).into_bytes()),
                };
                let float = match i % 13 {
                    0 => Some(f64::NAN.to_be_bytes().to_vec()),
                    1 => Some(vec![1, 2, 3]),
                    _ => Some(((i as f64) * 0.37 - 100.0).to_be_bytes().to_vec()),
                };
                [int, ts, text, float]
            })
            .collect()
    }

    #[test]
    fn batches_give_what_one_value_at_a_time_gives() {
        let kinds = [Kind::Int8, Kind::Timestamp, Kind::Text, Kind::Float8];
        for n in [0i64, 1, 255, 256, 257, 3000] {
            let data = rows(n);
            let mut folder = Folder::new(&kinds);
            let mut single: Vec<FieldState> = kinds.iter().map(|k| FieldState::new(*k)).collect();
            for row in &data {
                for (i, v) in row.iter().enumerate() {
                    folder.add(i, v.as_deref());
                    single[i].add(v.as_deref());
                }
            }
            folder.add(9, Some(b"ignored"));
            let batched = folder.finish();
            for (a, b) in batched.iter().zip(&single) {
                let counts = |s: &FieldState| {
                    (
                        s.count,
                        s.nulls,
                        s.non_finite,
                        s.invalid,
                        s.negatives,
                        s.zeros,
                        s.moments.n,
                    )
                };
                let ranges = |s: &FieldState| {
                    (
                        s.min,
                        s.max,
                        s.len_min,
                        s.len_max,
                        s.len_sum,
                        s.text_kinds(),
                    )
                };
                assert_eq!(counts(a), counts(b), "n = {n}, {:?}", a.kind);
                assert_eq!(ranges(a), ranges(b), "n = {n}, {:?}", a.kind);
                assert_eq!(a.top, b.top);
                assert_eq!(a.hll, b.hll);
                assert_eq!(a.kll.n(), b.kll.n());
                let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()));
                assert!(close(a.sum, b.sum) && close(a.moments.mean, b.moments.mean));
                // one value at a time rounds more: for the 231 instants of n = 255 the batch's m2 is exact
                // (1.2426108322548198e18) and the running update's is 7e-9 off
                let near = |x: f64, y: f64| (x - y).abs() <= 1e-7 * (1.0 + x.abs().max(y.abs()));
                assert!(
                    near(a.moments.m2, b.moments.m2),
                    "{} vs {}",
                    a.moments.m2,
                    b.moments.m2
                );
                assert!(
                    (a.moments.m4 - b.moments.m4).abs() <= 1e-6 * b.moments.m4.abs().max(1.0),
                    "{} vs {}",
                    a.moments.m4,
                    b.moments.m4
                );
            }
        }
    }
}
