//! The benchmark harness: everything `BENCHMARKS.md` reports, in one command.
//!
//! ```text
//! cargo bench --bench load               # the full run (preloads of 10k, 100k and 1M)
//! cargo bench --bench load -- --quick    # a small run, for CI: numbers not judged
//! cargo bench --bench load -- --huge     # adds a preload of 10M (several GB of disk)
//! cargo bench --bench load -- --only ingest   # one section: ingest, metrics, relay, family, bus, supervise, growth, dispatch, hostile
//! cargo bench --bench load -- --only burst    # the burst alone, five times (10k scheduled)
//! cargo bench --bench load -- --only relay-burst  # the relay's burst alone, three times
//! cargo bench --bench load -- --only desktops # the bus's pushes to 1,000 desktops alone
//! cargo bench --bench load -- --only growth --preloads 10000000   # chosen preload sizes
//! cargo bench --bench load -- --only ingest --levels 256   # chosen connection counts
//! BENCH_REDIAL_BIN=/tmp/old/redial cargo bench --bench load   # the server from another build
//! ```
//!
//! One module per section: [`ingest`] (over HTTP, with [`baselines`] in the same run),
//! [`metrics`] (what recording metrics costs ingest, on against off in turn), [`relay`] (to
//! NATS JetStream: throughput, the burst, ingest with it on),
//! [`family`] (the LCM family's mixed workload and the personal-callback list), [`bus`] (the
//! WebSocket bus: requests, and pushes to a thousand desktops), [`supervise`] (finding
//! callbacks and `redial report` among a million),
//! [`lag`] (due lag, in process), [`dispatch`], [`growth`] (against preload size), [`hostile`]
//! (slow clients); [`output`] prints Markdown tables. Preloads go through the store's bulk
//! path and everything else through the service, as in production.

#[path = "../../tests/common/process.rs"]
#[allow(dead_code)]
mod process;

mod baselines;
mod bus;
mod dispatch;
mod family;
mod growth;
mod hostile;
mod http1;
mod ingest;
mod lag;
mod metrics;
mod output;
mod relay;
mod supervise;

/// The allocator the service runs with (`src/main.rs`), for the parts measured in process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use rusqlite::Connection;

use baselines::Baselines;

pub struct Plan {
    pub quick: bool,
    /// Run only this section (`ingest`, `family`, `growth`, `dispatch`, `hostile`).
    pub only: Option<String>,
    pub preloads: Vec<i64>,
    pub ingest_levels: Vec<usize>,
    pub ingest_requests: usize,
    pub raw_rows: usize,
    pub naive_rows: usize,
    pub burst: i64,
    pub spread: i64,
    pub spread_over: Duration,
    pub growth_requests: usize,
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
        // Samples before, between and after the ingest levels share their phases of the
        // machine; the medians are the baselines.
        let mut baselines = Baselines::default();
        baselines.sample(scratch.path(), &plan);
        let ingest = ingest::ingest_levels(&plan, scratch.path(), || {
            baselines.sample(scratch.path(), &plan)
        });
        output::report_ingest(&ingest, &baselines);
    }
    if plan.runs("metrics") {
        output::report_metrics(&metrics::metrics_cost(scratch.path(), &plan));
    }
    if plan.runs("relay") {
        if let Some(figures) = relay::relay(scratch.path(), &plan) {
            relay::report(&figures);
        }
    }
    if plan.runs("family") {
        let mix = family::mixed_against_pcb(scratch.path(), &plan);
        output::report_family(&mix, &family::list(scratch.path(), &plan));
    }
    if plan.runs("bus") || plan.only.as_deref() == Some("desktops") {
        output::report_bus(&bus::bus(scratch.path(), &plan));
    }
    if plan.runs("supervise") {
        output::report_supervise(&supervise::supervise(scratch.path(), &plan));
    }
    if plan.runs("growth") {
        output::report_growth(&growth::growth(scratch.path(), &plan));
    }
    if plan.runs("dispatch") {
        let rows = runtime().block_on(dispatch::dispatch_matrix(scratch.path(), &plan));
        output::report_dispatch(&rows);
    }
    if plan.runs("hostile") {
        output::report_hostile(&hostile::hostile(scratch.path(), &plan));
    }
    if plan.only.as_deref() == Some("burst") {
        burst_alone(scratch.path(), &plan);
    }
    if plan.only.as_deref() == Some("relay-burst") {
        relay::burst_alone(scratch.path(), &plan);
    }
}

/// Only the burst, at the smallest preload, five times: for working on it.
fn burst_alone(scratch: &Path, plan: &Plan) {
    let db = scratch.join("burst.db");
    let size = plan.preloads[0];
    lag::preload_far(&db, 0, size);
    runtime().block_on(async {
        let live = lag::Live::start(&db).await;
        println!("| burst at {size} scheduled | first ms | p50 ms | p99 ms | max ms |");
        println!("| --- | --- | --- | --- | --- |");
        for run in 1..=5 {
            let lags = lag::burst_lag(&live, plan, size * 10 + run).await;
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

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
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
