//! Retention: finished callbacks older than the retention period are deleted in small batches,
//! each its own short transaction, so the writer is never held long. Their events (acked,
//! withdrawn, dead) go with them (ON DELETE CASCADE); the events of a callback still live stay
//! until it finishes, which a window's end bounds. Outcomes stay for reporting.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

/// Deletes up to `batch` finished callbacks last changed before `cutoff`, with their events.
/// Returns how many callbacks went; zero means there is nothing left to purge.
pub fn purge_batch(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<usize, rusqlite::Error> {
    // Outcomes keep their rows for reporting, with callback_id set to NULL.
    conn.prepare_cached(
        "DELETE FROM callbacks WHERE id IN (
             SELECT id FROM callbacks
             WHERE state IN ('completed', 'expired', 'cancelled', 'superseded')
               AND updated_at < ?1
             LIMIT ?2 + 0)",
    )?
    .execute(params![cutoff.timestamp_millis(), batch])
}
