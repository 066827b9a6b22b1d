//! What recording metrics costs ingest: two servers, one with `--metrics false`, driven in
//! turn (off, on, on, off, off, on) at 64 connections, so that both share the machine's
//! phases; the medians are compared. One scrape of `/metrics` is timed on the loaded file.

use std::path::Path;
use std::time::Instant;

use crate::ingest::{in_turn, Turn};
use crate::Plan;

pub struct MetricsFigures {
    pub runs: Vec<Turn>,
    /// One scrape after the runs: ms, and bytes of text.
    pub scrape_ms: f64,
    pub scrape_bytes: usize,
}

pub fn metrics_cost(scratch: &Path, plan: &Plan) -> MetricsFigures {
    let (mut scrape_ms, mut text) = (0.0, String::new());
    let runs = in_turn(
        scratch,
        "metrics",
        plan.ingest_requests,
        [&["--metrics", "false"], &[]],
        None,
        |loaded| {
            let started = Instant::now();
            text = scrape(&loaded.url("/metrics"));
            scrape_ms = started.elapsed().as_secs_f64() * 1000.0;
        },
    );
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
