//! `GET /metrics`: the series a callback's life records, the gauges read at scrape, the
//! naming rules, per-agent series only when asked for, and `--metrics false`.
//!
//! The recorder is process-wide, so this binary runs one server in process; the flags that
//! change the recorder are tested on the binary as a child process.

mod common;

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use common::process::spawn_server;
use common::*;
use serde_json::json;

/// The samples of a scrape: `name{labels}` → value, labels as rendered.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// A GET from outside any runtime: its status and body.
fn get_blocking(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::get(url).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    samples(&response.text().await.unwrap())
}

/// Scrapes until `series` reads `expected` (the scheduler works on its own task), for at
/// most ten seconds; the last scrape.
async fn wait_for(app: &TestApp, series: &str, expected: f64) -> BTreeMap<String, f64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let m = scrape(app).await;
        if m.get(series) == Some(&expected) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{series} never read {expected}: {m:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

#[tokio::test]
async fn a_callbacks_life_shows_in_the_metrics() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let (status, reply) = app.post_lcm(&seed_request()).await;
    assert_eq!(status, 200, "{reply}");
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let (_, bad) = app.post("/v1/queue/lease", Some(&json!({"max": 0}))).await;
    assert_eq!(bad["success"], false);

    let m = scrape(&app).await;
    assert_eq!(value(&m, r#"redial_callbacks{state="scheduled"}"#), 1.0);
    assert_eq!(value(&m, r#"redial_callbacks{state="due"}"#), 0.0);
    assert!(
        value(
            &m,
            r#"redial_http_requests_total{route="/v1/lcm",method="POST",status="200"}"#
        ) >= 1.0
    );
    assert!(
        value(
            &m,
            r#"redial_http_requests_total{route="/v1/queue/lease",method="POST",status="400"}"#
        ) >= 1.0
    );
    assert!(
        value(
            &m,
            r#"redial_http_request_duration_seconds_count{route="/v1/lcm"}"#
        ) >= 1.0
    );
    assert!(value(&m, "redial_writer_group_size_count") >= 1.0);
    assert!(value(&m, "redial_writer_commit_duration_seconds_count") >= 1.0);
    assert!(value(&m, "redial_database_size_bytes") > 0.0);
    assert!(value(&m, "redial_process_resident_memory_bytes") > 0.0);
    assert_eq!(value(&m, "redial_writer_queue_depth"), 0.0);
    // The scheduler sleeps until the window is near: 13:45 on the seed's day, minus staging.
    let wake = value(&m, "redial_scheduler_next_wake_timestamp_seconds");
    let opens = Utc.with_ymd_and_hms(2026, 1, 13, 13, 45, 0).unwrap();
    assert!(wake > 0.0 && wake <= opens.timestamp() as f64, "{wake}");

    // Half a minute before the window the scheduler stages the redial: leasable at 13:45
    // sharp, a due lag of 0. The first lease comes 10 s after the window opened.
    app.clock.set(opens - chrono::Duration::seconds(30));
    wait_for(&app, "redial_due_lag_seconds_count", 1.0).await;
    app.clock.set(opens + chrono::Duration::seconds(10));
    let lease = json!({"consumer": "d", "max": 10, "lease_ms": 30000, "wait_ms": 10000});
    let (_, leased) = app.post("/v1/queue/lease", Some(&lease)).await;
    assert_eq!(leased["events"][0]["callback_id"], id, "{leased}");
    let m = scrape(&app).await;
    assert_eq!(value(&m, r#"redial_callbacks{state="leased"}"#), 1.0);
    assert_eq!(value(&m, r#"redial_events{state="leased"}"#), 1.0);
    assert_eq!(value(&m, "redial_first_lease_lag_seconds_count"), 1.0);
    assert_eq!(value(&m, "redial_first_lease_lag_seconds_sum"), 10.0);
    assert_eq!(
        value(&m, r#"redial_first_lease_lag_seconds_bucket{le="5"}"#),
        0.0
    );
    assert_eq!(
        value(&m, r#"redial_first_lease_lag_seconds_bucket{le="10"}"#),
        1.0
    );
    assert_eq!(value(&m, "redial_due_lag_seconds_count"), 1.0);
    assert_eq!(value(&m, "redial_due_lag_seconds_sum"), 0.0);

    let (status, _) = app
        .post(
            &format!("/v1/callbacks/{id}/attempts"),
            Some(&json!({"result": "no_answer"})),
        )
        .await;
    assert_eq!(status, 200);
    let m = scrape(&app).await;
    assert_eq!(
        value(&m, r#"redial_attempts_total{result="no_answer"}"#),
        1.0
    );

    // Past the window's end the callback expires, counted by reason.
    let (_, cb) = app.get(&format!("/v1/callbacks/{id}")).await;
    let end: chrono::DateTime<Utc> = cb["window_end"].as_str().unwrap().parse().unwrap();
    app.clock.set(end + chrono::Duration::seconds(1));
    let m = wait_for(
        &app,
        r#"redial_callbacks_expired_total{reason="window-ended"}"#,
        1.0,
    )
    .await;
    assert_eq!(
        value(&m, r#"redial_callbacks_ended_total{state="expired"}"#),
        1.0
    );
    assert_eq!(value(&m, r#"redial_callbacks{state="scheduled"}"#), 0.0);

    // Prometheus conventions: the prefix, `_total` on counters, base units, and no label
    // that grows with traffic.
    let text = app.get_text("/metrics").await;
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(name.starts_with("redial_"), "{line}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        assert!(!name.contains("millis") && !name.contains("_ms"), "{line}");
    }
    for series in samples(&text).keys() {
        for label in ["callid", "AccountNumber", "user_id", "UserID"] {
            assert!(!series.contains(&format!("{label}=")), "{series}");
        }
    }
    app.stop().await;
}

#[test]
fn per_agent_series_only_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(&dir.path().join("r.db"), &["--metrics-per-agent"]);
    let post = |path: &str, body: &serde_json::Value| post_blocking(&server.url(path), body);
    post("/v1/agents/testagent/login", &json!({}));
    post(
        "/v1/calls",
        &json!({"callid": "12345", "AccountNumber": "5|3|1|0|0|44|1", "UserID": "testagent"}),
    );
    let start = Utc::now() + chrono::Duration::hours(2);
    let request = request_between(
        "12345",
        "5|3|1|0|0|44|1",
        start,
        start + chrono::Duration::hours(1),
    );
    let (status, reply) = post("/v1/lcm", &request);
    assert_eq!(status, 200, "{reply}");
    let (_, text) = get_blocking(&server.url("/metrics"));
    assert_eq!(
        samples(&text).get(r#"redial_agent_callbacks{user_id="testagent",state="scheduled"}"#),
        Some(&1.0),
        "{text}"
    );
    server.terminate();
}

#[test]
fn metrics_off_records_nothing_and_says_how_to_turn_them_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(&dir.path().join("r.db"), &["--metrics", "false"]);
    let (status, text) = get_blocking(&server.url("/metrics"));
    assert_eq!(status, 404);
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let detail = body["error"]["detail"].as_str().unwrap();
    assert!(detail.contains("--metrics true"), "{body}");
    server.terminate();
}

/// The shipped Grafana dashboard asks only for series redial records.
#[test]
fn the_dashboard_queries_only_series_redial_records() {
    let text = std::fs::read_to_string(data_dir().join("grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut asked = Vec::new();
    let panels = dashboard["panels"].as_array().unwrap();
    for target in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
    {
        let expr = target["expr"].as_str().unwrap();
        let mut rest = expr;
        while let Some(at) = rest.find("redial_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            asked.push(name);
        }
    }
    assert!(asked.len() > 20, "{asked:?}");
    for name in asked {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| redial::telemetry::NAMES.contains(base))
            .unwrap_or(&name);
        assert!(
            redial::telemetry::NAMES.contains(&base),
            "{name} is not recorded"
        );
    }
}
