//! The due-window worker: its step, [`tick`], a function of `now`, and the loop around it,
//! [`Scheduler::run`], which only sleeps until the next instant that matters. There is no
//! polling beat.

pub mod housekeeping;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::policy::Policy;
use crate::signals::Signals;
use crate::store::lifecycle::{self, Applied};
use crate::store::{events, Store, StoreError};
use crate::telemetry;

/// The most callbacks or leases handled in one tick. Small, so that dialers' leases (and
/// requests) interleave with a burst's bookkeeping instead of waiting behind all of it; the
/// next tick follows at once (BENCHMARKS.md: the tick's batch).
pub const TICK_BATCH: i64 = 128;

/// The most parked callbacks moved onto the agenda in one tick. Moving one is a single row
/// update, cheaper than handling one, so the batch is larger.
pub const UNPARK_BATCH: i64 = 1024;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Parked callbacks moved onto the agenda.
    pub unparked: usize,
    /// Redial events written ahead of their instant.
    pub staged: usize,
    pub opened: usize,
    pub expired: usize,
    /// Due callbacks paused at the close of calling hours.
    pub paused: usize,
    pub fallbacks: usize,
    pub leases_returned: usize,
    pub dead_lettered: usize,
    /// When the next tick has work; `None` when nothing is scheduled at all.
    pub next_wake: Option<DateTime<Utc>>,
}

impl Outcome {
    /// Whether dialers waiting for events should look again.
    pub fn made_events_ready(&self) -> bool {
        self.opened + self.expired + self.fallbacks + self.leases_returned > 0
    }
}

/// One step of the scheduler at `now`, inside the writer's transaction: it moves parked
/// callbacks whose hour is near onto the agenda, stages the redial events of windows about to
/// open, opens the windows whose time has come, expires the ones that ended, pauses the ones
/// whose calling hours closed, applies owner-absent fallbacks, returns leases that ran out,
/// and says when it next has work.
#[tracing::instrument(level = "debug", skip_all)]
pub fn tick(conn: &Connection, now: DateTime<Utc>, policy: &Policy) -> Result<Outcome, StoreError> {
    let mut outcome = Outcome {
        unparked: lifecycle::unpark(conn, now, UNPARK_BATCH)?,
        ..Outcome::default()
    };
    let agenda = lifecycle::agenda(conn, now, TICK_BATCH)?;
    let full = agenda.len() as i64 == TICK_BATCH || outcome.unparked as i64 == UNPARK_BATCH;
    let mut opening = Vec::new();
    for callback in &agenda {
        match lifecycle::advance(conn, callback, now, policy)? {
            Applied::Staged => outcome.staged += 1,
            Applied::Open => opening.push(callback.id),
            Applied::Expired => outcome.expired += 1,
            Applied::Paused => outcome.paused += 1,
            Applied::FellBack => outcome.fallbacks += 1,
            Applied::OwnerBack => {}
        }
    }
    if !opening.is_empty() {
        outcome.opened = lifecycle::open(conn, &opening, now, policy)?;
    }
    let returned = events::return_expired_leases(conn, now, policy.max_deliveries, TICK_BATCH)?;
    let more_leases = returned.len() as i64 == TICK_BATCH;
    outcome.dead_lettered = returned.iter().filter(|dead| **dead).count();
    outcome.leases_returned = returned.len() - outcome.dead_lettered;
    outcome.next_wake = if full || more_leases {
        Some(now)
    } else {
        let next = [lifecycle::next_at(conn)?, events::next_lease_expiry(conn)?]
            .into_iter()
            .flatten()
            .min();
        next.and_then(DateTime::from_timestamp_millis)
    };
    Ok(outcome)
}

/// The scheduler of one service ([`crate::service::Service::scheduler`]).
pub struct Scheduler {
    pub(crate) store: Store,
    pub(crate) clock: Clock,
    pub(crate) policy: Arc<Policy>,
    pub(crate) signals: Arc<Signals>,
}

impl Scheduler {
    /// One [`tick`] at `now`, committed. Waits for room in the writer's queue rather than
    /// being refused: the scheduler's work must not be dropped.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
        let policy = Arc::clone(&self.policy);
        let outcome = self
            .store
            .write_waiting(move |conn| tick(conn, now, &policy))
            .await?;
        if outcome.made_events_ready() {
            self.signals.events_ready();
        }
        telemetry::tick(
            outcome.dead_lettered,
            outcome.next_wake.map(|at| at.timestamp_millis()),
        );
        Ok(outcome)
    }

    /// Runs until `stop` is cancelled, sleeping between ticks until the instant the last one
    /// named, or until a commit brings an earlier one, or until the clock is moved (tests).
    pub async fn run(self, stop: CancellationToken) {
        let mut clock_moved = self.clock.subscribe();
        loop {
            // We woke at an instant of interest: staged redials may have become leasable right
            // now, with nothing to write. Waiting dialers look at once, before this tick's
            // bookkeeping, which only follows them into the writer.
            self.signals.events_ready();
            let now = self.clock.now();
            // From here on, any earlier instant a commit brings wakes us.
            self.signals.forget_plan();
            self.signals.ticking(Some(now.timestamp_millis()));
            let ticked = self.tick(now).await;
            self.signals.ticking(None);
            let outcome = match ticked {
                Ok(outcome) => outcome,
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler tick failed; retrying in a second");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        _ = stop.cancelled() => return,
                    }
                }
            };
            if outcome != Outcome::default() {
                tracing::debug!(?outcome, "scheduler tick");
            }
            let wake_ms = outcome
                .next_wake
                .map_or(i64::MAX, |at| at.timestamp_millis());
            let planned = self.signals.plan(wake_ms);
            if planned <= now.timestamp_millis() {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = self.clock.until(planned) => {}
                _ = self.signals.woken() => {}
                _ = clock_moved.changed() => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}
