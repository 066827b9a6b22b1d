//! The redial queue as dialers see it: lease (with long-poll), ack, nack. Delivery is
//! at-least-once: an event whose lease runs out unacknowledged is delivered again with the
//! same `id`, so a dialer drops duplicates by `id`. Lease and ack of a batch are one
//! transaction each.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use super::{Error, Service};
use crate::lcm::UserId;
use crate::lifecycle::EventKind;
use crate::store::events::{self, Event};
use crate::telemetry;

/// The most events one lease or ack may carry.
pub const MAX_BATCH: i64 = 1000;
/// The longest a lease may be held before it runs out (one hour).
pub const MAX_LEASE_MS: i64 = 3_600_000;
/// The longest a long-poll may wait (one minute).
pub const MAX_WAIT_MS: i64 = 60_000;

/// `POST /v1/queue/lease`.
#[derive(Debug, Clone)]
pub struct LeaseRequest {
    pub consumer: String,
    pub max: i64,
    pub lease_ms: i64,
    pub wait_ms: i64,
    /// Only this agent's personal callbacks.
    pub user_id: Option<UserId>,
}

/// `POST /v1/queue/ack` and `/nack`.
#[derive(Debug, Clone)]
pub struct AckRequest {
    pub consumer: String,
    pub ids: Vec<i64>,
}

/// An ack or a nack: the ids done, and those the consumer sent but does not hold (never
/// leased by it, acked already, or leased by another consumer since its lease ran out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub done: Vec<i64>,
    pub ignored: Vec<i64>,
}

impl Settled {
    fn of(sent: &[i64], done: Vec<i64>) -> Self {
        let mut sorted = done.clone();
        sorted.sort_unstable();
        let ignored = sent
            .iter()
            .copied()
            .filter(|id| sorted.binary_search(id).is_err())
            .collect();
        Self { done, ignored }
    }
}

impl Service {
    /// Leases up to `max` events. With `wait_ms` > 0 and nothing ready, waits until an event
    /// may have become ready (the scheduler or a nack says so) or the wait is over.
    pub async fn lease(&self, req: LeaseRequest) -> Result<Vec<Event>, Error> {
        if let Some(elsewhere) = &self.policy.dispatch {
            return Err(Error::DispatchedByNats(elsewhere.clone()));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(req.wait_ms as u64);
        let req = Arc::new(req);
        let mut waiting: Option<OwnedSemaphorePermit> = None;
        loop {
            // Registered before looking, so a wake-up between the look and the wait is not lost.
            let ready = self.signals.next_events();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let clock = self.clock.clone();
            let lease = Arc::clone(&req);
            // Only the events table is written: making the callbacks `due` is the scheduler's
            // bookkeeping, which follows in its own transactions and keeps a burst's leases
            // short (an attempt reported before that is accepted, see `decide::attempt`). The
            // lease goes ahead of other writes (see `store::writer`).
            let leased = self
                .store
                .write_first(move |conn| {
                    Ok::<_, Error>(events::lease(
                        conn,
                        &lease.consumer,
                        lease.max,
                        lease.lease_ms,
                        lease.user_id.as_ref(),
                        clock.now(),
                    )?)
                })
                .await?;
            if !leased.is_empty() || tokio::time::Instant::now() >= deadline {
                let now_ms = self.clock.now().timestamp_millis();
                for event in leased
                    .iter()
                    .filter(|e| e.first_lease && e.kind == EventKind::Redial)
                {
                    let opened = event.window_start.timestamp_millis();
                    let agent = event.personal.then_some(&event.user_id);
                    telemetry::first_lease(now_ms - opened, agent);
                }
                return Ok(leased);
            }
            if waiting.is_none() {
                waiting = Some(
                    Arc::clone(&self.long_polls)
                        .try_acquire_owned()
                        .map_err(|_| {
                            Error::Busy(
                                "as many dialers as --max-long-polls allows are already waiting"
                                    .into(),
                            )
                        })?,
                );
            }
            tokio::select! {
                _ = &mut ready => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
                _ = self.stop.cancelled() => return Ok(Vec::new()),
            }
        }
    }

    /// Acknowledges events: they are done for good. Acking again is harmless.
    pub async fn ack(&self, req: AckRequest) -> Result<Settled, Error> {
        let (clock, sent) = (self.clock.clone(), req.ids.clone());
        let acked = self
            .store
            .write(move |conn| {
                Ok::<_, Error>(events::ack(conn, &req.consumer, &req.ids, clock.now())?)
            })
            .await?;
        Ok(Settled::of(&sent, acked))
    }

    /// Hands leased events back at once.
    pub async fn nack(&self, req: AckRequest) -> Result<Settled, Error> {
        let (clock, sent) = (self.clock.clone(), req.ids.clone());
        let released = self
            .store
            .write(move |conn| {
                Ok::<_, Error>(events::nack(conn, &req.consumer, &req.ids, clock.now())?)
            })
            .await?;
        if !released.is_empty() {
            self.signals.events_ready();
        }
        Ok(Settled::of(&sent, released))
    }
}
