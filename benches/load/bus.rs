//! The bus: PCB requests over 64 WebSocket connections against the same requests over 64 HTTP
//! connections, rounds alternating on one server; then 1,000 desktops subscribed (quick: 100)
//! while 10 windows of each of their agents (10,000) open at one instant: the lag from the
//! window's start to `PersonalCallbackDue` arriving, and the server's memory per idle socket.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use futures_util::{SinkExt, StreamExt};
use redial::lcm::UserId;
use redial::store::bulk::{self, Windows};
use redial::store::{open_write_connection, schema, Synchronous};
use tokio_tungstenite::tungstenite::Message;

use crate::ingest::{collect, cpu_seconds, lcm_body, measure, register_calls, Cost, Load};
use crate::{count, process, tomorrow, Plan};

const CONNECTIONS: usize = 64;

/// One side of a round: its load, what the server spent, and the rows it stored.
pub type Side = (Load, Cost, i64);

pub struct BusFigures {
    pub requests: usize,
    /// Per round: HTTP, then the bus.
    pub rounds: Vec<(Side, Side)>,
    pub desktops: usize,
    pub windows: usize,
    /// Sorted lags, ms, from the window's start to the push's arrival.
    pub lags: Vec<f64>,
    /// Server RSS growth per idle subscribed socket, KiB.
    pub kib_per_socket: f64,
}

pub fn bus(scratch: &Path, plan: &Plan) -> BusFigures {
    let rounds = match (plan.quick, plan.only.as_deref()) {
        (_, Some("desktops")) => 0,
        (true, _) => 1,
        (false, _) => 3,
    };
    let requests = plan.ingest_requests;
    let db = scratch.join("bus.db");
    register_calls(&db, 2 * rounds * requests);
    let server = process::spawn_server(&db, &[]);
    let url = server.url("/v1/lcm");
    let ws_url = format!("{}/v1/bus", server.base.replacen("http://", "ws://", 1));
    let day = tomorrow();
    let mut figures = Vec::new();
    for round in 0..rounds {
        let first = 2 * round * requests;
        let bodies = (first..first + requests)
            .map(|i| lcm_body(i, &day))
            .collect();
        let before = count(&db, "outcomes");
        let (load, cost) = measure(&server, &url, bodies, CONNECTIONS);
        let http = (load, cost, count(&db, "outcomes") - before);
        let first = first + requests;
        let bodies: Vec<Vec<u8>> = (first..first + requests)
            .map(|i| lcm_body(i, &day))
            .collect();
        let before = count(&db, "outcomes");
        let (load, cost) = measure_bus(&server, &ws_url, bodies);
        figures.push((http, (load, cost, count(&db, "outcomes") - before)));
    }
    let desktops = if plan.quick { 100 } else { 1_000 };
    let kib_per_socket = idle_sockets(&server, &ws_url, desktops);
    server.terminate();
    let lags = due_to_desktops(scratch, desktops);
    BusFigures {
        requests,
        rounds: figures,
        desktops,
        windows: desktops * WINDOWS_EACH,
        lags,
        kib_per_socket,
    }
}

/// Each body over one of [`CONNECTIONS`] sockets, one request at a time on each, as
/// [`crate::ingest::measure`] does over HTTP.
fn measure_bus(server: &process::ServerProcess, url: &str, bodies: Vec<Vec<u8>>) -> (Load, Cost) {
    let pid = server.child.id();
    let (cpu_before, driver_before) = (cpu_seconds(pid), cpu_seconds(std::process::id()));
    let written_before = crate::ingest::written_bytes(pid);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let load = runtime.block_on(async {
        let bodies = Arc::new(bodies);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut sockets = Vec::new();
        for _ in 0..CONNECTIONS {
            let (ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("a socket");
            sockets.push(ws);
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for mut ws in sockets {
            let (bodies, next) = (Arc::clone(&bodies), Arc::clone(&next));
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut latencies) = (0, Vec::new());
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let text = String::from_utf8(body.clone()).expect("UTF-8");
                    let sent = Instant::now();
                    ws.send(Message::Text(text.into())).await.expect("sent");
                    let reply = loop {
                        match ws.next().await.expect("a reply").expect("a frame") {
                            Message::Text(reply) => break reply,
                            _ => continue,
                        }
                    };
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    ok += usize::from(reply.contains(r#""success":true"#));
                }
                (ok, latencies)
            }));
        }
        collect(tasks, started, CONNECTIONS).await
    });
    let requests = load.requests as f64;
    let cost = Cost {
        cpu_us: (cpu_seconds(pid) - cpu_before) * 1e6 / requests,
        driver_cpu_us: (cpu_seconds(std::process::id()) - driver_before) * 1e6 / requests,
        written_kib: (crate::ingest::written_bytes(pid) - written_before) / 1024.0 / requests,
    };
    (load, cost)
}

/// The server's RSS growth per socket, KiB, for `n` sockets subscribed to agents of their
/// own that have nothing coming, once they are all idle.
fn idle_sockets(server: &process::ServerProcess, url: &str, n: usize) -> f64 {
    let pid = server.child.id();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let before = rss_kib(pid);
        let mut sockets = Vec::new();
        for d in 0..n {
            sockets.push(subscribed(url, &format!("idle{d}")).await);
        }
        let kib = (rss_kib(pid) - before) / n as f64;
        drop(sockets);
        kib
    })
}

/// A socket subscribed to `user`'s pushes, its reply read.
async fn subscribed(
    url: &str,
    user: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a socket");
    let subscribe = serde_json::json!({"channel": "LCM", "topic": "Bus",
        "subtopic": "Subscribe", "data": {"UserID": user}});
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("sent");
    match ws.next().await.expect("a reply").expect("a frame") {
        Message::Text(reply) => assert!(reply.contains(r#""success":true"#), "{reply}"),
        other => panic!("expected the subscription's reply, got {other:?}"),
    }
    ws
}

/// Windows each desktop's agent has opening at the instant.
const WINDOWS_EACH: usize = 10;

/// `desktops` agents with [`WINDOWS_EACH`] windows each, all opening at one instant a few
/// seconds after the server starts (staged meanwhile); each agent's desktop subscribed before
/// it. Returns the sorted lags (ms).
fn due_to_desktops(scratch: &Path, desktops: usize) -> Vec<f64> {
    let db = scratch.join("bus-due.db");
    let instant = Utc::now() + Duration::seconds(if desktops > 100 { 15 } else { 6 });
    {
        let mut conn = open_write_connection(&db, Synchronous::Normal).expect("database");
        schema::migrate(&mut conn, None).expect("schema");
        let tx = conn.transaction().expect("a transaction");
        for d in 0..desktops {
            let user = UserId::parse(format!("desk{d}")).expect("an agent");
            let windows = Windows {
                prefix: &format!("desk{d}-"),
                from: 0,
                to: WINDOWS_EACH as i64,
                start: instant,
                step: Duration::zero(),
                length: Duration::hours(1),
                user: &user,
            };
            bulk::insert_windows(&tx, &windows, Utc::now()).expect("windows");
        }
        tx.commit().expect("committed");
        bulk::settle(&conn).expect("checkpointed");
    }
    let server = process::spawn_server(&db, &[]);
    let url = format!("{}/v1/bus", server.base.replacen("http://", "ws://", 1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let lags = runtime.block_on(async {
        let mut sockets = Vec::new();
        for d in 0..desktops {
            sockets.push(subscribed(&url, &format!("desk{d}")).await);
        }
        assert!(
            Utc::now() < instant,
            "the desktops were not all subscribed before the windows opened"
        );
        let start_ms = instant.timestamp_millis();
        let mut tasks = Vec::new();
        for mut ws in sockets {
            tasks.push(tokio::spawn(async move {
                let mut lags = Vec::new();
                while lags.len() < WINDOWS_EACH {
                    if let Message::Text(push) = ws.next().await.expect("a push").expect("a frame")
                    {
                        if push.contains("PersonalCallbackDue") {
                            lags.push((Utc::now().timestamp_millis() - start_ms) as f64);
                        }
                    }
                }
                lags
            }));
        }
        let mut lags = Vec::new();
        for task in tasks {
            lags.extend(task.await.expect("a desktop"));
        }
        lags.sort_by(f64::total_cmp);
        lags
    });
    if let Some(path) = std::env::var_os("BENCH_KEEP_LOG") {
        std::fs::write(path, server.log.lock().unwrap().join("\n")).expect("log written");
    }
    server.terminate();
    lags
}

/// A process's resident memory, KiB, from `/proc/PID/status`.
fn rss_kib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .expect("a VmRSS line")
}
