//! The supervisor page's reads over HTTP: the overview's counters against the callbacks
//! found by state and the database, the next hour by five minutes, the reports, and one
//! callback's history in order.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use serde_json::{json, Value};

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 13, h, m, 0).unwrap()
}

async fn lease(app: &TestApp, lease_ms: i64) -> Value {
    let body = json!({"consumer": "d1", "max": 1, "lease_ms": lease_ms, "wait_ms": 20000});
    let (status, leased) = app.post("/v1/queue/lease", Some(&body)).await;
    assert_eq!(status, 200, "{leased}");
    leased["events"][0].clone()
}

/// How many callbacks `GET /v1/callbacks` finds in `state`.
async fn found(app: &TestApp, state: &str) -> i64 {
    let (_, page) = app
        .get(&format!("/v1/callbacks?state={state}&limit=1000"))
        .await;
    page["callbacks"].as_array().unwrap().len() as i64
}

#[tokio::test]
async fn the_overview_counts_what_the_api_finds_and_the_next_hour_by_five_minutes() {
    let app = spawn_app_with(&["--max-deliveries", "1"]).await;
    app.login("testagent").await;
    app.clock.set(at(12, 0));
    let missed = app.callback_in(1, at(12, 10), at(12, 40)).await;
    let dead = app.callback_in(2, at(12, 10), at(14, 0)).await;
    let held = app.callback_in(3, at(12, 10), at(14, 0)).await;
    app.callback_in(4, at(13, 12), at(13, 45)).await;
    app.callback_in(5, at(13, 14), at(13, 45)).await;
    app.callback_in(6, at(13, 44), at(14, 30)).await;
    app.callback_in(7, at(15, 0), at(15, 30)).await;

    // 12:10: three windows open. One redial is leased briefly and runs out (a dead letter
    // with --max-deliveries 1), one is held, one is left until its window ends at 12:40.
    app.clock.set(at(12, 10));
    let first = lease(&app, 1000).await;
    assert_eq!(first["callback_id"], missed);
    let second = lease(&app, 1000).await;
    assert_eq!(second["callback_id"], dead);
    let third = lease(&app, 3_600_000).await;
    assert_eq!(third["callback_id"], held);
    app.post(
        "/v1/queue/nack",
        Some(&json!({"consumer": "d1", "ids": [first["id"]]})),
    )
    .await;
    app.clock.set(at(12, 41));
    until(
        std::time::Duration::from_secs(10),
        "the expiry at 12:40",
        || {
            app.sql()
                .query_row("SELECT state FROM callbacks WHERE id = ?1", [missed], |r| {
                    r.get::<_, String>(0)
                })
                .unwrap()
                == "expired"
        },
    )
    .await;
    app.clock.set(at(13, 0));

    let (status, overview) = app.get("/v1/overview").await;
    assert_eq!(status, 200, "{overview}");
    let counts = &overview["counts"];
    let dead_letters: i64 = app
        .sql()
        .query_row(
            "SELECT count(*) FROM events WHERE state = 'dead'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dead_letters, 1);
    assert_eq!(
        counts,
        &json!({
            "scheduled": found(&app, "scheduled").await,
            "due": found(&app, "due").await,
            "leased": found(&app, "leased").await,
            "expired_today": found(&app, "expired").await,
            "dead_letters": dead_letters,
        })
    );
    assert_eq!(
        counts,
        &json!({"scheduled": 4, "due": 1, "leased": 1, "expired_today": 1, "dead_letters": 1})
    );
    // From 13:00: 13:12 and 13:14 in the third slice, 13:44 in the ninth; 15:00 is beyond.
    let slices = overview["next_hour"].as_array().unwrap();
    assert_eq!(slices.len(), 12);
    assert_eq!(slices[0]["from"], "2026-01-13T13:00:00Z");
    assert_eq!(slices[11]["from"], "2026-01-13T13:55:00Z");
    let windows: Vec<i64> = slices
        .iter()
        .map(|s| s["windows"].as_i64().unwrap())
        .collect();
    assert_eq!(windows, [0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0]);

    // Today is read in the asked zone: in Asia/Tokyo (UTC+9) it began at 15:00 UTC on the
    // 12th, so the 12:40 expiry is still today; in Pacific/Kiritimati (UTC+14) today began
    // at 10:00 UTC on the 13th, too.
    let (_, tokyo) = app.get("/v1/overview?tz=Asia/Tokyo").await;
    assert_eq!(tokyo["counts"]["expired_today"], 1);
    assert_eq!(tokyo["timezone"], "Asia/Tokyo");
    let (status, bad) = app.get("/v1/overview?tz=Mars/Olympus").await;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (400, &json!("tz")),
        "{bad}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_callbacks_history_reads_in_the_order_it_happened() {
    let app = spawn_app().await;
    app.login("testagent").await;
    app.clock.set(at(12, 0));
    let id = app.callback_in(1, at(12, 10), at(12, 40)).await;
    app.clock.set(at(12, 10));
    let event = lease(&app, 30_000).await;
    assert_eq!(event["callback_id"], id);
    app.clock.set(at(12, 11));
    let (status, _) = app
        .post(
            &format!("/v1/callbacks/{id}/attempts"),
            Some(&json!({"result": "no_answer"})),
        )
        .await;
    assert_eq!(status, 200);
    app.clock.set(at(12, 12));
    let (status, _) = app
        .post(
            &format!("/v1/callbacks/{id}/cancel"),
            Some(&json!({"reason": "customer asked"})),
        )
        .await;
    assert_eq!(status, 200);

    let (status, history) = app.get(&format!("/v1/callbacks/{id}/history")).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["callback"]["state"], "cancelled");
    let steps: Vec<(&str, &str)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["at"].as_str().unwrap(), s["what"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("2026-01-13T12:00:00Z", "outcome"),
            ("2026-01-13T12:00:00Z", "scheduled"),
            // The clock jumped to the window's start: the redial was written then.
            ("2026-01-13T12:10:00Z", "redial"),
            ("2026-01-13T12:10:00Z", "leased"),
            ("2026-01-13T12:11:00Z", "attempt"),
            ("2026-01-13T12:12:00Z", "cancel"),
            ("2026-01-13T12:12:00Z", "ended"),
        ]
    );
    let cancel = &history["history"][5]["detail"];
    assert_eq!(cancel["reason"], "customer asked");
    assert_eq!(cancel["actor"], "local");
    let (status, none) = app.get("/v1/callbacks/999/history").await;
    assert_eq!(status, 404, "{none}");
    app.stop().await;
}

#[tokio::test]
async fn the_reports_answer_over_http_as_the_command_prints_them() {
    let app = spawn_app().await;
    app.login("testagent").await;
    app.clock.set(at(12, 0));
    app.callback_in(1, at(12, 10), at(12, 40)).await;
    app.callback_in(2, at(12, 20), at(12, 50)).await;
    app.clock.set(at(12, 10));
    lease(&app, 30_000).await;

    let (status, sla) = app
        .get("/v1/reports/sla?from=2026-01-13&to=2026-01-13&by=day")
        .await;
    assert_eq!(status, 200, "{sla}");
    assert_eq!(sla["from"], "2026-01-13T00:00:00Z");
    assert_eq!(sla["to"], "2026-01-14T00:00:00Z");
    let columns: Vec<&str> = sla["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let column = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let rows = sla["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{sla}");
    assert_eq!(rows[0][column("day")], "2026-01-13");
    assert_eq!(rows[1][column("day")], "total");
    assert_eq!(rows[1][column("callbacks")], 2);
    assert_eq!(rows[1][column("in_window")], 1);
    assert_eq!(rows[1][column("lag_max_s")], 0);

    // The same statement the command runs, over the same file.
    let range =
        redial::report::range_of(Some("2026-01-13"), None, chrono_tz::UTC, at(12, 10)).unwrap();
    let by_hand = redial::store::reports::run(
        &app.sql(),
        &redial::store::reports::sla(&range, redial::store::reports::SlaBy::Day),
    )
    .unwrap();
    assert_eq!(by_hand.columns, columns);
    assert_eq!(by_hand.rows.len(), rows.len());

    let (status, agents) = app.get("/v1/reports/agents").await;
    assert_eq!(status, 200, "{agents}");
    assert_eq!(agents["rows"][0][0], "testagent");
    let (status, bad) = app.get("/v1/reports/sla?by=week").await;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (400, &json!("by")),
        "{bad}"
    );
    let (status, bad) = app.get("/v1/reports/sla?from=yesterday").await;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (400, &json!("from")),
        "{bad}"
    );
    let (status, bad) = app.get("/v1/reports/everything").await;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (404, &json!("report")),
        "{bad}"
    );
    app.stop().await;
}
