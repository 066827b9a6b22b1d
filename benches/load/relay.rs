//! The relay to NATS JetStream, against a local `nats-server -js` with file storage (skipped,
//! saying so, when the binary is absent):
//!
//! - **throughput**: pushes already stored (outcomes of the past hour) published from a mark of
//!   0, until the stream acknowledged them all;
//! - **burst**: 10,000 windows opening at one instant (`--dispatch nats`); each redial's lag is
//!   the instant the stream stored it (JetStream's own timestamp) minus its window's start;
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
    pub pushes: usize,
    pub seconds: f64,
    /// The burst's lags, ms, sorted.
    pub burst: Vec<f64>,
    /// Ingest with the relay on and off; nats-server's CPU per request is read in the runs
    /// with it on (on the same cores).
    pub ingest: Vec<Turn>,
}

impl RelayFigures {
    pub fn rate(&self) -> f64 {
        self.pushes as f64 / self.seconds
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

/// `None` (and a line saying why) without `nats-server`.
pub fn relay(scratch: &Path, plan: &Plan) -> Option<RelayFigures> {
    if !Path::new(NATS_SERVER).exists() {
        println!("## Relay to NATS JetStream\n\nSkipped: {NATS_SERVER} is not installed (apt-get install -y nats-server).\n");
        return None;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let pushes = if plan.quick { 5_000 } else { 200_000 };
    let (seconds, pushes) = throughput(scratch, &runtime, pushes);
    let burst = burst(
        scratch,
        &runtime,
        if plan.quick { 1_000 } else { plan.burst },
    );
    let ingest = ingest(scratch, plan);
    Some(RelayFigures {
        pushes,
        seconds,
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

fn throughput(scratch: &Path, runtime: &tokio::runtime::Runtime, n: usize) -> (f64, usize) {
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
    server.terminate();
    (seconds, n)
}

fn burst(scratch: &Path, runtime: &tokio::runtime::Runtime, n: i64) -> Vec<f64> {
    let db = scratch.join("relay-burst.db");
    // Far enough ahead for the server to start and stage them as it would any window.
    let start = Utc::now() + chrono::Duration::seconds(75);
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
    let lags = runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.expect("nats"));
        // The stream exists once the relay has connected.
        let stream = loop {
            if let Ok(stream) = js.get_stream("REDIAL").await {
                break stream;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
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
            let message = tokio::time::timeout(Duration::from_secs(120), messages.next())
                .await
                .expect("the burst within two minutes")
                .expect("a message")
                .expect("a message");
            let stored = message.info().expect("JetStream info").published;
            let stored_ms = (stored.unix_timestamp_nanos() / 1_000_000) as f64;
            lags.push(stored_ms - opens);
        }
        lags
    });
    server.terminate();
    let mut lags = lags;
    lags.sort_by(f64::total_cmp);
    lags
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
         (start-up included).\n",
        r.pushes,
        r.seconds,
        r.rate()
    );
    println!(
        "Burst: {} windows opening at one instant, window start to stored in the stream: \
         first {:.1} ms, p50 {:.1} ms, p99 **{:.1} ms**, max {:.1} ms.\n",
        r.burst.len(),
        pct(&r.burst, 0.0),
        pct(&r.burst, 0.5),
        pct(&r.burst, 0.99),
        pct(&r.burst, 1.0)
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
