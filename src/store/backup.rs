//! `redial backup`: an online, consistent copy of the database with SQLite's backup API.
//! Restoring is in the README (Backup and restore).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// How long a backup keeps trying while the database is busy or locked.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How long one step waits for a lock before it gives up, to be tried again.
const STEP_WAIT: Duration = Duration::from_millis(100);

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub pages: i64,
    pub bytes: i64,
    pub schema_version: u32,
}

/// Copies the database at `db` to `out`, which must not exist.
///
/// The copy is taken in one step, inside one read transaction: it is the database as of one
/// commit, and the service keeps writing meanwhile (WAL readers do not block the writer). A
/// step that finds the database busy or locked copied nothing and is tried again, for up to
/// [`PATIENCE`]; then the backup fails and says so. The copy is written to a temporary file
/// beside `out`, checked with `PRAGMA integrity_check`, and renamed into place, so `out` is
/// either a whole, sound copy or absent.
pub fn backup(db: &Path, out: &Path) -> Result<Copied, StoreError> {
    backup_within(db, out, PATIENCE)
}

/// [`backup`], trying for at most `patience` while the database is busy or locked.
pub fn backup_within(db: &Path, out: &Path, patience: Duration) -> Result<Copied, StoreError> {
    if out.exists() {
        return Err(StoreError::Io(format!(
            "{} already exists; choose a new file for the copy",
            out.display()
        )));
    }
    if !db.exists() {
        return Err(StoreError::Io(format!("no database at {}", db.display())));
    }
    let source = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", db.display())))?;
    source.busy_timeout(STEP_WAIT)?;
    let partial = out.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let copied = copy(&source, &partial, patience);
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let copied = copied?;
    std::fs::rename(&partial, out)
        .map_err(|e| StoreError::Io(format!("cannot move the copy to {}: {e}", out.display())))?;
    Ok(copied)
}

fn copy(source: &Connection, to: &Path, patience: Duration) -> Result<Copied, StoreError> {
    let mut target = Connection::open(to)
        .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", to.display())))?;
    {
        let backup = Backup::new(source, &mut target)?;
        let deadline = Instant::now() + patience;
        // All pages in one step: one read transaction, so one consistent state of the file.
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                    std::thread::sleep(STEP_WAIT);
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(StoreError::Io(format!(
                        "the database stayed busy or locked for {} s, so no copy could be \
                         taken; try again when it is less busy",
                        patience.as_secs_f64()
                    )))
                }
                // More to copy (a step of every page ends in one go, but the API allows it).
                _ => {}
            }
        }
    }
    let check: String = target.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Io(format!(
            "the copy failed its integrity check: {check}"
        )));
    }
    // A standalone file: no WAL to carry along.
    target.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    let pages: i64 = target.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page_size: i64 = target.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let schema_version: u32 = target.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(Copied {
        pages,
        bytes: pages * page_size,
        schema_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in rollback-journal mode with some rows; a connection that holds its exclusive
    /// lock keeps every reader out.
    fn database(dir: &tempfile::TempDir) -> std::path::PathBuf {
        let db = dir.path().join("source.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = DELETE; CREATE TABLE t (x INTEGER);
             INSERT INTO t VALUES (1), (2), (3);",
        )
        .unwrap();
        db
    }

    #[test]
    fn a_database_that_stays_locked_fails_the_backup_and_leaves_no_copy() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let holder = Connection::open(&db).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let out = dir.path().join("copy.db");
        let error = backup_within(&db, &out, Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(error.contains("busy or locked"), "{error}");
        assert!(!out.exists(), "no partial copy is put in place");
        assert!(!out.with_extension("partial").exists());

        holder.execute_batch("COMMIT").unwrap();
        let copied = backup_within(&db, &out, Duration::from_millis(300)).unwrap();
        assert!(copied.pages > 0);
        let rows: i64 = Connection::open(&out)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
    }
}
