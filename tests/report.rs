//! `redial report` against a fixture database made through the service, whose right answers
//! are worked out by hand below; CSV parsed back; the command and the views agree.

mod common;

use chrono::{TimeZone, Utc};
use clap::Parser;
use common::rig::{at, Rig};
use redial::config::{Cli, Command};
use redial::lcm::{AccountNumber, CallId, Disposition, Subtopic, UserId};
use redial::lifecycle::{AttemptResult, EventKind};
use redial::policy::Policy;
use serde_json::{json, Value};

/// Runs `redial report <args>` over the rig's file; returns what it printed.
fn report(rig: &Rig, args: &[&str]) -> String {
    let db = rig.db().display().to_string();
    let argv = ["redial", "report"]
        .into_iter()
        .chain(args.iter().copied())
        .chain(["--db", &db]);
    let Command::Report(args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let mut out = Vec::new();
    redial::report::run(&args, &rig.clock, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The fixture, on 13 January 2026 (UTC), agents anna and ben:
///
/// | callback | owner | window      | what happens                                   |
/// | -------- | ----- | ----------- | ---------------------------------------------- |
/// | A        | anna  | 10:00-11:00 | leased 10:02 (lag 120 s), connected           |
/// | B        | anna  | 10:15-10:45 | never leased: expired, window-ended           |
/// | C        | ben   | 12:00-13:00 | leased 12:30 (lag 1,800 s), connected          |
/// | D        | ben   | 14:00-15:00 | cancelled                                      |
/// | E        | ben   | 09:30-10:30 | superseded by F (same contact)                 |
/// | F        | ben   | 16:00-17:00 | due at 16:05, still live                       |
/// | G        | anna  | 11:00-12:00 | customer reached on another call: completed    |
/// | H        | anna  | 14 Jan      | scheduled, the next day                        |
async fn fixture() -> Rig {
    let rig = Rig::new(Policy::default());
    rig.login("anna", true).await;
    rig.login("ben", true).await;
    let a = rig.callback("a", "anna", at(10, 0), at(11, 0)).await;
    let b = rig.callback("b", "anna", at(10, 15), at(10, 45)).await;
    let c = rig.callback("c", "ben", at(12, 0), at(13, 0)).await;
    let d = rig.callback("d", "ben", at(14, 0), at(15, 0)).await;
    rig.callback("e", "ben", at(9, 30), at(10, 30)).await;
    rig.callback("e", "ben", at(16, 0), at(17, 0)).await;
    rig.callback("g", "anna", at(11, 0), at(12, 0)).await;
    let next_day = Utc.with_ymd_and_hms(2026, 1, 14, 10, 0, 0).unwrap();
    rig.callback("h", "anna", next_day, next_day + chrono::Duration::hours(1))
        .await;

    rig.clock.set(at(9, 10));
    rig.on_call("inbound", "g", "anna").await;
    rig.service
        .set_outcome(
            Disposition {
                subtopic: Subtopic::Comments,
                callid: CallId::parse("inbound").unwrap(),
                account_number: AccountNumber::parse("g").unwrap(),
                user_id: UserId::parse("anna").unwrap(),
                outcome_id: Some(7),
                business_outcome: None,
                call_outcome: None,
                agent_comments: "called in".into(),
                lead_score: 0.0,
                target_amount: 0.0,
                callback: None,
            },
            None,
        )
        .await
        .unwrap();
    rig.cancel(d).await;

    rig.tick_at(at(10, 0)).await;
    rig.clock.set(at(10, 2));
    let leased = rig.lease("d1", None).await;
    assert_eq!(
        leased.iter().map(|e| e.callback_id).collect::<Vec<_>>(),
        [a]
    );
    rig.clock.set(at(10, 3));
    rig.attempt(a, AttemptResult::Connected).await;
    rig.tick_at(at(10, 15)).await;
    rig.tick_at(at(10, 45)).await;
    assert_eq!(rig.state(b).await.0, "expired");
    rig.tick_at(at(12, 0)).await;
    rig.clock.set(at(12, 30));
    // B's `expired` event comes too: dialers learn it ended.
    let leased: Vec<(i64, EventKind)> = rig
        .lease("d1", None)
        .await
        .iter()
        .map(|e| (e.callback_id, e.kind))
        .collect();
    assert_eq!(leased, [(b, EventKind::Expired), (c, EventKind::Redial)]);
    rig.attempt(c, AttemptResult::Connected).await;
    rig.tick_at(at(16, 5)).await;
    rig
}

#[tokio::test]
async fn the_callback_sla_by_day_is_what_the_fixture_says() {
    let rig = fixture().await;
    let out = report(
        &rig,
        &[
            "sla",
            "--from",
            "2026-01-13",
            "--to",
            "2026-01-14",
            "--format",
            "json",
        ],
    );
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 3, "two days and the total: {out}");
    assert_eq!(
        rows[0],
        json!({"day": "2026-01-13", "callbacks": 7, "in_window": 2, "in_window_pct": 28.6,
               "lag_p50_s": 120, "lag_p95_s": 1800, "lag_max_s": 1800,
               "connected": 2, "connected_pct": 28.6, "attempts_per_callback": 0.29,
               "expired_window_ended": 1, "expired_max_attempts": 0, "expired_owner_absent": 0,
               "expired_other": 0, "cancelled": 1, "superseded": 1, "completed_by_contact": 1,
               "still_live": 1})
    );
    assert_eq!(rows[1]["day"], "2026-01-14");
    assert_eq!(
        (
            &rows[1]["callbacks"],
            &rows[1]["still_live"],
            &rows[1]["lag_p50_s"]
        ),
        (&json!(1), &json!(1), &Value::Null)
    );
    assert_eq!(
        (
            &rows[2]["day"],
            &rows[2]["callbacks"],
            &rows[2]["in_window_pct"],
            &rows[2]["lag_p95_s"]
        ),
        (&json!("total"), &json!(8), &json!(25.0), &json!(1800))
    );

    // By agent, for the 13th alone.
    let out = report(
        &rig,
        &[
            "sla",
            "--from",
            "2026-01-13",
            "--by",
            "agent",
            "--format",
            "json",
        ],
    );
    let rows = json_lines(&out);
    let agents: Vec<(&str, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["agent"].as_str().unwrap(),
                r["callbacks"].as_i64().unwrap(),
                r["in_window"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(agents, [("anna", 3, 1), ("ben", 4, 1), ("total", 7, 2)]);

    // In Tokyo the 13th ends at 15:00 UTC: F (16:00) falls on the 14th there.
    let out = report(
        &rig,
        &[
            "sla",
            "--from",
            "2026-01-13",
            "--tz",
            "Asia/Tokyo",
            "--format",
            "json",
        ],
    );
    assert_eq!(json_lines(&out)[0]["callbacks"], 6, "{out}");
}

#[tokio::test]
async fn the_command_and_the_views_agree() {
    let rig = fixture().await;
    // What the command prints is what its printed SQL gives in any SQLite client.
    let sql = report(
        &rig,
        &["sla", "--from", "2026-01-13", "--to", "2026-01-14", "--sql"],
    );
    let conn = rusqlite::Connection::open(rig.db()).unwrap();
    let by_hand: Vec<(String, i64, i64)> = conn
        .prepare(&sql)
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let printed = json_lines(&report(
        &rig,
        &[
            "sla",
            "--from",
            "2026-01-13",
            "--to",
            "2026-01-14",
            "--format",
            "json",
        ],
    ));
    let printed: Vec<(String, i64, i64)> = printed
        .iter()
        .map(|r| {
            (
                r["day"].as_str().unwrap().to_owned(),
                r["callbacks"].as_i64().unwrap(),
                r["in_window"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(printed, by_hand);
    // And the per-callback view holds the figures the groups add up.
    let (count, in_window, lag): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(in_window), max(lag_ms) FROM v_callback_sla
             WHERE window_start_utc LIKE '2026-01-13%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((count, in_window, lag), (7, 2, 1_800_000));
}

#[tokio::test]
async fn outcomes_agents_and_the_audit_are_as_the_fixture_says() {
    let rig = fixture().await;
    let rows = json_lines(&report(
        &rig,
        &["outcomes", "--from", "2026-01-13", "--format", "json"],
    ));
    let counts: Vec<(Value, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["outcome_id"].clone(),
                r["outcomes"].as_i64().unwrap(),
                r["with_callback"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [(json!(4), 8, 8), (json!(7), 1, 0)]);
    let by_agent = json_lines(&report(
        &rig,
        &[
            "outcomes",
            "--from",
            "2026-01-13",
            "--by",
            "agent",
            "--format",
            "json",
        ],
    ));
    assert_eq!(
        by_agent,
        [
            json!({"agent": "anna", "outcomes": 5, "with_callback": 4}),
            json!({"agent": "ben", "outcomes": 4, "with_callback": 4})
        ]
    );

    // D's cancel, by the rig's actor, at 09:10.
    let audit = json_lines(&report(
        &rig,
        &["audit", "--from", "2026-01-13", "--format", "json"],
    ));
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (&audit[0]["at"], &audit[0]["actor"], &audit[0]["action"]),
        (
            &json!("2026-01-13T09:10:00.000Z"),
            &json!("rig"),
            &json!("cancel")
        )
    );
    let after: Value = serde_json::from_str(audit[0]["after"].as_str().unwrap()).unwrap();
    assert_eq!(after["state"], "cancelled");
    let next_day = report(&rig, &["audit", "--from", "2026-01-14", "--format", "json"]);
    assert_eq!(next_day, "", "nothing changed on the 14th");

    let agents = json_lines(&report(
        &rig,
        &["agents", "--from", "2026-01-13", "--format", "json"],
    ));
    assert_eq!(
        agents,
        [
            json!({"agent": "anna", "owned": 1, "due_now": 0, "callbacks": 3,
                   "made_in_window": 1, "missed": 1}),
            json!({"agent": "ben", "owned": 1, "due_now": 1, "callbacks": 4,
                   "made_in_window": 1, "missed": 0}),
        ]
    );
}

#[tokio::test]
async fn csv_reads_back_and_the_table_fits_eighty_columns() {
    let rig = fixture().await;
    let csv = report(
        &rig,
        &[
            "callbacks",
            "--from",
            "2026-01-13",
            "--user-id",
            "anna",
            "--format",
            "csv",
        ],
    );
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    let state = headers.iter().position(|h| h == "state").unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let states: Vec<&str> = records.iter().map(|r| &r[state]).collect();
    assert_eq!(
        states,
        ["completed", "expired", "completed"],
        "A, B, G in window order"
    );

    for args in [
        &["sla", "--from", "2026-01-13"][..],
        &["agents", "--from", "2026-01-13"],
        &["outcomes", "--from", "2026-01-13", "--by", "day"],
    ] {
        let table = report(&rig, args);
        for line in table.lines() {
            assert!(line.chars().count() <= 80, "{args:?}: {line:?}");
        }
        assert!(table.lines().count() > 2, "{table}");
    }
    let sla = report(&rig, &["sla", "--from", "2026-01-13"]);
    assert!(
        sla.contains("in_window_pct") && sla.contains("28.6"),
        "{sla}"
    );
}
