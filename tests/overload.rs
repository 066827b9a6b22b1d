//! Overload: a full writer queue, a request past its time and too many long-polls are each
//! answered 503 with `Retry-After` and an envelope, and the service recovers by itself. The
//! database is held busy by a second connection's write lock, so every step is chosen. Many
//! clients connecting at once all complete their handshake instead of being dropped.

mod common;

use std::time::Duration;

use common::{lcm_error, response, seed_with, spawn_app_with, spawn_server, TestApp};
use rusqlite::Connection;
use serde_json::{json, Value};

/// Holds SQLite's write lock from another connection until dropped: the writer waits.
struct Held(Connection);

impl Held {
    fn lock(app: &TestApp) -> Self {
        let conn = Connection::open(&app.db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        Self(conn)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.execute_batch("ROLLBACK").unwrap();
    }
}

/// POSTs until the service takes it: with a writer queue of two, the scheduler's first ticks
/// at start-up may hold both places for a moment, and a refused client tries again.
async fn posted(app: &TestApp, path: &str, body: Option<&Value>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, reply) = app.post(path, body).await;
        if status == 200 || status == 201 {
            return;
        }
        assert_eq!(status, 503, "{reply}");
        assert!(std::time::Instant::now() < deadline, "never taken: {reply}");
        tokio::task::yield_now().await;
    }
}

async fn registered(app: &TestApp, n: usize) -> Vec<Value> {
    posted(app, "/v1/agents/testagent/login", None).await;
    let mut requests = Vec::new();
    for i in 0..n {
        let (callid, account) = (format!("c{i}"), format!("A{i}"));
        let call = json!({"callid": callid, "AccountNumber": account, "UserID": "testagent"});
        posted(app, "/v1/calls", Some(&call)).await;
        requests.push(seed_with(
            json!({"callid": callid, "AccountNumber": account}),
        ));
    }
    requests
}

/// Posts `body` to `/v1/lcm`: status, `Retry-After`, JSON.
async fn post(app: &TestApp, body: &Value) -> (u16, Option<String>, Value) {
    let r = app
        .client
        .post(app.url("/v1/lcm"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap())
}

#[tokio::test]
async fn a_full_writer_queue_answers_503_at_once_and_recovers() {
    // One request in the writer, two waiting: the rest find the queue full.
    let app = spawn_app_with(&["--writer-queue", "2", "--batch-max", "1"]).await;
    let requests = registered(&app, 10).await;
    let mut held = Some(Held::lock(&app));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for body in requests.clone() {
        let (client, url, tx) = (app.client.clone(), app.url("/v1/lcm"), tx.clone());
        tokio::spawn(async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").cloned();
            let reply: Value = r.json().await.unwrap();
            tx.send((status, retry, body, reply)).unwrap();
        });
    }
    // At most three are held (one in the writer, two queued): at least seven are refused at
    // once. The writer may not yet have taken the first from the queue, so an eighth may be.
    let mut refused = Vec::new();
    let mut stored = 0;
    for received in 0..requests.len() {
        if received == 7 {
            drop(held.take());
        }
        let (status, retry, body, reply) = rx.recv().await.unwrap();
        if status == 200 {
            assert!(
                received >= 7,
                "a success only once the database is free: {reply}"
            );
            stored += 1;
            continue;
        }
        assert_eq!(status, 503, "{reply}");
        assert_eq!(retry.unwrap(), "1");
        let error = lcm_error(&reply);
        assert_eq!(error["type"], "Server_Error");
        assert_eq!(error["message"], "Service unavailable, try again.");
        assert!(
            error["detail"].as_str().unwrap().contains("busy"),
            "{reply}"
        );
        assert_eq!(reply["message"]["callid"], body["data"]["callid"]);
        refused.push(body);
    }
    assert!(
        stored >= 2,
        "the writer's request and the queued ones are stored"
    );
    assert_eq!(app.count("outcomes"), stored);
    // Recovered: the refused requests go through when sent again, as a client told "try
    // again shortly" does. The queue holds two here, and the scheduler's tick, woken by each
    // new callback, may hold one of them for a moment: a request may meet it once more.
    for body in &refused {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, _, reply) = post(&app, body).await;
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "{reply}");
            assert!(
                std::time::Instant::now() < deadline,
                "never stored: {reply}"
            );
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(app.count("outcomes"), 10);
}

#[tokio::test]
async fn a_request_past_its_time_is_answered_503_and_is_safe_to_send_again() {
    let app = spawn_app_with(&["--request-timeout", "200ms"]).await;
    let body = registered(&app, 1).await.remove(0);
    let held = Held::lock(&app);
    let (status, retry, reply) = post(&app, &body).await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")));
    let detail = lcm_error(&reply)["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("200 ms") && detail.contains("safe to send again"),
        "{detail}"
    );
    drop(held);
    // The first attempt may have been stored after its answer; the retry gets the same callback.
    let (status, _, first) = post(&app, &body).await;
    let (_, _, second) = post(&app, &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        response(&first)["callback_id"],
        response(&second)["callback_id"]
    );
    assert_eq!(app.count("outcomes"), 1);
}

#[tokio::test]
async fn long_polls_past_the_cap_are_answered_503() {
    let app = spawn_app_with(&["--max-long-polls", "1"]).await;
    // Two dialers wait for events at once: the first to wait takes the only place, the other
    // is refused at once.
    let polls: Vec<_> = ["first", "second"]
        .into_iter()
        .map(|consumer| {
            let (client, url) = (app.client.clone(), app.url("/v1/queue/lease"));
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .json(&json!({"consumer": consumer, "wait_ms": 1000}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for poll in polls {
        answers.push(poll.await.unwrap());
    }
    answers.sort_by_key(|(status, _)| *status);
    assert_eq!((answers[0].0, answers[1].0), (200, 503), "{answers:?}");
    let refused = &answers[1].1;
    assert_eq!(refused["success"], false);
    assert!(refused["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("--max-long-polls"));
    // The place is free again, and a lease that does not wait never needs one.
    let (status, _) = app
        .post("/v1/queue/lease", Some(&json!({"consumer": "third"})))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn clients_connecting_at_once_all_complete_their_handshake() {
    // Hundreds of clients connect in the same instant, as desktops do after a restart: the
    // kernel's accept queue holds them until the accept loop takes them (the one it can serve,
    // and the others it answers 503). A queue of 128, the default, drops the 129th handshake,
    // and that client would not connect within the deadline. The kernel caps any queue at
    // somaxconn.
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map_or(4096, |n| n.trim().parse().unwrap_or(4096));
    let clients = 300.min(somaxconn);
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(&dir.path().join("redial.db"), &["--max-connections", "1"]);
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let connects: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                    .await
            })
        })
        .collect();
    let mut held = Vec::new();
    for connect in connects {
        let stream = connect
            .await
            .unwrap()
            .expect("connected before the deadline");
        held.push(stream.unwrap());
    }
    assert_eq!(held.len(), clients);
    server.terminate();
}

/// `GET /readyz`: ready once the scheduler has ticked; not ready, saying why, while the
/// writer cannot drain (the database held by another connection); ready again after.
#[tokio::test]
async fn readiness_follows_the_writer_and_the_scheduler() {
    let app = spawn_app_with(&[]).await;
    let ready = || async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = app.get("/readyz").await;
            if status == 200 {
                return body;
            }
            assert!(std::time::Instant::now() < deadline, "never ready: {body}");
            tokio::task::yield_now().await;
        }
    };
    assert_eq!(ready().await, json!({"status": "ready"}));
    let held = Held::lock(&app);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not ready");
    let reasons = body["reasons"].to_string();
    assert!(reasons.contains("writer"), "{reasons}");
    assert_eq!(app.get("/healthz").await.0, 200, "alive all the same");
    drop(held);
    ready().await;
}
