//! The service: one method for each thing a user of redial can do, called by every edge (the
//! HTTP handlers, the test rig, the benchmark). A method takes typed, parsed input, runs its
//! rules and its transaction, tells the workers what changed, and returns a result or an
//! [`Error`].
//!
//! - [`outcome`]: set what a message about a call says: an outcome, a callback, or both.
//! - [`telephony`]: agents logging in and out, calls registered and ended.
//! - [`callbacks`]: read a callback, record a dial attempt.
//! - [`supervise`]: find, reschedule, reassign and cancel callbacks; the do-not-call list by
//!   hand; every change audited.
//! - [`queue`]: lease (with long-poll), ack and nack redial events.
//! - [`reads`]: the LCM family's reads: an agent's callbacks, a contact's modes, outcomes.
//! - `health`: readiness (`GET /readyz`).

pub mod callbacks;
mod error;
mod health;
pub mod outcome;
pub mod overview;
pub mod queue;
pub mod reads;
mod scrape;
pub mod supervise;
pub mod telephony;

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::catalogue::{Catalogue, Entry};
use crate::clock::Clock;
use crate::policy::Policy;
use crate::scheduler::housekeeping::Housekeeping;
use crate::scheduler::Scheduler;
use crate::signals::Signals;
use crate::store::{self, Store, StoreError};

pub use error::Error;

/// What every operation needs, cheap to clone.
#[derive(Clone)]
pub struct Service {
    store: Store,
    clock: Clock,
    policy: Arc<Policy>,
    signals: Arc<Signals>,
    /// Cancelled at shutdown: long-polls return at once, empty, and the purge stops.
    stop: CancellationToken,
    /// One permit per dialer allowed to wait at once (`--max-long-polls`).
    long_polls: Arc<Semaphore>,
    /// The outcome catalogue, as [`Service::load_catalogue`] found it.
    catalogue: Arc<Catalogue>,
}

impl Service {
    pub fn new(store: Store, clock: Clock, policy: Policy, stop: CancellationToken) -> Self {
        Self {
            store,
            clock,
            long_polls: Arc::new(Semaphore::new(policy.max_long_polls.max(1))),
            policy: Arc::new(policy),
            signals: Arc::new(Signals::default()),
            stop,
            catalogue: Arc::new(Catalogue::default()),
        }
    }

    /// Loads the outcome catalogue: `entries` in place of the stored one, or, without them,
    /// the one stored by an earlier start. Returns how many outcomes it holds.
    pub async fn load_catalogue(&mut self, entries: Option<Vec<Entry>>) -> Result<usize, Error> {
        let entries = match entries {
            Some(entries) => {
                let stored = entries.clone();
                self.store
                    .write_waiting(move |conn| {
                        Ok::<_, StoreError>(store::catalogue::replace(conn, &stored)?)
                    })
                    .await?;
                entries
            }
            None => {
                self.store
                    .read(|conn| Ok(store::catalogue::all(conn)?))
                    .await?
            }
        };
        self.catalogue = Arc::new(Catalogue::new(entries));
        Ok(self.catalogue.len())
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The database, for reading what was committed (tests, reports).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// The due-window worker over the same store, clock, policy and signals.
    pub fn scheduler(&self) -> Scheduler {
        Scheduler {
            store: self.store.clone(),
            clock: self.clock.clone(),
            policy: Arc::clone(&self.policy),
            signals: Arc::clone(&self.signals),
        }
    }

    /// The retention purge over the same store and clock, stopping with the service.
    pub fn housekeeping(
        &self,
        schedule: cron::Schedule,
        retention: chrono::Duration,
    ) -> Housekeeping {
        Housekeeping::new(
            self.store.clone(),
            self.clock.clone(),
            schedule,
            retention,
            self.stop.clone(),
        )
    }
}
