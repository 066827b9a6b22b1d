//! `redial backup`: an online, consistent copy of the database with SQLite's backup API.
//!
//! The copy is taken in one step, inside one read transaction: it is the database as of one
//! commit, and the service keeps writing meanwhile (WAL readers do not block the writer). It is
//! written to a temporary file beside `out`, checked with `PRAGMA integrity_check`, and renamed
//! into place, so `out` is either a whole, sound copy or absent.
//!
//! Restore: stop the service, replace the database file with the copy, delete the old file's
//! `-wal` and `-shm` companions if present, start the service.

use std::path::Path;

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub pages: i64,
    pub bytes: i64,
    pub schema_version: u32,
}

/// Copies the database at `db` to `out`, which must not exist.
pub fn backup(db: &Path, out: &Path) -> Result<Copied, StoreError> {
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
    source.busy_timeout(std::time::Duration::from_secs(5))?;
    let partial = out.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let copied = copy(&source, &partial);
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let copied = copied?;
    std::fs::rename(&partial, out)
        .map_err(|e| StoreError::Io(format!("cannot move the copy to {}: {e}", out.display())))?;
    Ok(copied)
}

fn copy(source: &Connection, to: &Path) -> Result<Copied, StoreError> {
    let mut target = Connection::open(to)
        .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", to.display())))?;
    {
        let backup = Backup::new(source, &mut target)?;
        // All pages in one step: one read transaction, so one consistent state of the file.
        backup.step(-1)?;
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
