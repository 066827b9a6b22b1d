//! The LCM family beyond the seed, on `POST /v1/lcm` against the real server: each
//! subtopic's sample and its invalid cases from `data/family/`, the prerequisite, identical
//! retries, replacement across subtopics, normal callbacks, do-not-call and Reject, the
//! outcome catalogue, agent state, and the read messages.

mod common;

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use common::*;
use redial::lcm::Subtopic;
use serde::Deserialize;
use serde_json::{json, Value};

const ACCOUNT: &str = "5|3|1|0|0|44|1";

/// The sample of a subtopic, as shipped in `data/family/<subtopic>/request.json`.
fn family(subtopic: &str) -> Value {
    sample(&format!("family/{subtopic}/request.json"))
}

/// A family sample with `data` fields changed (`null` removes one).
fn family_with(subtopic: &str, patch: Value) -> Value {
    let mut request = family(subtopic);
    let data = request["data"].as_object_mut().unwrap();
    for (key, value) in patch.as_object().unwrap() {
        if value.is_null() {
            data.remove(key);
        } else {
            data.insert(key.clone(), value.clone());
        }
    }
    request
}

/// The folders of `data/family/`, one a subtopic.
fn subtopics() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir().join("family"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The reply subtopic the vendor gives a request's subtopic.
fn reply_name(subtopic: &str) -> &'static str {
    Subtopic::parse(subtopic).unwrap().reply()
}

/// A server with the seed's agent logged in and its call registered with the contact's
/// campaign and two modes.
async fn app_with_contact(args: &[&str]) -> TestApp {
    let app = spawn_app_with(args).await;
    app.login("testagent").await;
    register_contact(&app, "12345", ACCOUNT).await;
    app
}

async fn register_contact(app: &TestApp, callid: &str, account: &str) {
    let body = json!({
        "callid": callid, "AccountNumber": account, "UserID": "testagent",
        "CampaignID": "C7", "ContactID": 4411,
        "modes": [
            {"ModeID": 1, "Description": "Mobile", "CValue": "+15551234567"},
            {"ModeID": 2, "Description": "Home", "CValue": "+15557654321"}
        ]
    });
    let (status, reply) = app.post("/v1/calls", Some(&body)).await;
    assert!(status == 201 || status == 200, "{status} {reply}");
}

/// One column of one row, read from the committed file.
fn one<T: rusqlite::types::FromSql>(app: &TestApp, sql: &str) -> T {
    app.sql()
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The rows a test expects nothing to change.
fn written(app: &TestApp) -> Vec<i64> {
    [
        "outcomes",
        "outcome_history",
        "callbacks",
        "events",
        "dnc",
        "agents",
    ]
    .iter()
    .map(|t| app.count(t))
    .collect()
}

#[test]
fn data_has_a_folder_for_every_subtopic_but_the_seed() {
    let folders = subtopics();
    for subtopic in Subtopic::ALL {
        if subtopic == Subtopic::PersonalCallback {
            continue;
        }
        assert!(
            folders
                .iter()
                .any(|f| f.eq_ignore_ascii_case(subtopic.name())),
            "data/family lacks {subtopic}"
        );
    }
    assert_eq!(folders.len(), Subtopic::ALL.len() - 1);
}

/// Every sample is accepted and answered in the vendor's shape: the envelope echoed, the
/// vendor's reply subtopic, `success` (and `callback_id` where a callback was set) for a
/// write, an array of rows for a read.
#[tokio::test]
async fn every_sample_gets_its_vendor_reply_shape() {
    for subtopic in subtopics() {
        let app = app_with_contact(&[]).await;
        let request = family(&subtopic);
        let (status, reply) = app.post_lcm(&request).await;
        assert_eq!(status, 200, "{subtopic}: {reply}");
        // (serde_json's map sorts its keys; the order on the wire is the unit tests' to pin.)
        let keys: Vec<&str> = reply
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            ["channel", "message", "subtopic", "topic"],
            "{subtopic}"
        );
        assert_eq!(reply["channel"], "LCM");
        assert_eq!(reply["topic"], "WebService");
        assert_eq!(reply["subtopic"], reply_name(&subtopic), "{subtopic}");
        let callid = request["data"]["callid"].as_str().unwrap_or("");
        assert_eq!(reply["message"]["callid"], callid, "{subtopic}");
        let answer = response(&reply);
        if subtopic.starts_with("Get") {
            assert!(answer.is_array(), "{subtopic}: {reply}");
            continue;
        }
        let asks_callback = request["data"].get("StartDate").is_some();
        let expected = if asks_callback {
            json!({"success": true, "callback_id": 1})
        } else {
            json!({"success": true})
        };
        assert_eq!(*answer, expected, "{subtopic}");
    }
}

#[derive(Debug, Deserialize)]
struct Expected {
    status: u16,
    field: String,
    message: String,
}

/// Every invalid case in `data/family/*/invalid/` (each mandatory field missing and mistyped,
/// the two WS_Error cases, the prerequisite) is refused as `expect.json` says, naming the
/// field, and writes nothing.
#[tokio::test]
async fn every_invalid_case_names_its_field_and_writes_nothing() {
    for subtopic in subtopics() {
        let app = app_with_contact(&[]).await;
        let before = written(&app);
        let dir = data_dir().join("family").join(&subtopic).join("invalid");
        let expect: BTreeMap<String, Expected> =
            serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
        let files = std::fs::read_dir(&dir).unwrap().count() - 1;
        assert_eq!(files, expect.len(), "{subtopic}: a file without its line");
        let mandatory = family(&subtopic)["data"].as_object().unwrap().len();
        assert!(
            expect.len() >= 2 * mandatory,
            "{subtopic}: missing and wrong for each"
        );
        for (file, expected) in &expect {
            let request = sample(&format!("family/{subtopic}/invalid/{file}"));
            let (status, reply) = app.post_lcm(&request).await;
            let case = format!("{subtopic}/{file}");
            assert_eq!(status, expected.status, "{case}: {reply}");
            assert_eq!(reply["subtopic"], reply_name(&subtopic), "{case}");
            let error = lcm_error(&reply);
            assert_eq!(error["type"], "WS_Error", "{case}");
            assert_eq!(error["field"], expected.field.as_str(), "{case}: {error}");
            assert_eq!(
                error["message"],
                expected.message.as_str(),
                "{case}: {error}"
            );
            let detail = error["detail"].as_str().unwrap();
            let names_it = detail.contains(expected.field.as_str())
                || detail.contains("Callid is empty")
                || detail.contains("Invalid Call ID:")
                || detail.contains("absentagent");
            assert!(names_it, "{case}: {detail}");
        }
        assert_eq!(written(&app), before, "{subtopic}: a refusal wrote");
    }
}

/// The reads about a call's contact need its agent present: logged in or on an active call.
#[tokio::test]
async fn the_contact_reads_need_the_calls_agent_present() {
    let app = app_with_contact(&[]).await;
    app.end_call("12345").await;
    app.logout("testagent").await;
    for subtopic in [
        "GetCallBackModes",
        "GetBusinessOutCome",
        "GetBusinessOutcomeParent",
    ] {
        let (status, reply) = app.post_lcm(&family(subtopic)).await;
        assert_eq!(status, 400, "{subtopic}: {reply}");
        let error = lcm_error(&reply);
        assert_eq!(error["message"], "Agent not logged in.", "{subtopic}");
        assert_eq!(error["field"], "UserID");
    }
    let (_, reply) = app
        .post_lcm(&family_with(
            "GetCallBackModes",
            json!({"AccountNumber": "other"}),
        ))
        .await;
    assert_eq!(lcm_error(&reply)["field"], "AccountNumber");
}

/// An identical retry of any write answers as the first did and writes nothing.
#[tokio::test]
async fn an_identical_retry_of_every_write_writes_nothing() {
    for subtopic in subtopics().into_iter().filter(|s| !s.starts_with("Get")) {
        let app = app_with_contact(&[]).await;
        let request = family(&subtopic);
        let first = app.post_lcm(&request).await;
        assert_eq!(first.0, 200, "{subtopic}: {}", first.1);
        let before = written(&app);
        let mut retry = request.clone();
        retry["source"] = json!("a different application");
        assert_eq!(app.post_lcm(&retry).await, first, "{subtopic}");
        assert_eq!(written(&app), before, "{subtopic}: the retry wrote");
    }
}

/// A comments-only outcome replacing a personal-callback outcome on the same call ends the
/// callback (`cancelled`, reason `replaced`) and withdraws its redial; the replaced outcome
/// moves to the history.
#[tokio::test]
async fn a_comments_outcome_replacing_a_callback_outcome_cancels_the_callback() {
    let app = app_with_contact(&[]).await;
    let (_, reply) = app.post_lcm(&seed_request()).await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let (status, reply) = app
        .post_lcm(&family("SetBusinessOutcomeWithComments"))
        .await;
    assert_eq!(status, 200, "{reply}");
    let (_, callback) = app.get(&format!("/v1/callbacks/{id}")).await;
    assert_eq!(callback["state"], "cancelled");
    let reason: String = one(&app, "SELECT end_reason FROM callbacks");
    assert_eq!(reason, "replaced");
    let message: String = one(&app, "SELECT message FROM outcomes");
    assert_eq!(message, "SetBusinessOutcomeWithComments");
    let replaced: String = one(&app, "SELECT message FROM outcome_history");
    assert_eq!(replaced, "SetBusinessOutcomeWithPersonalCallback");
    let callback_of_outcome: Option<i64> = one(&app, "SELECT callback_id FROM outcomes");
    assert_eq!(callback_of_outcome, None);
}

/// `SetPersonalCallbackWithComments` sets a callback and leaves the call's outcome row as it
/// was: its values, and no history row.
#[tokio::test]
async fn a_callback_with_comments_leaves_the_outcome_as_it_was() {
    let app = app_with_contact(&[]).await;
    assert_eq!(
        app.post_lcm(&family("SetBusinessOutcomeWithComments"))
            .await
            .0,
        200
    );
    let (status, reply) = app
        .post_lcm(&family("SetPersonalCallbackWithComments"))
        .await;
    assert_eq!(status, 200, "{reply}");
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    assert_eq!(app.count("outcome_history"), 0);
    let kept: (String, Option<i64>) = app
        .sql()
        .query_row("SELECT message, callback_id FROM outcomes", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(kept, ("SetBusinessOutcomeWithComments".to_owned(), None));
    let (kind, personal, comments): (String, bool, String) = app
        .sql()
        .query_row(
            "SELECT kind, personal, agent_comments FROM callbacks WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), personal), ("personal", true));
    assert_eq!(comments, "Test comment");
}

fn lease(user: Option<&str>, wait_ms: u64) -> Value {
    json!({"consumer": "dialer", "max": 100, "lease_ms": 30000, "wait_ms": wait_ms, "user_id": user})
}

/// A normal callback is leased by a dialer for another agent, marked `personal: false`, with
/// the number to dial from the contact's modes; the setter's UserID is on it.
#[tokio::test]
async fn a_normal_callback_is_leased_by_another_agents_dialer() {
    let app = app_with_contact(&[]).await;
    let (_, reply) = app
        .post_lcm(&family("SetBusinessOutcomeWithCallback"))
        .await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 1, 13, 13, 45, 0).unwrap());
    let (status, reply) = app
        .post("/v1/queue/lease", Some(&lease(Some("other-agent"), 30_000)))
        .await;
    assert_eq!(status, 200, "{reply}");
    let events = reply["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{reply}");
    let event = &events[0];
    assert_eq!(event["callback_id"], id);
    assert_eq!(event["personal"], false);
    assert_eq!(event["UserID"], "testagent");
    assert_eq!(event["CValue"], "+15551234567", "mode 1 of the contact");
}

/// DNC ends the contact's live callback (cancelled, reason `dnc`, an `expired` event telling
/// the dialers) and puts it on the do-not-call list, which refuses every later callback for
/// it, across a restart.
#[tokio::test]
async fn do_not_call_ends_the_callback_and_refuses_the_next_across_a_restart() {
    let app = app_with_contact(&[]).await;
    let (_, reply) = app.post_lcm(&seed_request()).await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let dnc = family_with(
        "SetBusinessOutcomeWithCallOutcome",
        json!({"CallOutcome": "DNC"}),
    );
    let (status, reply) = app.post_lcm(&dnc).await;
    assert_eq!(status, 200, "{reply}");
    let (state, reason): (String, String) = app
        .sql()
        .query_row(
            "SELECT state, end_reason FROM callbacks WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), reason.as_str()), ("cancelled", "dnc"));
    let (_, expired) = app.post("/v1/queue/lease", Some(&lease(None, 0))).await;
    let events = expired["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{expired}");
    assert_eq!(events[0]["type"], "expired");
    assert_eq!(events[0]["reason"], "dnc");
    let call_outcome: i64 = one(&app, "SELECT call_outcome FROM outcomes");
    assert_eq!(call_outcome, 5);

    let app = app.restart().await;
    register_contact(&app, "second-call", ACCOUNT).await;
    for subtopic in [
        "SetBusinessOutcomeWithCallback",
        "SetPersonalCallbackWithComments",
    ] {
        let again = family_with(subtopic, json!({"callid": "second-call"}));
        let (status, reply) = app.post_lcm(&again).await;
        assert_eq!(status, 400, "{subtopic}: {reply}");
        let error = lcm_error(&reply);
        assert_eq!(error["message"], "Invalid AccountNumber.");
        assert_eq!(error["field"], "AccountNumber");
        let detail = error["detail"].as_str().unwrap();
        assert!(
            detail.contains("do-not-call list since 2026-01-12T09:00:00Z")
                && detail.contains("SetBusinessOutcomeWithCallOutcome")
                && detail.contains("\"12345\""),
            "{detail}"
        );
    }
    // An outcome without a callback is still taken: the agent may record the call.
    let comments = family_with(
        "SetBusinessOutcomeWithComments",
        json!({"callid": "second-call"}),
    );
    assert_eq!(app.post_lcm(&comments).await.0, 200);
}

/// Reject ends the live callback the same way, without listing the contact.
#[tokio::test]
async fn reject_ends_the_callback_without_listing() {
    let app = app_with_contact(&[]).await;
    let (_, reply) = app.post_lcm(&seed_request()).await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let (status, reply) = app.post_lcm(&family("SetCallOutcomeWithComments")).await;
    assert_eq!(status, 200, "{reply}");
    let reason: String = one(
        &app,
        &format!("SELECT end_reason FROM callbacks WHERE id = {id}"),
    );
    assert_eq!(reason, "reject");
    assert_eq!(app.count("dnc"), 0);
    register_contact(&app, "second-call", ACCOUNT).await;
    let again = family_with(
        "SetBusinessOutcomeWithCallback",
        json!({"callid": "second-call"}),
    );
    assert_eq!(app.post_lcm(&again).await.0, 200);
}

/// Any other telephony outcome is stored and ends nothing; one that is not an outcome is
/// refused naming the field.
#[tokio::test]
async fn other_telephony_outcomes_are_stored_and_unknown_ones_refused() {
    let app = app_with_contact(&[]).await;
    let (_, reply) = app.post_lcm(&seed_request()).await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let busy = family_with("SetCallOutcomeWithComments", json!({"OutcomeID": "Busy"}));
    assert_eq!(app.post_lcm(&busy).await.0, 200);
    let outcome: i64 = one(&app, "SELECT call_outcome FROM outcomes");
    assert_eq!(outcome, 3);
    let reason: String = one(
        &app,
        &format!("SELECT end_reason FROM callbacks WHERE id = {id}"),
    );
    assert_eq!(reason, "replaced", "the new outcome asks for no callback");
    for bad in [json!("1"), json!("Hung up"), json!(true)] {
        let request = family_with("SetCallOutcomeWithComments", json!({"OutcomeID": bad}));
        let (status, reply) = app.post_lcm(&request).await;
        assert_eq!(status, 400);
        let error = lcm_error(&reply);
        assert_eq!(error["field"], "OutcomeID");
        assert!(
            error["detail"].as_str().unwrap().contains("5 DNC"),
            "{error}"
        );
    }
}

fn write_catalogue(app_dir: &std::path::Path) -> std::path::PathBuf {
    let path = app_dir.join("outcomes.csv");
    std::fs::write(
        &path,
        "OutcomeID,Description,CampaignID,ParentOutcomeID,Closes\n\
         100,Interested,,,\n\
         101,Call back later,,100,\n\
         4,Callback,C7,100,no\n\
         7,Sale closed,C7,,yes\n\
         8,Other campaign,C9,,\n",
    )
    .unwrap();
    path
}

/// With a catalogue loaded, an id it lacks is refused naming the field; an outcome that
/// closes the contact ends its callback and cannot come with one. The reads answer from it.
#[tokio::test]
async fn the_catalogue_refuses_unknown_ids_and_answers_the_reads() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_catalogue(dir.path());
    let app = app_with_contact(&["--outcomes", file.to_str().unwrap()]).await;
    let (status, reply) = app.post_lcm(&seed_with(json!({"OutcomeId": 5}))).await;
    assert_eq!(status, 400, "{reply}");
    let error = lcm_error(&reply);
    assert_eq!(error["field"], "OutcomeId");
    assert!(error["detail"]
        .as_str()
        .unwrap()
        .contains("5 is not in the outcome catalogue"));
    let (_, reply) = app
        .post_lcm(&seed_with(json!({"BusinessOutcome": 999})))
        .await;
    assert_eq!(lcm_error(&reply)["field"], "BusinessOutcome");
    assert_eq!(app.count("outcomes"), 0);

    let (status, reply) = app.post_lcm(&seed_request()).await;
    assert_eq!(status, 200, "{reply}");
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let closing = seed_with(json!({"OutcomeId": 7}));
    let (_, reply) = app.post_lcm(&closing).await;
    assert_eq!(lcm_error(&reply)["message"], "Invalid OutcomeId.");
    let sale = family_with("SetBusinessOutcomeWithComments", json!({"OutcomeId": 7}));
    assert_eq!(app.post_lcm(&sale).await.0, 200);
    let reason: String = one(
        &app,
        &format!("SELECT end_reason FROM callbacks WHERE id = {id}"),
    );
    assert_eq!(reason, "closed");
    let described: String = one(
        &app,
        "SELECT outcome_description FROM v_outcomes WHERE status = 'current'",
    );
    assert_eq!(described, "Sale closed");

    // The primary outcomes for the contact's campaign C7 (and those of every campaign), then
    // the children of 100.
    let (_, reply) = app.post_lcm(&family("GetBusinessOutCome")).await;
    assert_eq!(reply["subtopic"], "BusinessOutcome");
    assert_eq!(
        *response(&reply),
        json!([
            {"OutcomeID": "7", "Description": "Sale closed", "CampaignID": "C7"},
            {"OutcomeID": "100", "Description": "Interested", "CampaignID": ""}
        ])
    );
    let (_, reply) = app.post_lcm(&family("GetBusinessOutcomeParent")).await;
    assert_eq!(
        *response(&reply),
        json!([
            {"OutcomeID": "4", "Description": "Callback", "CampaignID": "C7"},
            {"OutcomeID": "101", "Description": "Call back later", "CampaignID": ""}
        ])
    );
}

/// Without a catalogue every id is taken, and the outcome reads answer no rows.
#[tokio::test]
async fn without_a_catalogue_every_id_is_accepted() {
    let app = app_with_contact(&[]).await;
    let any = seed_with(json!({"OutcomeId": 987654, "BusinessOutcome": 123456}));
    assert_eq!(app.post_lcm(&any).await.0, 200);
    let (_, reply) = app.post_lcm(&family("GetBusinessOutCome")).await;
    assert_eq!(*response(&reply), json!([]));
}

#[tokio::test]
async fn the_contacts_modes_are_read_back() {
    let app = app_with_contact(&[]).await;
    let (status, reply) = app.post_lcm(&family("GetCallBackModes")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["subtopic"], "CallbackModes");
    assert_eq!(
        *response(&reply),
        json!([
            {"ModeID": "1", "Description": "Mobile", "Cvalue": "+15551234567"},
            {"ModeID": "2", "Description": "Home", "Cvalue": "+15557654321"}
        ])
    );
}

/// `SendAgentState` logs the agent in or out as the REST calls do: a personal callback
/// whose owner left gets the owner-absent deadline.
#[tokio::test]
async fn agent_state_logs_in_and_out() {
    let app = spawn_app().await;
    let state = |s: &str| family_with("SendAgentState", json!({"agentState": s}));
    for (sent, logged_in) in [("LOGIN", true), ("not ready", true), ("Logout", false)] {
        let (status, reply) = app.post_lcm(&state(sent)).await;
        assert_eq!(status, 200, "{sent}: {reply}");
        assert_eq!(reply["subtopic"], "SendAgentStateResult");
        let stored: bool = one(
            &app,
            "SELECT logged_in FROM agents WHERE user_id = 'testagent'",
        );
        assert_eq!(stored, logged_in, "{sent}");
    }
    let (status, reply) = app.post_lcm(&state("ON_BREAK")).await;
    assert_eq!(status, 400);
    let error = lcm_error(&reply);
    assert_eq!(error["field"], "agentState");
    assert!(error["detail"].as_str().unwrap().contains("\"ON_BREAK\""));
    let (_, reply) = app
        .post_lcm(&family_with(
            "SendAgentState",
            json!({"agentID": "bad\u{7}id"}),
        ))
        .await;
    assert_eq!(lcm_error(&reply)["field"], "agentID");
}

/// The owner-absent deadline counts from a `SendAgentState` logout as from the REST one.
#[tokio::test]
async fn an_agent_state_logout_starts_the_owner_absent_deadline() {
    let app = app_with_contact(&[]).await;
    let (_, reply) = app
        .post_lcm(&family("SetPersonalCallbackWithComments"))
        .await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    app.end_call("12345").await;
    let logout = family_with("SendAgentState", json!({"agentState": "LOGOUT"}));
    assert_eq!(app.post_lcm(&logout).await.0, 200);
    // The window (13:45 to 14:30) opens with the owner away; 15 minutes on, it expires.
    let state = || -> String {
        app.sql()
            .query_row("SELECT state FROM callbacks WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let within = std::time::Duration::from_secs(10);
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 1, 13, 13, 45, 0).unwrap());
    until(within, "the window open", || state() == "due").await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 1, 13, 14, 0, 0).unwrap());
    until(within, "the owner-absent expiry", || state() == "expired").await;
    let reason: String = one(
        &app,
        &format!("SELECT end_reason FROM callbacks WHERE id = {id}"),
    );
    assert_eq!(reason, "owner-absent");
}

/// Subtopics are matched in any case; the reply echoes the request's `topic` and names the
/// vendor's reply subtopic.
#[tokio::test]
async fn subtopics_match_in_any_case() {
    let app = app_with_contact(&[]).await;
    for (topic, subtopic) in [
        ("Webservice", "getbusinessoutcome"),
        ("WEBSERVICE", "GetBusinessOutCome"),
        ("WebService", "GETCALLBACKMODES"),
    ] {
        let mut request = family("GetCallBackModes");
        request["topic"] = json!(topic);
        request["subtopic"] = json!(subtopic);
        let (status, reply) = app.post_lcm(&request).await;
        assert_eq!(status, 200, "{subtopic}: {reply}");
        assert_eq!(reply["topic"], topic);
        assert_eq!(
            reply["subtopic"],
            Subtopic::parse(subtopic).unwrap().reply()
        );
    }
}

// --- GetPersonalCallbackList ---

/// `n` callbacks for testagent on 13/01/2026, one a quarter hour from 10:00 UTC, each on its
/// own call and contact.
async fn callbacks_for_list(app: &TestApp, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (callid, account) = (format!("list-{i}"), format!("ACC-{i}"));
        register_contact(app, &callid, &account).await;
        let start = Utc.with_ymd_and_hms(2026, 1, 13, 10, 0, 0).unwrap()
            + chrono::Duration::minutes(15 * i as i64);
        let request = request_between(&callid, &account, start, start + chrono::Duration::hours(1));
        let (status, reply) = app.post_lcm(&request).await;
        assert_eq!(status, 200, "{reply}");
        ids.push(response(&reply)["callback_id"].as_i64().unwrap());
    }
    ids
}

fn list(first: i64, rows: i64, from: &str, to: &str) -> Value {
    family_with(
        "GetPersonalCallbackList",
        json!({"StartingNoOfRecord": first.to_string(), "NoofRecords": rows.to_string(),
               "FromDate": from, "ToDate": to}),
    )
}

async fn page(app: &TestApp, first: i64, rows: i64) -> Vec<Value> {
    let (status, reply) = app.post_lcm(&list(first, rows, DAY, DAY)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["subtopic"], "PersonalCallbackList");
    response(&reply).as_array().unwrap().clone()
}

fn starts(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["CallStartTime"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_list_pages_by_record_number() {
    let app = app_with_contact(&[]).await;
    callbacks_for_list(&app, 5).await;
    let first = page(&app, 1, 2).await;
    assert_eq!(
        first[0],
        json!({
            "RowNumber": "1", "CampaignID": "C7", "ContactID": "4411", "ModeID": "1",
            "ModeDescription": "Mobile", "CValue": "+15551234567",
            "CallStartDate": "13/01/2026", "CallEndDate": "13/01/2026",
            "CallStartTime": "10:00", "CallEndTime": "11:00"
        })
    );
    assert_eq!(starts(&first), ["10:00", "10:15"]);
    let last = page(&app, 5, 2).await;
    assert_eq!(starts(&last), ["11:00"], "the last page is partial");
    assert_eq!(last[0]["RowNumber"], "5");
    assert!(page(&app, 6, 2).await.is_empty(), "past the end");
    assert!(page(&app, 1, 0).await.is_empty(), "zero records asked");
    assert_eq!(page(&app, 2, 1000).await.len(), 4);
    let (_, other_day) = app.post_lcm(&list(1, 10, "14/01/2026", "20/01/2026")).await;
    assert_eq!(*response(&other_day), json!([]));
}

/// Live callbacks are listed (scheduled, due, leased); finished ones are not, nor normal
/// callbacks, nor other agents' callbacks.
#[tokio::test]
async fn the_list_holds_only_the_agents_live_personal_callbacks() {
    let app = app_with_contact(&[]).await;
    let ids = callbacks_for_list(&app, 3).await;
    let (status, _) = app
        .post(&format!("/v1/callbacks/{}/cancel", ids[1]), None)
        .await;
    assert_eq!(status, 200);
    let ncb = family_with(
        "SetBusinessOutcomeWithCallback",
        json!({"StartTime": "10:05"}),
    );
    assert_eq!(app.post_lcm(&ncb).await.0, 200);
    app.login("someone-else").await;
    app.register_call("theirs", "ACC-X", "someone-else").await;
    let theirs = seed_with(json!({"callid": "theirs", "AccountNumber": "ACC-X",
                                  "UserID": "someone-else"}));
    assert_eq!(app.post_lcm(&theirs).await.0, 200);
    // The first window opens: its callback is due, then leased, and still listed.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 1, 13, 10, 0, 0).unwrap());
    let (_, leased) = app
        .post("/v1/queue/lease", Some(&lease(Some("testagent"), 30_000)))
        .await;
    assert_eq!(leased["events"][0]["callback_id"], ids[0], "{leased}");
    let rows = page(&app, 1, 10).await;
    assert_eq!(starts(&rows), ["10:00", "10:30"]);
    let numbers: Vec<&str> = rows
        .iter()
        .map(|r| r["RowNumber"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["1", "2"]);
}

/// Each row is in its callback's own zone; the date range is of local dates. A window on the
/// day Europe/London moves to summer time reads as sent.
#[tokio::test]
async fn the_list_reads_each_window_in_its_own_zone_across_a_dst_change() {
    let app = app_with_contact(&["--timezone", "Europe/London"]).await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 27, 9, 0, 0).unwrap());
    let days = [
        ("28/03/2026", "23:30", "23:59"),
        ("29/03/2026", "00:30", "03:00"),
    ];
    for (n, (date, start, end)) in days.iter().enumerate() {
        let (callid, account) = (format!("dst-{n}"), format!("DST-{n}"));
        register_contact(&app, &callid, &account).await;
        let request = seed_with(json!({
            "callid": callid, "AccountNumber": account, "StartDate": date, "EndDate": date,
            "StartTime": start, "EndTime": end
        }));
        let (status, reply) = app.post_lcm(&request).await;
        assert_eq!(status, 200, "{reply}");
    }
    let rows = |from: &str, to: &str| {
        let request = list(1, 10, from, to);
        let app = &app;
        async move {
            response(&app.post_lcm(&request).await.1)
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let sunday = rows("29/03/2026", "29/03/2026").await;
    assert_eq!(sunday.len(), 1, "{sunday:?}");
    assert_eq!(
        (
            sunday[0]["CallStartDate"].as_str(),
            sunday[0]["CallStartTime"].as_str()
        ),
        (Some("29/03/2026"), Some("00:30"))
    );
    // 03:00 BST is 02:00 UTC: the clock moved at 01:00 UTC.
    assert_eq!(sunday[0]["CallEndTime"], "03:00");
    let window_end: i64 = one(
        &app,
        "SELECT window_end FROM callbacks WHERE account_number = 'DST-1'",
    );
    assert_eq!(
        window_end,
        Utc.with_ymd_and_hms(2026, 3, 29, 2, 0, 0)
            .unwrap()
            .timestamp_millis()
    );
    let both = rows("28/03/2026", "29/03/2026").await;
    assert_eq!(starts(&both), ["23:30", "00:30"]);
}

/// A loaded catalogue stays in the database for later starts without `--outcomes`; a file
/// with only its header row empties it, and every id is accepted again.
#[tokio::test]
async fn the_catalogue_stays_until_an_empty_one_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_catalogue(dir.path());
    let app = app_with_contact(&["--outcomes", file.to_str().unwrap()]).await;
    let unknown = seed_with(json!({"OutcomeId": 5}));
    let app = app.restart().await;
    assert_eq!(app.post_lcm(&unknown).await.0, 400, "kept across a restart");
    std::fs::write(&file, "OutcomeID,Description\n").unwrap();
    let (folder, clock) = app.stop().await;
    let app = spawn_app_in(folder, clock, &["--outcomes", file.to_str().unwrap()]).await;
    let (status, reply) = app.post_lcm(&unknown).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(app.count("outcome_catalogue"), 0);
}
