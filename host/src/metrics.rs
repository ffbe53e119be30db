//! The host's metrics in the Prometheus text format (`GET /metrics`): counters and
//! histograms the pipeline updates as it works, and gauges a scrape reads from the store
//! and the service ([`Gauges`]).
//!
//! One set per process: a process runs one service.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The metrics a scrape returns.
pub struct Metrics {
    registry: Registry,
    /// Executions by worker and final status.
    pub executions: IntCounterVec,
    /// Execution wall time by worker, in seconds.
    pub execution_seconds: HistogramVec,
    /// Fuel the executions used, by worker.
    pub fuel: IntCounterVec,
    /// Host calls by capability and how they ended (`performed`, `denied`, ...).
    pub host_calls: IntCounterVec,
    /// API requests by route, method and status.
    pub api_requests: IntCounterVec,
    /// How long a group commit of the store takes, in seconds.
    pub commit_seconds: Histogram,
    /// Queue items by worker.
    pub queue_depth: IntGaugeVec,
    /// The age of each worker's oldest queue item, in seconds.
    pub queue_oldest_seconds: IntGaugeVec,
    /// Actions held for a person's decision.
    pub actions_held: IntGauge,
    /// Whether a worker is paused (1), by anyone.
    pub paused: IntGaugeVec,
    /// Whether a worker's circuit breaker has paused it (1).
    pub breaker_open: IntGaugeVec,
    /// Notifications waiting to be delivered.
    pub delivery_backlog: IntGauge,
    /// Entries in the audit chain.
    pub audit_entries: IntGauge,
}

/// What a scrape reads from the store and the service, set just before it is encoded.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Per worker: queue items and the age of the oldest, in seconds.
    pub queue: Vec<(String, u64, i64)>,
    /// Actions held for a person's decision.
    pub actions_held: u64,
    /// Per worker: paused, and paused by its circuit breaker.
    pub workers: Vec<(String, bool, bool)>,
    /// Notifications waiting to be delivered.
    pub delivery_backlog: u64,
    /// Entries in the audit chain.
    pub audit_entries: u64,
}

/// Seconds buckets for executions and commits: 100 µs to 30 s.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0, 30.0,
];

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
    registry
        .register(Box::new(c.clone()))
        .expect("registered once");
    c
}

fn gauges(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge");
    registry
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("a valid gauge");
    registry
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new_custom(Some("roster".into()), None).expect("a valid prefix");
        let execution_seconds = HistogramVec::new(
            HistogramOpts::new("execution_duration_seconds", "Execution wall time.")
                .buckets(BUCKETS.to_vec()),
            &["worker"],
        )
        .expect("a valid histogram");
        registry
            .register(Box::new(execution_seconds.clone()))
            .expect("registered once");
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "store_commit_duration_seconds",
                "How long a group commit of the store takes, durable on return.",
            )
            .buckets(BUCKETS.to_vec()),
        )
        .expect("a valid histogram");
        registry
            .register(Box::new(commit_seconds.clone()))
            .expect("registered once");
        Metrics {
            executions: counter(
                &registry,
                "executions_total",
                "Executions by worker and final status.",
                &["worker", "status"],
            ),
            execution_seconds,
            fuel: counter(
                &registry,
                "fuel_consumed_total",
                "Fuel the executions used.",
                &["worker"],
            ),
            host_calls: counter(
                &registry,
                "host_calls_total",
                "Recorded host calls by capability and how they ended.",
                &["capability", "result"],
            ),
            api_requests: counter(
                &registry,
                "api_requests_total",
                "API requests by route, method and status.",
                &["route", "method", "status"],
            ),
            commit_seconds,
            queue_depth: gauges(
                &registry,
                "queue_depth",
                "Queue items waiting, by worker.",
                &["worker"],
            ),
            queue_oldest_seconds: gauges(
                &registry,
                "queue_oldest_age_seconds",
                "The age of each worker's oldest queue item.",
                &["worker"],
            ),
            actions_held: gauge(
                &registry,
                "actions_held",
                "Actions held for a person's decision.",
            ),
            paused: gauges(
                &registry,
                "worker_paused",
                "Whether a worker is paused (1).",
                &["worker"],
            ),
            breaker_open: gauges(
                &registry,
                "breaker_open",
                "Whether a worker's circuit breaker has paused it (1).",
                &["worker"],
            ),
            delivery_backlog: gauge(
                &registry,
                "delivery_backlog",
                "Notifications waiting to be delivered.",
            ),
            audit_entries: gauge(&registry, "audit_entries", "Entries in the audit chain."),
            registry,
        }
    }

    /// Counts one finished execution of `worker`: its final status, wall time, fuel and
    /// each recorded host call as (capability, how it ended).
    pub fn executed<'a>(
        &self,
        worker: &str,
        status: &str,
        seconds: f64,
        fuel: u64,
        calls: impl Iterator<Item = (&'a str, &'a str)>,
    ) {
        self.executions.with_label_values(&[worker, status]).inc();
        self.execution_seconds
            .with_label_values(&[worker])
            .observe(seconds);
        self.fuel.with_label_values(&[worker]).inc_by(fuel);
        for (capability, result) in calls {
            self.host_calls
                .with_label_values(&[capability, result])
                .inc();
        }
    }

    /// Sets the gauges a scrape reads, then encodes every metric.
    pub fn scrape(&self, gauges: &Gauges) -> String {
        self.queue_depth.reset();
        self.queue_oldest_seconds.reset();
        for (worker, depth, oldest) in &gauges.queue {
            self.queue_depth
                .with_label_values(&[worker])
                .set(i64::try_from(*depth).unwrap_or(i64::MAX));
            self.queue_oldest_seconds
                .with_label_values(&[worker])
                .set(*oldest);
        }
        self.paused.reset();
        self.breaker_open.reset();
        for (worker, paused, breaker) in &gauges.workers {
            self.paused
                .with_label_values(&[worker])
                .set(i64::from(*paused));
            self.breaker_open
                .with_label_values(&[worker])
                .set(i64::from(*breaker));
        }
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.actions_held.set(int(gauges.actions_held));
        self.delivery_backlog.set(int(gauges.delivery_backlog));
        self.audit_entries.set(int(gauges.audit_entries));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("encoding the metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The content type of a scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
