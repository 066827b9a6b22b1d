//! The queue over HTTP: long-poll, attempts, cancel, validation, the reference dialer, and the
//! real binary killed with SIGKILL and restarted.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use redial::dialer::{DialResult, Dialer, DialerArgs};
use serde_json::{json, Value};

fn at(h: u32, m: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 13, h, m, 0).unwrap()
}

async fn seeded_callback(app: &TestApp) -> i64 {
    app.seed_prerequisites().await;
    let (status, reply) = app.post_lcm(&seed_request()).await;
    assert_eq!(status, 200, "{reply}");
    response(&reply)["callback_id"].as_i64().unwrap()
}

fn lease_body(wait_ms: u64) -> Value {
    json!({"consumer": "dialer-1", "max": 100, "lease_ms": 30000, "wait_ms": wait_ms, "user_id": null})
}

#[tokio::test]
async fn a_long_poll_returns_when_the_window_opens() {
    let app = spawn_app().await;
    let id = seeded_callback(&app).await;
    let (_, empty) = app.post("/v1/queue/lease", Some(&lease_body(0))).await;
    assert_eq!(empty, json!({"events": []}));

    let client = app.client.clone();
    let url = app.url("/v1/queue/lease");
    let waiting = tokio::spawn(async move {
        let reply = client
            .post(url)
            .json(&lease_body(30_000))
            .send()
            .await
            .unwrap();
        reply.json::<Value>().await.unwrap()
    });
    // The window opens at 13:45: moving the clock there wakes the scheduler, whose event wakes
    // the waiting dialer well before its 30 s are up.
    app.clock.set(at(13, 45));
    let reply = waiting.await.unwrap();
    let events = reply["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{reply}");
    assert_eq!(events[0]["callback_id"], id);
    assert_eq!(events[0]["type"], "redial");
    assert_eq!(events[0]["window_start"], "2026-01-13T13:45:00Z");
    assert_eq!(
        app.get(&format!("/v1/callbacks/{id}")).await.1["state"],
        "leased"
    );
}

/// A commit that brings an instant earlier than the one the scheduler sleeps until wakes it: the
/// clock stands still here, so nothing else could.
#[tokio::test]
async fn a_commit_with_an_earlier_instant_wakes_the_sleeping_scheduler() {
    let app = spawn_app().await;
    app.login("testagent").await;
    let staged = |callid: &str| -> i64 {
        app.sql()
            .query_row(
                "SELECT count(*) FROM events e JOIN event_details d ON d.event_id = e.id
                 WHERE d.callid = ?1 AND e.state = 'ready'",
                [callid],
                |r| r.get(0),
            )
            .unwrap()
    };
    let window = |callid: &str, account: &str| {
        request_between(
            callid,
            account,
            t0() + Duration::minutes(1),
            t0() + Duration::minutes(30),
        )
    };
    // A window opening in a minute has its redial staged at once; the scheduler then sleeps
    // until the window opens, a minute of real time away.
    app.register_call("first", "ACC-1", "testagent").await;
    assert_eq!(app.post_lcm(&window("first", "ACC-1")).await.0, 200);
    let within = std::time::Duration::from_secs(10);
    until(within, "the first redial staged", || staged("first") == 1).await;

    // A second such window must be staged now, not when the scheduler would have woken.
    app.register_call("second", "ACC-2", "testagent").await;
    assert_eq!(app.post_lcm(&window("second", "ACC-2")).await.0, 200);
    until(
        within,
        "the second redial staged, the scheduler woken",
        || staged("second") == 1,
    )
    .await;
}

#[tokio::test]
async fn attempts_ack_and_nack_over_http() {
    let app = spawn_app().await;
    let id = seeded_callback(&app).await;
    app.clock.set(at(13, 45));
    let (_, reply) = app.post("/v1/queue/lease", Some(&lease_body(30_000))).await;
    let event_id = reply["events"][0]["id"].as_i64().unwrap();

    let (status, error) = app
        .post(
            &format!("/v1/callbacks/{id}/attempts"),
            Some(&json!({"result": "hung_up"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "result");
    assert!(error["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("\"hung_up\""));

    let (status, callback) = app
        .post(
            &format!("/v1/callbacks/{id}/attempts"),
            Some(&json!({"result": "busy"})),
        )
        .await;
    assert_eq!(status, 200, "{callback}");
    assert_eq!(
        (callback["state"].as_str(), callback["attempts"].as_i64()),
        (Some("scheduled"), Some(1))
    );

    let (status, acked) = app
        .post(
            "/v1/queue/ack",
            Some(&json!({"consumer": "dialer-1", "ids": [event_id, 999]})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(acked, json!({"acked": [event_id], "ignored": [999]}));

    // The retry opens a minute later.
    app.clock.set(at(13, 46));
    let (_, reply) = app.post("/v1/queue/lease", Some(&lease_body(30_000))).await;
    let retry = &reply["events"][0];
    assert_eq!(retry["attempt"], 2);
    let retry_id = retry["id"].as_i64().unwrap();
    let (_, released) = app
        .post(
            "/v1/queue/nack",
            Some(&json!({"consumer": "dialer-1", "ids": [retry_id]})),
        )
        .await;
    assert_eq!(released, json!({"released": [retry_id], "ignored": []}));
    let (_, again) = app.post("/v1/queue/lease", Some(&lease_body(0))).await;
    assert_eq!(again["events"][0]["id"], retry_id);

    let (status, done) = app
        .post(
            &format!("/v1/callbacks/{id}/attempts"),
            Some(&json!({"result": "connected"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(done["state"], "completed");
    let (status, conflict) = app
        .post(
            &format!("/v1/callbacks/{id}/attempts"),
            Some(&json!({"result": "busy"})),
        )
        .await;
    assert_eq!(status, 409);
    assert!(conflict["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("completed"));
    let (status, _) = app
        .post(
            "/v1/callbacks/424242/attempts",
            Some(&json!({"result": "busy"})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn cancel_and_request_validation() {
    let app = spawn_app().await;
    let id = seeded_callback(&app).await;
    let (status, cancelled) = app.post(&format!("/v1/callbacks/{id}/cancel"), None).await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(
        app.post(&format!("/v1/callbacks/{id}/cancel"), None)
            .await
            .0,
        409
    );

    let cases = [
        (json!({"max": 10}), "consumer"),
        (json!({"consumer": "", "max": 10}), "consumer"),
        (json!({"consumer": "d", "max": 0}), "max"),
        (json!({"consumer": "d", "max": 5000}), "max"),
        (json!({"consumer": "d", "lease_ms": -1}), "lease_ms"),
        (json!({"consumer": "d", "wait_ms": 600000}), "wait_ms"),
        (json!({"consumer": "d", "user_id": 7}), "user_id"),
    ];
    for (body, field) in cases {
        let (status, reply) = app.post("/v1/queue/lease", Some(&body)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(reply["error"]["field"], field, "{body}: {reply}");
    }
    for body in [
        json!({"consumer": "d", "ids": []}),
        json!({"consumer": "d", "ids": ["x"]}),
        json!({"consumer": "d"}),
    ] {
        let (status, reply) = app.post("/v1/queue/ack", Some(&body)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(reply["error"]["field"], "ids");
    }
}

#[tokio::test]
async fn the_reference_dialer_dials_reports_and_acks() {
    let app = spawn_app().await;
    let id = seeded_callback(&app).await;
    app.clock.set(at(13, 45));
    let base = app.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_redial"))
            .args([
                "dialer",
                "--url",
                &base,
                "--consumer",
                "ref-dialer",
                "--user-id",
                "testagent",
            ])
            .args([
                "--result",
                "connected",
                "--max-events",
                "1",
                "--wait-ms",
                "30000",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout.lines().next().expect("one line per event");
    assert!(line.starts_with("event "), "{line}");
    assert!(
        line.contains(&format!("redial callback {id} callid 12345")),
        "{line}"
    );
    assert!(
        line.contains("UserID testagent personal attempt 1"),
        "{line}"
    );
    assert!(
        line.ends_with("-> connected (callback completed)"),
        "{line}"
    );
    assert_eq!(
        app.get(&format!("/v1/callbacks/{id}")).await.1["state"],
        "completed"
    );
    let acked: i64 = app
        .sql()
        .query_row(
            "SELECT count(*) FROM events WHERE state = 'acked' AND consumer = 'ref-dialer'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(acked, 1);
}

fn dialer(app: &TestApp, consumer: &str) -> Dialer {
    Dialer::new(DialerArgs {
        url: app.base.clone(),
        token: None,
        consumer: Some(consumer.to_owned()),
        user_id: None,
        result: DialResult::Connected,
        batch: 10,
        lease_ms: 30_000,
        wait_ms: 30_000,
        max_events: None,
        nats: Default::default(),
    })
    .unwrap()
}

/// `from` releases the event; `to`, if named, leases it at once.
async fn hand_over(app: &TestApp, event_id: i64, from: &str, to: Option<&str>) {
    let body = json!({"consumer": from, "ids": [event_id]});
    let (status, reply) = app.post("/v1/queue/nack", Some(&body)).await;
    assert_eq!(reply["released"], json!([event_id]), "{status} {reply}");
    if let Some(to) = to {
        let body = json!({"consumer": to, "max": 10, "wait_ms": 0});
        let (_, reply) = app.post("/v1/queue/lease", Some(&body)).await;
        assert_eq!(reply["events"][0]["id"], event_id, "{reply}");
    }
}

/// Delivery is at-least-once: an event whose ack was refused (another dialer holds it now) can
/// come back, and the reference dialer then acks it without handling it twice. Once the
/// service confirms an ack, the dialer forgets the id, so its memory stays as small as the acks
/// it lost.
#[tokio::test]
async fn the_reference_dialer_handles_a_redelivery_once_and_forgets_what_is_acked() {
    let app = spawn_app().await;
    let id = seeded_callback(&app).await;
    // The window ends unanswered: an `expired` event, which no attempt report closes.
    app.clock.set(at(14, 30));
    let mut a = dialer(&app, "dialer-a");
    let events = a.lease().await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "expired");
    let event_id = events[0]["id"].as_i64().unwrap();
    // While dialer-a holds the event in hand, dialer-b takes it: a's ack is refused.
    hand_over(&app, event_id, "dialer-a", Some("dialer-b")).await;
    let mut out = Vec::new();
    assert_eq!(a.handle(&events, &mut out).await.unwrap(), 1);
    let first = String::from_utf8(out).unwrap();
    assert!(
        first.starts_with(&format!("event {event_id} expired callback {id} ")),
        "{first}"
    );
    assert_eq!(
        a.unconfirmed(),
        1,
        "the refused ack leaves the id remembered"
    );

    // dialer-b lets it go and a gets it again: acked, not handled a second time.
    hand_over(&app, event_id, "dialer-b", None).await;
    let again = a.lease().await.unwrap();
    assert_eq!(again[0]["id"], event_id);
    let mut out = Vec::new();
    assert_eq!(a.handle(&again, &mut out).await.unwrap(), 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("event {event_id} again: already handled, acking only\n")
    );
    assert_eq!(a.unconfirmed(), 0, "a confirmed ack is forgotten");
    let (state, consumer): (String, String) = app
        .sql()
        .query_row(
            "SELECT state, consumer FROM events WHERE id = ?1",
            [event_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), consumer.as_str()), ("acked", "dialer-a"));
}

/// kill -9 at each point of a redial's life; after each restart nothing due is lost, a dead
/// process's lease runs out normally, and nothing acked comes back.
#[test]
fn kill_9_loses_nothing_due_and_revives_nothing_acked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    let lease = |server: &ServerProcess, wait_ms: u64, lease_ms: u64| {
        let body = json!({"consumer": "d", "max": 10, "lease_ms": lease_ms, "wait_ms": wait_ms});
        let (status, reply) = post_blocking(&server.url("/v1/queue/lease"), &body);
        assert_eq!(status, 200, "{reply}");
        reply["events"].as_array().unwrap().clone()
    };

    // A window that is open now (real clock): due at once.
    let server = spawn_server(&db, &[]);
    post_blocking(&server.url("/v1/agents/testagent/login"), &json!({}));
    let call = json!({"callid": "k9", "AccountNumber": "ACC-K9", "UserID": "testagent"});
    assert_eq!(post_blocking(&server.url("/v1/calls"), &call).0, 201);
    let now = Utc::now();
    let request = request_between(
        "k9",
        "ACC-K9",
        now - Duration::minutes(1),
        now + Duration::hours(2),
    );
    let (status, reply) = post_blocking(&server.url("/v1/lcm"), &request);
    assert_eq!(status, 200, "{reply}");
    server.kill9();

    // Due before the kill: still delivered. Leased for one second, then killed again.
    let server = spawn_server(&db, &[]);
    let events = lease(&server, 10_000, 1_000);
    assert_eq!(events.len(), 1);
    let event_id = events[0]["id"].as_i64().unwrap();
    server.kill9();

    // The dead process's lease runs out and the event comes back with the same id.
    let server = spawn_server(&db, &[]);
    let events = lease(&server, 30_000, 30_000);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], event_id);
    let (_, acked) = post_blocking(
        &server.url("/v1/queue/ack"),
        &json!({"consumer": "d", "ids": [event_id]}),
    );
    assert_eq!(acked["acked"], json!([event_id]));
    server.kill9();

    // Acked before the kill: never again.
    let server = spawn_server(&db, &[]);
    assert!(lease(&server, 1_500, 1_000).is_empty());
    assert_eq!(server.terminate(), Some(0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

#[tokio::test]
async fn the_cron_purge_removes_finished_callbacks_after_retention() {
    let app = spawn_app_with(&["--retention", "1d", "--purge-cron", "0 0 * * * *"]).await;
    let id = seeded_callback(&app).await;
    app.post(&format!("/v1/callbacks/{id}/cancel"), None).await;
    // Two days on, the hourly purge fires and the cancelled callback goes.
    app.clock.advance(Duration::days(2));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if app.get(&format!("/v1/callbacks/{id}")).await.0 == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the purge did not run"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(app.count("outcomes"), 1, "outcomes stay for reporting");
}

/// Position of each `"key":` in `text`, which must hold them all, in this order.
fn assert_in_order(text: &str, keys: &[&str]) {
    let at: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("no {k} in {text}"))
        })
        .collect();
    assert!(at.is_sorted(), "members not in the order {keys:?}: {text}");
}

/// The reply to a POST as the server wrote it, before any JSON parser reorders it.
async fn reply_text(app: &TestApp, path: &str, body: Option<&Value>) -> String {
    let request = app.client.post(app.url(path));
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    request.send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn replies_list_their_members_in_the_contracts_order() {
    let app = spawn_app().await;
    seeded_callback(&app).await;
    app.clock.set(at(13, 45));
    let lease = reply_text(&app, "/v1/queue/lease", Some(&lease_body(30_000))).await;
    assert_in_order(
        &lease,
        &[
            "events",
            "id",
            "type",
            "callback_id",
            "callid",
            "AccountNumber",
            "CallbackModeID",
            "UserID",
            "personal",
            "OutcomeId",
            "BusinessOutcome",
            "window_start",
            "window_end",
            "timezone",
            "attempt",
        ],
    );
    let attempt = json!({"result": "connected"});
    let refusal = reply_text(&app, "/v1/callbacks/x/attempts", Some(&attempt)).await;
    assert_in_order(
        &refusal,
        &["success", "error", "type", "message", "detail", "field"],
    );
    let login = reply_text(&app, "/v1/agents/agent-7/login", None).await;
    assert_in_order(&login, &["success", "UserID", "logged_in"]);
}
