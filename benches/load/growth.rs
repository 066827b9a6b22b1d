//! Growth: due lag, dispatch, start-up, memory and ingest against the number of windows
//! scheduled (preloads of 10k, 100k and 1M; 10M with `--huge`), on one file that grows.

use std::path::Path;
use std::time::Instant;

use crate::ingest::{drive, lcm_body, register_calls, Load};
use crate::lag::{due_lag, preload_far, Lags};
use crate::{process, runtime, tomorrow, Plan};

pub struct ServerFigures {
    pub startup_ms: f64,
    pub rss_idle_mib: f64,
    pub ingest: Load,
    pub rss_loaded_mib: f64,
}

pub struct GrowthRow {
    pub size: i64,
    pub burst: Lags,
    pub spread: Lags,
    pub dispatch: f64,
    pub server: ServerFigures,
}

/// Every preload size of the plan, in turn, on one file.
pub fn growth(scratch: &Path, plan: &Plan) -> Vec<GrowthRow> {
    let db = scratch.join("grown.db");
    let mut rows = Vec::new();
    let mut loaded = 0;
    for &size in &plan.preloads {
        preload_far(&db, loaded, size);
        loaded = size;
        let (burst, spread, dispatch) = runtime().block_on(due_lag(&db, plan, size));
        let server = server_on(&db, plan, size);
        rows.push(GrowthRow {
            size,
            burst,
            spread,
            dispatch,
            server,
        });
    }
    rows
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

/// One GET: whether it answered 200.
pub fn healthy(url: &str) -> bool {
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
