//! Ingest: the release binary as a child process on a temporary database
//! (`synchronous=FULL`), driven over keep-alive HTTP connections by one thread with the lean
//! client of `http1.rs`, distinct registered calls, realistic fields. Every success must be a
//! row afterwards. The server's CPU time and the bytes it wrote per request are read from
//! `/proc`: on a shared machine they move far less between runs than requests per second.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use redial::lcm::{AccountNumber, CallId, UserId};
use redial::store::{bulk, open_write_connection, schema, telephony, Synchronous};

use crate::{count, http1, process, tomorrow, Plan};

/// An LCM request for call `i`, as a desktop would send it: a window tomorrow afternoon.
pub fn lcm_body(i: usize, day: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "channel": "LCM", "topic": "WebService",
        "subtopic": "SetBusinessOutcomeWithPersonalCallback",
        "data": {
            "callid": format!("call-{i:08}"), "AccountNumber": format!("5|3|1|0|0|{i}|1"),
            "OutcomeId": 4, "BusinessOutcome": 101 + (i % 7),
            "StartDate": day, "EndDate": day,
            "StartTime": format!("{:02}:{:02}", 9 + i % 8, (i * 7) % 60),
            "EndTime": format!("{:02}:{:02}", 10 + i % 8, (i * 7) % 60),
            "CallbackModeID": 1, "UserID": format!("agent{}", i % 200),
            "AgentComments": "Customer asked to be called back after checking the offer with their partner.",
            "LeadScore": (i % 100) as f64 / 10.0, "TargetAmount": 250.0 + (i % 50) as f64
        }
    }))
    .expect("JSON")
}

/// Logs 200 agents in and registers calls `0..n` in the file, before the server starts: the
/// prerequisite every LCM request needs. The store's own statements, in one transaction.
pub fn register_calls(db: &Path, n: usize) {
    let mut conn = open_write_connection(db, Synchronous::Normal).expect("database");
    schema::migrate(&mut conn, None).expect("schema");
    let now = Utc::now();
    let tx = conn.transaction().expect("a transaction");
    let agents: Vec<UserId> = (0..200)
        .map(|a| UserId::parse(format!("agent{a}")).expect("an agent"))
        .collect();
    for agent in &agents {
        telephony::set_agent_login(&tx, agent, true, now).expect("logged in");
    }
    for i in 0..n {
        let callid = CallId::parse(format!("call-{i:08}")).expect("a callid");
        if telephony::find_call(&tx, &callid).expect("read").is_some() {
            continue;
        }
        let account = AccountNumber::parse(format!("5|3|1|0|0|{i}|1")).expect("an account");
        telephony::insert_call(&tx, &callid, &account, &agents[i % 200], now).expect("a call");
    }
    tx.commit().expect("committed");
    bulk::settle(&conn).expect("checkpointed");
}

pub struct Load {
    pub concurrency: usize,
    pub requests: usize,
    pub ok: usize,
    pub seconds: f64,
    /// Sorted latencies, ms.
    pub latencies: Vec<f64>,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Sends `bodies` to `url` as `POST`s over `concurrency` keep-alive connections, from one
/// thread, with the lean client of `http1.rs`.
pub fn drive(url: &str, bodies: Vec<Vec<u8>>, concurrency: usize) -> Load {
    let (address, path) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .map(|(address, path)| (address.to_owned(), format!("/{path}")))
        .expect("an http:// URL with a path");
    let requests: Vec<Vec<u8>> = bodies
        .iter()
        .map(|body| http1::post_json(&address, &path, body))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let requests = Arc::new(requests);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (requests, next) = (Arc::clone(&requests), Arc::clone(&next));
            let mut connection = http1::Connection::new(&address);
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut latencies) = (0, Vec::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(i) else {
                        break;
                    };
                    let sent = Instant::now();
                    let status = connection.send(request).await.expect("the server answers");
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    ok += usize::from((200..300).contains(&status));
                }
                (ok, latencies)
            }));
        }
        collect(tasks, started, concurrency).await
    })
}

/// The load of one run from its tasks, each of which gives its successes and latencies (ms),
/// started together at `started`.
pub async fn collect(
    tasks: Vec<tokio::task::JoinHandle<(usize, Vec<f64>)>>,
    started: Instant,
    concurrency: usize,
) -> Load {
    let (mut ok, mut latencies) = (0, Vec::new());
    for task in tasks {
        let (o, l) = task.await.expect("a load task");
        ok += o;
        latencies.extend(l);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Load {
        concurrency,
        requests: latencies.len(),
        ok,
        seconds,
        latencies,
    }
}

/// What the server spent per request.
pub struct Cost {
    /// CPU time, user + system, µs: steadier than requests/s on a shared machine, so it is
    /// what two builds are compared by.
    pub cpu_us: f64,
    /// The load generator's CPU time, µs: what it took from the same two cores.
    pub driver_cpu_us: f64,
    /// Bytes the server sent to storage (WAL, checkpoints, log), KiB.
    pub written_kib: f64,
}

/// One server, fresh file, each concurrency level on its own calls.
pub fn ingest_levels(
    plan: &Plan,
    scratch: &Path,
    mut after_each: impl FnMut(),
) -> Vec<(Load, i64, Cost)> {
    let db = scratch.join("ingest.db");
    let total = plan.ingest_requests * plan.ingest_levels.len();
    register_calls(&db, total);
    let server = process::spawn_server(&db, &[]);
    let url = server.url("/v1/lcm");
    let day = tomorrow();
    let mut results = Vec::new();
    for (level, &concurrency) in plan.ingest_levels.iter().enumerate() {
        let first = level * plan.ingest_requests;
        let bodies = (first..first + plan.ingest_requests)
            .map(|i| lcm_body(i, &day))
            .collect();
        let before = count(&db, "outcomes");
        let (load, cost) = measure(&server, &url, bodies, concurrency);
        let rows = count(&db, "outcomes") - before;
        results.push((load, rows, cost));
        after_each();
    }
    server.terminate();
    results
}

/// [`drive`] against `server`, with what the server spent on it.
pub fn measure(
    server: &process::ServerProcess,
    url: &str,
    bodies: Vec<Vec<u8>>,
    concurrency: usize,
) -> (Load, Cost) {
    let pid = server.child.id();
    let cpu_before = cpu_seconds(pid);
    let driver_before = cpu_seconds(std::process::id());
    let written_before = written_bytes(pid);
    let load = drive(url, bodies, concurrency);
    let requests = load.requests as f64;
    let cost = Cost {
        cpu_us: (cpu_seconds(pid) - cpu_before) * 1e6 / requests,
        driver_cpu_us: (cpu_seconds(std::process::id()) - driver_before) * 1e6 / requests,
        written_kib: (written_bytes(pid) - written_before) / 1024.0 / requests,
    };
    (load, cost)
}

/// Bytes a process has caused to be sent to storage, from `/proc/PID/io`.
pub fn written_bytes(pid: u32) -> f64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a write_bytes line")
}

/// CPU time a process has used, user + system, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // USER_HZ is 100 on every Linux this runs on.
    ticks / 100.0
}

/// One run of [`in_turn`].
pub struct Turn {
    /// Whether it was the server with the feature on.
    pub on: bool,
    pub load: Load,
    pub cost: Cost,
    /// Another process's CPU per request in this run, µs (nats-server, say).
    pub other_cpu_us: Option<f64>,
}

/// The order of [`in_turn`]'s runs: each server as often early as late in the sequence.
const TURNS: [bool; 6] = [false, true, true, false, false, true];

/// What a feature costs ingest: a server started with `off_args` and one with `on_args`, each
/// on its own file, driven in turn (off, on, on, off, off, on) at 64 connections, `per_run`
/// requests a run, so that both share the machine's phases. `other` is a process whose CPU
/// per request is read around the runs with the feature on; `last` sees the server with the
/// feature on before it stops.
pub fn in_turn(
    scratch: &Path,
    name: &str,
    per_run: usize,
    [off_args, on_args]: [&[&str]; 2],
    other: Option<u32>,
    last: impl FnOnce(&process::ServerProcess),
) -> Vec<Turn> {
    let total = per_run * TURNS.len() / 2;
    let (off_db, on_db) = (
        scratch.join(format!("{name}-off.db")),
        scratch.join(format!("{name}-on.db")),
    );
    register_calls(&off_db, total);
    register_calls(&on_db, total);
    let off = process::spawn_server(&off_db, off_args);
    let on = process::spawn_server(&on_db, on_args);
    let day = tomorrow();
    let (mut next_off, mut next_on) = (0, 0);
    let mut turns = Vec::new();
    for feature in TURNS {
        let (server, next) = if feature {
            (&on, &mut next_on)
        } else {
            (&off, &mut next_off)
        };
        let bodies = (*next..*next + per_run)
            .map(|i| lcm_body(i, &day))
            .collect();
        *next += per_run;
        let other_before = other.filter(|_| feature).map(cpu_seconds);
        let (load, cost) = measure(server, &server.url("/v1/lcm"), bodies, 64);
        let other_cpu_us = other
            .zip(other_before)
            .map(|(pid, before)| (cpu_seconds(pid) - before) * 1e6 / load.requests as f64);
        turns.push(Turn {
            on: feature,
            load,
            cost,
            other_cpu_us,
        });
    }
    last(&on);
    off.terminate();
    on.terminate();
    turns
}

/// The median of `figure` over the runs with the feature `on` (or off).
pub fn median_of(turns: &[Turn], on: bool, figure: impl Fn(&Turn) -> f64) -> f64 {
    let values: Vec<f64> = turns.iter().filter(|t| t.on == on).map(figure).collect();
    crate::median(&values)
}
