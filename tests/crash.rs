//! Crash safety of the real binary: SIGKILL in the middle of concurrent requests (group
//! commits), of dialers leasing and acking, and of the retention purge; then a restart on the
//! same file. Every request answered with success is there, `integrity_check` is `ok`, due
//! events are still delivered and acked ones are not. Waits are on conditions, with deadlines.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{post_json, request_between, response, spawn_server, until, ServerProcess};
use rusqlite::Connection;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(60);

fn integrity(db: &std::path::Path) -> String {
    Connection::open(db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// POSTs `body` to a server that may be killed meanwhile: the JSON reply, if one came.
async fn try_post(client: &reqwest::Client, url: String, body: &Value) -> Option<Value> {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// SIGTERM: exit status 0, and a sound file.
async fn stops_cleanly(server: ServerProcess, db: &std::path::Path) {
    let code = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    assert_eq!(integrity(db), "ok");
}

async fn kill9(server: ServerProcess) {
    tokio::task::spawn_blocking(move || server.kill9())
        .await
        .unwrap();
}

/// Registers `n` calls for a logged-in agent.
async fn prerequisites(client: &reqwest::Client, server: &ServerProcess, n: usize) {
    client
        .post(server.url("/v1/agents/testagent/login"))
        .send()
        .await
        .unwrap();
    for i in 0..n {
        let call = json!({"callid": format!("c{i}"), "AccountNumber": format!("A{i}"), "UserID": "testagent"});
        let r = client
            .post(server.url("/v1/calls"))
            .json(&call)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_group_commits_loses_no_acknowledged_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    let client = reqwest::Client::new();
    let server = spawn_server(&db, &[]);
    let total = 600;
    prerequisites(&client, &server, total).await;
    let start = Utc::now() + chrono::Duration::days(1);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut server = Some(server);
    // Three kill points: early, midway and late in a stream of concurrent requests.
    for (round, kill_after) in [40, 120, 60].into_iter().enumerate() {
        let live = server.take().unwrap_or_else(|| spawn_server(&db, &[]));
        let base = live.base.clone();
        let answered = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in round * 200..(round + 1) * 200 {
            let (client, base, acknowledged, answered) = (
                client.clone(),
                base.clone(),
                Arc::clone(&acknowledged),
                Arc::clone(&answered),
            );
            tasks.push(tokio::spawn(async move {
                let request = request_between(&format!("c{i}"), &format!("A{i}"), start, start);
                let reply = client
                    .post(format!("{base}/v1/lcm"))
                    .json(&request)
                    .send()
                    .await;
                let Ok(reply) = reply else { return };
                let Ok(reply) = reply.json::<Value>().await else {
                    return;
                };
                if let Some(id) = response(&reply)["callback_id"].as_i64() {
                    acknowledged.lock().unwrap().push((format!("c{i}"), id));
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        until(DEADLINE, "requests answered before the kill", || {
            answered.load(Ordering::SeqCst) >= kill_after
        })
        .await;
        kill9(live).await;
        for task in tasks {
            task.await.unwrap();
        }
    }
    // Restarted on the same file: every success is there.
    let server = spawn_server(&db, &[]);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 220);
    for (callid, id) in &acknowledged {
        let r: Value = client
            .get(server.url(&format!("/v1/callbacks/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(&r["callid"], callid, "callback {id} was acknowledged: {r}");
    }
    stops_cleanly(server, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_while_dialers_lease_and_ack_redelivers_only_what_was_not_acked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    let client = reqwest::Client::new();
    let server = spawn_server(&db, &[]);
    let total = 300;
    prerequisites(&client, &server, total).await;
    // Windows open now (real clock): all due at once.
    let now = Utc::now();
    for i in 0..total {
        let request = request_between(
            &format!("c{i}"),
            &format!("A{i}"),
            now - chrono::Duration::minutes(1),
            now + chrono::Duration::hours(2),
        );
        let r = client
            .post(server.url("/v1/lcm"))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // Four dialers lease 10 at a time for one second and ack; killed midway.
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let in_flight = Arc::new(Mutex::new(HashSet::new()));
    let mut dialers = Vec::new();
    for d in 0..4 {
        let (client, base, acked, in_flight) = (
            client.clone(),
            server.base.clone(),
            Arc::clone(&acked),
            Arc::clone(&in_flight),
        );
        dialers.push(tokio::spawn(async move {
            let consumer = format!("d{d}");
            loop {
                let body =
                    json!({"consumer": consumer, "max": 10, "lease_ms": 1000, "wait_ms": 200});
                let Some(r) = try_post(&client, format!("{base}/v1/queue/lease"), &body).await
                else {
                    return;
                };
                let ids: Vec<i64> = r["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_i64().unwrap())
                    .collect();
                in_flight.lock().unwrap().extend(ids.iter().copied());
                let body = json!({"consumer": consumer, "ids": ids});
                let Some(r) = try_post(&client, format!("{base}/v1/queue/ack"), &body).await else {
                    return;
                };
                for id in r["acked"].as_array().unwrap() {
                    acked.lock().unwrap().insert(id.as_i64().unwrap());
                }
            }
        }));
    }
    until(DEADLINE, "a third of the redials acked", || {
        acked.lock().unwrap().len() >= total / 3
    })
    .await;
    kill9(server).await;
    for dialer in dialers {
        dialer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let uncertain: HashSet<i64> = in_flight
        .lock()
        .unwrap()
        .difference(&acked)
        .copied()
        .collect();

    // After the restart the dead process's leases run out; every redial not acked comes back,
    // none that was acked does.
    let server = spawn_server(&db, &[]);
    let mut delivered = HashSet::new();
    let started = Instant::now();
    let lease = |wait_ms: u64| {
        let (client, url) = (client.clone(), server.url("/v1/queue/lease"));
        async move {
            let body =
                json!({"consumer": "after", "max": 100, "lease_ms": 60_000, "wait_ms": wait_ms});
            let r = post_json(&client, url, &body).await;
            r["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap())
                .collect::<Vec<i64>>()
        }
    };
    let accounted = |delivered: &HashSet<i64>| {
        delivered
            .union(&acked)
            .chain(uncertain.difference(delivered))
            .count()
    };
    while accounted(&delivered) < total {
        assert!(
            started.elapsed() < DEADLINE,
            "only {} redelivered",
            delivered.len()
        );
        for id in lease(500).await {
            assert!(
                !acked.contains(&id),
                "event {id} was acked before the kill, yet came back"
            );
            assert!(
                delivered.insert(id),
                "event {id} delivered twice to one consumer"
            );
        }
    }
    // Past every lease the dead process held: nothing acked comes back.
    for id in lease(1_500).await {
        assert!(
            !acked.contains(&id) && uncertain.contains(&id),
            "event {id} came back"
        );
        delivered.insert(id);
    }
    let all: i64 = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM events WHERE type = 'redial'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(all as usize, total);
    assert!(delivered.len() + acked.len() + uncertain.len() >= total);
    assert!(delivered.len() + acked.len() <= total);
    stops_cleanly(server, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_the_purge_leaves_a_sound_file_and_the_purge_finishes_later() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    // A file with 60,000 finished callbacks (each with an acked event) from 1970, and one live.
    {
        let mut conn = Connection::open(&db).unwrap();
        redial::store::schema::migrate(&mut conn, None).unwrap();
        conn.execute_batch(
            "INSERT INTO calls VALUES ('old', 'OLD', 'agent', 'ended', 0, 0);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
             INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
                 window_end, local_start, local_end, timezone, state, created_at, updated_at)
             SELECT 'old', 'OLD' || i, 1, 'agent', 0, 1, '', '', 'UTC', 'completed', 0, 0 FROM n;
             INSERT INTO events (id, type, callback_id, user_id, personal, attempt, state,
                 available_at, created_at, updated_at)
             SELECT id, 'redial', id, 'agent', 1, 1, 'acked', 0, 0, 0 FROM callbacks;
             INSERT INTO event_details (event_id, callid, account_number, callback_mode_id,
                 window_start, window_end, timezone)
             SELECT id, callid, account_number, 1, 0, 1, 'UTC' FROM callbacks;
             INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
                 window_end, local_start, local_end, timezone, state, next_at, created_at, updated_at)
             VALUES ('old', 'LIVE', 1, 'agent', 4102444800000, 4102448400000, '', '', 'UTC',
                 'scheduled', 4102444740000, 0, 0);",
        )
        .unwrap();
    }
    let finished = |db: &std::path::Path| -> i64 {
        Connection::open(db)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM callbacks WHERE state = 'completed'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let args = ["--retention", "1d", "--purge-cron", "* * * * * *"];
    let server = spawn_server(&db, &args);
    until(DEADLINE, "the purge under way", || finished(&db) < 60_000).await;
    kill9(server).await;
    assert_eq!(integrity(&db), "ok");
    let left = finished(&db);
    assert!(left > 0, "killed midway, not after");
    let server = spawn_server(&db, &args);
    until(DEADLINE, "the purge finished after the restart", || {
        finished(&db) == 0
    })
    .await;
    stops_cleanly(server, &db).await;
    let conn = Connection::open(&db).unwrap();
    let (events, details, live): (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_details),
                    (SELECT count(*) FROM callbacks WHERE state = 'scheduled')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (events, details, live),
        (0, 0, 1),
        "finished rows gone with their events' details, the live callback kept"
    );
}
