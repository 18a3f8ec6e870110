//! The server's log output: the human format, or one JSON object per line (`--log-format json`) with the
//! timestamp, level, target, the event's fields at the top level and the spans it sits in (`request` with its
//! `request_id`, `operation` with its `operation_id` and `datastore_id`).

use super::config::LogFormat;

/// Installs the process's subscriber; `level` is a filter already checked by the configuration.
pub fn init(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}
