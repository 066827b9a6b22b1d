//! The real binary as a process: settings that are the process's own, not the database's.

mod common;

use common::spawn_server;

/// Transparent huge pages are off for the whole service: with them, the first burst of work
/// after a start waits for the kernel to zero 2 MiB pages (`redial::memory`).
#[test]
fn the_service_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(&dir.path().join("redial.db"), &[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .expect("/proc/PID/status has a THP_enabled line (Linux 5.0 and later)");
    assert_eq!(thp.trim(), "0", "huge pages are still on for the service");
    server.kill9();
}
