//! The relay to NATS JetStream against a real `nats-server -js`: every push in the stream once
//! and in order, a redial not before its window, NATS stopped and started again under load,
//! redial killed with SIGKILL mid-relay, `--dispatch nats` refusing HTTP leases, the reference
//! dialer's rules, and a stream whose settings conflict refused at start.
//!
//! Needs Debian's `nats-server` (`.ci/run` installs it). Without it each test says so and
//! passes, unless `CI` is set.

mod common;
#[path = "common/nats.rs"]
mod nats_server;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::process::spawn_server;
use common::*;
use nats_server::{have_nats_server, messages, NatsServer, Stored};
use redial::dialer::nats::Handling;
use redial::dialer::{DialResult, Dialer, DialerArgs};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const EVERYTHING: &str = "redial,expired,outcomes,callbacks,agents";

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 13, h, m, 0).unwrap()
}

async fn relaying(nats: &NatsServer, extra: &[&str]) -> TestApp {
    let url = nats.url();
    let mut args = vec![
        "--nats",
        &url,
        "--dispatch",
        "nats",
        "--nats-publish",
        EVERYTHING,
    ];
    args.extend_from_slice(extra);
    spawn_app_with(&args).await
}

/// The push ids of the stream's messages (`<instance>.<push id>`), in stream order.
fn push_ids(stored: &[Stored]) -> Vec<i64> {
    stored
        .iter()
        .map(|m| m.msg_id.rsplit('.').next().unwrap().parse().unwrap())
        .collect()
}

/// Every push the database holds, in id order.
fn pushes(db: &std::path::Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut statement = conn
        .prepare("SELECT id FROM bus_events ORDER BY id")
        .unwrap();
    statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Waits until the stream holds `count` messages.
async fn stream_holds(js: &async_nats::jetstream::Context, count: usize) {
    let started = std::time::Instant::now();
    loop {
        let held = match js.get_stream("REDIAL").await {
            Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages as usize),
            Err(_) => 0,
        };
        if held == count {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "the stream holds {held} messages, not {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_push_reaches_the_stream_once_in_order_and_a_redial_only_when_its_window_opens() {
    if !have_nats_server() {
        return;
    }
    let nats = NatsServer::start();
    let js = nats.jetstream().await;
    let app = relaying(&nats, &[]).await;
    app.login("testagent").await;
    app.clock.set(at(12, 0));
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(app.callback_in(n, at(12, 10 + n), at(12, 40 + n)).await);
    }
    // The login and ten outcomes; the redials are written ahead but not yet visible.
    stream_holds(&js, 11).await;
    app.clock.set(at(12, 9) + chrono::Duration::seconds(59));
    let before = messages(&js, "REDIAL").await;
    assert!(
        before
            .iter()
            .all(|m| !m.subject.contains(".events.redial.")),
        "no redial before its window: {:?}",
        before.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    // 12:14: five windows have opened.
    app.clock.set(at(12, 14));
    stream_holds(&js, 16).await;
    let stored = messages(&js, "REDIAL").await;
    // The 12:15 window's push is written ahead, and not visible yet.
    let visible: Vec<i64> = pushes(&app.db)
        .into_iter()
        .filter(|id| *id <= redial::store::bus::last_id_at(at(12, 14).timestamp_millis()))
        .collect();
    assert_eq!(
        push_ids(&stored),
        visible,
        "every visible push once, in id order"
    );
    let redials: Vec<&Stored> = stored
        .iter()
        .filter(|m| m.subject == "redial.events.redial.agent.testagent")
        .collect();
    assert_eq!(redials.len(), 5);
    let first = &redials[0].payload;
    assert_eq!(first["type"], "redial");
    assert_eq!(first["callback_id"], ids[0]);
    assert_eq!(first["deadline"], "2026-01-13T12:40:00Z");
    let event_id: i64 = app
        .sql()
        .query_row(
            "SELECT id FROM events WHERE callback_id = ?1 AND type = 'redial'",
            [ids[0]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(first["id"], event_id, "the queue's event id");
    assert!(stored[0].subject == "redial.agents.state");
    assert!(stored[1].subject == "redial.outcomes");
    let instance: String = app
        .sql()
        .query_row("SELECT name FROM instance", [], |r| r.get(0))
        .unwrap();
    assert!(stored
        .iter()
        .all(|m| m.msg_id.starts_with(&format!("{instance}."))));

    // One dispatcher at a time: the HTTP lease names where redials go.
    let (status, refused) = app
        .post("/v1/queue/lease", Some(&json!({"consumer": "d"})))
        .await;
    assert_eq!(status, 409, "{refused}");
    let detail = refused["error"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("stream REDIAL") && detail.contains("redial.events.redial.>"),
        "{detail}"
    );

    // The mark is kept: after a restart nothing is published again.
    let (dir, clock) = app.stop().await;
    let url = nats.url();
    let app = spawn_app_in(
        dir,
        clock,
        &[
            "--nats",
            &url,
            "--dispatch",
            "nats",
            "--nats-publish",
            EVERYTHING,
        ],
    )
    .await;
    let last = *visible.last().unwrap();
    let started = std::time::Instant::now();
    let ready = loop {
        let (_, ready) = app.get("/readyz").await;
        if ready["relay"]["connected"] == true && ready["relay"]["mark"] == last {
            break ready;
        }
        assert!(started.elapsed() < WAIT, "{ready}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        ready["relay"]["published"], 0,
        "nothing sent again: {ready}"
    );
    assert_eq!(ready["relay"]["behind"], 0, "{ready}");
    stream_holds(&js, 16).await;
    app.stop().await;
}

#[tokio::test]
async fn nats_stopped_and_started_again_under_load_loses_nothing() {
    if !have_nats_server() {
        return;
    }
    let mut nats = NatsServer::start();
    let app = relaying(&nats, &[]).await;
    app.login("testagent").await;
    app.clock.set(at(12, 0));
    for n in 0..50 {
        app.callback_in(n, at(13, 0), at(13, 30)).await;
    }
    let js = nats.jetstream().await;
    stream_holds(&js, 51).await;
    drop(js);
    nats.stop();
    // redial goes on taking requests; the relay falls behind and says so.
    for n in 50..150 {
        app.callback_in(n, at(13, 0), at(13, 30)).await;
    }
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(
        status, 200,
        "NATS away does not make redial unready: {ready}"
    );
    assert_eq!(ready["relay"]["behind"], 100, "{ready}");
    assert_eq!(ready["relay"]["connected"], false, "{ready}");
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("redial_relay_behind_pushes 100"),
        "{metrics}"
    );
    assert!(metrics.contains("redial_relay_connected 0"));
    nats.restart();
    let js = nats.jetstream().await;
    stream_holds(&js, 151).await;
    let stored = messages(&js, "REDIAL").await;
    assert_eq!(
        push_ids(&stored),
        pushes(&app.db),
        "caught up in order, each once"
    );
    app.stop().await;
}

#[test]
fn redial_killed_mid_relay_resumes_from_its_mark_with_no_gap_and_no_duplicate() {
    if !have_nats_server() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let nats = NatsServer::start();
    let js = runtime.block_on(nats.jetstream());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    let url = nats.url();
    let args = ["--nats", &url];
    let server = spawn_server(&db, &args);
    let base = server.base.clone();
    let post = |path: &str, body: &Value| post_blocking(&format!("{base}{path}"), body);
    post("/v1/agents/testagent/login", &json!({}));
    let start = Utc::now() + chrono::Duration::hours(2);
    let end = start + chrono::Duration::hours(1);
    // Outcomes are published (`--nats-publish` defaults to expired and outcomes); the kill
    // comes while the relay still has some in hand.
    for n in 0..400 {
        let (callid, account) = (format!("c{n}"), format!("a{n}"));
        post(
            "/v1/calls",
            &json!({"callid": callid, "AccountNumber": account, "UserID": "testagent"}),
        );
        let (status, reply) = post("/v1/lcm", &request_between(&callid, &account, start, end));
        assert_eq!(status, 200, "{reply}");
    }
    server.kill9();
    let pushed = pushes(&db);
    assert_eq!(pushed.len(), 401);
    let server = spawn_server(&db, &args);
    // The login is an agent's push, which is not published by default.
    runtime.block_on(stream_holds(&js, 400));
    let stored = runtime.block_on(messages(&js, "REDIAL"));
    assert_eq!(
        push_ids(&stored),
        pushed[1..],
        "no gap, no duplicate, in order"
    );
    server.terminate();
    let mark: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT mark FROM relay_marks WHERE stream = 'REDIAL'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mark, pushed[400], "the mark is written at shutdown");
}

fn nats_dialer(app: &TestApp) -> Dialer {
    Dialer::new(DialerArgs {
        url: app.base.clone(),
        token: None,
        consumer: None,
        user_id: None,
        result: DialResult::NoAnswer,
        batch: 10,
        lease_ms: 30_000,
        wait_ms: 0,
        max_events: None,
        nats: Default::default(),
    })
    .unwrap()
}

#[tokio::test]
async fn the_reference_dialer_drops_what_it_must_not_dial_and_reports_the_rest() {
    if !have_nats_server() {
        return;
    }
    let nats = NatsServer::start();
    let js = nats.jetstream().await;
    let app = relaying(&nats, &[]).await;
    app.login("testagent").await;
    app.clock.set(at(12, 0));
    let id = app.callback_in(1, at(12, 10), at(12, 40)).await;
    app.clock.set(at(12, 10));
    stream_holds(&js, 3).await;
    let redial = messages(&js, "REDIAL")
        .await
        .into_iter()
        .find(|m| m.subject.contains(".events.redial."))
        .unwrap()
        .payload;
    let mut dialer = nats_dialer(&app);
    // After its deadline: dropped, not dialed.
    assert_eq!(
        dialer.handle_redial(&redial, at(12, 40)).await,
        Handling::Dropped("its window ended at 2026-01-13 12:40:00 +00:00".into())
    );
    // Inside its window: dialed and reported.
    let Handling::Dialed(line) = dialer.handle_redial(&redial, at(12, 11)).await else {
        panic!("not dialed");
    };
    assert!(line.contains("-> no_answer"), "{line}");
    let attempts: i64 = app
        .sql()
        .query_row("SELECT attempts FROM callbacks WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(attempts, 1);
    // Delivered again (its ack lost): attempt 1 was made, so it is not dialed twice.
    let mut again = nats_dialer(&app);
    assert_eq!(
        again.handle_redial(&redial, at(12, 12)).await,
        Handling::Dropped("attempt 1 was made already (1 so far)".into())
    );
    app.stop().await;
}

#[test]
fn the_dialer_command_acks_after_reporting_and_terminates_an_ended_window() {
    if !have_nats_server() {
        return;
    }
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = nats.url();
    let server = spawn_server(
        &dir.path().join("r.db"),
        &["--nats", &url, "--dispatch", "nats"],
    );
    let base = server.base.clone();
    post_blocking(&format!("{base}/v1/agents/testagent/login"), &json!({}));
    post_blocking(
        &format!("{base}/v1/calls"),
        &json!({"callid": "c1", "AccountNumber": "a1", "UserID": "testagent"}),
    );
    // A window open now: its redial is published at once.
    let now = Utc::now();
    let request = request_between("c1", "a1", now, now + chrono::Duration::minutes(30));
    let (status, reply) = post_blocking(&format!("{base}/v1/lcm"), &request);
    assert_eq!(status, 200, "{reply}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // And one whose window ended, as another consumer might find in the stream.
    runtime.block_on(async {
        let js = nats.jetstream().await;
        stream_holds(&js, 2).await;
        let ended = json!({"id": 999, "type": "redial", "callback_id": 999, "attempt": 1,
            "UserID": "testagent", "personal": true, "deadline": "2026-01-01T00:00:00Z"});
        js.publish(
            "redial.events.redial.agent.testagent",
            ended.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    });
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_redial"))
        .args([
            "dialer",
            "--url",
            &base,
            "--nats",
            &url,
            "--durable",
            "d1",
            "--max-events",
            "2",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("event ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("-> connected (callback completed)"),
        "{out}"
    );
    assert!(lines[1].contains("dropped: its window ended"), "{out}");
    // Both acknowledged: nothing pending, nothing delivered again.
    runtime.block_on(async {
        let js = nats.jetstream().await;
        let mut consumer = js
            .get_stream("REDIAL")
            .await
            .unwrap()
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>("d1")
            .await
            .unwrap();
        let info = consumer.info().await.unwrap();
        assert_eq!(info.num_ack_pending, 0, "{info:?}");
        assert_eq!(info.num_redelivered, 0, "{info:?}");
        assert_eq!(info.delivered.consumer_sequence, 2);
    });
    server.terminate();
}

#[tokio::test]
async fn a_stream_whose_settings_conflict_stops_the_start_naming_them() {
    if !have_nats_server() {
        return;
    }
    let nats = NatsServer::start();
    let js = nats.jetstream().await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "REDIAL".into(),
        subjects: vec!["orders.>".into()],
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = redial::config::Config::from_args([
        "--db",
        &dir.path().join("r.db").display().to_string(),
        "--nats",
        &nats.url(),
    ])
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = redial::serve(config, redial::clock::Clock::system(), listener, async {})
        .await
        .expect_err("a conflicting stream stops the start")
        .to_string();
    assert!(
        error.contains("stream REDIAL exists with settings"),
        "{error}"
    );
    assert!(error.contains("orders.>"), "{error}");
    assert!(error.contains("only file storage"), "{error}");
}

#[test]
fn flags_that_would_hand_redials_to_two_dispatchers_or_none_are_refused() {
    let parse = |args: &[&str]| redial::config::Config::from_args(args).unwrap().relay();
    assert!(parse(&["--dispatch", "nats"])
        .unwrap_err()
        .contains("--nats URL"));
    let error = parse(&["--nats", "nats://x", "--nats-publish", "redial"]).unwrap_err();
    assert!(error.contains("--dispatch nats"), "{error}");
    let error = parse(&[
        "--nats",
        "nats://x",
        "--dispatch",
        "nats",
        "--nats-publish",
        "outcomes",
    ])
    .unwrap_err();
    assert!(error.contains("must include redial"), "{error}");
    let relay = parse(&["--nats", "nats://x"]).unwrap().unwrap();
    assert_eq!(
        relay.publish,
        [
            redial::relay::subject::Class::Expired,
            redial::relay::subject::Class::Outcomes
        ]
    );
    assert!(redial::config::Config::from_args(["--nats-subject", "a.*"]).is_err());
    let relay = parse(&["--nats", "nats://x", "--nats-retention", "work-queue"])
        .unwrap()
        .unwrap();
    assert_eq!(
        relay.stream.retention,
        async_nats::jetstream::stream::RetentionPolicy::WorkQueue
    );
    assert_eq!(relay.stream.config().retention, relay.stream.retention);
}
