//! The `redial` binary as a child process, for tests that kill it and for the benchmark
//! harness, which includes this file too.

use serde_json::Value;

/// The release-like binary as a child process, for tests that kill it.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
    /// Every log line the server has written so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `redial serve` on `db` at a free port and waits for its "serving" log line.
pub fn spawn_server(db: &std::path::Path, args: &[&str]) -> ServerProcess {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    // BENCH_REDIAL_BIN runs another build under the same harness, to compare two builds of
    // one schema version (the harness writes the file with this build's schema).
    let binary = std::env::var_os("BENCH_REDIAL_BIN").map_or_else(
        || env!("CARGO_BIN_EXE_redial").into(),
        std::path::PathBuf::from,
    );
    let mut child = Command::new(binary)
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(db)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_RUST_LOG").unwrap_or("info".into()),
        )
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server exited before announcing its address")
            .unwrap();
        let entry: Value = serde_json::from_str(&line).unwrap();
        if let Some(address) = entry["fields"]["address"].as_str() {
            break address.to_owned();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    ServerProcess {
        child,
        base: format!("http://{address}"),
        log,
    }
}

impl ServerProcess {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap().code()
    }
}
