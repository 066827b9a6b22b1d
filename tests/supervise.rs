//! Supervisors over HTTP: finding callbacks page by page, rescheduling, reassigning and
//! cancelling them with the audit, completing on contact, and the do-not-call list by hand.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use serde_json::{json, Value};

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 13, h, m, 0).unwrap()
}

/// A personal callback for `user` on a new call `callid` to `account`, from `start` to `end`.
async fn callback(
    app: &TestApp,
    callid: &str,
    account: &str,
    user: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> i64 {
    app.register_call(callid, account, user).await;
    let mut body = request_between(callid, account, start, end);
    body["data"]["UserID"] = json!(user);
    let (status, reply) = app.post_lcm(&body).await;
    assert_eq!(status, 200, "{reply}");
    response(&reply)["callback_id"].as_i64().unwrap()
}

async fn send(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = app.url(path);
    let mut request = match method {
        "PUT" => app.client.put(url),
        "DELETE" => app.client.delete(url),
        "POST" => app.client.post(url),
        _ => app.client.get(url),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn ids(page: &Value) -> Vec<i64> {
    page["callbacks"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

/// Every page of `query`, `limit` at a time: the ids in order, and the pages read.
async fn all_pages(app: &TestApp, query: &str, limit: usize) -> (Vec<i64>, usize) {
    let (mut seen, mut pages, mut after) = (Vec::new(), 0, None::<String>);
    loop {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let (status, page) = app
            .get(&format!("/v1/callbacks?limit={limit}{query}{cursor}"))
            .await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return (seen, pages),
        }
    }
}

fn audit(app: &TestApp, callback: i64) -> Vec<(String, String, Value, Value)> {
    let conn = app.sql();
    let mut statement = conn
        .prepare(
            "SELECT action, actor, coalesce(before, 'null'), coalesce(after, 'null')
             FROM v_audit WHERE callback_id = ?1 ORDER BY id",
        )
        .unwrap();
    statement
        .query_map([callback], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                serde_json::from_str(&r.get::<_, String>(2)?).unwrap(),
                serde_json::from_str(&r.get::<_, String>(3)?).unwrap(),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn pages_come_in_window_order_and_a_row_inserted_between_pages_is_seen_once_or_not_at_all() {
    let app = spawn_app().await;
    app.login("anna").await;
    app.login("ben").await;
    // Two share a window start: the id orders them.
    let starts = [10, 10, 11, 12, 13, 14, 15];
    let mut made = Vec::new();
    for (i, hour) in starts.iter().enumerate() {
        let user = if i % 2 == 0 { "anna" } else { "ben" };
        let id = callback(
            &app,
            &format!("c{i}"),
            &format!("acct-{i}"),
            user,
            at(*hour, 0),
            at(*hour, 30),
        )
        .await;
        made.push(id);
    }
    let (seen, pages) = all_pages(&app, "", 3).await;
    assert_eq!(seen, made, "window order, then id");
    assert_eq!(pages, 3, "3 + 3 + 1");

    // A page that ends exactly at the last row has a cursor; the page after it is empty.
    let (seen, pages) = all_pages(&app, "", 7).await;
    assert_eq!((seen.len(), pages), (7, 2));

    // Rows inserted between pages: one after the cursor is seen, one behind it is not, and
    // nothing is seen twice.
    let (_, first) = app.get("/v1/callbacks?limit=3").await;
    let cursor = first["next"].as_str().unwrap().to_owned();
    let late = callback(&app, "late", "acct-late", "anna", at(16, 0), at(16, 30)).await;
    let early = callback(&app, "early", "acct-early", "anna", at(9, 0), at(9, 30)).await;
    let mut rest = Vec::new();
    let mut after = cursor;
    loop {
        let (_, page) = app
            .get(&format!("/v1/callbacks?limit=3&after={after}"))
            .await;
        rest.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    let mut expected: Vec<i64> = made[3..].to_vec();
    expected.push(late);
    assert_eq!(rest, expected);
    assert!(!rest.contains(&early) && !ids(&first).contains(&early));

    // Filters.
    let (anna, _) = all_pages(&app, "&user_id=anna", 100).await;
    assert_eq!(anna, vec![early, made[0], made[2], made[4], made[6], late]);
    let (_, by_agent) = app.get("/v1/agents/anna/callbacks?limit=100").await;
    assert_eq!(ids(&by_agent), anna, "the agent's path is the same filter");
    let (one, _) = all_pages(&app, "&account=acct-3", 100).await;
    assert_eq!(one, vec![made[3]]);
    let (range, _) = all_pages(
        &app,
        "&from=2026-01-13T11:00:00Z&to=2026-01-13T13:00:00Z",
        100,
    )
    .await;
    assert_eq!(
        range,
        vec![made[2], made[3]],
        "from inclusive, to exclusive"
    );
    let (day, _) = all_pages(&app, "&from=2026-01-13&to=2026-01-13&tz=UTC", 100).await;
    assert_eq!(day.len(), 9, "a `to` date includes the day");
    let (tokyo, _) = all_pages(&app, "&from=2026-01-14&to=2026-01-14&tz=Asia/Tokyo", 100).await;
    assert_eq!(
        tokyo,
        vec![made[6], late],
        "Tokyo's 14th starts at 15:00 UTC on the 13th"
    );
    let (status, _) = send(
        &app,
        "POST",
        &format!("/v1/callbacks/{}/cancel", made[1]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (ended, _) = all_pages(&app, "&state=cancelled", 100).await;
    assert_eq!(ended, vec![made[1]]);
    let (both, _) = all_pages(&app, "&state=cancelled&state=scheduled&user_id=ben", 100).await;
    assert_eq!(both, vec![made[1], made[3], made[5]]);
    // Live ones only, two a page across the hours: read from the first live window on.
    let (live, pages) = all_pages(&app, "&state=scheduled,due,leased", 2).await;
    let mut expected = vec![early];
    expected.extend(made.iter().filter(|id| **id != made[1]));
    expected.push(late);
    assert_eq!((live, pages), (expected, 5));
    let (comma, _) = all_pages(&app, "&state=cancelled,scheduled&user_id=ben", 100).await;
    assert_eq!(comma, both, "a comma list is the same as repeated keys");
    let (normal, _) = all_pages(&app, "&personal=false", 100).await;
    assert!(normal.is_empty());
    assert_eq!(all_pages(&app, "&personal=true", 100).await.0.len(), 9);

    // Refusals name the parameter and the value.
    for (query, field, says) in [
        ("state=asleep", "state", "\"asleep\""),
        ("limit=0", "limit", "\"0\""),
        ("limit=1001", "limit", "1000"),
        ("after=yesterday", "after", "\"yesterday\""),
        ("from=13/01/2026", "from", "YYYY-MM-DD"),
        ("tz=Mars/Olympus", "tz", "\"Mars/Olympus\""),
        ("personal=yes", "personal", "true or false"),
        ("usr_id=anna", "query", "\"usr_id\""),
        ("user_id=a&user_id=b", "user_id", "once"),
    ] {
        let (status, reply) = app.get(&format!("/v1/callbacks?{query}")).await;
        assert_eq!(status, 400, "{query}: {reply}");
        assert_eq!(reply["error"]["field"], field, "{query}: {reply}");
        let detail = reply["error"]["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{query}: {detail}");
    }
}

#[tokio::test]
async fn a_due_callback_rescheduled_loses_the_redial_a_dialer_holds_and_opens_in_its_new_window() {
    let app = spawn_app().await;
    app.login("anna").await;
    let id = callback(&app, "c1", "acct-1", "anna", at(10, 0), at(11, 0)).await;
    app.clock.set(at(10, 5));
    let (_, leased) = app
        .post(
            "/v1/queue/lease",
            Some(&json!({"consumer": "dialer-1", "max": 10, "wait_ms": 20000})),
        )
        .await;
    let event = leased["events"][0]["id"].as_i64().unwrap();
    assert_eq!(leased["events"][0]["callback_id"], id);

    let (status, moved) = send(
        &app,
        "POST",
        &format!("/v1/callbacks/{id}/reschedule"),
        Some(json!({"StartDate": "14/01/2026", "StartTime": "09:00",
                    "EndDate": "14/01/2026", "EndTime": "09:30", "reason": "customer asked"})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["id"], id, "it keeps its id");
    assert_eq!(moved["state"], "scheduled");
    assert_eq!(moved["window_start"], "2026-01-14T09:00:00Z");
    assert_eq!(moved["local_start"], "14/01/2026 09:00");

    // The dialer's ack of the withdrawn redial is ignored, and nothing more is leasable today.
    let (_, ack) = app
        .post(
            "/v1/queue/ack",
            Some(&json!({"consumer": "dialer-1", "ids": [event]})),
        )
        .await;
    assert_eq!(ack, json!({"acked": [], "ignored": [event]}));
    let (_, none) = app
        .post("/v1/queue/lease", Some(&json!({"consumer": "d2"})))
        .await;
    assert_eq!(none["events"], json!([]));

    // In the new window a new redial comes, for the new window, as the next attempt.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 1, 14, 9, 0, 0).unwrap());
    let (_, again) = app
        .post(
            "/v1/queue/lease",
            Some(&json!({"consumer": "d2", "wait_ms": 20000})),
        )
        .await;
    let redial = &again["events"][0];
    assert_eq!(redial["callback_id"], id, "{again}");
    assert_eq!(redial["window_start"], "2026-01-14T09:00:00Z");
    assert_eq!(redial["attempt"], 1);
    assert_ne!(redial["id"], event);

    let trail = audit(&app, id);
    assert_eq!(trail.len(), 1);
    let (action, actor, before, after) = &trail[0];
    assert_eq!((action.as_str(), actor.as_str()), ("reschedule", "local"));
    assert_eq!(before["state"], "leased");
    assert_eq!(before["window_start"], "2026-01-13T10:00:00Z");
    assert_eq!(after["window_start"], "2026-01-14T09:00:00Z");
    let reason: String = app
        .sql()
        .query_row(
            "SELECT reason FROM audit WHERE callback_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reason, "customer asked");
    let pushed: String = app
        .sql()
        .query_row(
            "SELECT data ->> 'window_start' FROM bus_events
             WHERE kind = 'CallbackRescheduled' AND callback_id = ?1 AND user_id = 'anna'",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        pushed, "2026-01-14T09:00:00Z",
        "the owner's desktop hears the new window"
    );
}

#[tokio::test]
async fn a_reschedule_follows_calling_hours_daylight_saving_and_the_rules_of_a_new_request() {
    let app = spawn_app_with(&["--calling-hours", "09:00-17:00"]).await;
    app.login("anna").await;
    let id = callback(&app, "c1", "acct-1", "anna", at(10, 0), at(11, 0)).await;
    let path = format!("/v1/callbacks/{id}/reschedule");
    let window = |day: &str, start: &str, end: &str| json!({"StartDate": day, "StartTime": start, "EndDate": day, "EndTime": end});

    let (status, reply) = send(
        &app,
        "POST",
        &path,
        Some(window("14/01/2026", "18:00", "20:00")),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["field"], "StartTime");
    assert!(reply["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("calling hours"));

    let (status, clipped) = send(
        &app,
        "POST",
        &path,
        Some(window("14/01/2026", "16:00", "18:00")),
    )
    .await;
    assert_eq!(status, 200, "{clipped}");
    assert_eq!(
        clipped["window_end"], "2026-01-14T17:00:00Z",
        "clipped to calling hours"
    );

    let (status, reply) = send(
        &app,
        "POST",
        &path,
        Some(window("11/01/2026", "10:00", "11:00")),
    )
    .await;
    assert_eq!(
        (status, &reply["error"]["field"]),
        (400, &json!("EndDate")),
        "{reply}"
    );
    let (status, reply) = send(
        &app,
        "POST",
        &path,
        Some(window("14/01/2028", "10:00", "11:00")),
    )
    .await;
    assert_eq!(
        (status, &reply["error"]["field"]),
        (400, &json!("StartDate")),
        "beyond the horizon: {reply}"
    );
    let (status, reply) = send(
        &app,
        "POST",
        &path,
        Some(json!({"StartDate": "14/01/2026"})),
    )
    .await;
    // The fields are read in the LCM messages' order: the end date comes before the times.
    assert_eq!(
        (status, &reply["error"]["field"]),
        (400, &json!("EndDate")),
        "{reply}"
    );

    // 8 March 2026, New York: clocks go from 02:00 to 03:00. 10:00 to 11:00 local is EDT.
    let mut dst = window("08/03/2026", "10:00", "11:00");
    dst["TimeZone"] = json!("America/New_York");
    let (status, moved) = send(&app, "POST", &path, Some(dst)).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        moved["window_start"], "2026-03-08T14:00:00Z",
        "UTC-4 after the change"
    );
    assert_eq!(moved["timezone"], "America/New_York");
    // The zone stays with the callback: the next reschedule reads its times there too.
    let (_, winter) = send(
        &app,
        "POST",
        &path,
        Some(window("07/03/2026", "10:00", "11:00")),
    )
    .await;
    assert_eq!(
        winter["window_start"], "2026-03-07T15:00:00Z",
        "UTC-5 the day before"
    );

    // A finished callback cannot be moved.
    send(&app, "POST", &format!("/v1/callbacks/{id}/cancel"), None).await;
    let (status, reply) = send(
        &app,
        "POST",
        &path,
        Some(window("14/01/2026", "10:00", "11:00")),
    )
    .await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(reply["error"]["field"], "id");
    let (status, _) = send(
        &app,
        "POST",
        "/v1/callbacks/999/reschedule",
        Some(window("14/01/2026", "10:00", "11:00")),
    )
    .await;
    assert_eq!(status, 404);
    let actions: Vec<String> = audit(&app, id).into_iter().map(|a| a.0).collect();
    assert_eq!(
        actions,
        ["reschedule", "reschedule", "reschedule", "cancel"]
    );
}

#[tokio::test]
async fn a_callback_reassigned_while_a_dialer_holds_it_goes_to_the_new_agent() {
    let app = spawn_app().await;
    app.login("anna").await;
    app.login("ben").await;
    let id = callback(&app, "c1", "acct-1", "anna", at(10, 0), at(11, 0)).await;
    app.clock.set(at(10, 1));
    let (_, leased) = app
        .post(
            "/v1/queue/lease",
            Some(&json!({"consumer": "dialer-1", "user_id": "anna", "wait_ms": 20000})),
        )
        .await;
    let held = leased["events"][0]["id"].as_i64().unwrap();

    let path = format!("/v1/callbacks/{id}/reassign");
    let (status, reply) = send(&app, "POST", &path, Some(json!({"UserID": "nobody"}))).await;
    assert_eq!(
        (status, &reply["error"]["field"]),
        (400, &json!("UserID")),
        "{reply}"
    );
    assert!(reply["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("\"nobody\""));
    let (status, reply) = send(&app, "POST", &path, Some(json!({"UserID": "anna"}))).await;
    assert_eq!(status, 400, "already hers: {reply}");

    let (status, moved) = send(&app, "POST", &path, Some(json!({"UserID": "ben"}))).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        (&moved["UserID"], &moved["state"]),
        (&json!("ben"), &json!("due"))
    );
    let (_, ack) = app
        .post(
            "/v1/queue/ack",
            Some(&json!({"consumer": "dialer-1", "ids": [held]})),
        )
        .await;
    assert_eq!(ack["ignored"], json!([held]), "anna's redial is withdrawn");
    let (_, anna) = app
        .post(
            "/v1/queue/lease",
            Some(&json!({"consumer": "d", "user_id": "anna"})),
        )
        .await;
    assert_eq!(anna["events"], json!([]));
    let (_, ben) = app
        .post(
            "/v1/queue/lease",
            Some(&json!({"consumer": "d", "user_id": "ben"})),
        )
        .await;
    assert_eq!(ben["events"][0]["callback_id"], id, "{ben}");
    assert_eq!(ben["events"][0]["UserID"], "ben");
    assert_eq!(ben["events"][0]["personal"], true);
    let trail = audit(&app, id);
    assert_eq!(trail[0].2["UserID"], "anna");
    assert_eq!(trail[0].3["UserID"], "ben");
    // Both desktops hear of it on the bus.
    let heard: Vec<String> = app
        .sql()
        .prepare(
            "SELECT user_id FROM bus_events WHERE kind = 'CallbackReassigned' AND callback_id = ?1
             ORDER BY id",
        )
        .unwrap()
        .query_map([id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(heard, ["anna", "ben"]);
}

#[tokio::test]
async fn all_of_an_absent_agents_live_callbacks_move_in_one_request() {
    let app = spawn_app().await;
    app.login("anna").await;
    app.login("ben").await;
    let mut live = Vec::new();
    for i in 0..3 {
        live.push(
            callback(
                &app,
                &format!("c{i}"),
                &format!("acct-{i}"),
                "anna",
                at(10 + i, 0),
                at(10 + i, 30),
            )
            .await,
        );
    }
    let ended = callback(&app, "c9", "acct-9", "anna", at(9, 0), at(9, 30)).await;
    send(&app, "POST", &format!("/v1/callbacks/{ended}/cancel"), None).await;
    let bens = callback(&app, "b1", "acct-b", "ben", at(10, 0), at(10, 30)).await;
    // Anna's first is due and held by a dialer when she leaves.
    app.clock.set(at(10, 1));
    let (_, held) = app
        .post(
            "/v1/queue/lease",
            Some(&json!({"consumer": "dialer-1", "user_id": "anna", "wait_ms": 20000})),
        )
        .await;
    assert_eq!(held["events"][0]["callback_id"], live[0], "{held}");
    app.logout("anna").await;

    let (status, reply) = send(
        &app,
        "POST",
        "/v1/agents/anna/callbacks/reassign",
        Some(json!({"to": "anna"})),
    )
    .await;
    assert_eq!(
        (status, &reply["error"]["field"]),
        (400, &json!("to")),
        "{reply}"
    );
    assert!(reply["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("\"anna\""));
    let (status, reply) = send(
        &app,
        "POST",
        "/v1/agents/anna/callbacks/reassign",
        Some(json!({"to": "ben", "state": ["asleep"]})),
    )
    .await;
    assert_eq!(
        (status, &reply["error"]["field"]),
        (400, &json!("state")),
        "{reply}"
    );
    let (status, reply) = send(
        &app,
        "POST",
        "/v1/agents/anna/callbacks/reassign",
        Some(json!({"to": "ben", "state": ["leased"]})),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"moved": 1, "ids": [live[0]]}));
    let (status, reply) = send(
        &app,
        "POST",
        "/v1/agents/anna/callbacks/reassign",
        Some(json!({"to": "ben"})),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"moved": 2, "ids": [live[1], live[2]]}));

    let (_, anna) = app
        .get("/v1/agents/anna/callbacks?state=scheduled,due,leased")
        .await;
    assert_eq!(ids(&anna), Vec::<i64>::new());
    let (_, ben) = app.get("/v1/agents/ben/callbacks").await;
    assert_eq!(
        ids(&ben),
        vec![live[0], bens, live[1], live[2]],
        "window order, then id"
    );
    assert_eq!(
        app.get(&format!("/v1/callbacks/{ended}")).await.1["UserID"],
        "anna",
        "a finished callback stays as it was"
    );
}

#[tokio::test]
async fn an_outcome_on_another_call_completes_the_callback_unless_told_not_to() {
    for on in [true, false] {
        let app = if on {
            spawn_app().await
        } else {
            spawn_app_with(&["--complete-on-contact", "false"]).await
        };
        app.seed_prerequisites().await;
        let (_, reply) = app.post_lcm(&seed_request()).await;
        let id = response(&reply)["callback_id"].as_i64().unwrap();
        // The customer calls in: a new call, an outcome with no callback.
        app.register_call("inbound-1", "5|3|1|0|0|44|1", "testagent")
            .await;
        let mut outcome = sample("family/SetBusinessOutcomeWithComments/request.json");
        outcome["data"]["callid"] = json!("inbound-1");
        let (status, reply) = app.post_lcm(&outcome).await;
        assert_eq!(status, 200, "{reply}");
        let (state, reason): (String, Option<String>) = app
            .sql()
            .query_row(
                "SELECT state, end_reason FROM callbacks WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        if on {
            assert_eq!(
                (state.as_str(), reason.as_deref()),
                ("completed", Some("contacted"))
            );
            let (_, leased) = app
                .post("/v1/queue/lease", Some(&json!({"consumer": "d"})))
                .await;
            assert_eq!(leased["events"], json!([]));
        } else {
            assert_eq!((state.as_str(), reason), ("scheduled", None));
        }
    }

    // A new callback asked on the other call supersedes the old one, as always.
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let (_, reply) = app.post_lcm(&seed_request()).await;
    let old = response(&reply)["callback_id"].as_i64().unwrap();
    app.register_call("inbound-2", "5|3|1|0|0|44|1", "testagent")
        .await;
    let (_, reply) = app
        .post_lcm(&seed_with(
            json!({"callid": "inbound-2", "StartTime": "15:00", "EndTime": "15:30"}),
        ))
        .await;
    let new = response(&reply)["callback_id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/v1/callbacks/{old}")).await.1["state"],
        "superseded"
    );
    assert_eq!(
        app.get(&format!("/v1/callbacks/{new}")).await.1["state"],
        "scheduled"
    );

    // An outcome on the callback's own call is not a contact by another way: it replaces the
    // outcome that asked for the callback, which then ends as `replaced`.
    let mut same = sample("family/SetBusinessOutcomeWithComments/request.json");
    same["data"]["callid"] = json!("inbound-2");
    app.post_lcm(&same).await;
    let reason: String = app
        .sql()
        .query_row(
            "SELECT end_reason FROM callbacks WHERE id = ?1",
            [new],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reason, "replaced");
}

#[tokio::test]
async fn a_contact_listed_by_hand_loses_its_callback_and_is_refused_until_taken_off() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let (_, reply) = app.post_lcm(&seed_request()).await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let account = "5%7C3%7C1%7C0%7C0%7C44%7C1";

    let (status, listed) = send(
        &app,
        "PUT",
        &format!("/v1/dnc/{account}"),
        Some(json!({"reason": "asked by phone"})),
    )
    .await;
    assert_eq!(status, 201, "{listed}");
    assert_eq!(listed["AccountNumber"], "5|3|1|0|0|44|1");
    assert_eq!(listed["added_by"], "local");
    assert_eq!(listed["since"], "2026-01-12T09:00:00Z");
    let (status, _) = send(&app, "PUT", &format!("/v1/dnc/{account}"), None).await;
    assert_eq!(status, 200, "listed already");
    let callback = app.get(&format!("/v1/callbacks/{id}")).await.1;
    assert_eq!(callback["state"], "cancelled");
    let (_, page) = app.get("/v1/dnc").await;
    assert_eq!(page["dnc"].as_array().unwrap().len(), 1);
    assert_eq!(page["next"], Value::Null);

    let (status, reply) = app
        .post_lcm(&seed_with(
            json!({"StartTime": "15:00", "EndTime": "15:30"}),
        ))
        .await;
    assert_eq!(status, 400);
    assert_eq!(lcm_error(&reply)["field"], "AccountNumber");

    let (status, _) = send(&app, "DELETE", &format!("/v1/dnc/{account}"), None).await;
    assert_eq!(status, 200);
    let (status, reply) = send(&app, "DELETE", &format!("/v1/dnc/{account}"), None).await;
    assert_eq!(
        (status, &reply["error"]["field"]),
        (404, &json!("AccountNumber"))
    );
    let (status, reply) = app
        .post_lcm(&seed_with(
            json!({"StartTime": "15:00", "EndTime": "15:30"}),
        ))
        .await;
    assert_eq!(status, 200, "{reply}");

    let rows: Vec<(String, Option<String>)> = app
        .sql()
        .prepare("SELECT action, reason FROM audit WHERE account_number = '5|3|1|0|0|44|1' AND callback_id IS NULL ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("dnc-add".to_owned(), Some("asked by phone".to_owned())),
            ("dnc-remove".to_owned(), None)
        ]
    );
}

#[tokio::test]
async fn a_supervisors_token_name_is_who_the_audit_records() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        "supe-0123456789abcdef supervisor name=maria\n\
         tele-0123456789abcdef telephony\n\
         desk-0123456789abcdef desktop agent=testagent\n",
    )
    .unwrap();
    let app = spawn_app_in(
        dir,
        redial::clock::Clock::manual(t0()),
        &["--tokens", tokens.to_str().unwrap()],
    )
    .await;
    let as_role = |request: reqwest::RequestBuilder, token: &str| request.bearer_auth(token);
    for path in ["/v1/agents/testagent/login", "/v1/agents/other/login"] {
        as_role(app.client.post(app.url(path)), "tele-0123456789abcdef")
            .send()
            .await
            .unwrap();
    }
    let body = json!({"callid": "12345", "AccountNumber": "5|3|1|0|0|44|1", "UserID": "testagent"});
    as_role(
        app.client.post(app.url("/v1/calls")).json(&body),
        "tele-0123456789abcdef",
    )
    .send()
    .await
    .unwrap();
    let reply: Value = as_role(
        app.client.post(app.url("/v1/lcm")).json(&seed_request()),
        "desk-0123456789abcdef",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = response(&reply)["callback_id"].as_i64().unwrap();

    // The agent's desktop finds its own callbacks, and no one else's.
    let mine: Value = as_role(
        app.client.get(app.url("/v1/callbacks")),
        "desk-0123456789abcdef",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ids(&mine), vec![id]);
    let theirs = as_role(
        app.client.get(app.url("/v1/callbacks?user_id=other")),
        "desk-0123456789abcdef",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(theirs.status(), 403);

    let moved = as_role(
        app.client
            .post(app.url(&format!("/v1/callbacks/{id}/reassign")))
            .json(&json!({"UserID": "other"})),
        "supe-0123456789abcdef",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(audit(&app, id)[0].1, "maria");
    // Now it is another agent's: the desktop may not read it.
    let hidden = as_role(
        app.client.get(app.url(&format!("/v1/callbacks/{id}"))),
        "desk-0123456789abcdef",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(hidden.status(), 403);
}
