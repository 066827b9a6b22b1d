//! The due-window worker. Its step, [`tick`], is a function of `now`: it moves parked
//! callbacks whose hour is near onto the agenda, stages the redial events of windows about to
//! open, opens the windows whose time has come, expires the ones that ended, pauses the ones
//! whose calling hours closed, applies owner-absent fallbacks, returns leases that ran out,
//! and says when it next has work. The loop around it, [`run`], only sleeps until
//! that instant, or until a commit brings an earlier one ([`Signals::schedule`]), or until the
//! clock is moved (tests). There is no polling beat.

pub mod housekeeping;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::lifecycle::{self, Policy, Step};
use crate::store::{events, Store, StoreError};

/// The most callbacks or leases handled in one tick. Small, so that dialers' leases (and
/// requests) interleave with a burst's bookkeeping instead of waiting behind all of it; the
/// next tick follows at once. Leases go ahead of ticks in the writer, but one that arrives
/// while a tick runs waits for it: a burst of 10,000 windows reached its dialers sooner with
/// ticks of 64 or 128 than of 256, and 64 made a backlog cost twice as many commits as 128.
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

/// One step of the scheduler at `now`, inside the writer's transaction.
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
            Step::Staged => outcome.staged += 1,
            Step::Open => opening.push(callback.id),
            Step::Expired => outcome.expired += 1,
            Step::Paused => outcome.paused += 1,
            Step::FellBack => outcome.fallbacks += 1,
            Step::OwnerBack => {}
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

/// How the parts of the service tell each other that something changed.
#[derive(Debug)]
pub struct Signals {
    /// The instant the scheduler is sleeping until (ms), or `i64::MAX`.
    planned: AtomicI64,
    wake: Notify,
    /// Woken when events may have become leasable, for long-polling dialers.
    pub events_ready: Notify,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            planned: AtomicI64::new(i64::MAX),
            wake: Notify::new(),
            events_ready: Notify::new(),
        }
    }
}

impl Signals {
    /// Tells the scheduler a commit made `at_ms` an instant of interest. It is woken only if
    /// that is earlier than what it sleeps until, so a stream of later windows costs nothing.
    pub fn schedule(&self, at_ms: Option<i64>) {
        if let Some(at_ms) = at_ms {
            if self.planned.fetch_min(at_ms, Ordering::SeqCst) > at_ms {
                self.wake.notify_one();
            }
        }
    }
}

/// Runs the scheduler until `stop` is cancelled.
pub async fn run(
    store: Store,
    clock: Clock,
    policy: Arc<Policy>,
    signals: Arc<Signals>,
    stop: CancellationToken,
) {
    let mut clock_moved = clock.subscribe();
    loop {
        // We woke at an instant of interest: staged redials may have become leasable right
        // now, with nothing to write. Waiting dialers look at once, before this tick's
        // bookkeeping, which only follows them into the writer.
        signals.events_ready.notify_waiters();
        let now = clock.now();
        // From here on, any earlier instant a commit brings wakes us.
        signals.planned.store(i64::MAX, Ordering::SeqCst);
        let policy = Arc::clone(&policy);
        let outcome = match store
            .write_waiting(move |conn| tick(conn, now, &policy))
            .await
        {
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
        if outcome.made_events_ready() {
            signals.events_ready.notify_waiters();
        }
        if outcome != Outcome::default() {
            tracing::debug!(?outcome, "scheduler tick");
        }
        let wake_ms = outcome
            .next_wake
            .map_or(i64::MAX, |at| at.timestamp_millis());
        let planned = signals
            .planned
            .fetch_min(wake_ms, Ordering::SeqCst)
            .min(wake_ms);
        if planned <= now.timestamp_millis() {
            tokio::task::yield_now().await;
            continue;
        }
        let sleep = clock.until(planned);
        tokio::select! {
            _ = sleep => {}
            _ = signals.wake.notified() => {}
            _ = clock_moved.changed() => {}
            _ = stop.cancelled() => return,
        }
    }
}
