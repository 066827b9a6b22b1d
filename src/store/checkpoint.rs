//! Checkpoints off the writer's path. SQLite's automatic checkpoint runs inside the commit that
//! crosses the threshold, so one request in a thousand pays for copying the whole WAL back into
//! the database and an fsync of the database file. Here the writer only notices, after a commit,
//! that the WAL holds more than [`CHECKPOINT_AT`] frames, and hands the work to this thread,
//! whose own connection copies what it can without blocking the writer (`PASSIVE`). Should the
//! WAL still grow past [`WAL_LIMIT`] frames (a checkpoint that cannot keep up), the writer
//! checkpoints itself, which bounds the file.
//!
//! The length comes from SQLite's WAL hook, called by each commit with the number of frames in
//! the log. The file's size does not tell: SQLite writes the log again from its start once a
//! checkpoint has copied all of it, and never shrinks the file, so a file that had once grown
//! past the threshold asked for a checkpoint after every commit, and the same hot pages were
//! copied and the database fsynced over and over.
//!
//! The log starts again only if the writer begins a transaction after a checkpoint has copied
//! all of it. Under steady load the writer's next group has usually begun before the
//! checkpoint ends, so the log keeps growing; asking again after every commit then copied a
//! few new frames and fsynced the database each time, on the core the requests need. A
//! checkpoint is therefore asked for once the log is [`CHECKPOINT_AT`] frames longer than at
//! the last request ([`asks`]); and, while the log is long, when the writer runs out of work
//! ([`Checkpoints::idle`]), at most every [`IDLE_EVERY`]: the rest is copied in the lull, and
//! the next commit starts the log again.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use super::StoreError;

/// Frames in the WAL past which a background checkpoint is asked for (about 16 MiB with 4 KiB
/// pages). The longer the log, the more often a hot page (the end of a table or of an index
/// filled in order) is copied once for many commits: 4,000 frames wrote a tenth less per LCM
/// request than 1,000.
pub const CHECKPOINT_AT: i32 = 4_000;
/// The least time between two checkpoints asked for because the writer was idle.
pub const IDLE_EVERY: Duration = Duration::from_millis(100);
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
    /// The log's length when a checkpoint was last asked for; 0 once it has started again.
    asked_at: Cell<i32>,
    /// The log's length after the last commit that wrote to it.
    frames: Cell<i32>,
    /// When a checkpoint was last asked for in a lull, and the log's length then.
    asked_idle: Cell<(Instant, i32)>,
    ask: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
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
        let thread = std::thread::Builder::new()
            .name("redial-checkpoint".into())
            .spawn(move || run(conn, asked))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(Self {
            asked_at: Cell::new(0),
            frames: Cell::new(0),
            asked_idle: Cell::new((Instant::now(), 0)),
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
        self.frames.set(frames);
        let (ask, asked_at) = asks(frames, self.asked_at.get());
        self.asked_at.set(asked_at);
        if frames >= WAL_LIMIT {
            if let Err(e) = writer.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "checkpoint by the writer failed");
            }
        } else if ask {
            if let Some(ask) = &self.ask {
                // Already asked and not yet done: nothing to add.
                if let Err(TrySendError::Disconnected(())) = ask.try_send(()) {
                    tracing::warn!("the checkpoint thread has stopped");
                }
            }
        }
    }
}

/// Whether a commit that left `frames` frames in the log asks for a checkpoint, given the
/// log's length at the last request (`asked_at`); and the length to remember.
fn asks(frames: i32, asked_at: i32) -> (bool, i32) {
    let asked_at = if frames < asked_at { 0 } else { asked_at };
    if frames >= CHECKPOINT_AT && frames >= asked_at + CHECKPOINT_AT {
        (true, frames)
    } else {
        (false, asked_at)
    }
}

impl Checkpoints {
    /// Called by the writer when it has nothing to do: a long log is copied in the lull, so
    /// that the next commit can start it again. A writer with little to do is idle between
    /// every request; [`IDLE_EVERY`] keeps it from asking each time for a checkpoint that
    /// copies a few frames and fsyncs the database.
    pub fn idle(&self) {
        let frames = self.frames.get();
        let (at, length) = self.asked_idle.get();
        if self.asked_at.get() > 0 && frames != length && at.elapsed() >= IDLE_EVERY {
            self.asked_idle.set((Instant::now(), frames));
            if let Some(ask) = &self.ask {
                let _ = ask.try_send(());
            }
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

fn run(conn: Connection, asked: Receiver<()>) {
    while asked.recv().is_ok() {
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match done {
            Ok((log, copied)) => tracing::debug!(log, copied, "checkpoint"),
            Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log that keeps growing is checkpointed once per [`CHECKPOINT_AT`] new frames, not
    /// after every commit; once it starts again, the count does too.
    #[test]
    fn a_growing_log_is_checkpointed_once_per_threshold() {
        let mut asked_at = 0;
        let mut asked = Vec::new();
        let lengths = (1..=300)
            .map(|i| i * 40)
            .chain([25, 2_000, CHECKPOINT_AT + 1]);
        for frames in lengths {
            let (ask, at) = asks(frames, asked_at);
            asked_at = at;
            if ask {
                asked.push(frames);
            }
        }
        assert_eq!(asked, [4_000, 8_000, 12_000, CHECKPOINT_AT + 1]);
    }

    /// Once a checkpoint has copied the whole log, the next commit starts it again from the
    /// top: the hook then reports a short log although the file keeps its size.
    #[test]
    fn the_hook_reports_the_log_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB);")
            .unwrap();
        let checkpoints = Checkpoints::start(&path, &writer).unwrap();
        writer
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO t SELECT zeroblob(3000) FROM n",
                [CHECKPOINT_AT + 10],
            )
            .unwrap();
        let long = WAL_FRAMES.with(Cell::get);
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
