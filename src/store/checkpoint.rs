//! Checkpoints off the writer's path. SQLite's automatic checkpoint runs inside the commit that
//! crosses the threshold, so one request in a thousand pays for copying the whole WAL back into
//! the database and an fsync of the database file. Here the writer only notices, after a commit,
//! that the WAL has grown past [`CHECKPOINT_AT`], and hands the work to this thread, whose own
//! connection copies what it can without blocking the writer (`PASSIVE`). Should the WAL still
//! grow past [`WAL_LIMIT`] (a checkpoint that cannot keep up), the writer checkpoints itself,
//! which bounds the file.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::StoreError;

/// WAL size past which a background checkpoint is asked for (about 1,000 pages).
pub const CHECKPOINT_AT: u64 = 4 * 1024 * 1024;
/// WAL size past which the writer checkpoints in its own thread.
pub const WAL_LIMIT: u64 = 256 * 1024 * 1024;

/// The writer's side: watches the WAL's size and asks for checkpoints.
pub struct Checkpoints {
    wal: PathBuf,
    ask: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpoints {
    /// Starts the checkpoint thread for the database at `db`.
    pub fn start(db: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (ask, asked) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("redial-checkpoint".into())
            .spawn(move || run(conn, asked))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Self {
            wal: wal.into(),
            ask: Some(ask),
            thread: Some(thread),
        })
    }

    /// Called by the writer after each commit.
    pub fn after_commit(&self, writer: &Connection) {
        let size = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
        if size >= WAL_LIMIT {
            if let Err(e) = writer.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "checkpoint by the writer failed");
            }
        } else if size >= CHECKPOINT_AT {
            if let Some(ask) = &self.ask {
                // Already asked and not yet done: nothing to add.
                if let Err(TrySendError::Disconnected(())) = ask.try_send(()) {
                    tracing::warn!("the checkpoint thread has stopped");
                }
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
