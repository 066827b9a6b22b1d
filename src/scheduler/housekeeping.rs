//! Retention on a cron schedule: at each fire time of `--purge-cron`, finished callbacks and
//! finished events older than `--retention` are deleted in small batches (see
//! [`crate::store::purge`]), each batch its own writer job so requests interleave with it.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use cron::Schedule;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::{purge, Store, StoreError};

/// Rows deleted per writer job: small enough that a request never waits long behind one.
pub const PURGE_BATCH: i64 = 500;

/// Parses a cron expression (seconds first, as the `cron` crate reads it: `0 0 3 * * *`).
pub fn parse_schedule(expr: &str) -> Result<Schedule, String> {
    Schedule::from_str(expr).map_err(|e| {
        format!("{expr:?} is not a cron schedule ({e}); expected e.g. \"0 0 3 * * *\" (sec min hour day month weekday)")
    })
}

/// Purges everything finished before `now - retention`. Returns the rows deleted.
pub async fn purge_once(
    store: &Store,
    now: DateTime<Utc>,
    retention: Duration,
) -> Result<usize, StoreError> {
    let cutoff = now - retention;
    let mut total = 0;
    loop {
        let deleted = store
            .write_waiting(move |conn| {
                Ok::<_, StoreError>(purge::purge_batch(conn, cutoff, PURGE_BATCH)?)
            })
            .await?;
        total += deleted;
        if deleted == 0 {
            return Ok(total);
        }
    }
}

/// Runs the purge at each fire time of `schedule` until `stop` is cancelled.
pub async fn run(
    store: Store,
    clock: Clock,
    schedule: Schedule,
    retention: Duration,
    stop: CancellationToken,
) {
    let mut clock_moved = clock.subscribe();
    let mut after = clock.now();
    loop {
        let Some(fire) = schedule.after(&after).next() else {
            return;
        };
        while clock.now() < fire {
            tokio::select! {
                _ = clock.until(fire.timestamp_millis()) => {}
                _ = clock_moved.changed() => {}
                _ = stop.cancelled() => return,
            }
        }
        match purge_once(&store, clock.now(), retention).await {
            Ok(deleted) => tracing::info!(deleted, "retention purge"),
            Err(StoreError::Closed) => return,
            Err(e) => tracing::error!(error = %e, "retention purge failed"),
        }
        after = fire;
    }
}
