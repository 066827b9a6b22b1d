//! Retention: finished callbacks older than the retention period are deleted in small batches,
//! each its own short transaction, so the writer is never held long. Their events (acked,
//! withdrawn, dead) go with them (ON DELETE CASCADE); the events of a callback still live stay
//! until it finishes, which a window's end bounds. Outcomes stay for reporting.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

/// The delete of one batch. "Finished" is written as the `callbacks_finished` index's own
/// WHERE, so the planner reads the oldest finished callbacks from that index.
pub const PURGE_BATCH_SQL: &str = "DELETE FROM callbacks WHERE id IN (
     SELECT id FROM callbacks
     WHERE state NOT IN ('scheduled', 'due') AND updated_at < ?1
     LIMIT ?2 + 0)";

/// Deletes up to `batch` finished callbacks last changed before `cutoff`, with their events.
/// Returns how many callbacks went; zero means there is nothing left to purge.
pub fn purge_batch(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<usize, rusqlite::Error> {
    // Outcomes keep their rows for reporting, with callback_id set to NULL.
    conn.prepare_cached(PURGE_BATCH_SQL)?
        .execute(params![cutoff.timestamp_millis(), batch])
}
