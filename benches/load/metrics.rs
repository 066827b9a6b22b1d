//! What recording metrics costs ingest: two servers, one with `--metrics false`, driven in
//! turn (off, on, on, off, off, on) at 64 connections, so that both share the machine's
//! phases; the medians are compared. One scrape of `/metrics` is timed on the loaded file.

use std::path::Path;
use std::time::Instant;

use crate::ingest::{lcm_body, measure, register_calls, Cost, Load};
use crate::{median, process, tomorrow, Plan};

pub struct MetricsFigures {
    /// Each run: whether metrics were on, and its load and cost.
    pub runs: Vec<(bool, Load, Cost)>,
    /// One scrape after the runs: ms, and bytes of text.
    pub scrape_ms: f64,
    pub scrape_bytes: usize,
}

impl MetricsFigures {
    pub fn median_rate(&self, on: bool) -> f64 {
        let rates: Vec<f64> = self
            .runs
            .iter()
            .filter(|(o, _, _)| *o == on)
            .map(|(_, load, _)| load.rate())
            .collect();
        median(&rates)
    }

    pub fn median_cpu_us(&self, on: bool) -> f64 {
        let cpu: Vec<f64> = self
            .runs
            .iter()
            .filter(|(o, _, _)| *o == on)
            .map(|(_, _, cost)| cost.cpu_us)
            .collect();
        median(&cpu)
    }
}

const ORDER: [bool; 6] = [false, true, true, false, false, true];
const CONNECTIONS: usize = 64;

pub fn metrics_cost(scratch: &Path, plan: &Plan) -> MetricsFigures {
    let per_run = plan.ingest_requests;
    let total = per_run * ORDER.len() / 2;
    let (off_db, on_db) = (
        scratch.join("metrics-off.db"),
        scratch.join("metrics-on.db"),
    );
    register_calls(&off_db, total);
    register_calls(&on_db, total);
    let off = process::spawn_server(&off_db, &["--metrics", "false"]);
    let on = process::spawn_server(&on_db, &[]);
    let day = tomorrow();
    let (mut next_off, mut next_on) = (0, 0);
    let mut runs = Vec::new();
    for metrics in ORDER {
        let (server, next) = if metrics {
            (&on, &mut next_on)
        } else {
            (&off, &mut next_off)
        };
        let bodies = (*next..*next + per_run)
            .map(|i| lcm_body(i, &day))
            .collect();
        *next += per_run;
        let (load, cost) = measure(server, &server.url("/v1/lcm"), bodies, CONNECTIONS);
        runs.push((metrics, load, cost));
    }
    let started = Instant::now();
    let text = scrape(&on.url("/metrics"));
    let scrape_ms = started.elapsed().as_secs_f64() * 1000.0;
    off.terminate();
    on.terminate();
    MetricsFigures {
        runs,
        scrape_ms,
        scrape_bytes: text.len(),
    }
}

fn scrape(url: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let response = reqwest::get(url).await.expect("/metrics answers");
        assert_eq!(response.status(), 200, "/metrics");
        response.text().await.expect("a body")
    })
}
