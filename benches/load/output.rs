//! The tables the harness prints, in Markdown, ready for `BENCHMARKS.md`.

use crate::baselines::Baselines;
use crate::family::{ListFigures, Mix};
use crate::growth::GrowthRow;
use crate::hostile::Hostile;
use crate::ingest::{median_of, Cost, Load, Turn};
use crate::{median, pct, samples};

pub fn report_ingest(ingest: &[(Load, i64, Cost)], baselines: &Baselines) {
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
        "| raw: the store's inserts, 1,000 requests a transaction (median of {}) | {raw:.0} | {:.2} |",
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

pub fn report_growth(rows: &[GrowthRow]) {
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

pub fn report_dispatch(rows: &[(i64, usize, f64)]) {
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

pub fn report_hostile(h: &Hostile) {
    println!(
        "## Hostile clients (`--max-connections {}`)\n",
        h.max_connections
    );
    println!(
        "Ingest at 16 connections from one address, quiet and while {} half-open connections \
         (a request line and one header, then nothing) are held from three others.\n",
        h.half_open
    );
    println!("| run | requests | successes | req/s | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, load) in [("quiet", &h.quiet), ("under attack", &h.under_attack)] {
        println!(
            "| {name} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
            load.requests,
            load.ok,
            load.rate(),
            pct(&load.latencies, 0.5),
            pct(&load.latencies, 0.99),
            pct(&load.latencies, 1.0)
        );
    }
    println!();
}

pub fn report_family(mix: &Mix, list: &ListFigures) {
    println!(
        "## The LCM family: mixed workload and the personal-callback list\n\n\
         Mixed: 60% SetBusinessOutcomeWithComments, 25% SetBusinessOutcomeWithPersonalCallback, \
         10% SetBusinessOutcomeWithCallback, 5% SetBusinessOutcomeWithCallOutcome (DNC), \
         interleaved; PCB-only: the ingest body. {} requests a round at 64 connections, rounds \
         alternating on one server.\n",
        mix.requests
    );
    println!("| round | PCB-only req/s (p99 ms) | mixed req/s (p99 ms) | mixed / PCB | server CPU µs/request PCB / mixed |");
    println!("| --- | --- | --- | --- | --- |");
    for (n, ((pcb, pcb_cost), (mixed, mixed_cost))) in mix.pcb.iter().zip(&mix.mixed).enumerate() {
        println!(
            "| {} | {:.0} ({:.1}) | {:.0} ({:.1}) | {:.2} | {:.0} / {:.0} |",
            n + 1,
            pcb.rate(),
            pct(&pcb.latencies, 0.99),
            mixed.rate(),
            pct(&mixed.latencies, 0.99),
            mixed.rate() / pcb.rate(),
            pcb_cost.cpu_us,
            mixed_cost.cpu_us
        );
        for (name, load) in [("PCB-only", pcb), ("mixed", mixed)] {
            if load.ok != load.requests {
                println!("\n**{name}: {} of {} succeeded**\n", load.ok, load.requests);
            }
        }
    }
    let rates =
        |runs: &[(Load, Cost)]| -> Vec<f64> { runs.iter().map(|(l, _)| l.rate()).collect() };
    let (pcb, mixed) = (median(&rates(&mix.pcb)), median(&rates(&mix.mixed)));
    println!(
        "\nMedians: PCB-only {pcb:.0} req/s, mixed {mixed:.0} req/s, mixed / PCB-only {:.2}.\n",
        mixed / pcb
    );
    println!(
        "GetPersonalCallbackList over HTTP, one request at a time, for an agent with 1,000 live \
         callbacks among {} scheduled.\n",
        list.total
    );
    println!("| page | requests | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, load) in &list.pages {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |",
            load.requests,
            pct(&load.latencies, 0.5),
            pct(&load.latencies, 0.99),
            pct(&load.latencies, 1.0)
        );
    }
    println!("\nQuery plan of the page (`EXPLAIN QUERY PLAN`):\n");
    println!("```");
    for line in &list.plan {
        println!("{line}");
    }
    println!("```\n");
}

pub fn report_bus(bus: &crate::bus::BusFigures) {
    println!(
        "## The bus: requests over WebSocket, pushes to desktops\n\n\
         PCB requests, {} a round, over 64 HTTP connections and over 64 bus sockets (one \
         request at a time on each), rounds alternating on one server.\n",
        bus.requests
    );
    println!("| round | HTTP req/s (p99 ms) | bus req/s (p99 ms) | bus / HTTP | server CPU µs/request HTTP / bus | load generator CPU µs/request HTTP / bus | rows HTTP / bus |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut ratios = Vec::new();
    for (n, ((http, http_cost, http_rows), (ws, ws_cost, ws_rows))) in bus.rounds.iter().enumerate()
    {
        ratios.push(ws.rate() / http.rate());
        println!(
            "| {} | {:.0} ({:.1}) | {:.0} ({:.1}) | {:.2} | {:.0} / {:.0} | {:.0} / {:.0} | {} / {} |",
            n + 1,
            http.rate(),
            pct(&http.latencies, 0.99),
            ws.rate(),
            pct(&ws.latencies, 0.99),
            ws.rate() / http.rate(),
            http_cost.cpu_us,
            ws_cost.cpu_us,
            http_cost.driver_cpu_us,
            ws_cost.driver_cpu_us,
            http_rows,
            ws_rows
        );
        for (name, load, rows) in [("HTTP", http, http_rows), ("bus", ws, ws_rows)] {
            if load.ok != load.requests || *rows != load.ok as i64 {
                println!(
                    "\n**{name}: {} of {} succeeded, {rows} rows**\n",
                    load.ok, load.requests
                );
            }
        }
    }
    if !ratios.is_empty() {
        println!("\nMedian bus / HTTP: **{:.2}**\n", crate::median(&ratios));
    }
    println!(
        "{} desktops subscribed, each to its own agent; {} windows ({} each) opening at one \
         instant. Lag from the window's start to PersonalCallbackDue arriving:\n",
        bus.desktops,
        bus.windows,
        bus.windows / bus.desktops
    );
    println!("| pushes | p50 ms | p99 ms | max ms | server RSS per idle socket KiB |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
        bus.lags.len(),
        pct(&bus.lags, 0.5),
        pct(&bus.lags, 0.99),
        pct(&bus.lags, 1.0),
        bus.kib_per_socket
    );
}

pub fn report_supervise(s: &crate::supervise::SuperviseFigures) {
    println!(
        "## Supervisors: finding callbacks and reports among {} callbacks\n\n\
         Nine days of finished callbacks and one of live ones, 100 agents. Pages of \
         `GET /v1/callbacks?limit=100` over HTTP, one request at a time:\n",
        s.total
    );
    println!("| page of 100 | requests | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, latencies) in &s.pages {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |",
            latencies.len(),
            pct(latencies, 0.5),
            pct(latencies, 0.99),
            pct(latencies, 1.0)
        );
    }
    println!(
        "\n`redial report` over the whole file (every window), in process, median of three:\n"
    );
    println!("| report | seconds | lines printed |");
    println!("| --- | --- | --- |");
    for (name, seconds, lines) in &s.reports {
        println!("| `{name}` | {seconds:.2} | {lines} |");
    }
    println!();
}

/// The runs of [`crate::ingest::in_turn`], one row each, the feature named `feature`.
pub fn report_turns(feature: &str, turns: &[Turn]) {
    println!("| run | {feature} | requests | req/s | p99 ms | server CPU µs/request |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (i, t) in turns.iter().enumerate() {
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.0} |",
            i + 1,
            if t.on { "on" } else { "off" },
            t.load.requests,
            t.load.rate(),
            pct(&t.load.latencies, 0.99),
            t.cost.cpu_us
        );
    }
}

pub fn report_metrics(m: &crate::metrics::MetricsFigures) {
    println!("## What recording metrics costs (`POST /v1/lcm`, 64 connections, in turn)\n");
    report_turns("metrics", &m.runs);
    let rate = |on| median_of(&m.runs, on, |t| t.load.rate());
    let cpu = |on| median_of(&m.runs, on, |t| t.cost.cpu_us);
    let (on, off) = (rate(true), rate(false));
    println!(
        "\nMedian: {on:.0} req/s with metrics, {off:.0} without: {:+.1}% throughput; server CPU \
         {:.1} against {:.1} µs/request. One scrape: {:.1} ms, {} bytes.\n",
        (on / off - 1.0) * 100.0,
        cpu(true),
        cpu(false),
        m.scrape_ms,
        m.scrape_bytes
    );
}
