//! The profiling engine: decoding `COPY ... (FORMAT binary)` streams, mergeable per-field states (counts,
//! moments, min/max, HyperLogLog distinct counts, KLL quantiles, exact top values while few, text type
//! inference), finalised field profiles, and check inference from profiles. No I/O beyond byte slices.

pub mod copy;
mod error;
pub mod fold;
pub mod hll;
pub mod infer;
pub mod kind;
pub mod kll;
pub mod moments;
pub mod profile;
pub mod shape;
pub mod state;
mod textkind;

pub use error::EngineError;
