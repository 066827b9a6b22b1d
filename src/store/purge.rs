//! Retention: finished callbacks and finished events older than the retention period are
//! deleted in small batches, each its own short transaction, so the writer is never held long.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

/// Deletes up to `batch` finished events and finished callbacks last changed before `cutoff`.
/// Returns how many rows went; zero means there is nothing left to purge.
pub fn purge_batch(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<usize, rusqlite::Error> {
    let cutoff = cutoff.timestamp_millis();
    let events = conn
        .prepare_cached(
            "DELETE FROM events WHERE id IN (
                 SELECT id FROM events WHERE state IN ('acked', 'withdrawn') AND updated_at < ?1
                 LIMIT ?2)",
        )?
        .execute(params![cutoff, batch])?;
    // A finished callback's remaining events (dead letters included) go with it; outcomes keep
    // their rows for reporting, with callback_id set to NULL.
    let callbacks = conn
        .prepare_cached(
            "DELETE FROM callbacks WHERE id IN (
                 SELECT id FROM callbacks
                 WHERE state IN ('completed', 'expired', 'cancelled', 'superseded')
                   AND updated_at < ?1
                 LIMIT ?2)",
        )?
        .execute(params![cutoff, batch])?;
    Ok(events + callbacks)
}
