//! Checkpoints off the writer's path: the writer notices after a commit how long the WAL is
//! and asks a thread of its own to copy it back into the database ([`Cycle`]); SQLite's own
//! automatic checkpoint, inside the commit that crosses its threshold, is off.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use super::StoreError;

/// Frames in the WAL past which a background checkpoint is asked for (about 16 MiB with 4 KiB
/// pages). The longer the log, the more often a hot page (the end of a table or of an index
/// filled in order) is copied once for many commits (BENCHMARKS.md: checkpoints).
pub const CHECKPOINT_AT: i32 = 4_000;
/// Frames in the WAL past which the writer checkpoints in its own thread (about 256 MiB).
pub const WAL_LIMIT: i32 = 65_536;

thread_local! {
    /// Frames in the WAL after the last commit on this thread that wrote any, not yet seen by
    /// [`Checkpoints::after_commit`]. The hook takes a plain function, and the writer's
    /// commits all run on its one thread, so a thread-local carries the number across.
    static WAL_FRAMES: Cell<i32> = const { Cell::new(0) };
}

fn note_wal_frames(_: &Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(frames));
    Ok(())
}

/// The writer's side: watches the WAL's length and asks for checkpoints.
pub struct Checkpoints {
    cycle: Cell<Cycle>,
    /// Frames the background thread's last checkpoint left copied (SQLite's count).
    copied: Arc<AtomicI32>,
    ask: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Where the log is in its cycle, for the writer.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the threshold, so one
/// request in a thousand would pay for copying the whole WAL back and an fsync of the
/// database file. Here, past [`CHECKPOINT_AT`] frames the background thread is asked, once,
/// to copy what it can without blocking the writer (`PASSIVE`); once it has, the writer copies
/// the few frames committed since, itself, between two groups, and its next transaction
/// starts the log again from the beginning. The log starts again only if a transaction
/// begins after a checkpoint has copied all of it, and under steady load the writer's next
/// group always begins before the background checkpoint ends: asking after every commit
/// copied a few frames and fsynced the database each time, and asking less often let the log
/// run to [`WAL_LIMIT`], where the writer checkpoints itself (`RESTART`) in the path of
/// requests. Should the log still grow past [`WAL_LIMIT`] (a checkpoint that cannot keep
/// up), the writer does that, which bounds the file.
///
/// The length comes from SQLite's WAL hook, called by each commit with the number of frames
/// in the log. The file's size does not tell: SQLite never shrinks it, so a file that had once
/// grown past the threshold asked for a checkpoint after every commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cycle {
    /// The log's length when the background thread was asked to copy it; 0 if not yet.
    asked_at: i32,
    /// Whether the writer has copied the rest since.
    finished: bool,
}

/// What the writer does after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Ask the background thread to copy the log.
    Ask,
    /// Copy the frames committed since the background checkpoint, in the writer.
    CopyRest,
    /// The log is too long: checkpoint in the writer and wait for everything (`RESTART`).
    Restart,
}

impl Cycle {
    /// The step after a commit that left `frames` frames in the log, when the background
    /// thread has copied `copied` of them.
    pub fn after_commit(self, frames: i32, copied: i32) -> (Action, Cycle) {
        if frames < self.asked_at {
            // The log started again: a new cycle.
            return Cycle::default().after_commit(frames, 0);
        }
        if frames >= WAL_LIMIT {
            return (Action::Restart, Cycle::default());
        }
        let ask = Cycle {
            asked_at: frames,
            finished: false,
        };
        match self {
            Cycle { asked_at: 0, .. } if frames >= CHECKPOINT_AT => (Action::Ask, ask),
            Cycle { asked_at: 0, .. } => (Action::Nothing, self),
            // Still long after the writer copied the rest (a reader held the log): again.
            Cycle { asked_at, .. } if frames >= asked_at + CHECKPOINT_AT => (Action::Ask, ask),
            Cycle {
                asked_at,
                finished: false,
            } if copied >= asked_at => (
                Action::CopyRest,
                Cycle {
                    asked_at,
                    finished: true,
                },
            ),
            _ => (Action::Nothing, self),
        }
    }
}

impl Checkpoints {
    /// Starts the checkpoint thread for the database at `db`, whose one write connection is
    /// `writer`: SQLite's automatic checkpoints are turned off on it, and its commits report
    /// the WAL's length here.
    pub fn start(db: &Path, writer: &Connection) -> Result<Self, StoreError> {
        // The pragma installs SQLite's own WAL hook; ours replaces it.
        writer.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))?;
        writer.wal_hook(Some(note_wal_frames));
        let conn = Connection::open(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (ask, asked) = mpsc::sync_channel(1);
        let copied = Arc::new(AtomicI32::new(0));
        let thread = {
            let copied = Arc::clone(&copied);
            std::thread::Builder::new()
                .name("redial-checkpoint".into())
                .spawn(move || run(conn, asked, &copied))
                .map_err(|e| StoreError::Io(e.to_string()))?
        };
        Ok(Self {
            cycle: Cell::new(Cycle::default()),
            copied,
            ask: Some(ask),
            thread: Some(thread),
        })
    }

    /// Called by the writer after each commit, on the writer's thread.
    pub fn after_commit(&self, writer: &Connection) {
        let frames = WAL_FRAMES.with(|f| f.replace(0));
        if frames == 0 {
            // The commit wrote nothing: the log is as it was.
            return;
        }
        let copied = self.copied.load(Ordering::Acquire);
        let (action, cycle) = self.cycle.get().after_commit(frames, copied);
        self.cycle.set(cycle);
        let mode = match action {
            Action::Nothing => return,
            Action::Ask => {
                self.copied.store(0, Ordering::Release);
                if let Some(ask) = &self.ask {
                    // Already asked and not yet done: nothing to add.
                    if let Err(TrySendError::Disconnected(())) = ask.try_send(()) {
                        tracing::warn!("the checkpoint thread has stopped");
                    }
                }
                return;
            }
            Action::CopyRest => "PRAGMA wal_checkpoint(PASSIVE)",
            Action::Restart => "PRAGMA wal_checkpoint(RESTART)",
        };
        if let Err(e) = writer.query_row(mode, [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint by the writer failed");
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        drop(self.ask.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: Connection, asked: Receiver<()>, copied_out: &AtomicI32) {
    while asked.recv().is_ok() {
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i32>(1)?, r.get::<_, i32>(2)?))
        });
        match done {
            Ok((log, copied)) => {
                copied_out.store(copied, Ordering::Release);
                tracing::debug!(log, copied, "checkpoint");
            }
            Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL database with one table, its writer and its checkpoints.
    fn log_with_checkpoints() -> (tempfile::TempDir, Connection, Checkpoints) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB);")
            .unwrap();
        let checkpoints = Checkpoints::start(&path, &writer).unwrap();
        (dir, writer, checkpoints)
    }

    /// Commits `n` rows of about a page each; returns the log's length after the commit.
    fn insert_pages(writer: &Connection, n: i32) -> i32 {
        writer
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO t SELECT zeroblob(3000) FROM n",
                [n],
            )
            .unwrap();
        WAL_FRAMES.with(Cell::get)
    }

    /// One cycle of the log: asked once past the threshold, the rest copied by the writer once
    /// the background thread is done, nothing more until the log starts again or grows by
    /// another threshold.
    #[test]
    fn each_cycle_of_the_log_asks_once_and_finishes_in_the_writer() {
        let mut cycle = Cycle::default();
        let mut step = |frames, copied| {
            let (action, next) = cycle.after_commit(frames, copied);
            cycle = next;
            action
        };
        assert_eq!(step(100, 0), Action::Nothing);
        assert_eq!(step(CHECKPOINT_AT, 0), Action::Ask);
        assert_eq!(
            step(CHECKPOINT_AT + 30, 0),
            Action::Nothing,
            "not copied yet"
        );
        assert_eq!(step(CHECKPOINT_AT + 60, CHECKPOINT_AT), Action::CopyRest);
        assert_eq!(step(CHECKPOINT_AT + 90, CHECKPOINT_AT), Action::Nothing);
        assert_eq!(step(20, CHECKPOINT_AT), Action::Nothing, "a new cycle");
        assert_eq!(step(CHECKPOINT_AT, 0), Action::Ask);
        assert_eq!(step(CHECKPOINT_AT + 10, CHECKPOINT_AT), Action::CopyRest);
        // A reader kept the log from starting again: the next threshold asks again.
        assert_eq!(step(2 * CHECKPOINT_AT, CHECKPOINT_AT), Action::Ask);
        assert_eq!(step(WAL_LIMIT, 0), Action::Restart);
        assert_eq!(step(10, 0), Action::Nothing);
    }

    /// The writer's copy of the rest lets its next transaction start the log again, where
    /// nothing else would have.
    #[test]
    fn copying_the_rest_in_the_writer_starts_the_log_again() {
        let (dir, writer, checkpoints) = log_with_checkpoints();
        let path = dir.path().join("c.db");
        let insert = |n| insert_pages(&writer, n);
        assert!(insert(CHECKPOINT_AT + 10) >= CHECKPOINT_AT);
        // A reader keeps the log from starting again while the background thread copies it,
        // as the writer's next group does under load.
        let reader = Connection::open(&path).unwrap();
        reader
            .execute_batch("BEGIN; SELECT count(*) FROM t;")
            .unwrap();
        checkpoints.after_commit(&writer);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while checkpoints.copied.load(Ordering::Acquire) < CHECKPOINT_AT {
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpoint never ran"
            );
            std::thread::yield_now();
        }
        let long = insert(5);
        assert!(long > CHECKPOINT_AT, "{long} frames: more committed since");
        reader.execute_batch("COMMIT").unwrap();
        checkpoints.after_commit(&writer);
        let short = insert(1);
        assert!(short < 10, "{short} frames after the log started again");
    }

    /// Once a checkpoint has copied the whole log, the next commit starts it again from the
    /// top: the hook then reports a short log although the file keeps its size.
    #[test]
    fn the_hook_reports_the_log_not_the_file() {
        let (dir, writer, checkpoints) = log_with_checkpoints();
        let long = insert_pages(&writer, CHECKPOINT_AT + 10);
        assert!(long >= CHECKPOINT_AT, "{long} frames");
        writer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .unwrap();
        checkpoints.after_commit(&writer);
        writer.execute("INSERT INTO t VALUES (x'00')", []).unwrap();
        let short = WAL_FRAMES.with(Cell::get);
        assert!(short < 10, "{short} frames after the log started again");
        let file = std::fs::metadata(dir.path().join("c.db-wal"))
            .unwrap()
            .len();
        assert!(
            file >= CHECKPOINT_AT as u64 * 4096,
            "the file kept its size: {file}"
        );
    }
}
