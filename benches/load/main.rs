//! The benchmark harness: everything `BENCHMARKS.md` reports, in one command.
//!
//! ```text
//! cargo bench --bench load               # the full run (preloads of 10k, 100k and 1M)
//! cargo bench --bench load -- --quick    # a small run, for CI: numbers not judged
//! cargo bench --bench load -- --huge     # adds a preload of 10M (several GB of disk)
//! cargo bench --bench load -- --only ingest   # one section: ingest, growth or dispatch
//! cargo bench --bench load -- --only burst    # the burst alone, five times (10k scheduled)
//! cargo bench --bench load -- --only growth --preloads 10000000   # chosen preload sizes
//! cargo bench --bench load -- --only ingest --levels 256   # chosen connection counts
//! BENCH_REDIAL_BIN=/tmp/old/redial cargo bench --bench load   # the server from another build
//! ```
//!
//! * Ingest: the release binary as a child process on a temporary database (`synchronous=FULL`),
//!   driven over keep-alive HTTP connections by the load generator below (one thread, the lean
//!   HTTP/1.1 client of `http1.rs`, distinct registered calls, realistic fields) at 16, 64,
//!   128 and 256 concurrent connections. Every success must be a row afterwards. Past 64 the
//!   rate levels off while waits keep growing; 128 fills the gap where the best trade of the
//!   two lies.
//! * Baselines, in the same run: the same rows inserted with rusqlite directly, in batches of
//!   1,000 per transaction (the raw ceiling) and one transaction per request (the naive
//!   design). Both are sampled before the first ingest level and after each; the medians are
//!   kept.
//! * Due lag, per preload size: windows preloaded far ahead, then 10,000 windows opening at one
//!   instant (three times; the burst with the median p99 is reported) and 1,000 spread over a
//!   minute; the scheduler runs on the real clock and four
//!   long-polling consumers record when each redial reaches them (lag = that instant minus the
//!   window's start).
//! * Dispatch: lease + ack in batches of 1, 10 and 100 with 1, 4 and 8 consumers; each figure
//!   the median of three runs.
//! * Start-up and memory: the binary started on each preloaded file, time to `/healthz` 200,
//!   resident memory from `/proc` at rest and after ingest.
//!
//! Results print as Markdown tables, ready for `BENCHMARKS.md`.

#[path = "../../tests/common/process.rs"]
#[allow(dead_code)]
mod process;

mod http1;

/// The allocator the service runs with (`src/main.rs`), for the parts measured in process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use redial::clock::Clock;
use redial::queue::{AckRequest, LeaseRequest, Queue};
use redial::scheduler::{self, Signals};
use redial::store::lifecycle::{agenda_slot, Policy, PARK_BUCKET, STAGE_AHEAD, UNPARK_AHEAD};
use redial::store::{open_write_connection, schema, Store, StoreOptions, Synchronous};
use rusqlite::{params, Connection};
use tokio_util::sync::CancellationToken;

struct Plan {
    quick: bool,
    /// Run only this section (`ingest`, `growth`, `dispatch`).
    only: Option<String>,
    preloads: Vec<i64>,
    ingest_levels: Vec<usize>,
    ingest_requests: usize,
    raw_rows: usize,
    naive_rows: usize,
    burst: i64,
    spread: i64,
    spread_over: Duration,
    growth_requests: usize,
}

impl Plan {
    fn runs(&self, section: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == section)
    }

    fn from_args() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let has = |flag: &str| args.iter().any(|a| a == flag);
        let only = args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1).cloned());
        if has("--quick") {
            return Self {
                quick: true,
                only,
                preloads: vec![10_000],
                ingest_levels: vec![16, 64],
                ingest_requests: 2_000,
                raw_rows: 2_000,
                naive_rows: 200,
                burst: 1_000,
                spread: 100,
                spread_over: Duration::from_secs(2),
                growth_requests: 1_000,
            };
        }
        let mut preloads = vec![10_000, 100_000, 1_000_000];
        if has("--huge") {
            preloads.push(10_000_000);
        }
        if let Some(sizes) = list_arg(&args, "--preloads") {
            preloads = sizes;
        }
        let ingest_levels = list_arg(&args, "--levels").unwrap_or_else(|| vec![16, 64, 128, 256]);
        Self {
            quick: false,
            only,
            preloads,
            ingest_levels,
            ingest_requests: 40_000,
            raw_rows: 40_000,
            naive_rows: 2_000,
            burst: 10_000,
            spread: 1_000,
            spread_over: Duration::from_secs(60),
            growth_requests: 40_000,
        }
    }
}

/// The comma-separated numbers after `flag`, if it was given.
fn list_arg<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<Vec<T>> {
    let at = args.iter().position(|a| a == flag)?;
    let list = args
        .get(at + 1)
        .unwrap_or_else(|| panic!("{flag} N[,N...]"));
    Some(
        list.split(',')
            .map(|n| {
                n.parse()
                    .unwrap_or_else(|_| panic!("{flag} N[,N...], not {list}"))
            })
            .collect(),
    )
}

fn main() {
    // The scheduler and the queue run in this process for the due-lag figures: as the service.
    redial::memory::turn_off_huge_pages();
    let plan = Plan::from_args();
    let scratch = tempfile::tempdir().expect("a temporary directory");
    println!(
        "# redial benchmarks, {} ({} mode)\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        if plan.quick { "quick" } else { "full" }
    );
    println!("{}\n", machine(scratch.path()));

    if plan.runs("ingest") {
        // Each baseline is a fraction of a second of work: one sample would carry whatever
        // the machine was doing then (the naive one, bound by fsync, swung from 3,500 to
        // 6,200 rows/s between runs). Samples before, between and after the ingest levels
        // share their phases; the medians are the baselines.
        let mut baselines = Baselines::default();
        baselines.sample(scratch.path(), &plan);
        let ingest = ingest_levels(&plan, scratch.path(), || {
            baselines.sample(scratch.path(), &plan)
        });
        report_ingest(&ingest, &baselines);
    }
    if plan.runs("growth") {
        let db = scratch.path().join("grown.db");
        let mut growth = Vec::new();
        let mut loaded = 0;
        for &size in &plan.preloads {
            preload_far(&db, loaded, size);
            loaded = size;
            let (burst, spread, dispatch) = runtime().block_on(due_lag(&db, &plan, size));
            let server = server_on(&db, &plan, size);
            growth.push(GrowthRow {
                size,
                burst,
                spread,
                dispatch,
                server,
            });
        }
        report_growth(&growth);
    }
    if plan.runs("dispatch") {
        let rows = runtime().block_on(dispatch_matrix(scratch.path(), &plan));
        report_dispatch(&rows);
    }
    if plan.only.as_deref() == Some("burst") {
        // Only the burst, at the smallest preload, five times: for working on it.
        let db = scratch.path().join("burst.db");
        let size = plan.preloads[0];
        preload_far(&db, 0, size);
        runtime().block_on(async {
            let live = Live::start(&db);
            println!("| burst at {size} scheduled | first ms | p50 ms | p99 ms | max ms |");
            println!("| --- | --- | --- | --- | --- |");
            for run in 1..=5 {
                let lags = burst_lag(&live, &plan, size * 10 + run).await;
                println!(
                    "| run {run} | {:.1} | {:.1} | {:.1} | {:.1} |",
                    pct(&lags, 0.0),
                    pct(&lags, 0.5),
                    pct(&lags, 0.99),
                    pct(&lags, 1.0)
                );
            }
            live.stop().await;
        });
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Cores, memory, the disk under the scratch directory, and the SQLite version.
fn machine(scratch: &Path) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or("?".to_owned(), |kb| format!("{} GiB", kb / 1024 / 1024));
    let disk = std::process::Command::new("df")
        .args(["--output=source,fstype", &scratch.display().to_string()])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "?".to_owned());
    format!(
        "Machine: {cores} cores, {memory} RAM, scratch files on {disk}; SQLite {}; load \
         generator on the same cores.",
        rusqlite::version()
    )
}

// ---- Ingest ----

/// An LCM request for call `i`, as a desktop would send it: a window tomorrow afternoon.
fn lcm_body(i: usize, day: &str) -> Vec<u8> {
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

/// Registers calls `0..n` and 200 logged-in agents directly in the file, before the server
/// starts: the prerequisite every LCM request needs.
fn register_calls(db: &Path, n: usize) {
    let mut conn = open_write_connection(db, Synchronous::Normal).expect("database");
    schema::migrate(&mut conn, None).expect("schema");
    conn.execute_batch("BEGIN").unwrap();
    for a in 0..200 {
        conn.execute(
            "INSERT OR IGNORE INTO agents (user_id, logged_in, updated_at) VALUES (?1, 1, 0)",
            [format!("agent{a}")],
        )
        .unwrap();
    }
    let mut insert = conn
        .prepare(
            "INSERT OR IGNORE INTO calls (callid, account_number, user_id, state, started_at)
             VALUES (?1, ?2, ?3, 'active', 0)",
        )
        .unwrap();
    for i in 0..n {
        insert
            .execute(params![
                format!("call-{i:08}"),
                format!("5|3|1|0|0|{i}|1"),
                format!("agent{}", i % 200)
            ])
            .unwrap();
    }
    drop(insert);
    conn.execute_batch("COMMIT; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

struct Load {
    concurrency: usize,
    requests: usize,
    ok: usize,
    seconds: f64,
    /// Sorted latencies, ms.
    latencies: Vec<f64>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Sends `bodies` to `url` as `POST`s over `concurrency` keep-alive connections, from one
/// thread, with the lean client of `http1.rs`.
fn drive(url: &str, bodies: Vec<Vec<u8>>, concurrency: usize) -> Load {
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
    })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn tomorrow() -> String {
    (Utc::now() + chrono::Duration::days(1))
        .format("%d/%m/%Y")
        .to_string()
}

fn count(db: &Path, table: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// What the server spent per request.
struct Cost {
    /// CPU time, user + system, µs: steadier than requests/s on a shared machine, so it is
    /// what two builds are compared by.
    cpu_us: f64,
    /// The load generator's CPU time, µs: what it took from the same two cores.
    driver_cpu_us: f64,
    /// Bytes the server sent to storage (WAL, checkpoints, log), KiB.
    written_kib: f64,
}

/// One server, fresh file, each concurrency level on its own calls.
fn ingest_levels(
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
        let cpu_before = cpu_seconds(server.child.id());
        let driver_before = cpu_seconds(std::process::id());
        let written_before = written_bytes(server.child.id());
        let load = drive(&url, bodies, concurrency);
        let requests = load.requests as f64;
        let cost = Cost {
            cpu_us: (cpu_seconds(server.child.id()) - cpu_before) * 1e6 / requests,
            driver_cpu_us: (cpu_seconds(std::process::id()) - driver_before) * 1e6 / requests,
            written_kib: (written_bytes(server.child.id()) - written_before) / 1024.0 / requests,
        };
        let rows = count(&db, "outcomes") - before;
        results.push((load, rows, cost));
        after_each();
    }
    server.terminate();
    results
}

/// Bytes a process has caused to be sent to storage, from `/proc/PID/io`.
fn written_bytes(pid: u32) -> f64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a write_bytes line")
}

/// CPU time a process has used, user + system, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
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

/// The same outcome and callback rows, inserted directly, `per_tx` requests a transaction.
fn baseline(scratch: &Path, name: &str, rows: usize, per_tx: usize) -> f64 {
    let db = scratch.join(format!("{name}.db"));
    register_calls(&db, rows);
    let conn = open_write_connection(&db, Synchronous::Full).expect("database");
    let now = Utc::now().timestamp_millis();
    let start = now + 86_400_000;
    // Where the service puts a callback this far off: parked in its hour's bucket.
    let (next_at, parked_at) = agenda_slot(start - STAGE_AHEAD.num_milliseconds(), now);
    let started = Instant::now();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(per_tx) {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for &i in chunk {
            conn.prepare_cached(
                "INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id,
                     window_start, window_end, local_start, local_end, timezone, state, open_at,
                     next_at, parked_at, created_at, updated_at, open_until, requested_start,
                     requested_end, window_start_local, window_end_local)
                 VALUES (?1, ?2, 1, ?3, ?4, ?4 + 3600000, '14/01/2026 09:00',
                     '14/01/2026 10:00', 'UTC', 'scheduled', ?4, ?6, ?7, ?5, ?5,
                     ?4 + 3600000, ?4, ?4 + 3600000, '2026-01-14T09:00:00Z',
                     '2026-01-14T10:00:00Z')",
            )
            .unwrap()
            .execute(params![
                format!("call-{i:08}"),
                format!("5|3|1|0|0|{i}|1"),
                format!("agent{}", i % 200),
                start,
                now,
                next_at,
                parked_at
            ])
            .unwrap();
            let callback = conn.last_insert_rowid();
            conn.prepare_cached(
                "INSERT INTO outcomes (callid, account_number, outcome_id, business_outcome,
                     user_id, agent_comments, lead_score, target_amount, source, callback_id,
                     received_at)
                 VALUES (?1, ?2, 4, 101, ?3, 'Customer asked to be called back.', 1.5, 250.0,
                     NULL, ?4, ?5)",
            )
            .unwrap()
            .execute(params![
                format!("call-{i:08}"),
                format!("5|3|1|0|0|{i}|1"),
                format!("agent{}", i % 200),
                callback,
                start
            ])
            .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

fn report_ingest(ingest: &[(Load, i64, Cost)], baselines: &Baselines) {
    println!("## Ingest (`POST /v1/lcm`, synchronous=FULL)\n");
    println!(
        "| connections | requests | req/s | p50 ms | p99 ms | max ms | successes | rows | \
         server CPU µs/request | load generator CPU µs/request | written KiB/request |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (load, rows, cost) in ingest {
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {:.0} | {:.0} | {:.1} |",
            load.concurrency,
            load.requests,
            load.rate(),
            pct(&load.latencies, 0.5),
            pct(&load.latencies, 0.99),
            pct(&load.latencies, 1.0),
            load.ok,
            rows,
            cost.cpu_us,
            cost.driver_cpu_us,
            cost.written_kib
        );
        if *rows != load.ok as i64 {
            println!("\n**{} successes but {rows} rows**\n", load.ok);
        }
    }
    let best = ingest.iter().map(|(l, _, _)| l.rate()).fold(0.0, f64::max);
    println!("\n| baseline | rows/s | redial (best) / baseline |");
    println!("| --- | --- | --- |");
    let raw = median(&baselines.raw);
    println!(
        "| raw: rusqlite, 1,000 requests a transaction (median of {}) | {raw:.0} | {:.2} |",
        samples(&baselines.raw),
        best / raw
    );
    let naive = median(&baselines.naive);
    println!(
        "| naive: one transaction a request (median of {}) | {naive:.0} | {:.1} |\n",
        samples(&baselines.naive),
        best / naive
    );
}

/// The baselines' samples, taken at the same moments of a run.
#[derive(Default)]
struct Baselines {
    raw: Vec<f64>,
    naive: Vec<f64>,
}

impl Baselines {
    fn sample(&mut self, scratch: &Path, plan: &Plan) {
        let n = self.raw.len() + 1;
        self.raw
            .push(baseline(scratch, &format!("raw-{n}"), plan.raw_rows, 1_000));
        self.naive
            .push(baseline(scratch, &format!("naive-{n}"), plan.naive_rows, 1));
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

fn samples(samples: &[f64]) -> String {
    let each: Vec<String> = samples.iter().map(|r| format!("{r:.0}")).collect();
    each.join(" / ")
}

// ---- Preloads, due lag, dispatch ----

/// Adds scheduled windows `from..to` a month ahead, as the service would store them.
fn preload_far(db: &Path, from: i64, to: i64) {
    let mut conn = open_write_connection(db, Synchronous::Normal).expect("database");
    schema::migrate(&mut conn, None).expect("schema");
    let start = Utc::now().timestamp_millis() + 30 * 86_400_000;
    insert_windows(&conn, "far", from, to, start, 0).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

/// Scheduled windows `from..to` for distinct accounts, the i-th opening at `start +
/// (i - from) * step` ms and lasting an hour, in one statement.
fn insert_windows(
    conn: &Connection,
    prefix: &str,
    from: i64,
    to: i64,
    start: i64,
    step: i64,
) -> Result<usize, rusqlite::Error> {
    conn.execute_batch(
        "INSERT OR IGNORE INTO calls (callid, account_number, user_id, state, started_at)
             VALUES ('bench', 'bench', 'agent', 'active', 0);
         INSERT OR IGNORE INTO agents (user_id, logged_in, updated_at) VALUES ('agent', 1, 0);",
    )?;
    // As the service stores them: on the agenda at the staging time, or parked until ten
    // minutes before that hour if it begins later than that (`lifecycle::agenda_slot`).
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT ?2 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?3),
             w(i, open, stage, unpark) AS (
                 SELECT i, ?4 + (i - ?2) * ?5, ?4 + (i - ?2) * ?5 - ?6,
                     (?4 + (i - ?2) * ?5 - ?6) / ?7 * ?7 - ?8
                 FROM n)
         INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
             window_end, local_start, local_end, timezone, state, open_at, next_at, parked_at,
             open_until, created_at, updated_at)
         SELECT 'bench', ?1 || i, 1, 'agent', open, open + 3600000, '', '', 'UTC', 'scheduled',
             open, CASE WHEN unpark > ?9 THEN NULL ELSE stage END,
             CASE WHEN unpark > ?9 THEN unpark END, open + 3600000, 0, 0
         FROM w",
        params![
            prefix,
            from,
            to,
            start,
            step,
            STAGE_AHEAD.num_milliseconds(),
            PARK_BUCKET.num_milliseconds(),
            UNPARK_AHEAD.num_milliseconds(),
            Utc::now().timestamp_millis()
        ],
    )
}

/// Lags in ms, sorted.
type Lags = Vec<f64>;

/// The service's scheduler and queue in process, on the real clock.
struct Live {
    store: Store,
    queue: Queue,
    stop: CancellationToken,
    scheduler: tokio::task::JoinHandle<()>,
    writer: redial::store::WriterThread,
}

impl Live {
    fn start(db: &Path) -> Self {
        let (store, writer) = Store::open(&StoreOptions::new(db)).expect("store");
        let clock = Clock::system();
        let policy = Arc::new(Policy::default());
        let signals = Arc::new(Signals::default());
        let stop = CancellationToken::new();
        let scheduler = tokio::spawn(scheduler::run(
            store.clone(),
            clock.clone(),
            Arc::clone(&policy),
            Arc::clone(&signals),
            stop.clone(),
        ));
        let queue = Queue {
            store: store.clone(),
            clock,
            signals,
            stop: stop.clone(),
            long_polls: Arc::new(tokio::sync::Semaphore::new(512)),
        };
        Self {
            store,
            queue,
            stop,
            scheduler,
            writer,
        }
    }

    /// Stores windows through the writer and tells the scheduler, as a request would.
    async fn schedule(&self, prefix: String, n: i64, start: i64, step: i64) {
        self.store
            .write(move |c| {
                Ok::<_, redial::store::StoreError>(insert_windows(c, &prefix, 0, n, start, step)?)
            })
            .await
            .expect("windows stored");
        self.queue
            .signals
            .schedule(Some(start - STAGE_AHEAD.num_milliseconds()));
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.scheduler.await;
        drop(self.queue);
        drop(self.store);
        tokio::task::spawn_blocking(move || self.writer.stop())
            .await
            .expect("writer stopped");
    }
}

/// `consumers` dialers long-poll for `n` redials in batches of up to `max`, acking each batch
/// alongside the next lease; returns each redial's lag behind its window's start, ms. Window
/// `i` (account `<prefix>i`) starts at `start + i * step` ms: events carry whole seconds only.
async fn consume(
    queue: &Queue,
    consumers: usize,
    max: i64,
    n: usize,
    (start, step): (i64, i64),
) -> Lags {
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..consumers {
        let (queue, done) = (queue.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let (mut lags, mut acks) = (Vec::new(), Vec::new());
            let consumer = format!("lag-{c}");
            while done.load(Ordering::SeqCst) < n {
                let events = queue
                    .lease(LeaseRequest {
                        consumer: consumer.clone(),
                        max,
                        lease_ms: 60_000,
                        wait_ms: 200,
                        user_id: None,
                    })
                    .await
                    .expect("lease");
                let now = Utc::now().timestamp_millis();
                for e in &events {
                    let (_, i) = e.account_number.rsplit_once('-').expect("<prefix>-<i>");
                    let i: i64 = i.parse().expect("a window index");
                    lags.push((now - (start + i * step)) as f64);
                }
                done.fetch_add(events.len(), Ordering::SeqCst);
                if !events.is_empty() {
                    let (queue, ack) = (
                        queue.clone(),
                        AckRequest {
                            consumer: consumer.clone(),
                            ids: events.iter().map(|e| e.id).collect(),
                        },
                    );
                    acks.push(tokio::spawn(async move { queue.ack(ack).await }));
                }
            }
            for ack in acks {
                ack.await.expect("ack task").expect("ack");
            }
            lags
        }));
    }
    let mut lags = Vec::new();
    for t in tasks {
        lags.extend(t.await.expect("consumer"));
    }
    lags.sort_by(f64::total_cmp);
    lags
}

/// Lease + ack events/s: `n` redials opened at once, then leased and acked by `consumers` in
/// batches of `batch`. The median of three such runs (one in quick mode): one run is a fraction
/// of a second of a noisy machine, and a single run once gave 103,000 events/s at the 100k
/// preload between 183,000 at 10k and 160,000 at 1M.
async fn dispatch(
    live: &Live,
    plan: &Plan,
    tag: &str,
    consumers: usize,
    batch: i64,
    n: i64,
) -> f64 {
    let runs = if plan.quick { 1 } else { 3 };
    let mut rates = Vec::new();
    for run in 0..runs {
        let open = Utc::now().timestamp_millis() + 1_000;
        live.schedule(format!("{tag}{run}-"), n, open, 0).await;
        until(open + 500).await;
        rates.push(lease_and_ack(&live.queue, consumers, batch, n as usize).await);
    }
    median(&rates)
}

/// Lease + ack of `n` ready redials in batches of `batch` by `consumers`, one after the other
/// per consumer: events/s, timed until the ack that completes the `n`th event.
async fn lease_and_ack(queue: &Queue, consumers: usize, batch: i64, n: usize) -> f64 {
    let (leased, acked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..consumers {
        let (queue, leased, acked) = (queue.clone(), Arc::clone(&leased), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let consumer = format!("dispatch-{c}");
            let mut finished = None;
            while leased.load(Ordering::SeqCst) < n {
                let events = queue
                    .lease(LeaseRequest {
                        consumer: consumer.clone(),
                        max: batch,
                        lease_ms: 60_000,
                        wait_ms: 100,
                        user_id: None,
                    })
                    .await
                    .expect("lease");
                if events.is_empty() {
                    continue;
                }
                leased.fetch_add(events.len(), Ordering::SeqCst);
                let ids = events.iter().map(|e| e.id).collect();
                let ack = AckRequest {
                    consumer: consumer.clone(),
                    ids,
                };
                let done = queue.ack(ack).await.expect("ack").len();
                if acked.fetch_add(done, Ordering::SeqCst) + done >= n {
                    finished = Some(started.elapsed());
                }
            }
            finished
        }));
    }
    let mut finished = None;
    for t in tasks {
        finished = finished.or(t.await.expect("consumer"));
    }
    n as f64 / finished.expect("every event acked").as_secs_f64()
}

/// Waits (on the real clock) until `at` ms.
async fn until(at: i64) {
    let wait = at - Utc::now().timestamp_millis();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

/// The burst: every window opens at the same instant, two seconds from now; staged at once.
/// `tag` keeps this burst's accounts apart from other bursts' on the same file.
async fn burst_lag(live: &Live, plan: &Plan, tag: i64) -> Lags {
    let instant = Utc::now().timestamp_millis() + 2_000;
    live.schedule(format!("burst{tag}-"), plan.burst, instant, 0)
        .await;
    consume(&live.queue, 4, 1_000, plan.burst as usize, (instant, 0)).await
}

/// Bursts measured at each preload size.
const BURSTS: i64 = 3;

/// Burst lags, spread lags, and lease+ack events/s at this preload.
async fn due_lag(db: &Path, plan: &Plan, size: i64) -> (Lags, Lags, f64) {
    let live = Live::start(db);
    // Three bursts, the one with the median p99 kept: one burst is one sample of a noisy
    // machine, and the first on a fresh service also pays for warming its caches.
    let mut bursts = Vec::new();
    for run in 0..BURSTS {
        bursts.push(burst_lag(&live, plan, size * 10 + run).await);
    }
    bursts.sort_by(|a, b| pct(a, 0.99).total_cmp(&pct(b, 0.99)));
    let burst = bursts.swap_remove(BURSTS as usize / 2);
    // The spread: evenly over the next minute.
    let first = Utc::now().timestamp_millis() + 2_000;
    let step = plan.spread_over.as_millis() as i64 / plan.spread;
    live.schedule(format!("spread{size}-"), plan.spread, first, step)
        .await;
    let spread = consume(&live.queue, 4, 100, plan.spread as usize, (first, step)).await;
    // Dispatch: 20,000 (quick: 2,000) redials all open, then leased and acked by 4 consumers;
    // three times (quick: once).
    let n = if plan.quick { 2_000 } else { 20_000 };
    let rate = dispatch(&live, plan, &format!("dispatch{size}-"), 4, 100, n).await;
    live.stop().await;
    (burst, spread, rate)
}

struct ServerFigures {
    startup_ms: f64,
    rss_idle_mib: f64,
    ingest: Load,
    rss_loaded_mib: f64,
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The binary on the preloaded file: start-up, memory, and ingest at 64 connections.
fn server_on(db: &Path, plan: &Plan, size: i64) -> ServerFigures {
    let first = size as usize;
    register_calls(db, first + plan.growth_requests);
    // Calls registered above would be counted as start-up work; only the server's is timed.
    let started = Instant::now();
    let server = process::spawn_server(db, &[]);
    let health = healthy(&server.url("/healthz"));
    let startup_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert!(health, "healthz answered 200");
    let pid = server.child.id();
    let rss_idle_mib = rss_mib(pid);
    let day = tomorrow();
    let bodies = (first..first + plan.growth_requests)
        .map(|i| lcm_body(i, &day))
        .collect();
    let ingest = drive(&server.url("/v1/lcm"), bodies, 64);
    let rss_loaded_mib = rss_mib(pid);
    server.terminate();
    ServerFigures {
        startup_ms,
        rss_idle_mib,
        ingest,
        rss_loaded_mib,
    }
}

struct GrowthRow {
    size: i64,
    burst: Lags,
    spread: Lags,
    dispatch: f64,
    server: ServerFigures,
}

fn report_growth(rows: &[GrowthRow]) {
    println!("## Due lag, dispatch, memory and start-up against preload size\n");
    println!(
        "Lag: from a window's start to a long-polling consumer holding its redial (4 consumers). \
         Burst: all windows open at one instant (the median of three bursts by p99); spread: evenly over a minute (quick: 2 s). \
         Dispatch: lease + ack, batches of 100, 4 consumers (the median of three runs; quick: one). Ingest: 40,000 requests (quick: \
         1,000) at 64 connections.\n"
    );
    println!(
        "| scheduled | burst p50 / p99 / max ms | spread p50 / p99 / max ms | dispatch events/s | \
         start-up ms | RSS idle MiB | ingest req/s (p99 ms) | RSS after ingest MiB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!(
            "| {} | {:.1} / {:.1} / {:.1} ({}) | {:.1} / {:.1} / {:.1} ({}) | {:.0} | {:.0} | {:.1} | {:.0} ({:.1}) | {:.1} |",
            r.size,
            pct(&r.burst, 0.5),
            pct(&r.burst, 0.99),
            pct(&r.burst, 1.0),
            r.burst.len(),
            pct(&r.spread, 0.5),
            pct(&r.spread, 0.99),
            pct(&r.spread, 1.0),
            r.spread.len(),
            r.dispatch,
            r.server.startup_ms,
            r.server.rss_idle_mib,
            r.server.ingest.rate(),
            pct(&r.server.ingest.latencies, 0.99),
            r.server.rss_loaded_mib
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        // Each as a cost, so that over 1 always means dearer at the largest preload: a wait
        // grows with its value, a rate with its inverse.
        println!(
            "\nCost at the largest preload against the smallest (over 1: dearer): \
             burst p99 ×{:.2}, dispatch ×{:.2}, ingest ×{:.2}.\n",
            pct(&last.burst, 0.99) / pct(&first.burst, 0.99),
            first.dispatch / last.dispatch,
            first.server.ingest.rate() / last.server.ingest.rate(),
        );
    }
}

/// Lease + ack in batches of 1, 10 and 100 with 1, 4 and 8 consumers, on a fresh file.
async fn dispatch_matrix(scratch: &Path, plan: &Plan) -> Vec<(i64, usize, f64)> {
    let db: PathBuf = scratch.join("dispatch.db");
    let live = Live::start(&db);
    let mut rows = Vec::new();
    for batch in [1i64, 10, 100] {
        for consumers in [1usize, 4, 8] {
            let n = if plan.quick {
                100 * batch.min(10)
            } else {
                1_000 * batch.min(20)
            };
            let rate = dispatch(
                &live,
                plan,
                &format!("d{batch}-{consumers}-"),
                consumers,
                batch,
                n,
            )
            .await;
            rows.push((batch, consumers, rate));
        }
    }
    live.stop().await;
    rows
}

fn report_dispatch(rows: &[(i64, usize, f64)]) {
    println!("## Dispatch: lease + ack (events/s, the median of three runs; quick: one)\n");
    println!("| batch | 1 consumer | 4 consumers | 8 consumers |");
    println!("| --- | --- | --- | --- |");
    for batch in [1i64, 10, 100] {
        let cells: Vec<String> = rows
            .iter()
            .filter(|r| r.0 == batch)
            .map(|r| format!("{:.0}", r.2))
            .collect();
        println!("| {batch} | {} |", cells.join(" | "));
    }
    println!();
}

/// One GET: whether it answered 200.
fn healthy(url: &str) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        reqwest::Client::new()
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
}
