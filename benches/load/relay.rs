//! The relay to NATS JetStream, against a local `nats-server -js` with file storage (skipped,
//! saying so, when the binary is absent):
//!
//! - **throughput**: pushes already stored (outcomes of the past hour) published from a mark of
//!   0, until the stream acknowledged them all;
//! - **burst**: 10,000 windows opening at one instant (`--dispatch nats`); each redial's lag is
//!   the instant the stream stored it (JetStream's own timestamp, read once all are in)
//!   minus its window's start; with the CPU redial and nats-server spent on it;
//! - **ingest**: `POST /v1/lcm` at 64 connections with the relay publishing outcomes, against a
//!   server without it, in turn (off, on, on, off, off, on).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use chrono::Utc;
use futures_util::StreamExt;
use redial::lcm::UserId;
use redial::store::bulk::{self, Windows};
use redial::store::{bus, open_write_connection, schema, telephony, Synchronous};

use crate::ingest::{in_turn, median_of, Turn};
use crate::{pct, process, Plan};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

pub struct RelayFigures {
    pub throughput: Throughput,
    pub burst: Burst,
    /// Ingest with the relay on and off; nats-server's CPU per request is read in the runs
    /// with it on (on the same cores).
    pub ingest: Vec<Turn>,
}

impl RelayFigures {
    pub fn rate(&self) -> f64 {
        self.throughput.pushes as f64 / self.throughput.seconds
    }

    pub fn median_ingest(&self, on: bool) -> f64 {
        median_of(&self.ingest, on, |t| t.load.rate())
    }
}

struct Nats {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Nats {
    fn start() -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a port")
            .local_addr()
            .expect("an address")
            .port();
        let store = tempfile::tempdir().expect("a store folder");
        let child = Command::new(NATS_SERVER)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nats-server listens"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _store: store,
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relay's burst alone, three times: for working on it (`--only relay-burst`).
pub fn burst_alone(scratch: &Path, plan: &Plan) {
    if !Path::new(NATS_SERVER).exists() {
        println!("Skipped: {NATS_SERVER} is not installed (apt-get install -y nats-server).");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    println!(
        "| relay burst of {} | first ms | p50 ms | p99 ms | max ms | CPU ms redial / nats-server |",
        plan.burst
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for run in 1..=3 {
        let burst = burst(scratch, &runtime, plan.burst);
        let [first, p50, p99, max] = burst.spread();
        let (redial, nats) = burst.cpu_ms;
        println!(
            "| run {run} | {first:.1} | {p50:.1} | {p99:.1} | {max:.1} | {redial:.0} / {nats:.0} |"
        );
    }
}

/// `None` (and a line saying why) without `nats-server`.
pub fn relay(scratch: &Path, plan: &Plan) -> Option<RelayFigures> {
    if !Path::new(NATS_SERVER).exists() {
        println!("## Relay to NATS JetStream\n\nSkipped: {NATS_SERVER} is not installed (apt-get install -y nats-server).\n");
        return None;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let pushes = if plan.quick { 5_000 } else { 200_000 };
    let throughput = throughput(scratch, &runtime, pushes);
    let burst = burst(
        scratch,
        &runtime,
        if plan.quick { 1_000 } else { plan.burst },
    );
    let ingest = ingest(scratch, plan);
    Some(RelayFigures {
        throughput,
        burst,
        ingest,
    })
}

/// Waits until `stream` holds `n` messages; the seconds from `since`.
async fn holds(js: &async_nats::jetstream::Context, n: u64, since: Instant) -> f64 {
    loop {
        if let Ok(mut stream) = js.get_stream("REDIAL").await {
            if stream.info().await.map_or(0, |i| i.state.messages) >= n {
                return since.elapsed().as_secs_f64();
            }
        }
        assert!(
            since.elapsed() < Duration::from_secs(600),
            "the relay stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Stored pushes published from a mark of 0: how long until the stream held them all, and the
/// CPU ms redial and nats-server used, start-up included.
pub struct Throughput {
    pub pushes: usize,
    pub seconds: f64,
    pub cpu_ms: (f64, f64),
}

fn throughput(scratch: &Path, runtime: &tokio::runtime::Runtime, n: usize) -> Throughput {
    let db = scratch.join("relay-throughput.db");
    {
        let mut conn = open_write_connection(&db, Synchronous::Normal).expect("database");
        schema::migrate(&mut conn, None).expect("schema");
        let first = bus::first_id(Utc::now().timestamp_millis() - 3_600_000);
        let tx = conn.transaction().expect("a transaction");
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO bus_events (id, kind, user_id, data, created_at)
                     VALUES (?1, 'OutcomeSetForCall', 'agent', json_object('callid', 'c' || ?2,
                         'AccountNumber', 'a' || ?2, 'OutcomeId', 4, 'BusinessOutcome', 101,
                         'UserID', 'agent', 'message', 'SetBusinessOutcome'), 0)",
                )
                .expect("an insert");
            for i in 0..n as i64 {
                insert.execute((first + i, i)).expect("a push");
            }
        }
        tx.commit().expect("committed");
    }
    let nats = Nats::start();
    let started = Instant::now();
    let server = process::spawn_server(&db, &["--nats", &nats.url]);
    let seconds = runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.expect("nats"));
        holds(&js, n as u64, started).await
    });
    let cpu_ms = (cpu_ms(server.child.id()), cpu_ms(nats.child.id()));
    server.terminate();
    Throughput {
        pushes: n,
        seconds,
        cpu_ms,
    }
}

/// One burst: the lags, ms, sorted; the CPU ms redial and nats-server used from just before
/// the instant until the stream held it all.
pub struct Burst {
    pub lags: Vec<f64>,
    pub cpu_ms: (f64, f64),
}

impl Burst {
    /// The first, p50, p99 and last lag, ms.
    fn spread(&self) -> [f64; 4] {
        [0.0, 0.5, 0.99, 1.0].map(|p| pct(&self.lags, p))
    }
}

/// CPU ms a process has used.
fn cpu_ms(pid: u32) -> f64 {
    crate::ingest::cpu_seconds(pid) * 1000.0
}

fn burst(scratch: &Path, runtime: &tokio::runtime::Runtime, n: i64) -> Burst {
    // Far enough ahead for the server to start and stage them as it would any window.
    let start = Utc::now() + chrono::Duration::seconds(75);
    let db = scratch.join(format!("relay-burst-{}.db", start.timestamp_millis()));
    {
        let mut conn = open_write_connection(&db, Synchronous::Normal).expect("database");
        schema::migrate(&mut conn, None).expect("schema");
        let user = UserId::parse("agent").expect("an agent");
        telephony::set_agent_login(&conn, &user, true, Utc::now()).expect("logged in");
        let windows = Windows {
            prefix: "burst",
            from: 0,
            to: n,
            start,
            step: chrono::Duration::zero(),
            length: chrono::Duration::hours(1),
            user: &user,
        };
        bulk::insert_windows(&conn, &windows, Utc::now()).expect("windows");
        bulk::settle(&conn).expect("checkpointed");
    }
    let nats = Nats::start();
    let server = process::spawn_server(&db, &["--nats", &nats.url, "--dispatch", "nats"]);
    let burst = runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.expect("nats"));
        // The stream exists once the relay has connected.
        let stream = loop {
            if let Ok(stream) = js.get_stream("REDIAL").await {
                break stream;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // CPU from just before the instant until the burst is in the stream, asked every
        // 50 ms with one call: the stream's own timestamps give the lags, so the asking
        // need not be quick, and it adds little to nats-server's work meanwhile.
        let before = (start - Utc::now() - chrono::Duration::milliseconds(200))
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(before).await;
        let (redial_ms, nats_ms) = (cpu_ms(server.child.id()), cpu_ms(nats.child.id()));
        let mut stream = stream;
        let waiting = Instant::now();
        while stream.info().await.expect("stream info").state.messages < n as u64 {
            assert!(
                waiting.elapsed() < Duration::from_secs(240),
                "the burst within four minutes"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The reader comes once the burst is in, so that it does not take the cores from the
        // relay and nats-server meanwhile (a dialer fleet runs on its own machines).
        let cpu_ms = (
            cpu_ms(server.child.id()) - redial_ms,
            cpu_ms(nats.child.id()) - nats_ms,
        );
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: "redial.events.redial.>".into(),
                ack_policy: AckPolicy::None,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("a consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let opens = start.timestamp_millis() as f64;
        let mut lags = Vec::with_capacity(n as usize);
        while lags.len() < n as usize {
            let message = tokio::time::timeout(Duration::from_secs(60), messages.next())
                .await
                .expect("a stored message at once")
                .expect("a message")
                .expect("a message");
            let stored = message.info().expect("JetStream info").published;
            let stored_ms = (stored.unix_timestamp_nanos() / 1_000_000) as f64;
            lags.push(stored_ms - opens);
        }
        lags.sort_by(f64::total_cmp);
        Burst { lags, cpu_ms }
    });
    server.terminate();
    burst
}

fn ingest(scratch: &Path, plan: &Plan) -> Vec<Turn> {
    let nats = Nats::start();
    in_turn(
        scratch,
        "relay",
        plan.ingest_requests,
        [&[], &["--nats", &nats.url]],
        Some(nats.child.id()),
        |_| {},
    )
}

pub fn report(r: &RelayFigures) {
    println!("## Relay to NATS JetStream (nats-server 2.9, file storage, same machine)\n");
    println!(
        "Throughput: {} stored pushes published from mark 0 in {:.2} s: **{:.0} events/s** \
         (start-up included); CPU: redial {:.1} µs, nats-server {:.1} µs a message.\n",
        r.throughput.pushes,
        r.throughput.seconds,
        r.rate(),
        r.throughput.cpu_ms.0 * 1000.0 / r.throughput.pushes as f64,
        r.throughput.cpu_ms.1 * 1000.0 / r.throughput.pushes as f64
    );
    let [first, p50, p99, max] = r.burst.spread();
    println!(
        "Burst: {} windows opening at one instant, window start to stored in the stream: \
         first {:.1} ms, p50 {:.1} ms, p99 **{:.1} ms**, max {:.1} ms; CPU from the instant \
         until all were in: redial {:.0} ms, nats-server {:.0} ms.\n",
        r.burst.lags.len(),
        first,
        p50,
        p99,
        max,
        r.burst.cpu_ms.0,
        r.burst.cpu_ms.1
    );
    crate::output::report_turns("relay", &r.ingest);
    let (on, off) = (r.median_ingest(true), r.median_ingest(false));
    println!(
        "\nIngest with the relay publishing every outcome: {on:.0} req/s against {off:.0} \
         without: **{:.2}×**. nats-server used {:.0} µs of CPU per request on the same two \
         cores (median of the runs with the relay).\n",
        on / off,
        median_of(&r.ingest, true, |t| t.other_cpu_us.unwrap_or(f64::NAN))
    );
}
