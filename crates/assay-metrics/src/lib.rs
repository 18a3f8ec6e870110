//! The metrics an operator scrapes from `GET /metrics`: one [`Metrics`] per server process, shared by the HTTP
//! layer, the operation runner, the scheduler and the notification dispatcher, encoded in the Prometheus text
//! format by [`Metrics::encode`].
//!
//! Names follow Prometheus conventions: the `assay_` prefix, base units (`_seconds`, `_bytes`), `_total` on
//! counters. Labels carry only bounded, non-secret values: route templates (never paths with ids), operation
//! types and results, action types. The gauges that describe the metadata store (queue depth, outbox backlog,
//! pool use) are set by the scraping handler just before encoding, from [`Snapshot`], so they are as fresh as the
//! scrape and cost nothing between scrapes.
//!
//! Counters and histograms here are lock-free atomics (`prometheus-client`); a label set's series is created on
//! first use and lives as long as the process. Every label value comes from a closed set, so the number of series
//! is bounded by the route table × methods × statuses seen, and by the operation and action types.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The matched route template (`/api/datastores/{id}`), or `unmatched`.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    /// The operation type (`sync`, `profile`, `scan`, `export`, `materialize`).
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndLabels {
    pub r#type: String,
    /// `success`, `failure` or `aborted`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstantLabels {
    /// `queued` (an operation was queued for it) or `skipped` (the previous run was still going).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// `webhook`, `slack`, `teams` or `email`.
    pub action: String,
    /// `delivered`, `retrying` (an attempt failed, another is due) or `failed` (the last attempt failed).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `in_use` or `idle`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets from 5 ms to about 10 minutes, for request and delivery latencies and scheduler lag.
fn short_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.5, 14))
}

/// Buckets from 100 ms to about 27 hours, for operation durations.
fn long_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 3.0, 14))
}

/// Every metric family of the process and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    pub operations_started: Family<TypeLabels, Counter>,
    pub operations_ended: Family<EndLabels, Counter>,
    pub operation_duration: HistogramFamily<TypeLabels>,
    pub operation_rows_read: Family<TypeLabels, Counter>,
    pub operations_queued: Gauge,
    pub oldest_queued_age: Gauge<f64, AtomicU64>,
    pub schedule_lag: Histogram,
    pub schedule_instants: Family<InstantLabels, Counter>,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub delivery_duration: HistogramFamily<TypeLabels>,
    pub outbox_backlog: Gauge,
    pub metadata_pool: Family<StateLabels, Gauge>,
    pub metadata_up: Gauge,
    pub source_sessions: Gauge,
    pub secrets_requests: Family<ResultLabels, Counter>,
}

/// The store-side figures a scrape sets before encoding.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The store's backlog, `None` when the store did not answer (the gauges keep their last values and
    /// `assay_metadata_up` turns 0).
    pub backlog: Option<Backlog>,
    pub pool_in_use: i64,
    pub pool_idle: i64,
    pub source_sessions: i64,
}

/// The work waiting in the metadata store.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    pub operations_queued: i64,
    /// Seconds since the oldest queued operation was queued (0 with none queued).
    pub oldest_queued_age_seconds: f64,
    /// Notification events not yet matched plus deliveries not yet delivered or failed.
    pub outbox: i64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("assay");
        let m = Metrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(short_buckets),
            operations_started: Family::default(),
            operations_ended: Family::default(),
            operation_duration: Family::new_with_constructor(long_buckets),
            operation_rows_read: Family::default(),
            operations_queued: Gauge::default(),
            oldest_queued_age: Gauge::default(),
            schedule_lag: short_buckets(),
            schedule_instants: Family::default(),
            deliveries: Family::default(),
            delivery_duration: Family::new_with_constructor(short_buckets),
            outbox_backlog: Gauge::default(),
            metadata_pool: Family::default(),
            metadata_up: Gauge::default(),
            source_sessions: Gauge::default(),
            secrets_requests: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            m.http_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by method and route template",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        r.register(
            "operations_started",
            "Operations this server started, by type",
            m.operations_started.clone(),
        );
        r.register(
            "operations_ended",
            "Operations this server ended, by type and result",
            m.operations_ended.clone(),
        );
        r.register_with_unit(
            "operation_duration",
            "Time from an operation's start to its end, by type",
            Unit::Seconds,
            m.operation_duration.clone(),
        );
        r.register(
            "operation_rows_read",
            "Source rows read by ended operations, by type",
            m.operation_rows_read.clone(),
        );
        r.register(
            "operations_queued",
            "Operations waiting for a runner, on every server sharing the metadata store",
            m.operations_queued.clone(),
        );
        r.register_with_unit(
            "operations_oldest_queued_age",
            "How long the oldest queued operation has waited",
            Unit::Seconds,
            m.oldest_queued_age.clone(),
        );
        r.register_with_unit(
            "schedule_lag",
            "Time from a schedule's due instant to this server claiming it",
            Unit::Seconds,
            m.schedule_lag.clone(),
        );
        r.register(
            "schedule_instants",
            "Schedule instants this server claimed, by outcome (queued or skipped)",
            m.schedule_instants.clone(),
        );
        r.register(
            "notification_deliveries",
            "Notification delivery attempts, by action type and result (delivered, retrying, failed)",
            m.deliveries.clone(),
        );
        r.register_with_unit(
            "notification_delivery_duration",
            "Time of one delivery attempt, by action type",
            Unit::Seconds,
            m.delivery_duration.clone(),
        );
        r.register(
            "notification_backlog",
            "Notification events and deliveries not yet finished, on every server sharing the metadata store",
            m.outbox_backlog.clone(),
        );
        r.register(
            "metadata_pool_connections",
            "Metadata store connections of this server's pool, by state (in_use, idle)",
            m.metadata_pool.clone(),
        );
        r.register(
            "metadata_up",
            "1 when the metadata store answered this scrape, else 0",
            m.metadata_up.clone(),
        );
        r.register(
            "source_sessions_open",
            "Sessions this server holds open on source databases",
            m.source_sessions.clone(),
        );
        r.register(
            "secrets_requests",
            "Secrets-manager resolutions, by result (ok, error)",
            m.secrets_requests.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Sets the gauges of a scrape and encodes every family in the Prometheus text format (OpenMetrics 1.0,
    /// which Prometheus' text parser reads too).
    pub fn encode(&self, snapshot: &Snapshot) -> String {
        self.metadata_up.set(i64::from(snapshot.backlog.is_some()));
        if let Some(b) = &snapshot.backlog {
            self.operations_queued.set(b.operations_queued);
            self.oldest_queued_age.set(b.oldest_queued_age_seconds);
            self.outbox_backlog.set(b.outbox);
        }
        self.metadata_pool
            .get_or_create(&StateLabels {
                state: "in_use".into(),
            })
            .set(snapshot.pool_in_use);
        self.metadata_pool
            .get_or_create(&StateLabels {
                state: "idle".into(),
            })
            .set(snapshot.pool_idle);
        self.source_sessions.set(snapshot.source_sessions);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }

    /// Records an operation's start.
    pub fn operation_started(&self, op_type: &str) {
        self.operations_started
            .get_or_create(&TypeLabels {
                r#type: op_type.into(),
            })
            .inc();
    }

    /// Records an operation's end: its result, how long it ran and how many source rows it read.
    pub fn operation_ended(&self, op_type: &str, result: &str, seconds: f64, rows_read: u64) {
        let t = TypeLabels {
            r#type: op_type.into(),
        };
        self.operations_ended
            .get_or_create(&EndLabels {
                r#type: op_type.into(),
                result: result.into(),
            })
            .inc();
        self.operation_duration.get_or_create(&t).observe(seconds);
        self.operation_rows_read.get_or_create(&t).inc_by(rows_read);
    }

    /// Records a schedule instant this server claimed, `lag` seconds after it was due.
    pub fn schedule_instant(&self, outcome: &str, lag: f64) {
        self.schedule_lag.observe(lag.max(0.0));
        self.schedule_instants
            .get_or_create(&InstantLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Records one delivery attempt of an action.
    pub fn delivery(&self, action: &str, result: &str, seconds: f64) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                action: action.into(),
                result: result.into(),
            })
            .inc();
        self.delivery_duration
            .get_or_create(&TypeLabels {
                r#type: action.into(),
            })
            .observe(seconds);
    }

    /// Records a secrets-manager resolution.
    pub fn secrets_request(&self, ok: bool) {
        self.secrets_requests
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" }.into(),
            })
            .inc();
    }

    /// Records an answered HTTP request.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.into(),
                route: route.into(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                method: method.into(),
                route: route.into(),
            })
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_prometheus_naming_and_move_with_events() {
        let m = Metrics::new();
        m.operation_started("scan");
        m.operation_ended("scan", "success", 1.5, 42);
        m.http_request("GET", "/api/datastores/{id}", 200, 0.01);
        let text = m.encode(&Snapshot {
            backlog: Some(Backlog {
                operations_queued: 3,
                ..Backlog::default()
            }),
            ..Snapshot::default()
        });
        assert!(text.contains("assay_metadata_up 1"), "{text}");
        assert!(
            text.contains("assay_operations_started_total{type=\"scan\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("assay_operation_rows_read_total{type=\"scan\"} 42"),
            "{text}"
        );
        assert!(text.contains("assay_operations_queued 3"), "{text}");
        assert!(
            text.contains("assay_http_requests_total{method=\"GET\",route=\"/api/datastores/{id}\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE assay_operation_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("assay_operation_duration_seconds_count{type=\"scan\"} 1"),
            "{text}"
        );
    }
}
