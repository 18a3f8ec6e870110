//! `assay-bench fold`: the client side of a profile alone. It replays a recorded
//! `COPY orders TO STDOUT (FORMAT binary)` stream (the generator's 16 columns) through the COPY parser and the
//! per-field states one message at a time, as the rows arrive from the network, then finalises the profiles,
//! and prints the CPU cost per row.
//! Without PostgreSQL in the loop the figure is repeatable, and `valgrind --tool=callgrind` can count it.

use anyhow::{Context, Result};
use assay_engine::copy::CopyParser;
use assay_engine::fold::Folder;
use assay_engine::kind::Kind;
use assay_engine::profile::finalize;
use assay_engine::state::FieldState;
use serde_json::json;
use std::time::Instant;

/// The generator's columns: (name, PostgreSQL type).
pub const ORDERS: [(&str, &str); 16] = [
    ("id", "int8"),
    ("customer_id", "int4"),
    ("status", "text"),
    ("created_at", "timestamp"),
    ("updated_at", "timestamptz"),
    ("ship_date", "date"),
    ("quantity", "int4"),
    ("unit_price", "float8"),
    ("discount_pct", "numeric"),
    ("amount", "numeric"),
    ("email", "text"),
    ("country", "text"),
    ("is_gift", "bool"),
    ("order_uuid", "uuid"),
    ("note", "text"),
    ("attributes", "text"),
];

/// Splits a binary COPY stream where PostgreSQL's messages end: the header with the first tuple, then one tuple
/// per message (COPY sends each row as its own CopyData message), the trailer with the last.
fn messages(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let be16 = |at: usize| -> Result<i16> {
        Ok(i16::from_be_bytes(
            bytes.get(at..at + 2).context("truncated")?.try_into()?,
        ))
    };
    let be32 = |at: usize| -> Result<i32> {
        Ok(i32::from_be_bytes(
            bytes.get(at..at + 4).context("truncated")?.try_into()?,
        ))
    };
    let mut at = 11 + 4 + 4 + be32(15)? as usize;
    let mut cuts = vec![0];
    loop {
        let fields = be16(at)?;
        if fields < 0 {
            break;
        }
        at += 2;
        for _ in 0..fields {
            let len = be32(at)?;
            at += 4 + len.max(0) as usize;
        }
        cuts.push(at);
    }
    // the trailer travels with the last tuple
    let last = cuts.len() - 1;
    cuts[last] = bytes.len();
    Ok(cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect())
}

/// Folds the messages once; returns the rows read and the finalised states.
pub fn fold_once(messages: &[&[u8]]) -> Result<(u64, Vec<FieldState>)> {
    let kinds: Vec<Kind> = ORDERS
        .iter()
        .map(|(_, t)| Kind::for_type(t, "").0)
        .collect();
    let mut folder = Folder::new(&kinds);
    let mut parser = CopyParser::new();
    for m in messages {
        parser.feed(m, |i, v| folder.add(i, v), || {})?;
    }
    parser.finish()?;
    let states = folder.finish();
    for ((name, t), st) in ORDERS.iter().zip(&states) {
        let _ = finalize(name, t, st, None);
    }
    Ok((parser.rows(), states))
}

pub fn run(file: &str, reps: usize) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| {
        format!(
            "cannot read {file}: record one with psql -c 'COPY orders TO STDOUT (FORMAT binary)' > {file}"
        )
    })?;
    let messages = messages(&bytes)?;
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        let (n, _) = fold_once(&messages)?;
        times.push(t0.elapsed().as_secs_f64());
        rows = n;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let best = times[0];
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "rows": rows,
            "bytes": bytes.len(),
            "reps": times.len(),
            "seconds": times,
            "best_ns_per_row": best * 1e9 / rows.max(1) as f64,
            "best_mb_per_s": bytes.len() as f64 / best / 1e6,
        }))?
    );
    Ok(())
}
