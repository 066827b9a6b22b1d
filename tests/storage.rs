//! Storage faults and backups: a full database while serving, files that cannot be served at
//! start-up, and an online backup taken under load.

mod common;

use std::process::Command;

use common::{lcm_error, post_json, request_between, response, spawn_app_in, spawn_server, t0};
use redial::clock::Clock;
use rusqlite::Connection;
use serde_json::json;

/// `redial serve` on `db` that must fail at start-up: its exit status and stderr.
fn failed_start(db: &std::path::Path) -> (Option<i32>, String) {
    failed_start_as(db, None)
}

/// The same, run as user `uid` when given (root may write any file, so a read-only file needs
/// an ordinary user to mean anything).
fn failed_start_as(db: &std::path::Path, uid: Option<u32>) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_redial"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn unservable_files_are_explained_in_one_line_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();

    let not_sqlite = dir.path().join("notes.db");
    let text = b"These are not the rows you are looking for.\n".repeat(200);
    std::fs::write(&not_sqlite, &text).unwrap();
    let (code, stderr) = failed_start(&not_sqlite);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("redial: ") && stderr.contains("not a database"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&not_sqlite).unwrap(), text, "left as it was");

    let newer = dir.path().join("newer.db");
    Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 999;")
        .unwrap();
    let (code, stderr) = failed_start(&newer);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("schema version 999"), "{stderr}");

    let blocked = dir.path().join("a-file").join("redial.db");
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let (code, stderr) = failed_start(&blocked);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot create folder"), "{stderr}");
}

/// The effective user id of this process, from `/proc`.
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn a_read_only_file_is_explained_in_one_line_and_left_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    with_calls(&db, 1);
    let before = std::fs::read(&db).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    // As root, run it as `nobody`, for whom the file is read-only.
    let uid = (euid() == 0).then_some(65534);
    let (code, stderr) = failed_start_as(&db, uid);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("redial: "), "{stderr}");
    assert!(
        stderr.contains("readonly") || stderr.contains("read-only"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), before, "left as it was");
}

#[test]
fn a_missing_folder_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new").join("nested").join("redial.db");
    let server = spawn_server(&db, &[]);
    assert_eq!(server.terminate(), Some(0));
    assert!(db.exists());
}

/// Registers `n` calls for a logged-in agent directly in a fresh file at `db`.
fn with_calls(db: &std::path::Path, n: usize) {
    let mut conn = Connection::open(db).unwrap();
    redial::store::schema::migrate(&mut conn, None).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute(
        "INSERT INTO agents (user_id, logged_in, updated_at) VALUES ('testagent', 1, 0)",
        [],
    )
    .unwrap();
    for i in 0..n {
        tx.execute(
            "INSERT INTO calls VALUES (?1, ?2, 'testagent', 'active', 0, NULL)",
            [format!("c{i}"), format!("A{i}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

#[tokio::test]
async fn a_full_database_answers_503_keeps_what_it_had_and_recovers_with_room() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    with_calls(&db, 4000);
    let app = spawn_app_in(dir, Clock::manual(t0()), &["--max-db-mib", "1"]).await;
    let start = t0() + chrono::Duration::days(1);
    let mut stored = Vec::new();
    let refused = loop {
        let i = stored.len();
        assert!(i < 4000, "1 MiB never filled up");
        let request = request_between(&format!("c{i}"), &format!("A{i}"), start, start);
        let (status, reply) = app.post_lcm(&request).await;
        if status == 503 {
            break (request, reply);
        }
        assert_eq!(status, 200, "{reply}");
        stored.push(response(&reply)["callback_id"].as_i64().unwrap());
    };
    let error = lcm_error(&refused.1);
    assert_eq!(error["type"], "Server_Error");
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("database is full"),
        "{}",
        refused.1
    );
    // Still full, still answering, and reads work.
    let (status, _) = app.post_lcm(&refused.0).await;
    assert_eq!(status, 503);
    let (status, cb) = app.get(&format!("/v1/callbacks/{}", stored[0])).await;
    assert_eq!((status, &cb["callid"]), (200, &json!("c0")));
    let (dir, clock) = app.stop().await;
    let db = dir.path().join("redial.db");
    assert_eq!(
        Connection::open(&db)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );

    // With room again, the refused request goes through and nothing was lost.
    let app = spawn_app_in(dir, clock, &["--max-db-mib", "64"]).await;
    let (status, reply) = app.post_lcm(&refused.0).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(app.count("outcomes") as usize, stored.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_holds_everything_acknowledged_before_it_began() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db");
    with_calls(&db, 1000);
    let server = spawn_server(&db, &[]);
    let client = reqwest::Client::new();
    let start = chrono::Utc::now() + chrono::Duration::days(1);
    let send = |i: usize| {
        let (client, url) = (client.clone(), server.url("/v1/lcm"));
        async move {
            let request = request_between(&format!("c{i}"), &format!("A{i}"), start, start);
            let reply = post_json(&client, url, &request).await;
            response(&reply)["callback_id"]
                .as_i64()
                .map(|_| format!("c{i}"))
        }
    };
    // Acknowledged before the backup begins.
    let mut before = Vec::new();
    for i in 0..300 {
        before.extend(send(i).await);
    }
    assert_eq!(before.len(), 300);
    // The backup runs while 700 more requests stream in.
    let load: Vec<_> = (300..1000).map(|i| tokio::spawn(send(i))).collect();
    let out = dir.path().join("copy.db");
    let backup = Command::new(env!("CARGO_BIN_EXE_redial"))
        .args(["backup", "--db"])
        .arg(&db)
        .arg(&out)
        .output()
        .unwrap();
    for task in load {
        task.await.unwrap();
    }
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let said = String::from_utf8_lossy(&backup.stdout);
    assert!(said.contains("integrity ok"), "{said}");
    assert_eq!(server.terminate(), Some(0));

    let copy = Connection::open(&out).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let journal: String = copy
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete", "the copy stands alone");
    for callid in &before {
        let n: i64 = copy
            .query_row(
                "SELECT count(*) FROM outcomes WHERE callid = ?1",
                [callid],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{callid} was acknowledged before the backup began");
    }
    // Each outcome in the copy has its callback: one consistent state, not a mix.
    let orphans: i64 = copy
        .query_row(
            "SELECT count(*) FROM outcomes o LEFT JOIN callbacks c ON c.id = o.callback_id
             WHERE c.id IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);

    // Restored: the service starts on the copy and serves what it holds.
    drop(copy);
    let restored = dir.path().join("restored").join("redial.db");
    std::fs::create_dir_all(restored.parent().unwrap()).unwrap();
    std::fs::copy(&out, &restored).unwrap();
    let server = spawn_server(&restored, &[]);
    let reply = post_json(
        &client,
        server.url("/v1/lcm"),
        &request_between("c0", "A0", start, start),
    )
    .await;
    assert_eq!(
        response(&reply)["success"],
        true,
        "an identical retry is recognised: {reply}"
    );
    assert_eq!(server.terminate(), Some(0));

    // A second backup to the same path is refused, and the first stays as it was.
    let again = Command::new(env!("CARGO_BIN_EXE_redial"))
        .args(["backup", "--db"])
        .arg(&db)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}
