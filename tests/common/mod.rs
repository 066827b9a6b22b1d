//! The test harness: a real redial server on port 0 over a fresh temporary SQLite file, with a
//! clock the test controls, and a typed client for it.
#![allow(dead_code)]

pub mod process;
pub mod rig;
pub mod ws;

#[allow(unused_imports)]
pub use process::{spawn_server, ServerProcess};

use std::path::PathBuf;
use std::sync::Once;

use chrono::{DateTime, TimeZone, Utc};
use redial::clock::Clock;
use redial::config::Config;
use rusqlite::Connection;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The instant every test starts at, unless it says otherwise: the day before the sample dates.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 12, 9, 0, 0).unwrap()
}

/// The sample date (`DD/MM/YYYY`) the tests put in requests: the day after [`t0`].
pub const DAY: &str = "13/01/2026";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Clock,
    pub db: PathBuf,
    pub dir: TempDir,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt().with_env_filter("debug").init();
        }
    });
}

/// A server on a fresh database, clock at [`t0`].
pub async fn spawn_app() -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), Clock::manual(t0()), &[]).await
}

/// A server with extra `serve` flags.
pub async fn spawn_app_with(args: &[&str]) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), Clock::manual(t0()), args).await
}

/// A server on the database in `dir` (which may already hold one).
pub async fn spawn_app_in(dir: TempDir, clock: Clock, args: &[&str]) -> TestApp {
    init_logs();
    let db = dir.path().join("redial.db");
    let mut flags = vec!["--db".to_owned(), db.display().to_string()];
    flags.extend(args.iter().map(|a| a.to_string()));
    let config = Config::from_args(flags).expect("test flags parse");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(redial::serve(config, clock.clone(), listener, async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        clock,
        db,
        dir,
        shutdown,
        task,
    }
}

impl TestApp {
    /// Stops the server the way SIGTERM does and hands back its folder and clock for a restart.
    pub async fn stop(self) -> (TempDir, Clock) {
        let _ = self.shutdown.send(());
        self.task.await.unwrap().expect("server stops cleanly");
        (self.dir, self.clock)
    }

    /// Stops and starts the server again on the same file.
    pub async fn restart(self) -> TestApp {
        let (dir, clock) = self.stop().await;
        spawn_app_in(dir, clock, &[]).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a JSON body (or none) and returns the status and the JSON reply.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.client.post(self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        reply(request.send().await.unwrap()).await
    }

    /// POSTs raw bytes to `/v1/lcm`.
    pub async fn post_lcm_raw(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let request = self
            .client
            .post(self.url("/v1/lcm"))
            .header("content-type", "application/json")
            .body(body);
        reply(request.send().await.unwrap()).await
    }

    pub async fn post_lcm(&self, body: &Value) -> (u16, Value) {
        self.post("/v1/lcm", Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        reply(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn login(&self, user: &str) {
        let (status, body) = self.post(&format!("/v1/agents/{user}/login"), None).await;
        assert_eq!(status, 200, "{body}");
    }

    pub async fn logout(&self, user: &str) {
        let (status, body) = self.post(&format!("/v1/agents/{user}/logout"), None).await;
        assert_eq!(status, 200, "{body}");
    }

    pub async fn register_call(&self, callid: &str, account: &str, user: &str) {
        let body = serde_json::json!({"callid": callid, "AccountNumber": account, "UserID": user});
        let (status, reply) = self.post("/v1/calls", Some(&body)).await;
        assert!(status == 201 || status == 200, "{status} {reply}");
    }

    pub async fn end_call(&self, callid: &str) {
        let (status, body) = self.post(&format!("/v1/calls/{callid}/end"), None).await;
        assert_eq!(status, 200, "{body}");
    }

    /// A personal callback for testagent on a new call `call-<n>` to `acct-<n>`, its window
    /// from `start` to `end` (UTC); its id.
    pub async fn callback_in(&self, n: u32, start: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
        let (callid, account) = (format!("call-{n}"), format!("acct-{n}"));
        self.register_call(&callid, &account, "testagent").await;
        let (status, reply) = self
            .post_lcm(&request_between(&callid, &account, start, end))
            .await;
        assert_eq!(status, 200, "{reply}");
        response(&reply)["callback_id"].as_i64().unwrap()
    }

    /// The body of `GET path`, as text.
    pub async fn get_text(&self, path: &str) -> String {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// Logs the seed's agent in and registers the seed's call.
    pub async fn seed_prerequisites(&self) {
        self.login("testagent").await;
        self.register_call("12345", "5|3|1|0|0|44|1", "testagent")
            .await;
    }

    /// A connection of the test's own to the database file, to check what was committed.
    pub fn sql(&self) -> Connection {
        Connection::open(&self.db).unwrap()
    }

    pub fn count(&self, table: &str) -> i64 {
        self.sql()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }
}

async fn reply(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("reply is not JSON: {text}"));
    (status, body)
}

/// The repository's `data/` folder.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A sample file from `data/`, its dates moved from the seed's 13/01/2021 to [`DAY`].
pub fn sample(name: &str) -> Value {
    let text = std::fs::read_to_string(data_dir().join(name)).unwrap();
    serde_json::from_str(&text.replace("13/01/2021", DAY)).unwrap()
}

/// The seed's request with its dates moved to [`DAY`].
pub fn seed_request() -> Value {
    sample("seed-request.json")
}

/// The seed's request with `data` fields changed (`null` removes a field).
pub fn seed_with(patch: Value) -> Value {
    let mut request = seed_request();
    for (key, value) in patch.as_object().unwrap() {
        let data = request["data"].as_object_mut().unwrap();
        if value.is_null() {
            data.remove(key);
        } else {
            data.insert(key.clone(), value.clone());
        }
    }
    request
}

/// The `response` object of an LCM reply.
pub fn response(reply: &Value) -> &Value {
    &reply["message"]["response"]
}

/// The `error` object of an LCM reply, asserting the request failed.
pub fn lcm_error(reply: &Value) -> &Value {
    assert_eq!(
        response(reply)["success"],
        false,
        "expected a refusal: {reply}"
    );
    &response(reply)["error"]
}

/// POSTs `body` as JSON and reads the reply as JSON.
pub async fn post_json(client: &reqwest::Client, url: String, body: &Value) -> Value {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A blocking POST for tests that drive a child process.
pub fn post_blocking(url: &str, body: &Value) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(url)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// Waits until `done` holds, looking again every few milliseconds, for at most `within`:
/// for what a test cannot step itself (a child process, a background task on real time).
pub async fn until(within: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "gave up waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The seed request for `callid`/`account`, with a window from `start` to `end` (UTC).
pub fn request_between(
    callid: &str,
    account: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Value {
    seed_with(serde_json::json!({
        "callid": callid, "AccountNumber": account,
        "StartDate": start.format("%d/%m/%Y").to_string(), "StartTime": start.format("%H:%M").to_string(),
        "EndDate": end.format("%d/%m/%Y").to_string(), "EndTime": end.format("%H:%M").to_string(),
    }))
}
