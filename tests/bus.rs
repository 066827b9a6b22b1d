//! The bus, `GET /v1/bus`, against the real server with a real WebSocket client: requests and
//! their replies, bad frames, subscriptions and pushes, replay after a reconnect and after a
//! kill -9, a stuck client, roles, the socket cap, pings, and shutdown.

mod common;

use std::io::Write;

use chrono::Duration;
use common::ws::{bus_url, Ws};
use common::*;
use serde_json::{json, Value};

const ACCOUNT: &str = "5|3|1|0|0|44|1";

fn with_requestid(mut request: Value, id: &str) -> Value {
    request["requestid"] = id.into();
    request
}

fn family(subtopic: &str) -> Value {
    sample(&format!("family/{subtopic}/request.json"))
}

/// A login over HTTP: every one is a push (`AgentStateChanged`).
async fn login_many(app: &TestApp, users: std::ops::Range<usize>) {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in users.collect::<Vec<_>>().chunks(64) {
        for user in chunk {
            let (client, url) = (
                app.client.clone(),
                app.url(&format!("/v1/agents/agent-{user}/login")),
            );
            tasks.spawn(async move {
                let status = client.post(url).send().await.unwrap().status();
                assert_eq!(status, 200);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }
}

#[tokio::test]
async fn a_request_is_answered_on_its_socket_with_its_requestid() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let mut ws = Ws::connect(&app.base, None).await;
    // Two in flight before either reply is read.
    ws.send(&with_requestid(seed_request(), "first")).await;
    ws.send(&with_requestid(
        seed_with(json!({"AgentComments": "changed"})),
        "second",
    ))
    .await;
    let mut replies = [ws.next().await, ws.next().await];
    replies.sort_by_key(|r| r["requestid"].as_str().unwrap().to_owned());
    for (reply, id) in replies.iter().zip(["first", "second"]) {
        assert_eq!(reply["requestid"], id, "{reply}");
        assert_eq!(
            reply["subtopic"], "SetBusinessOutcomeWithPersonalCallbackResult",
            "{reply}"
        );
        assert_eq!(reply["message"]["callid"], "12345", "{reply}");
        assert_eq!(reply["message"]["response"]["success"], true, "{reply}");
    }
    // Stored as over HTTP: one outcome (the second replaced the first) with its history.
    assert_eq!(app.count("outcomes"), 1);
    assert_eq!(app.count("outcome_history"), 1);
    // A numeric requestid is echoed as a number.
    let reply = ws
        .request(&json!({"channel": "LCM", "topic": "WebService",
        "subtopic": "SendAgentState", "requestid": 7,
        "data": {"agentID": "testagent", "agentState": "Ready"}}))
        .await;
    assert_eq!(reply["requestid"], 7, "{reply}");
}

#[tokio::test]
async fn every_subtopic_answers_on_the_bus_as_over_http() {
    let (http, bus) = (spawn_app().await, spawn_app().await);
    for app in [&http, &bus] {
        app.seed_prerequisites().await;
    }
    let mut ws = Ws::connect(&bus.base, None).await;
    let mut names: Vec<String> = std::fs::read_dir(data_dir().join("family"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let requests: Vec<Value> = std::iter::once(seed_request())
        .chain(names.iter().map(|name| family(name)))
        .collect();
    assert_eq!(requests.len(), redial::lcm::Subtopic::ALL.len());
    for request in requests {
        let (_, over_http) = http.post_lcm(&request).await;
        let over_bus = ws.request(&request).await;
        assert_eq!(over_bus, over_http, "{request}");
    }
}

#[tokio::test]
async fn bad_frames_are_answered_and_the_socket_stays_open() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let mut ws = Ws::connect(&app.base, None).await;
    let reply = ws.request_text("{not json").await;
    assert_eq!(reply["message"]["response"]["success"], false, "{reply}");
    assert_eq!(
        reply["message"]["response"]["error"]["message"], "Invalid request.",
        "{reply}"
    );
    let reply = ws
        .request(
            &json!({"channel": "LCM", "topic": "WebService", "subtopic": "Nope",
                         "requestid": "r", "data": {}}),
        )
        .await;
    assert_eq!(reply["requestid"], "r", "{reply}");
    assert_eq!(reply["subtopic"], "NopeResult", "{reply}");
    assert_eq!(
        reply["message"]["response"]["error"]["field"], "subtopic",
        "{reply}"
    );
    let reply = ws.request_text(" ".repeat(70 * 1024)).await;
    assert_eq!(
        reply["message"]["response"]["error"]["message"], "Request too large.",
        "{reply}"
    );
    ws.send_binary(seed_request().to_string().into_bytes())
        .await;
    let reply = ws.next().await;
    let detail = reply["message"]["response"]["error"]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("binary frames"), "{reply}");
    // Still open: a good request is stored.
    let reply = ws.request(&seed_request()).await;
    assert_eq!(reply["message"]["response"]["success"], true, "{reply}");
    // A bus message over HTTP is refused with the topic named.
    let (status, reply) = app
        .post_lcm(
            &json!({"channel": "LCM", "topic": "Bus", "subtopic": "Subscribe",
                          "data": {"all": true}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        reply["message"]["response"]["error"]["field"], "topic",
        "{reply}"
    );
}

#[tokio::test]
async fn a_due_personal_callback_is_pushed_to_its_owner_and_not_to_another_agent() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let mut owner = Ws::connect(&app.base, None).await;
    let mut other = Ws::connect(&app.base, None).await;
    let mut supervisor = Ws::connect(&app.base, None).await;
    let subscribed = owner.subscribe(json!({"UserID": "testagent"})).await;
    assert_eq!(subscribed["success"], true, "{subscribed}");
    other.subscribe(json!({"UserID": "other"})).await;
    supervisor.subscribe(json!({"all": true})).await;

    let (status, reply) = app.post_lcm(&seed_request()).await;
    assert_eq!(status, 200, "{reply}");
    let callback_id = reply["message"]["response"]["callback_id"]
        .as_i64()
        .unwrap();
    let set = owner.push().await;
    assert_eq!(set["subtopic"], "OutcomeSetForCall", "{set}");
    assert_eq!(set["message"]["callid"], "12345");
    assert_eq!(set["message"]["AccountNumber"], ACCOUNT);
    assert_eq!(set["message"]["OutcomeId"], 4);
    assert_eq!(set["message"]["BusinessOutcome"], 101);
    assert_eq!(set["message"]["UserID"], "testagent");
    assert_eq!(set["message"]["callback_id"], callback_id);

    // The window opens at 13:45 on the sample's day.
    app.clock.set(at_on_day(13, 45));
    let due = owner.push().await;
    assert_eq!(due["subtopic"], "PersonalCallbackDue", "{due}");
    let message = &due["message"];
    assert_eq!(message["callback_id"], callback_id);
    assert_eq!(message["AccountNumber"], ACCOUNT);
    assert_eq!(message["CallbackModeID"], 1);
    assert_eq!(message["attempt"], 1);
    assert_eq!(message["window_start"], "2026-01-13T13:45:00Z");
    assert_eq!(message["window_end"], "2026-01-13T14:00:00Z");
    assert_eq!(message["local_start"], "2026-01-13T13:45:00Z");
    assert_eq!(message["personal"], true);
    assert_eq!(message["timezone"], "UTC");
    assert!(due["id"].as_i64() > set["id"].as_i64());
    // The supervisor hears both, in the same order.
    assert_eq!(supervisor.push().await, set);
    assert_eq!(supervisor.push().await, due);
    // The other agent heard neither: its next push is its own login.
    app.login("other").await;
    let own = other.push().await;
    assert_eq!(own["subtopic"], "AgentStateChanged", "{own}");
    assert_eq!(own["message"]["UserID"], "other");
}

/// An instant on the sample's day, [`DAY`], in UTC.
fn at_on_day(h: u32, m: u32) -> chrono::DateTime<chrono::Utc> {
    t0() + Duration::days(1) + Duration::hours(i64::from(h) - 9) + Duration::minutes(m.into())
}

#[tokio::test]
async fn a_callback_ended_before_its_window_is_never_pushed_as_due() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let mut owner = Ws::connect(&app.base, None).await;
    owner.subscribe(json!({"UserID": "testagent"})).await;
    let (_, reply) = app.post_lcm(&seed_request()).await;
    let id = reply["message"]["response"]["callback_id"]
        .as_i64()
        .unwrap();
    // The login's push, committed before the Subscribe, may still be on its way to the hub
    // when the subscription starts from "now": a busy machine delivers it first.
    let mut first = owner.push().await;
    if first["subtopic"] == "AgentStateChanged" {
        first = owner.push().await;
    }
    assert_eq!(first["subtopic"], "OutcomeSetForCall");
    // A minute before the window the redial (and its due push) are written ahead...
    app.clock.set(at_on_day(13, 44));
    until(
        std::time::Duration::from_secs(10),
        "the redial staged",
        || app.count("bus_events") == 3,
    )
    .await;
    // ...and the cancel takes the push back before it is seen.
    let (status, body) = app.post(&format!("/v1/callbacks/{id}/cancel"), None).await;
    assert_eq!(status, 200, "{body}");
    let cancelled = owner.push().await;
    assert_eq!(cancelled["subtopic"], "CallbackCancelled", "{cancelled}");
    assert_eq!(cancelled["message"]["reason"], "cancelled");
    app.clock.set(at_on_day(13, 46));
    app.logout("testagent").await;
    let next = owner.push().await;
    assert_eq!(next["subtopic"], "AgentStateChanged", "{next}");
}

/// Pushes written ahead are read ahead of their instant (within 30 s of it): they still come
/// after what was committed before the instant, and one taken back meanwhile never comes.
#[tokio::test]
async fn pushes_read_ahead_keep_their_place_and_are_dropped_when_taken_back() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    app.register_call("222", "other-contact", "testagent").await;
    let mut owner = Ws::connect(&app.base, None).await;
    owner.subscribe(json!({"UserID": "testagent"})).await;
    let (_, kept) = app.post_lcm(&seed_request()).await;
    let kept = kept["message"]["response"]["callback_id"].as_i64().unwrap();
    let (_, dropped) = app
        .post_lcm(&seed_with(
            json!({"callid": "222", "AccountNumber": "other-contact",
                                    "StartTime": "13:50", "EndTime": "14:30"}),
        ))
        .await;
    let dropped = dropped["message"]["response"]["callback_id"]
        .as_i64()
        .unwrap();
    assert_eq!(owner.push().await["subtopic"], "OutcomeSetForCall");
    assert_eq!(owner.push().await["subtopic"], "OutcomeSetForCall");
    // 20 s before 13:45 its redial is written ahead (a minute before the window), and the
    // pushes of 13:45 are read ahead.
    app.clock.set(at_on_day(13, 44) + Duration::seconds(40));
    until(
        std::time::Duration::from_secs(10),
        "the redial staged",
        || app.count("events") == 1,
    )
    .await;
    // Committed before the instant: comes before the due push, though written after it.
    app.login("testagent").await;
    let login = owner.push().await;
    assert_eq!(login["subtopic"], "AgentStateChanged", "{login}");
    app.clock.set(at_on_day(13, 45));
    let due = owner.push().await;
    assert_eq!(due["subtopic"], "PersonalCallbackDue", "{due}");
    assert_eq!(due["message"]["callback_id"], kept);
    assert!(due["id"].as_i64() > login["id"].as_i64());
    // The 13:50 one is written and read ahead, then cancelled before its instant.
    app.clock.set(at_on_day(13, 49) + Duration::seconds(40));
    until(
        std::time::Duration::from_secs(10),
        "the second redial staged",
        || app.count("events") == 2,
    )
    .await;
    let (status, body) = app
        .post(&format!("/v1/callbacks/{dropped}/cancel"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let cancelled = owner.push().await;
    assert_eq!(cancelled["subtopic"], "CallbackCancelled", "{cancelled}");
    app.clock.set(at_on_day(13, 51));
    app.logout("testagent").await;
    let next = owner.push().await;
    assert_eq!(next["subtopic"], "AgentStateChanged", "{next}");
}

#[tokio::test]
async fn a_reconnect_with_after_replays_exactly_what_was_missed_in_order() {
    let app = spawn_app().await;
    let mut ws = Ws::connect(&app.base, None).await;
    ws.subscribe(json!({"all": true})).await;
    login_many(&app, 0..3).await;
    let seen = [ws.push().await, ws.push().await, ws.push().await];
    drop(ws);
    login_many(&app, 3..6).await;
    app.logout("agent-0").await;

    let mut back = Ws::connect(&app.base, None).await;
    let after = seen[0]["id"].as_i64().unwrap();
    let response = back.subscribe(json!({"all": true, "after": after})).await;
    assert_eq!(response["after"], after, "{response}");
    assert!(response.get("gap").is_none(), "{response}");
    let mut replayed = Vec::new();
    for _ in 0..6 {
        replayed.push(back.push().await);
    }
    assert_eq!(replayed[..2], seen[1..]);
    let ids: Vec<i64> = replayed.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(replayed[5]["message"]["logged_in"], false);
    // Then live ones.
    app.login("late").await;
    assert_eq!(back.push().await["message"]["UserID"], "late");

    // One agent's replay holds that agent's pushes only.
    let mut desk = Ws::connect(&app.base, None).await;
    desk.subscribe(json!({"UserID": "agent-0", "after": 0}))
        .await;
    let first = desk.push().await;
    let second = desk.push().await;
    assert_eq!(first["message"]["logged_in"], true, "{first}");
    assert_eq!(second["message"]["logged_in"], false, "{second}");
    // An `after` beyond what was sent is refused, naming the field.
    let reply = desk
        .request(
            &json!({"channel": "LCM", "topic": "Bus", "subtopic": "Subscribe",
                         "data": {"all": true, "after": i64::MAX / 2}}),
        )
        .await;
    assert_eq!(
        reply["message"]["response"]["error"]["field"], "after",
        "{reply}"
    );
}

#[tokio::test]
async fn pushes_older_than_retention_are_said_to_be_gone() {
    let app = spawn_app_with(&["--retention", "1d"]).await;
    let mut ws = Ws::connect(&app.base, None).await;
    ws.subscribe(json!({"all": true})).await;
    login_many(&app, 0..2).await;
    let first = ws.push().await["id"].as_i64().unwrap();
    let second = ws.push().await["id"].as_i64().unwrap();
    // Two days on, the purge (03:00 daily) deletes both.
    app.clock.advance(Duration::days(2));
    until(std::time::Duration::from_secs(10), "the purge", || {
        app.count("bus_events") == 0
    })
    .await;
    app.login("after-purge").await;
    let mut back = Ws::connect(&app.base, None).await;
    let response = back
        .subscribe(json!({"all": true, "after": first - 1}))
        .await;
    assert_eq!(response["gap"]["purged_through"], second, "{response}");
    let detail = response["gap"]["detail"].as_str().unwrap();
    assert!(detail.contains("retention"), "{detail}");
    assert_eq!(back.push().await["message"]["UserID"], "after-purge");
}

#[tokio::test]
async fn a_replay_survives_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    let server = spawn_server(&db, &[]);
    let client = reqwest::Client::new();
    let login = |server: &ServerProcess, user: &str| {
        client
            .post(server.url(&format!("/v1/agents/{user}/login")))
            .send()
    };
    let mut ws = Ws::connect(&server.base, None).await;
    ws.subscribe(json!({"all": true})).await;
    assert_eq!(login(&server, "a").await.unwrap().status(), 200);
    let seen = ws.push().await;
    for user in ["b", "c"] {
        assert_eq!(login(&server, user).await.unwrap().status(), 200);
    }
    server.kill9();
    let server = spawn_server(&db, &[]);
    let mut back = Ws::connect(&server.base, None).await;
    back.subscribe(json!({"all": true, "after": seen["id"]}))
        .await;
    assert_eq!(back.push().await["message"]["UserID"], "b");
    assert_eq!(back.push().await["message"]["UserID"], "c");
    assert_eq!(login(&server, "d").await.unwrap().status(), 200);
    assert_eq!(back.push().await["message"]["UserID"], "d");
    server.terminate();
}

#[tokio::test]
async fn a_stuck_client_is_dropped_as_lagged_without_holding_up_another() {
    let app = spawn_app_with(&["--bus-queue", "8"]).await;
    // A client with a tiny receive buffer that stops reading once subscribed.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let address = app.base.trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(address).await.unwrap();
    let plain = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (stream, _) = tokio_tungstenite::client_async(bus_url(&app.base), plain)
        .await
        .unwrap();
    let mut stuck = Ws { stream };
    stuck.subscribe(json!({"all": true})).await;
    login_many(&app, 0..3000).await;
    // Another client is answered meanwhile.
    app.seed_prerequisites().await;
    let mut other = Ws::connect(&app.base, None).await;
    let reply = other.request(&seed_request()).await;
    assert_eq!(reply["message"]["response"]["success"], true, "{reply}");
    // The stuck one, reading again, gets what it was sent, then the lagged close.
    let mut last = 0;
    let closed = loop {
        match stuck.next_or_close().await {
            Ok(push) => {
                let id = push["id"].as_i64().unwrap();
                assert!(id > last);
                last = id;
            }
            Err(closed) => break closed,
        }
    };
    assert_eq!(closed.code, 1013, "{closed:?}");
    assert!(closed.reason.contains("lagged"), "{closed:?}");
    assert!(
        closed.reason.contains(&format!("\"after\": {last}")),
        "{closed:?} after {last}"
    );
    assert!(last > 0);
}

/// A tokens file in `dir`: a desktop token that belongs to testagent, a desktop token for any
/// agent, a supervisor's and a telephony token.
fn tokens_file(dir: &std::path::Path) -> String {
    let path = dir.join("tokens");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "desk-token-0000001 desktop agent=testagent").unwrap();
    writeln!(file, "desk-token-0000002 desktop").unwrap();
    writeln!(file, "supv-token-0000001 supervisor").unwrap();
    writeln!(file, "tele-token-0000001 telephony").unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn roles_are_checked_at_the_upgrade_and_for_each_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens_file(dir.path());
    let app = spawn_app_with(&["--tokens", &tokens]).await;
    let url = bus_url(&app.base);
    let refused = Ws::try_connect(&url, None).await.err().unwrap();
    assert!(refused.to_string().contains("401"), "{refused}");
    assert!(Ws::try_connect(&url, Some("unknown-token-000"))
        .await
        .is_err());

    let mut desk = Ws::connect(&app.base, Some("desk-token-0000001")).await;
    assert_eq!(
        desk.subscribe(json!({"UserID": "testagent"})).await["success"],
        true
    );
    let other = desk.subscribe(json!({"UserID": "other"})).await;
    assert_eq!(other["error"]["message"], "Forbidden.", "{other}");
    assert!(other["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("testagent"));
    assert_eq!(
        desk.subscribe(json!({"all": true})).await["error"]["message"],
        "Forbidden."
    );
    let mut any_desk = Ws::connect(&app.base, Some("desk-token-0000002")).await;
    assert_eq!(
        any_desk.subscribe(json!({"UserID": "other"})).await["success"],
        true
    );
    // A browser sends its token as a query parameter.
    let mut screen = Ws::try_connect(&format!("{url}?token=supv-token-0000001"), None)
        .await
        .unwrap();
    assert_eq!(
        screen.subscribe(json!({"all": true})).await["success"],
        true
    );
    // An LCM request needs the desktop role, as on POST /v1/lcm.
    let mut telephony = Ws::connect(&app.base, Some("tele-token-0000001")).await;
    let reply = telephony.request(&seed_request()).await;
    assert_eq!(
        reply["message"]["response"]["error"]["message"], "Forbidden.",
        "{reply}"
    );
    let reply = screen.request(&seed_request()).await;
    assert_eq!(
        reply["message"]["response"]["error"]["message"], "Forbidden.",
        "{reply}"
    );
}

#[tokio::test]
async fn sockets_past_the_cap_are_refused_with_the_flag_named() {
    let app = spawn_app_with(&["--max-bus-clients", "1"]).await;
    let _first = Ws::connect(&app.base, None).await;
    let refused = Ws::try_connect(&bus_url(&app.base), None)
        .await
        .err()
        .unwrap();
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused}");
    };
    assert_eq!(response.status(), 503);
    let body = String::from_utf8(response.body().clone().unwrap()).unwrap();
    assert!(body.contains("--max-bus-clients"), "{body}");
    // A plain GET is told to upgrade.
    let (status, body) = app.get("/v1/bus").await;
    assert_eq!(status, 426, "{body}");
}

#[tokio::test]
async fn a_socket_that_answers_no_ping_is_closed() {
    let app = spawn_app_with(&["--bus-ping", "200ms"]).await;
    let mut ws = Ws::connect(&app.base, None).await;
    ws.subscribe(json!({"all": true})).await;
    // From here on the raw socket is read, so no pong is ever sent.
    let mut raw = match ws.stream.into_inner() {
        tokio_tungstenite::MaybeTlsStream::Plain(stream) => stream,
        _ => unreachable!("plain ws://"),
    };
    let mut bytes = Vec::new();
    tokio::time::timeout(
        common::ws::PATIENCE,
        tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut bytes),
    )
    .await
    .expect("the bus closes the socket in time")
    .unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("not even a pong"), "{text}");
}

#[tokio::test]
async fn shutdown_answers_what_is_in_hand_then_closes_with_1001() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let mut ws = Ws::connect(&app.base, None).await;
    ws.subscribe(json!({"UserID": "testagent"})).await;
    ws.send(&with_requestid(seed_request(), "last")).await;
    let reply = ws.next().await;
    assert_eq!(reply["requestid"], "last", "{reply}");
    let stopping = tokio::spawn(app.stop());
    // Pushes the request made may come first; then the close.
    let closed = loop {
        match ws.next_or_close().await {
            Ok(push) => assert_eq!(push["topic"], "Bus", "{push}"),
            Err(closed) => break closed,
        }
    };
    assert_eq!(closed.code, 1001, "{closed:?}");
    stopping.await.unwrap();
}
