//! Retention on a cron schedule: at each fire time of `--purge-cron`, finished callbacks and
//! their events older than `--retention` are deleted in small batches (see
//! [`crate::store::purge`]), each batch its own writer job so requests interleave with it.
//! The purge stops between two batches when the service stops; the next run finishes it.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use cron::Schedule;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::{bus, purge, Store, StoreError};

/// Rows deleted per writer job: small enough that a request never waits long behind one.
pub const PURGE_BATCH: i64 = 500;

/// Parses a cron expression (seconds first, as the `cron` crate reads it: `0 0 3 * * *`).
pub fn parse_schedule(expr: &str) -> Result<Schedule, String> {
    Schedule::from_str(expr).map_err(|e| {
        format!("{expr:?} is not a cron schedule ({e}); expected e.g. \"0 0 3 * * *\" (sec min hour day month weekday)")
    })
}

/// The purge of one service ([`crate::service::Service::housekeeping`]).
pub struct Housekeeping {
    store: Store,
    clock: Clock,
    schedule: Schedule,
    retention: Duration,
    stop: CancellationToken,
}

impl Housekeeping {
    pub fn new(
        store: Store,
        clock: Clock,
        schedule: Schedule,
        retention: Duration,
        stop: CancellationToken,
    ) -> Self {
        Self {
            store,
            clock,
            schedule,
            retention,
            stop,
        }
    }

    /// Deletes what finished before `cutoff`, and the bus's pushes visible before it, a batch
    /// at a time, until nothing is left or the service stops. Returns the callbacks deleted.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut total = 0;
        while !self.stop.is_cancelled() {
            let (deleted, pushes) = self
                .store
                .write_waiting(move |conn| {
                    let callbacks = purge::purge_batch(conn, cutoff, PURGE_BATCH)?;
                    let pushes = bus::purge_batch(conn, cutoff, PURGE_BATCH)?;
                    Ok::<_, StoreError>((callbacks, pushes))
                })
                .await?;
            total += deleted;
            if deleted == 0 && pushes == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// Purges at each fire time of the schedule until the service stops.
    pub async fn run(self) {
        let mut clock_moved = self.clock.subscribe();
        let mut after = self.clock.now();
        loop {
            let Some(fire) = self.schedule.after(&after).next() else {
                return;
            };
            while self.clock.now() < fire {
                tokio::select! {
                    _ = self.clock.until(fire.timestamp_millis()) => {}
                    _ = clock_moved.changed() => {}
                    _ = self.stop.cancelled() => return,
                }
            }
            match self.purge_before(self.clock.now() - self.retention).await {
                Ok(deleted) => tracing::info!(deleted, "retention purge"),
                Err(StoreError::Closed) => return,
                Err(e) => tracing::error!(error = %e, "retention purge failed"),
            }
            if self.stop.is_cancelled() {
                return;
            }
            after = fire;
        }
    }
}
