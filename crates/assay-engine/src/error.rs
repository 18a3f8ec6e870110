//! The error enum of the engine.

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The COPY stream is not in the binary format or is cut short.
    #[error("COPY stream: {0}")]
    Copy(String),
    /// A stored state cannot be read back (written by an incompatible version).
    #[error("stored profile state: {0}")]
    State(String),
}
