//! Prometheus metrics (`GET /metrics`): the names, the recorder, and the few functions the
//! hot paths call. Recording goes through the `metrics` facade into
//! `metrics-exporter-prometheus`, which renders on demand and serves nothing itself.
//!
//! Counters and histograms are recorded where things happen; what the database or the
//! process already knows (callbacks by state, queue depth, file sizes, memory) is read when
//! `/metrics` is scraped ([`crate::service::Service::observe`]), so it costs nothing between
//! scrapes. The recorder is process-wide: with `--metrics false` it is never installed and
//! every call below is a no-op.
//!
//! No label takes values without bound: routes are path templates, states and reasons are
//! closed sets; `user_id` appears only with `--metrics-per-agent`.

pub mod pending;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::lcm::UserId;
use crate::lifecycle::{AttemptResult, CallbackState, EndReason};
use crate::store::gauges::Counts;

pub const HTTP_REQUESTS: &str = "redial_http_requests_total";
pub const HTTP_DURATION: &str = "redial_http_request_duration_seconds";
pub const HTTP_CONNECTIONS: &str = "redial_http_connections";
pub const WRITER_GROUP_SIZE: &str = "redial_writer_group_size";
pub const WRITER_COMMIT: &str = "redial_writer_commit_duration_seconds";
pub const WRITER_QUEUE: &str = "redial_writer_queue_depth";
pub const WRITER_ROLLED_BACK: &str = "redial_writer_rolled_back_groups_total";
pub const CALLBACKS: &str = "redial_callbacks";
pub const CALLBACKS_BY_AGENT: &str = "redial_agent_callbacks";
pub const EVENTS: &str = "redial_events";
pub const DEAD_LETTERED: &str = "redial_dead_lettered_total";
pub const DUE_LAG: &str = "redial_due_lag_seconds";
pub const FIRST_LEASE_LAG: &str = "redial_first_lease_lag_seconds";
pub const ENDED: &str = "redial_callbacks_ended_total";
pub const EXPIRED: &str = "redial_callbacks_expired_total";
pub const ATTEMPTS: &str = "redial_attempts_total";
pub const TICKS: &str = "redial_scheduler_ticks_total";
pub const NEXT_WAKE: &str = "redial_scheduler_next_wake_timestamp_seconds";
pub const OVERDUE: &str = "redial_scheduler_overdue_callbacks";
pub const BUS_CLIENTS: &str = "redial_bus_clients";
pub const LONG_POLLS: &str = "redial_long_polls_waiting";
pub const RSS: &str = "redial_process_resident_memory_bytes";
pub const DATABASE: &str = "redial_database_size_bytes";
pub const WAL: &str = "redial_wal_size_bytes";
pub const RELAY_PUBLISHED: &str = "redial_relay_published_total";
pub const RELAY_CONNECTED: &str = "redial_relay_connected";
pub const RELAY_BEHIND: &str = "redial_relay_behind_pushes";
pub const RELAY_LAG: &str = "redial_relay_lag_seconds";

/// Every series redial records (the dashboard's test checks its queries against these).
pub const NAMES: &[&str] = &[
    HTTP_REQUESTS,
    HTTP_DURATION,
    HTTP_CONNECTIONS,
    WRITER_GROUP_SIZE,
    WRITER_COMMIT,
    WRITER_QUEUE,
    WRITER_ROLLED_BACK,
    CALLBACKS,
    CALLBACKS_BY_AGENT,
    EVENTS,
    DEAD_LETTERED,
    DUE_LAG,
    FIRST_LEASE_LAG,
    ENDED,
    EXPIRED,
    ATTEMPTS,
    TICKS,
    NEXT_WAKE,
    OVERDUE,
    BUS_CLIENTS,
    LONG_POLLS,
    RSS,
    DATABASE,
    WAL,
    RELAY_PUBLISHED,
    RELAY_CONNECTED,
    RELAY_BEHIND,
    RELAY_LAG,
];

/// Upper bounds of the request-latency and commit-duration buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0,
];
/// Upper bounds of the due-lag buckets, in seconds: the SLA cares about the first second and
/// about windows of a quarter of an hour.
const LAG_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
const GROUP_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// How often histograms' recent samples are folded in, so that memory stays bounded when
/// nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// The installed recorder, and whether agents get their own series.
pub struct Metrics {
    pub handle: PrometheusHandle,
    pub per_agent: bool,
}

static INSTALLED: OnceLock<Metrics> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the first one, whatever
/// `per_agent` they pass) and starts its upkeep on the current runtime.
pub fn install(per_agent: bool) -> &'static Metrics {
    let mut fresh = false;
    let metrics = INSTALLED.get_or_init(|| {
        fresh = true;
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(WRITER_GROUP_SIZE.into()), GROUP_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(DUE_LAG.into()), LAG_BUCKETS))
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(FIRST_LEASE_LAG.into()), LAG_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        Metrics { handle, per_agent }
    });
    if fresh {
        let handle = metrics.handle.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(UPKEEP).await;
                handle.run_upkeep();
            }
        });
    }
    metrics
}

/// The installed recorder, if any.
pub fn installed() -> Option<&'static Metrics> {
    INSTALLED.get()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer a request, by route template."
    );
    describe_gauge!(HTTP_CONNECTIONS, "HTTP connections open now.");
    describe_histogram!(
        WRITER_GROUP_SIZE,
        "Requests committed together in one transaction."
    );
    describe_histogram!(
        WRITER_COMMIT,
        Unit::Seconds,
        "Time to run and commit one group."
    );
    describe_gauge!(WRITER_QUEUE, "Write requests waiting for the writer.");
    describe_counter!(
        WRITER_ROLLED_BACK,
        "Groups rolled back whole after an error."
    );
    describe_gauge!(CALLBACKS, "Live callbacks, by state (leased: a dialer holds the redial); finished ones are counted by redial_callbacks_ended_total.");
    describe_gauge!(
        CALLBACKS_BY_AGENT,
        "Live personal callbacks by agent and state (--metrics-per-agent)."
    );
    describe_gauge!(
        EVENTS,
        "Queue events waiting or held, by state: ready, leased, and dead (dead letters kept)."
    );
    describe_counter!(
        DEAD_LETTERED,
        "Events moved to the dead letters after too many deliveries."
    );
    describe_histogram!(
        DUE_LAG,
        Unit::Seconds,
        "Window start to the redial being leasable."
    );
    describe_histogram!(
        FIRST_LEASE_LAG,
        Unit::Seconds,
        "Window start to a dialer's first lease of the redial: the callback SLA."
    );
    describe_counter!(ENDED, "Callbacks finished, by final state.");
    describe_counter!(EXPIRED, "Callbacks expired, by reason.");
    describe_counter!(ATTEMPTS, "Dial attempts reported, by result.");
    describe_counter!(TICKS, "Scheduler ticks.");
    describe_gauge!(
        NEXT_WAKE,
        "When the scheduler next wakes, as a Unix time (0: nothing planned)."
    );
    describe_gauge!(
        OVERDUE,
        "Callbacks whose scheduler work is more than a second late."
    );
    describe_gauge!(BUS_CLIENTS, "WebSocket bus clients connected.");
    describe_gauge!(LONG_POLLS, "Dialers waiting in a long-poll lease.");
    describe_gauge!(RSS, Unit::Bytes, "Resident memory of the process.");
    describe_gauge!(DATABASE, Unit::Bytes, "Size of the SQLite database file.");
    describe_gauge!(WAL, Unit::Bytes, "Size of the SQLite write-ahead log.");
    describe_counter!(
        RELAY_PUBLISHED,
        "Messages the NATS stream acknowledged (--nats)."
    );
    describe_gauge!(
        RELAY_CONNECTED,
        "1 while the relay holds a connection to JetStream."
    );
    describe_gauge!(
        RELAY_BEHIND,
        "Pushes visible and not yet acknowledged by the stream."
    );
    describe_gauge!(
        RELAY_LAG,
        Unit::Seconds,
        "How long the oldest push not yet in the stream has been visible."
    );
}

/// The statuses redial answers, each with its label; others are counted by class.
const STATUSES: [(u16, &str); 17] = [
    (200, "200"),
    (201, "201"),
    (204, "204"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (409, "409"),
    (413, "413"),
    (415, "415"),
    (422, "422"),
    (429, "429"),
    (500, "500"),
    (503, "503"),
    (504, "504"),
];

/// The methods the routes answer, each with its label.
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// One route's request series, registered on first use and kept: recording a request is
/// then an atomic add and a histogram sample, with no label hashing or registry lookup (which
/// cost about 2% of an ingest request's instructions: BENCHMARKS.md).
pub struct RouteMeters {
    route: &'static str,
    duration: OnceLock<Histogram>,
    requests: [[OnceLock<Counter>; STATUSES.len()]; METHODS.len()],
}

impl RouteMeters {
    pub fn new(route: &'static str) -> Self {
        Self {
            route,
            duration: OnceLock::new(),
            requests: Default::default(),
        }
    }

    /// One request answered.
    pub fn record(&self, method: &'static str, status: u16, took: Duration) {
        let route = self.route;
        let known = METHODS
            .iter()
            .position(|m| *m == method)
            .zip(STATUSES.iter().position(|(s, _)| *s == status));
        match known {
            Some((m, s)) => self.requests[m][s]
                .get_or_init(|| {
                    counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => STATUSES[s].1)
                })
                .increment(1),
            None => counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status_class(status))
                .increment(1),
        }
        self.duration
            .get_or_init(|| histogram!(HTTP_DURATION, "route" => route))
            .record(took.as_secs_f64());
    }
}

/// A status redial does not usually answer, by class.
fn status_class(status: u16) -> &'static str {
    match status {
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// The writer committed (or rolled back) a group of `size` requests in `took`.
pub fn group(size: usize, took: Duration, committed: bool) {
    histogram!(WRITER_GROUP_SIZE).record(size as f64);
    histogram!(WRITER_COMMIT).record(took.as_secs_f64());
    if !committed {
        counter!(WRITER_ROLLED_BACK).increment(1);
    }
}

/// A scheduler tick committed.
pub fn tick(dead_lettered: usize, next_wake_ms: Option<i64>) {
    counter!(TICKS).increment(1);
    if dead_lettered > 0 {
        counter!(DEAD_LETTERED).increment(dead_lettered as u64);
    }
    gauge!(NEXT_WAKE).set(next_wake_ms.map_or(0.0, seconds));
}

/// Redials made leasable, each `lag_ms` after its window opened.
pub fn leasable(lags_ms: &[i64]) {
    let due = histogram!(DUE_LAG);
    for lag in lags_ms {
        due.record(seconds(*lag));
    }
}

/// A redial leased for the first time, `lag_ms` after its window opened.
pub fn first_lease(lag_ms: i64, user_id: Option<&UserId>) {
    match (user_id, per_agent()) {
        (Some(agent), true) => histogram!(FIRST_LEASE_LAG, "user_id" => agent.as_str().to_owned())
            .record(seconds(lag_ms)),
        _ => histogram!(FIRST_LEASE_LAG).record(seconds(lag_ms)),
    }
}

/// A dial attempt reported.
pub fn attempt(result: AttemptResult, user_id: &UserId) {
    if per_agent() {
        counter!(ATTEMPTS, "result" => result.as_str(), "user_id" => user_id.as_str().to_owned())
            .increment(1);
    } else {
        counter!(ATTEMPTS, "result" => result.as_str()).increment(1);
    }
}

/// A callback finished, committed.
pub fn ended(state: CallbackState, reason: Option<EndReason>) {
    counter!(ENDED, "state" => state.as_str()).increment(1);
    if let (CallbackState::Expired, Some(reason)) = (state, reason) {
        counter!(EXPIRED, "reason" => reason.as_str()).increment(1);
    }
}

/// What a scrape read ([`crate::service::Service::scrape`]).
pub struct Scraped {
    pub counts: Counts,
    pub write_queue: usize,
    pub long_polls: usize,
    pub database_bytes: u64,
    pub wal_bytes: u64,
    pub resident_bytes: u64,
}

/// Sets the gauges a scrape read.
pub fn scraped(s: &Scraped) {
    for (state, n) in &s.counts.callbacks {
        gauge!(CALLBACKS, "state" => state.clone()).set(*n as f64);
    }
    for (state, n) in &s.counts.events {
        gauge!(EVENTS, "state" => state.clone()).set(*n as f64);
    }
    for (agent, state, n) in &s.counts.by_agent {
        gauge!(CALLBACKS_BY_AGENT, "user_id" => agent.clone(), "state" => state.clone())
            .set(*n as f64);
    }
    gauge!(OVERDUE).set(s.counts.overdue as f64);
    gauge!(WRITER_QUEUE).set(s.write_queue as f64);
    gauge!(LONG_POLLS).set(s.long_polls as f64);
    gauge!(DATABASE).set(s.database_bytes as f64);
    gauge!(WAL).set(s.wal_bytes as f64);
    gauge!(RSS).set(s.resident_bytes as f64);
}

/// A message the stream acknowledged.
pub fn relayed() {
    counter!(RELAY_PUBLISHED).increment(1);
}

/// The relay's state, read at scrape.
pub fn relay_state(connected: bool, behind: i64, lag_ms: i64) {
    gauge!(RELAY_CONNECTED).set(if connected { 1.0 } else { 0.0 });
    gauge!(RELAY_BEHIND).set(behind as f64);
    gauge!(RELAY_LAG).set(seconds(lag_ms));
}

/// WebSocket bus clients connected now.
pub fn bus_clients(n: usize) {
    gauge!(BUS_CLIENTS).set(n as f64);
}

/// An HTTP connection opened (`1`) or closed (`-1`).
pub fn connections(delta: f64) {
    gauge!(HTTP_CONNECTIONS).increment(delta);
}

fn per_agent() -> bool {
    INSTALLED.get().is_some_and(|m| m.per_agent)
}

fn seconds(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}
