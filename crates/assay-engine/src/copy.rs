//! Parsing of `COPY ... TO STDOUT (FORMAT binary)`: the signature and header, then tuples of
//! (field count, then per field a length, -1 for NULL, and the bytes), ending with a field count of -1.
//! Chunks may split tuples anywhere; complete tuples are handed out field by field without copying.

use crate::error::EngineError;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

#[derive(Debug, Default)]
pub struct CopyParser {
    pending: Vec<u8>,
    header_done: bool,
    ended: bool,
    rows: u64,
}

enum Step {
    /// A tuple of this many bytes was consumed.
    Row(usize),
    End(usize),
    NeedMore,
}

impl CopyParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// True once the trailer has been seen.
    pub fn is_done(&self) -> bool {
        self.ended
    }

    /// Feeds a chunk; calls `field(index, value)` for every field of every complete tuple, in order, and
    /// `row_done()` after each tuple. Returns the number of tuples completed by this chunk.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut field: impl FnMut(usize, Option<&[u8]>),
        mut row_done: impl FnMut(),
    ) -> Result<u64, EngineError> {
        if self.ended {
            return Ok(0);
        }
        let before = self.rows;
        if self.pending.is_empty() {
            let used = self.consume(chunk, &mut field, &mut row_done)?;
            if !self.ended {
                self.pending.extend_from_slice(&chunk[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(chunk);
            let used = self.consume(&buf, &mut field, &mut row_done)?;
            if !self.ended {
                buf.drain(..used);
                self.pending = buf;
            }
        }
        Ok(self.rows - before)
    }

    /// Checks that the stream ended properly.
    pub fn finish(&self) -> Result<(), EngineError> {
        if self.ended {
            Ok(())
        } else {
            Err(EngineError::Copy(
                "the stream ended before its trailer".into(),
            ))
        }
    }

    fn consume(
        &mut self,
        data: &[u8],
        field: &mut impl FnMut(usize, Option<&[u8]>),
        row_done: &mut impl FnMut(),
    ) -> Result<usize, EngineError> {
        let mut at = 0;
        if !self.header_done {
            if data.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &data[..SIGNATURE.len()] != SIGNATURE {
                return Err(EngineError::Copy(
                    "not a binary COPY stream (bad signature)".into(),
                ));
            }
            let ext = u32::from_be_bytes(
                data[SIGNATURE.len() + 4..SIGNATURE.len() + 8]
                    .try_into()
                    .unwrap_or([0; 4]),
            );
            let header = SIGNATURE.len() + 8 + ext as usize;
            if data.len() < header {
                return Ok(0);
            }
            at = header;
            self.header_done = true;
        }
        loop {
            match Self::tuple(&data[at..], field)? {
                Step::Row(n) => {
                    at += n;
                    self.rows += 1;
                    row_done();
                }
                Step::End(n) => {
                    self.ended = true;
                    return Ok(at + n);
                }
                Step::NeedMore => return Ok(at),
            }
        }
    }

    /// One tuple at the start of `d`, if complete. Fields are reported only for complete tuples: a first pass
    /// walks the lengths to find the tuple's end (a CopyData message holds whole tuples, so this rarely fails),
    /// a second hands the fields out.
    #[inline]
    fn tuple(d: &[u8], field: &mut impl FnMut(usize, Option<&[u8]>)) -> Result<Step, EngineError> {
        let Some(head) = d.get(..2) else {
            return Ok(Step::NeedMore);
        };
        let n = i16::from_be_bytes([head[0], head[1]]);
        if n == -1 {
            return Ok(Step::End(2));
        }
        if n < 0 {
            return Err(EngineError::Copy(format!("negative field count {n}")));
        }
        let len_at = |at: usize| -> Option<i32> {
            let b = d.get(at..at + 4)?;
            Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let mut at = 2;
        for _ in 0..n {
            let Some(len) = len_at(at) else {
                return Ok(Step::NeedMore);
            };
            at += 4;
            if len >= 0 {
                at += len as usize;
            } else if len != -1 {
                return Err(EngineError::Copy(format!("bad field length {len}")));
            }
        }
        if d.len() < at {
            return Ok(Step::NeedMore);
        }
        let end = at;
        let tuple = &d[..end];
        let mut at = 2;
        for i in 0..n as usize {
            let len = i32::from_be_bytes([tuple[at], tuple[at + 1], tuple[at + 2], tuple[at + 3]]);
            at += 4;
            if len < 0 {
                field(i, None);
            } else {
                let next = at + len as usize;
                field(i, Some(&tuple[at..next]));
                at = next;
            }
        }
        Ok(Step::Row(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut s = SIGNATURE.to_vec();
        s.extend(0u32.to_be_bytes());
        s.extend(0u32.to_be_bytes());
        for r in rows {
            s.extend((r.len() as i16).to_be_bytes());
            for f in r {
                match f {
                    None => s.extend((-1i32).to_be_bytes()),
                    Some(b) => {
                        s.extend((b.len() as i32).to_be_bytes());
                        s.extend(b);
                    }
                }
            }
        }
        s.extend((-1i16).to_be_bytes());
        s
    }

    fn collect(data: &[u8], chunk: usize) -> Vec<Vec<Option<Vec<u8>>>> {
        let mut p = CopyParser::new();
        let mut rows = Vec::new();
        let mut cur = Vec::new();
        for c in data.chunks(chunk) {
            let cur_ref = std::cell::RefCell::new(&mut cur);
            let rows_ref = std::cell::RefCell::new(&mut rows);
            p.feed(
                c,
                |_, v| cur_ref.borrow_mut().push(v.map(<[u8]>::to_vec)),
                || {
                    let row = std::mem::take(*cur_ref.borrow_mut());
                    rows_ref.borrow_mut().push(row);
                },
            )
            .unwrap();
        }
        p.finish().unwrap();
        rows
    }

    #[test]
    fn parses_whatever_the_chunking() {
        let rows = vec![
            vec![Some(vec![1, 2, 3]), None, Some(vec![])],
            vec![None, Some(b"hello".to_vec()), Some(vec![9])],
        ];
        let data = stream(&rows);
        for chunk in [1, 2, 3, 7, 19, data.len()] {
            assert_eq!(collect(&data, chunk), rows, "chunk size {chunk}");
        }
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        let mut p = CopyParser::new();
        assert!(
            p.feed(b"id,name\n1,alice\n and more text", |_, _| {}, || {})
                .is_err()
        );
        let data = stream(&[vec![Some(vec![1])]]);
        let mut p = CopyParser::new();
        p.feed(&data[..data.len() - 2], |_, _| {}, || {}).unwrap();
        assert!(p.finish().is_err());
    }
}
