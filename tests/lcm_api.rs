//! `POST /v1/lcm` against the real server: the seed's sample, the contract's error table,
//! field rules, window rules, idempotency, replacement and supersede.

mod common;

use chrono::Duration;
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn the_seed_sample_gets_the_seed_reply_shape() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let (status, reply) = app.post_lcm(&seed_request()).await;
    assert_eq!(status, 200, "{reply}");

    // Every key of the vendor's sample reply is there with the vendor's value...
    let seed: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir().join("seed-response.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(reply["channel"], seed["channel"]);
    assert_eq!(reply["topic"], seed["topic"]);
    assert_eq!(reply["subtopic"], seed["subtopic"]);
    assert_eq!(reply["message"]["callid"], seed["message"]["callid"]);
    assert_eq!(response(&reply)["success"], true);
    // ...plus the id of the callback, and nothing else.
    let callback_id = response(&reply)["callback_id"]
        .as_i64()
        .expect("callback_id");
    assert_eq!(response(&reply).as_object().unwrap().len(), 2);
    assert_eq!(reply.as_object().unwrap().len(), 4);

    let (status, callback) = app.get(&format!("/v1/callbacks/{callback_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        callback,
        json!({
            "id": callback_id, "state": "scheduled", "callid": "12345",
            "AccountNumber": "5|3|1|0|0|44|1", "CallbackModeID": 1, "UserID": "testagent",
            "window_start": "2026-01-13T13:45:00Z", "window_end": "2026-01-13T14:00:00Z",
            "timezone": "UTC", "local_start": "13/01/2026 13:45", "local_end": "13/01/2026 13:45",
            "attempts": 0
        })
    );
    let stored: (String, i64, i64, String, String, f64, f64) = app
        .sql()
        .query_row(
            "SELECT account_number, outcome_id, business_outcome, user_id, agent_comments,
                    lead_score, target_amount FROM outcomes WHERE callid = '12345'",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        stored,
        (
            "5|3|1|0|0|44|1".into(),
            4,
            101,
            "testagent".into(),
            "Test comment".into(),
            0.0,
            0.0
        )
    );
}

/// One sample per row of the contract's error table, as shipped in `data/invalid/`.
#[tokio::test]
async fn every_row_of_the_error_table() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let cases = [
        (
            "callid-empty.json",
            "callid",
            "Invalid Call ID.",
            "Callid is empty",
        ),
        (
            "callid-unknown.json",
            "callid",
            "Invalid Call ID.",
            "Invalid Call ID:no-such-call",
        ),
        (
            "field-out-of-range.json",
            "OutcomeId",
            "Invalid OutcomeId.",
            "OutcomeId is negative: got number -4",
        ),
        (
            "agent-not-logged-in.json",
            "UserID",
            "Agent not logged in.",
            "\"absentagent\"",
        ),
        (
            "window-reversed.json",
            "EndDate",
            "Invalid callback window.",
            "13/01/2026 13:00 before it starts at 13/01/2026 13:45",
        ),
    ];
    for (file, field, message, detail) in cases {
        let (status, reply) = app.post_lcm(&sample(&format!("invalid/{file}"))).await;
        assert_eq!(status, 400, "{file}: {reply}");
        let error = lcm_error(&reply);
        assert_eq!(error["type"], "WS_Error", "{file}");
        assert_eq!(error["field"], field, "{file}: {error}");
        assert_eq!(error["message"], message, "{file}: {error}");
        let got = error["detail"].as_str().unwrap();
        assert!(
            got.contains(detail),
            "{file}: detail {got:?} lacks {detail:?}"
        );
        assert_eq!(
            reply["subtopic"],
            "SetBusinessOutcomeWithPersonalCallbackResult"
        );
    }

    // The window-over sample keeps the seed's 2021 dates: over long before the clock's 2026.
    let text = std::fs::read_to_string(data_dir().join("invalid/window-over.json")).unwrap();
    let (status, reply) = app.post_lcm(&serde_json::from_str(&text).unwrap()).await;
    assert_eq!(status, 400);
    let error = lcm_error(&reply);
    assert_eq!(error["message"], "Invalid callback window.");
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.contains("ended at 2021-01-13T14:00:00Z"), "{detail}");
    assert!(
        detail.contains("the time now is 2026-01-12T09:00:00Z"),
        "{detail}"
    );
    assert_eq!(app.count("outcomes"), 0, "no refusal may write a row");
    assert_eq!(app.count("callbacks"), 0);
}

/// Bad inputs beyond the table: each answers 400 naming the right field.
#[tokio::test]
async fn bad_fields_are_named() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let long = |n: usize| Value::String("x".repeat(n));
    let cases: Vec<(Value, &str, &str)> = vec![
        // each mandatory field missing
        (
            json!({"AccountNumber": null}),
            "AccountNumber",
            "AccountNumber is missing",
        ),
        (
            json!({"OutcomeId": null}),
            "OutcomeId",
            "OutcomeId is missing",
        ),
        (
            json!({"BusinessOutcome": null}),
            "BusinessOutcome",
            "BusinessOutcome is missing",
        ),
        (
            json!({"StartDate": null}),
            "StartDate",
            "StartDate is missing",
        ),
        (json!({"EndDate": null}), "EndDate", "EndDate is missing"),
        (
            json!({"StartTime": null}),
            "StartTime",
            "StartTime is missing",
        ),
        (json!({"EndTime": null}), "EndTime", "EndTime is missing"),
        (
            json!({"CallbackModeID": null}),
            "CallbackModeID",
            "CallbackModeID is missing",
        ),
        (json!({"UserID": null}), "UserID", "UserID is missing"),
        (
            json!({"AgentComments": null}),
            "AgentComments",
            "AgentComments is missing",
        ),
        (
            json!({"LeadScore": null}),
            "LeadScore",
            "LeadScore is missing",
        ),
        (
            json!({"TargetAmount": null}),
            "TargetAmount",
            "TargetAmount is missing",
        ),
        (json!({"callid": null}), "callid", "Callid is empty"),
        // each field with a wrong type
        (json!({"callid": 12345}), "callid", "got number 12345"),
        (json!({"AccountNumber": 5}), "AccountNumber", "got number 5"),
        (json!({"OutcomeId": true}), "OutcomeId", "got boolean true"),
        (
            json!({"BusinessOutcome": [101]}),
            "BusinessOutcome",
            "got array [101]",
        ),
        (
            json!({"StartDate": 13012026}),
            "StartDate",
            "got number 13012026",
        ),
        (json!({"EndDate": {"d": 13}}), "EndDate", "got object"),
        (json!({"StartTime": 1345}), "StartTime", "got number 1345"),
        (json!({"EndTime": false}), "EndTime", "got boolean false"),
        (
            json!({"CallbackModeID": "one"}),
            "CallbackModeID",
            "got string \"one\"",
        ),
        (json!({"UserID": 7}), "UserID", "got number 7"),
        (json!({"AgentComments": 3}), "AgentComments", "got number 3"),
        (
            json!({"LeadScore": "high"}),
            "LeadScore",
            "got string \"high\"",
        ),
        (json!({"TargetAmount": {}}), "TargetAmount", "got object {}"),
        // calendar and clock
        (
            json!({"StartDate": "31/02/2026"}),
            "StartDate",
            "is not a calendar date",
        ),
        (
            json!({"EndDate": "29/02/2027"}),
            "EndDate",
            "is not a calendar date",
        ),
        (
            json!({"StartTime": "24:00"}),
            "StartTime",
            "is not a time of day",
        ),
        (
            json!({"EndTime": "7:5"}),
            "EndTime",
            "is not in the form HH:mm",
        ),
        (
            json!({"StartDate": "2026-01-13"}),
            "StartDate",
            "is not in the form DD/MM/YYYY",
        ),
        (
            json!({"StartDate": "13/13/2026"}),
            "StartDate",
            "has no such month",
        ),
        (
            json!({"StartTime": "13:60"}),
            "StartTime",
            "is not a time of day",
        ),
        // numbers
        (
            json!({"BusinessOutcome": -1}),
            "BusinessOutcome",
            "is negative",
        ),
        (
            json!({"CallbackModeID": "-3"}),
            "CallbackModeID",
            "is negative",
        ),
        (
            json!({"OutcomeId": 4.5}),
            "OutcomeId",
            "is not a whole number",
        ),
        (
            json!({"OutcomeId": "4.5"}),
            "OutcomeId",
            "is not a string of digits",
        ),
        (json!({"LeadScore": "NaN"}), "LeadScore", "is not a number"),
        (
            json!({"TargetAmount": "inf"}),
            "TargetAmount",
            "is not a number",
        ),
        (
            json!({"TargetAmount": "1e400"}),
            "TargetAmount",
            "is not finite",
        ),
        (
            json!({"OutcomeId": 9_223_372_036_854_775_808u64}),
            "OutcomeId",
            "is too large",
        ),
        // lengths and characters
        (json!({"callid": long(65)}), "callid", "65 characters long"),
        (
            json!({"AccountNumber": long(129)}),
            "AccountNumber",
            "129 characters long",
        ),
        (json!({"UserID": long(65)}), "UserID", "65 characters long"),
        (
            json!({"AgentComments": long(4001)}),
            "AgentComments",
            "4001 characters long",
        ),
        (
            json!({"AccountNumber": ""}),
            "AccountNumber",
            "AccountNumber is empty",
        ),
        (json!({"UserID": "   "}), "UserID", "UserID is empty"),
        (
            json!({"UserID": "agent\u{0}1"}),
            "UserID",
            "control character",
        ),
        (
            json!({"TimeZone": "Mars/Olympus"}),
            "TimeZone",
            "not a known IANA zone",
        ),
    ];
    assert!(cases.len() >= 15 + 13);
    for (patch, field, detail) in cases {
        let (status, reply) = app.post_lcm(&seed_with(patch.clone())).await;
        assert_eq!(status, 400, "{patch}: {reply}");
        let error = lcm_error(&reply);
        assert_eq!(error["field"], field, "{patch}: {error}");
        let message = if field == "callid" {
            "Invalid Call ID.".to_owned()
        } else {
            format!("Invalid {field}.")
        };
        assert_eq!(error["message"], message.as_str(), "{patch}");
        let got = error["detail"].as_str().unwrap();
        assert!(
            got.contains(detail),
            "{patch}: detail {got:?} lacks {detail:?}"
        );
        assert!(got.len() < 400, "a detail quotes a bounded excerpt: {got}");
    }
    assert_eq!(app.count("outcomes"), 0);
}

#[tokio::test]
async fn numbers_may_come_as_strings_and_unknown_fields_are_ignored() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let request = seed_with(json!({
        "OutcomeId": "4", "BusinessOutcome": "101", "CallbackModeID": "2",
        "LeadScore": "7.5", "TargetAmount": "-12.25", "SomethingNew": {"x": 1}
    }));
    let (status, reply) = app.post_lcm(&request).await;
    assert_eq!(status, 200, "{reply}");
    let row: (i64, i64, f64, f64) = app
        .sql()
        .query_row(
            "SELECT o.outcome_id, c.callback_mode_id, o.lead_score, o.target_amount
             FROM outcomes o JOIN callbacks c ON c.id = o.callback_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(row, (4, 2, 7.5, -12.25));
}

#[tokio::test]
async fn envelope_errors_answer_with_an_envelope() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;

    let (status, reply) = app.post_lcm_raw("{not json").await;
    assert_eq!(status, 400);
    assert_eq!(lcm_error(&reply)["message"], "Invalid request.");
    assert_eq!(
        reply["subtopic"],
        "SetBusinessOutcomeWithPersonalCallbackResult"
    );

    let (status, reply) = app.post_lcm_raw("[1, 2]").await;
    assert_eq!(status, 400);
    assert!(lcm_error(&reply)["detail"]
        .as_str()
        .unwrap()
        .contains("got array"));

    let mut wrong_channel = seed_request();
    wrong_channel["channel"] = json!("SMS");
    let (status, reply) = app.post_lcm(&wrong_channel).await;
    assert_eq!(status, 400);
    assert_eq!(lcm_error(&reply)["field"], "channel");
    assert!(lcm_error(&reply)["detail"]
        .as_str()
        .unwrap()
        .contains("\"SMS\""));

    let mut unknown = seed_request();
    unknown["subtopic"] = json!("SetBusinessOutcome");
    let (status, reply) = app.post_lcm(&unknown).await;
    assert_eq!(status, 400);
    assert_eq!(lcm_error(&reply)["field"], "subtopic");
    assert_eq!(
        reply["subtopic"], "SetBusinessOutcomeResult",
        "the request's subtopic + Result"
    );

    let mut no_data = seed_request();
    no_data.as_object_mut().unwrap().remove("data");
    let (status, reply) = app.post_lcm(&no_data).await;
    assert_eq!(status, 400);
    assert_eq!(lcm_error(&reply)["field"], "data");

    let big = format!("{{\"data\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (status, reply) = app.post_lcm_raw(big).await;
    assert_eq!(status, 413);
    assert_eq!(lcm_error(&reply)["message"], "Request too large.");
    assert_eq!(app.count("outcomes"), 0);
}

#[tokio::test]
async fn channel_and_topic_match_in_any_case_and_the_topic_is_echoed() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let mut request = seed_request();
    request["channel"] = json!("lcm");
    request["topic"] = json!("Webservice");
    request["source"] = json!("agent-desktop");
    let (status, reply) = app.post_lcm(&request).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["topic"], "Webservice");
    assert_eq!(reply["channel"], "LCM");
    let source: String = app
        .sql()
        .query_row("SELECT source FROM outcomes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(source, "agent-desktop");
}

#[tokio::test]
async fn an_identical_retry_is_idempotent() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let (_, first) = app.post_lcm(&seed_request()).await;
    // A retry after the agent left must still get the answer the first try got.
    app.logout("testagent").await;
    app.end_call("12345").await;
    app.clock.advance(Duration::minutes(5));
    let (status, second) = app.post_lcm(&seed_request()).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        response(&first)["callback_id"],
        response(&second)["callback_id"]
    );
    assert_eq!(app.count("outcomes"), 1);
    assert_eq!(app.count("outcome_history"), 0);
    assert_eq!(app.count("callbacks"), 1);
}

#[tokio::test]
async fn a_different_request_replaces_the_outcome_and_keeps_history() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let (_, first) = app.post_lcm(&seed_request()).await;
    app.clock.advance(Duration::minutes(1));
    let changed = seed_with(json!({"BusinessOutcome": 202, "EndTime": "15:00"}));
    let (status, second) = app.post_lcm(&changed).await;
    assert_eq!(status, 200, "{second}");
    let first_id = response(&first)["callback_id"].as_i64().unwrap();
    let second_id = response(&second)["callback_id"].as_i64().unwrap();
    assert_ne!(first_id, second_id);

    assert_eq!(app.count("outcomes"), 1);
    let (current, callback): (i64, i64) = app
        .sql()
        .query_row(
            "SELECT business_outcome, callback_id FROM outcomes",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((current, callback), (202, second_id));
    let (old, old_callback, replaced_at): (i64, i64, i64) = app
        .sql()
        .query_row(
            "SELECT business_outcome, callback_id, replaced_at FROM outcome_history",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((old, old_callback), (101, first_id));
    assert_eq!(replaced_at, app.clock.now().timestamp_millis());
    let statuses: Vec<String> = app
        .sql()
        .prepare("SELECT status FROM v_outcomes ORDER BY status")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(statuses, ["current", "replaced"]);
}

#[tokio::test]
async fn a_new_callback_supersedes_the_accounts_live_one() {
    let app = spawn_app().await;
    app.login("testagent").await;
    app.register_call("call-a", "ACC-1", "testagent").await;
    app.register_call("call-b", "ACC-1", "testagent").await;
    app.register_call("call-c", "ACC-2", "testagent").await;
    let (_, a) = app
        .post_lcm(&seed_with(
            json!({"callid": "call-a", "AccountNumber": "ACC-1"}),
        ))
        .await;
    let (_, c) = app
        .post_lcm(&seed_with(
            json!({"callid": "call-c", "AccountNumber": "ACC-2"}),
        ))
        .await;
    let (_, b) = app
        .post_lcm(&seed_with(json!({"callid": "call-b", "AccountNumber": "ACC-1", "StartTime": "16:00", "EndTime": "16:30"})))
        .await;
    let id = |reply: &Value| response(reply)["callback_id"].as_i64().unwrap();
    let state = |id: i64| -> (String, Option<i64>) {
        app.sql()
            .query_row(
                "SELECT state, supersedes FROM callbacks WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    assert_eq!(state(id(&a)), ("superseded".into(), None));
    assert_eq!(state(id(&b)), ("scheduled".into(), Some(id(&a))));
    assert_eq!(
        state(id(&c)),
        ("scheduled".into(), None),
        "another account is untouched"
    );
}

#[tokio::test]
async fn window_rules() {
    let app = spawn_app_with(&["--min-window", "20m"]).await;
    app.login("testagent").await;

    // A point window lasts --min-window.
    app.register_call("p", "ACC-P", "testagent").await;
    let (_, reply) = app
        .post_lcm(&seed_with(json!({"callid": "p", "AccountNumber": "ACC-P"})))
        .await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let (_, callback) = app.get(&format!("/v1/callbacks/{id}")).await;
    assert_eq!(callback["window_start"], "2026-01-13T13:45:00Z");
    assert_eq!(callback["window_end"], "2026-01-13T14:05:00Z");

    // A window that has started but not ended is due at once.
    app.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 13, 14, 0, 0).unwrap());
    app.register_call("d", "ACC-D", "testagent").await;
    let request = seed_with(
        json!({"callid": "d", "AccountNumber": "ACC-D", "StartTime": "13:30", "EndTime": "14:30"}),
    );
    let (status, reply) = app.post_lcm(&request).await;
    assert_eq!(status, 200, "{reply}");
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/v1/callbacks/{id}")).await.1["state"],
        "due"
    );

    // A window that ends exactly now is over.
    app.register_call("o", "ACC-O", "testagent").await;
    let request = seed_with(
        json!({"callid": "o", "AccountNumber": "ACC-O", "StartTime": "13:00", "EndTime": "14:00"}),
    );
    let (status, reply) = app.post_lcm(&request).await;
    assert_eq!(status, 400);
    assert_eq!(lcm_error(&reply)["message"], "Invalid callback window.");

    // Windows across midnight and several days are fine; an end a day before the start is not.
    app.register_call("m", "ACC-M", "testagent").await;
    let request = seed_with(
        json!({"callid": "m", "AccountNumber": "ACC-M", "StartTime": "23:30",
        "EndDate": "15/01/2026", "EndTime": "00:30"}),
    );
    assert_eq!(app.post_lcm(&request).await.0, 200);
    let request = seed_with(
        json!({"callid": "m", "AccountNumber": "ACC-M", "EndDate": "12/01/2026", "EndTime": "23:00"}),
    );
    let (status, reply) = app.post_lcm(&request).await;
    assert_eq!(status, 400);
    assert!(lcm_error(&reply)["detail"]
        .as_str()
        .unwrap()
        .contains("12/01/2026 23:00 before it starts at 13/01/2026 13:45"));
}

#[tokio::test]
async fn local_times_are_read_in_the_service_zone_or_the_requests_own() {
    let app = spawn_app_with(&["--timezone", "Europe/Paris"]).await;
    app.login("testagent").await;
    app.register_call("z1", "ACC-Z1", "testagent").await;
    app.register_call("z2", "ACC-Z2", "testagent").await;
    let (_, reply) = app
        .post_lcm(&seed_with(
            json!({"callid": "z1", "AccountNumber": "ACC-Z1"}),
        ))
        .await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let (_, callback) = app.get(&format!("/v1/callbacks/{id}")).await;
    assert_eq!(
        callback["window_start"], "2026-01-13T12:45:00Z",
        "13:45 in Paris is UTC+1 in January"
    );
    assert_eq!(callback["timezone"], "Europe/Paris");

    let request = seed_with(
        json!({"callid": "z2", "AccountNumber": "ACC-Z2", "TimeZone": "America/Chicago"}),
    );
    let (_, reply) = app.post_lcm(&request).await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let (_, callback) = app.get(&format!("/v1/callbacks/{id}")).await;
    assert_eq!(callback["window_start"], "2026-01-13T19:45:00Z");
    assert_eq!(callback["timezone"], "America/Chicago");
    assert_eq!(callback["local_start"], "13/01/2026 13:45");
}

#[tokio::test]
async fn the_agent_must_be_logged_in_or_on_an_active_call() {
    let app = spawn_app().await;
    // On an active call, not logged in: allowed.
    app.register_call("12345", "5|3|1|0|0|44|1", "testagent")
        .await;
    let (status, reply) = app.post_lcm(&seed_request()).await;
    assert_eq!(status, 200, "{reply}");

    // Call ended and agent not logged in: refused, naming the agent.
    app.register_call("c2", "ACC-2", "testagent").await;
    app.end_call("12345").await;
    app.end_call("c2").await;
    let request = seed_with(json!({"callid": "c2", "AccountNumber": "ACC-2"}));
    let (status, reply) = app.post_lcm(&request).await;
    assert_eq!(status, 400);
    assert_eq!(lcm_error(&reply)["message"], "Agent not logged in.");
    assert!(lcm_error(&reply)["detail"]
        .as_str()
        .unwrap()
        .contains("\"testagent\""));

    // Call ended but the agent is logged in: allowed.
    app.login("testagent").await;
    assert_eq!(app.post_lcm(&request).await.0, 200);
}

#[tokio::test]
async fn the_account_must_match_the_registered_call() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let (status, reply) = app
        .post_lcm(&seed_with(json!({"AccountNumber": "9|9|9"})))
        .await;
    assert_eq!(status, 400);
    let error = lcm_error(&reply);
    assert_eq!(error["field"], "AccountNumber");
    let detail = error["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"9|9|9\"") && detail.contains("\"5|3|1|0|0|44|1\""),
        "{detail}"
    );
}

#[tokio::test]
async fn telephony_endpoints() {
    let app = spawn_app().await;
    let call = json!({"callid": "t1", "AccountNumber": "A", "UserID": "u"});
    assert_eq!(app.post("/v1/calls", Some(&call)).await.0, 201);
    assert_eq!(
        app.post("/v1/calls", Some(&call)).await.0,
        200,
        "the same registration again"
    );
    let conflicting = json!({"callid": "t1", "AccountNumber": "B", "UserID": "u"});
    let (status, reply) = app.post("/v1/calls", Some(&conflicting)).await;
    assert_eq!(status, 409);
    assert_eq!(reply["error"]["field"], "AccountNumber");
    let detail = reply["error"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"A\"") && detail.contains("\"B\""),
        "{detail}"
    );

    let (status, reply) = app
        .post("/v1/calls", Some(&json!({"callid": "t2", "UserID": "u"})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["field"], "AccountNumber");

    let (status, reply) = app.post("/v1/calls/nope/end", None).await;
    assert_eq!(status, 404);
    assert_eq!(reply["error"]["field"], "callid");

    let (status, reply) = app
        .post(&format!("/v1/agents/{}/login", "x".repeat(65)), None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["field"], "UserID");

    let (status, _) = app.get("/v1/callbacks/999").await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
}
