//! Supervisors' reads among a million callbacks: pages of `GET /v1/callbacks` over HTTP, one
//! request at a time, and `redial report` over the whole file, in process. Nine days of
//! finished callbacks and one day of live ones, over a hundred agents.

use std::path::Path;
use std::time::Instant;

use chrono::{Duration, Utc};
use clap::Parser;
use redial::clock::Clock;
use redial::config::{Cli, Command};
use redial::lcm::UserId;
use redial::store::bulk::{self, Windows};
use redial::store::{open_write_connection, schema, Synchronous};

use crate::{process, Plan};

const AGENTS: i64 = 100;

pub struct SuperviseFigures {
    pub total: i64,
    /// Each page asked for, and its sorted latencies in ms.
    pub pages: Vec<(String, Vec<f64>)>,
    /// Each report, its seconds (the median of three runs) and the lines it printed.
    pub reports: Vec<(String, f64, usize)>,
}

pub fn supervise(scratch: &Path, plan: &Plan) -> SuperviseFigures {
    let total = if plan.quick { 10_000 } else { 1_000_000 };
    let db = scratch.join("supervise.db");
    let now = Utc::now();
    let from = now - Duration::days(9);
    preload(&db, total, from, now);

    let server = process::spawn_server(&db, &[]);
    let middle = {
        let conn = rusqlite::Connection::open(&db).expect("database");
        let (start, id): (i64, i64) = conn
            .query_row(
                "SELECT window_start, id FROM callbacks ORDER BY window_start, id
                 LIMIT 1 OFFSET ?1",
                [total / 2],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("a middle row");
        format!("{start}.{id}")
    };
    let yesterday = (now - Duration::days(1)).format("%Y-%m-%d").to_string();
    let live = "state=scheduled,due,leased";
    let queries = [
        ("first page, no filter".to_owned(), String::new()),
        (
            "a page from the middle".to_owned(),
            format!("after={middle}"),
        ),
        ("one agent".to_owned(), "user_id=agent-7".to_owned()),
        ("live (scheduled, due, leased)".to_owned(), live.to_owned()),
        (
            "one agent's live".to_owned(),
            format!("user_id=agent-7&{live}"),
        ),
        (
            "one day".to_owned(),
            format!("from={yesterday}&to={yesterday}"),
        ),
        ("one contact".to_owned(), "account=agent-7-42".to_owned()),
    ];
    let repeats = if plan.quick { 50 } else { 1_000 };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let client = reqwest::Client::new();
    let pages = queries
        .into_iter()
        .map(|(name, query)| {
            let url = server.url(&format!("/v1/callbacks?limit=100&{query}"));
            let mut latencies: Vec<f64> = runtime.block_on(async {
                let mut latencies = Vec::with_capacity(repeats);
                for _ in 0..repeats {
                    let started = Instant::now();
                    let reply = client.get(&url).send().await.expect("an answer");
                    assert_eq!(reply.status(), 200, "{name}");
                    let page: serde_json::Value = reply.json().await.expect("JSON");
                    assert!(
                        page["callbacks"].as_array().is_some_and(|c| !c.is_empty()),
                        "{name}"
                    );
                    latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            });
            latencies.sort_by(f64::total_cmp);
            (name, latencies)
        })
        .collect();
    server.terminate();

    let (first, last) = (
        from.format("%Y-%m-%d").to_string(),
        now.format("%Y-%m-%d").to_string(),
    );
    let reports = [
        vec!["sla", "--by", "day"],
        vec!["sla", "--by", "agent"],
        vec!["agents"],
        vec![
            "callbacks",
            "--format",
            "csv",
            "--from",
            &yesterday,
            "--to",
            &yesterday,
        ],
    ]
    .into_iter()
    .map(|args| {
        let mut argv = vec!["redial", "report"];
        argv.extend(&args);
        if !args.contains(&"--from") {
            argv.extend(["--from", &first, "--to", &last]);
        }
        let db = db.display().to_string();
        argv.extend(["--db", &db]);
        let Command::Report(report) = Cli::try_parse_from(&argv).expect("flags").command else {
            unreachable!("a report")
        };
        let mut runs = Vec::new();
        let mut lines = 0;
        for _ in 0..3 {
            let mut out = Vec::new();
            let started = Instant::now();
            redial::report::run(&report, &Clock::system(), &mut out).expect("a report");
            runs.push(started.elapsed().as_secs_f64());
            lines = out.iter().filter(|b| **b == b'\n').count();
        }
        (args.join(" "), crate::median(&runs), lines)
    })
    .collect();
    SuperviseFigures {
        total,
        pages,
        reports,
    }
}

/// `total` callbacks over [`AGENTS`] agents, windows an hour long spread evenly from `from`
/// to a day after `now`; those that ended before `now` are finished as a day's work leaves
/// them ([`bulk::finish_before`]).
fn preload(db: &Path, total: i64, from: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) {
    let mut conn = open_write_connection(db, Synchronous::Normal).expect("database");
    schema::migrate(&mut conn, None).expect("schema");
    let tx = conn.transaction().expect("a transaction");
    let span = Duration::days(10).num_seconds();
    for a in 0..AGENTS {
        let user = UserId::parse(format!("agent-{a}")).expect("an agent");
        let n = total / AGENTS;
        let windows = Windows {
            prefix: &format!("agent-{a}-"),
            from: 0,
            to: n,
            start: from + Duration::seconds(a),
            step: Duration::seconds(span / n),
            length: Duration::hours(1),
            user: &user,
        };
        bulk::insert_windows(&tx, &windows, now).expect("windows");
    }
    bulk::finish_before(&tx, now).expect("finished");
    tx.commit().expect("committed");
    bulk::settle(&conn).expect("checkpointed");
}
