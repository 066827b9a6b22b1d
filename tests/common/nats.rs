//! A real `nats-server` with JetStream for a test: on a free port, its store in a temporary
//! folder, stopped (and restartable on the same port and store) by the test.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use futures_util::StreamExt;
use serde_json::Value;

/// Where Debian's package puts the server.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// Whether the server is here; without it a test says so and passes, unless `CI` is set.
pub fn have_nats_server() -> bool {
    if std::path::Path::new(NATS_SERVER).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{NATS_SERVER} is missing: apt-get install -y nats-server"
    );
    eprintln!("skipped: {NATS_SERVER} is missing (apt-get install -y nats-server)");
    false
}

pub struct NatsServer {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = NatsServer {
            port,
            store: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.run();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let child = Command::new(NATS_SERVER)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nats-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the server (its store stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(self.url()).await.unwrap();
        async_nats::jetstream::new(client)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message of the stream: its subject, its `Nats-Msg-Id` and its payload.
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub msg_id: String,
    pub payload: Value,
}

/// Every message of `stream`, in order, read by an ephemeral consumer.
pub async fn messages(js: &async_nats::jetstream::Context, stream: &str) -> Vec<Stored> {
    let mut stream = js.get_stream(stream).await.unwrap();
    let total = stream.info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::with_capacity(total);
    let mut batches = consumer.messages().await.unwrap();
    while out.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(10), batches.next())
            .await
            .expect("the stream's messages within 10 s")
            .unwrap()
            .unwrap();
        let msg_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        out.push(Stored {
            subject: message.subject.to_string(),
            msg_id,
            payload: serde_json::from_slice(&message.payload).unwrap(),
        });
    }
    out
}
