//! What a reply of success promises: the rows are committed before it is sent, survive a
//! restart, and a database from an older schema is brought up to date.

mod common;

use common::*;
use redial::clock::Clock;
use redial::store::schema;
use serde_json::{json, Value};

fn request_for(i: usize) -> Value {
    seed_with(json!({"callid": format!("call-{i}"), "AccountNumber": format!("ACC-{i}")}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_are_all_committed_before_their_replies() {
    let app = spawn_app().await;
    app.login("testagent").await;
    for i in 0..200 {
        app.register_call(&format!("call-{i}"), &format!("ACC-{i}"), "testagent")
            .await;
    }
    let mut tasks = Vec::new();
    for i in 0..200 {
        let client = app.client.clone();
        let url = app.url("/v1/lcm");
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            let reply: Value = client
                .post(url)
                .json(&request_for(i))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = response(&reply)["callback_id"].as_i64().expect("success");
            // The reply is out: the row must already be visible to anyone else.
            let conn = rusqlite::Connection::open(db).unwrap();
            let callid: String = conn
                .query_row("SELECT callid FROM callbacks WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .expect("a replied callback is committed");
            assert_eq!(callid, format!("call-{i}"));
            id
        }));
    }
    // Requests refused inside the writer share groups with the good ones and must not spoil them.
    let refusals: Vec<_> = (0..100)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url("/v1/lcm");
            tokio::spawn(async move {
                let request = seed_with(json!({"callid": format!("unknown-{i}")}));
                let reply = client.post(url).json(&request).send().await.unwrap();
                let status = reply.status().as_u16();
                let body: Value = reply.json().await.unwrap();
                (
                    status,
                    lcm_error(&body)["message"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    for refused in refusals {
        let (status, error) = refused.await.unwrap();
        assert_eq!(status, 400);
        assert_eq!(error, "Invalid Call ID.");
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every request got its own callback");
    assert_eq!(app.count("outcomes"), 200);
    assert_eq!(app.count("callbacks"), 200);
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let (_, reply) = app.post_lcm(&seed_request()).await;
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let (_, before) = app.get(&format!("/v1/callbacks/{id}")).await;

    let app = app.restart().await;
    let (status, after) = app.get(&format!("/v1/callbacks/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(before, after);
    // Agents and calls survived too: the retry is still recognised as the same request.
    let (status, retry) = app.post_lcm(&seed_request()).await;
    assert_eq!(status, 200);
    assert_eq!(response(&retry)["callback_id"], id);
    assert_eq!(app.count("outcomes"), 1);
}

#[tokio::test]
async fn a_file_from_an_older_schema_version_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let latest = schema::latest_version();
    // Version 6 is the last whose events carried the callback's snapshot; the file goes
    // through every step since.
    let older = 6;
    assert!(latest > older, "there are steps to upgrade through");
    {
        let mut conn = rusqlite::Connection::open(dir.path().join("redial.db")).unwrap();
        assert_eq!(schema::migrate(&mut conn, Some(older)).unwrap(), older);
        conn.execute_batch(
            "INSERT INTO agents (user_id, logged_in, login_at, updated_at) VALUES ('testagent', 1, 0, 0);
             INSERT INTO calls (callid, account_number, user_id, state, started_at)
                 VALUES ('old-call', 'OLD', 'testagent', 'active', 0);
             INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
                 window_end, local_start, local_end, timezone, state, created_at, updated_at)
                 VALUES ('old-call', 'OLD', 1, 'testagent', 1768311900000, 1768312800000,
                 '13/01/2026 13:45', '13/01/2026 14:00', 'UTC', 'scheduled', 0, 0);
             INSERT INTO events (type, callback_id, callid, account_number, callback_mode_id,
                 user_id, personal, outcome_id, business_outcome, window_start, window_end,
                 timezone, attempt, state, available_at, expires_at, created_at, updated_at)
                 VALUES ('redial', 1, 'old-call', 'OLD', 1, 'testagent', 1, 4, 101,
                 1768311900000, 1768312800000, 'UTC', 1, 'ready', 0, 1768312800000, 0, 0);",
        )
        .unwrap();
    }
    let app = spawn_app_in(dir, Clock::manual(t0()), &[]).await;
    app.register_call("12345", "5|3|1|0|0|44|1", "testagent")
        .await;
    assert_eq!(app.post_lcm(&seed_request()).await.0, 200);
    let version: u32 = app
        .sql()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, latest);
    let (status, old) = app.get("/v1/callbacks/1").await;
    assert_eq!(status, 200);
    assert_eq!(old["callid"], "old-call");
    assert_eq!(old["window_start"], "2026-01-13T13:45:00Z");
    assert_eq!(app.count("callbacks"), 2);
    // The old file's ready event is handed out whole.
    let (status, leased) = app
        .post(
            "/v1/queue/lease",
            Some(&json!({"consumer": "dialer-1", "max": 10})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        leased["events"],
        json!([{"id": 1, "type": "redial", "callback_id": 1, "callid": "old-call",
            "AccountNumber": "OLD", "CallbackModeID": 1, "UserID": "testagent", "personal": true,
            "OutcomeId": 4, "BusinessOutcome": 101, "window_start": "2026-01-13T13:45:00Z",
            "window_end": "2026-01-13T14:00:00Z", "timezone": "UTC", "attempt": 1}])
    );
}

/// Opcodes SQLite would run for `sql` that build a temporary b-tree.
fn temporary_btrees(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
    let mut rows = explain.raw_query();
    let mut found = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let opcode: String = row.get(1).unwrap();
        if opcode == "OpenEphemeral" {
            found.push(format!(
                "{opcode} {}",
                row.get::<_, Option<String>>(5).unwrap().unwrap_or_default()
            ));
        }
    }
    found
}

#[test]
fn writing_a_row_builds_no_temporary_btree_and_states_are_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redial.db");
    // Once from step 7 (a file written before step 8), once fresh.
    for (name, from) in [("upgraded", Some(7)), ("fresh", None)] {
        let _ = std::fs::remove_file(&path);
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        if let Some(version) = from {
            schema::migrate(&mut conn, Some(version)).unwrap();
            assert!(
                !temporary_btrees(&conn, "UPDATE events SET state = 'leased' WHERE id = 1")
                    .is_empty(),
                "step 7 still lists states"
            );
        }
        schema::migrate(&mut conn, None).unwrap();
        // The writes that run once per row: a lease, an ack, an opening, a new callback,
        // an attempt.
        for sql in [
            "UPDATE events SET state = 'leased', available_at = 1 WHERE id = 1",
            "UPDATE events SET state = 'acked' WHERE id = 1",
            "UPDATE callbacks SET state = 'due' WHERE id = 1",
            "UPDATE callbacks SET state = 'expired', next_at = NULL WHERE id = 1",
            "INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
                 window_end, local_start, local_end, timezone, state, created_at, updated_at)
                 VALUES ('c', 'A', 1, 'u', 0, 1, '', '', 'UTC', 'scheduled', 0, 0)",
            "INSERT INTO attempts (callback_id, attempt, result, at) VALUES (1, 1, 'busy', 0)",
        ] {
            assert_eq!(temporary_btrees(&conn, sql), Vec::<String>::new(), "{name}: {sql}");
        }
        conn.execute_batch(
            "INSERT INTO agents (user_id, logged_in, updated_at) VALUES ('u', 1, 0);
             INSERT INTO calls (callid, account_number, user_id, state, started_at)
                 VALUES ('c', 'A', 'u', 'active', 0);
             INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id,
                 window_start, window_end, local_start, local_end, timezone, state, created_at,
                 updated_at)
                 VALUES ('c', 'A', 1, 'u', 0, 1, '', '', 'UTC', 'scheduled', 0, 0);",
        )
        .unwrap();
        for bad in [
            "UPDATE callbacks SET state = 'paused' WHERE id = 1",
            "INSERT INTO events (type, callback_id, user_id, personal, attempt, state,
                 available_at, created_at, updated_at)
                 VALUES ('redial', 1, 'u', 1, 1, 'lost', 0, 0, 0)",
            "INSERT INTO attempts (callback_id, attempt, result, at) VALUES (1, 1, 'maybe', 0)",
        ] {
            let error = conn.execute(bad, []).expect_err(bad).to_string();
            assert!(
                error.contains("CHECK constraint failed"),
                "{name}: {bad}: {error}"
            );
        }
        // The finished index holds exactly the finished callbacks.
        conn.execute("UPDATE callbacks SET state = 'cancelled' WHERE id = 1", [])
            .unwrap();
        let finished: i64 = conn
            .query_row(
                "SELECT count(*) FROM callbacks INDEXED BY callbacks_finished
                 WHERE state NOT IN ('scheduled', 'due') AND updated_at < 10",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(finished, 1, "{name}");
        let mut plan = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                redial::store::purge::PURGE_BATCH_SQL
            ))
            .unwrap();
        let plan: Vec<String> = plan
            .query_map([0, 0], |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("INDEX callbacks_finished")),
            "{name}: the purge reads the finished index: {plan:?}"
        );
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "{name}");
    }
}

#[test]
fn a_file_from_a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redial.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let error = redial::store::Store::open(&redial::store::StoreOptions::new(&path))
        .err()
        .expect("refused");
    assert!(error.to_string().contains("schema version 999"), "{error}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0);
}

/// The real binary: SIGTERM while requests are in flight lets them finish, flushes the writer,
/// and exits 0; every reply of success is in the file afterwards.
#[test]
fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    let server = spawn_server(&db, &[]);
    let base = server.base.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (replied, code) = runtime.block_on(async {
        let client = reqwest::Client::new();
        client.post(format!("{base}/v1/agents/testagent/login")).send().await.unwrap();
        let start = chrono::Utc::now() + chrono::Duration::days(1);
        let mut tasks = Vec::new();
        let mut server = Some(server);
        let mut code = None;
        for i in 0..50 {
            let client = client.clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let call = json!({"callid": format!("c{i}"), "AccountNumber": format!("A{i}"), "UserID": "testagent"});
                client.post(format!("{base}/v1/calls")).json(&call).send().await.ok()?;
                let request = request_between(&format!("c{i}"), &format!("A{i}"), start, start);
                let reply: Value = client.post(format!("{base}/v1/lcm")).json(&request).send().await.ok()?.json().await.ok()?;
                response(&reply)["callback_id"].as_i64()
            }));
            if i == 25 {
                let server = server.take().unwrap();
                code = Some(tokio::task::spawn_blocking(move || server.terminate()));
            }
        }
        let mut replied = Vec::new();
        for task in tasks {
            if let Some(id) = task.await.unwrap() {
                replied.push(id);
            }
        }
        (replied, code.unwrap().await.unwrap())
    });
    assert_eq!(code, Some(0), "a clean stop exits 0");
    let conn = rusqlite::Connection::open(&db).unwrap();
    for id in &replied {
        let found: i64 = conn
            .query_row("SELECT count(*) FROM callbacks WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            found, 1,
            "callback {id} was acknowledged, so it must be stored"
        );
    }
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}
