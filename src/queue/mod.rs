//! The redial queue as dialers see it: lease (with long-poll), ack, nack. Delivery is
//! at-least-once: an event whose lease runs out unacknowledged is delivered again with the
//! same `id`, so a dialer drops duplicates by `id`. Lease and ack of a batch are one
//! transaction each.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::lcm::fields::{FieldError, Fields};
use crate::lcm::json::Object;
use crate::lcm::UserId;
use crate::scheduler::Signals;
use crate::store::events::{self, Event};
use crate::store::{Store, StoreError};

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
    pub user_id: Option<UserId>,
}

impl LeaseRequest {
    pub fn parse(map: &Object) -> Result<Self, FieldError> {
        let f = Fields::new(map);
        Ok(Self {
            consumer: f.text("consumer", 1, 64)?,
            max: f.count_in("max", 100, 1..=MAX_BATCH)?,
            lease_ms: f.count_in("lease_ms", 30_000, 1..=MAX_LEASE_MS)?,
            wait_ms: f.count_in("wait_ms", 0, 0..=MAX_WAIT_MS)?,
            user_id: f
                .optional_text("user_id", UserId::MAX_CHARS)?
                .map(|u| {
                    UserId::parse(u).map_err(|e| FieldError {
                        field: "user_id",
                        ..e
                    })
                })
                .transpose()?,
        })
    }
}

/// `POST /v1/queue/ack` and `/nack`.
#[derive(Debug, Clone)]
pub struct AckRequest {
    pub consumer: String,
    pub ids: Vec<i64>,
}

impl AckRequest {
    pub fn parse(map: &Object) -> Result<Self, FieldError> {
        let f = Fields::new(map);
        Ok(Self {
            consumer: f.text("consumer", 1, 64)?,
            ids: f.ids("ids", MAX_BATCH as usize)?,
        })
    }
}

/// The queue's shared parts.
#[derive(Clone)]
pub struct Queue {
    pub store: Store,
    pub clock: Clock,
    pub signals: Arc<Signals>,
    /// Cancelled at shutdown: long-polls return at once, empty.
    pub stop: CancellationToken,
    /// One permit per dialer allowed to wait at once (`--max-long-polls`).
    pub long_polls: Arc<Semaphore>,
}

impl Queue {
    /// Leases up to `max` events. With `wait_ms` > 0 and nothing ready, waits until an event
    /// may have become ready (the scheduler or a nack says so) or the wait is over.
    pub async fn lease(&self, req: LeaseRequest) -> Result<Vec<Event>, StoreError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(req.wait_ms as u64);
        let req = Arc::new(req);
        let mut waiting: Option<OwnedSemaphorePermit> = None;
        loop {
            // Registered before looking, so a wake-up between the look and the wait is not lost.
            let ready = self.signals.events_ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let clock = self.clock.clone();
            let lease = Arc::clone(&req);
            // Only the events table is written: making the callbacks `due` is the scheduler's
            // bookkeeping, which follows in its own transactions and keeps a burst's leases
            // short (an attempt reported before that is accepted, see `record_attempt`). The
            // lease goes ahead of other writes (see `store::writer`).
            let leased = self
                .store
                .write_first(move |conn| {
                    Ok::<_, StoreError>(events::lease(
                        conn,
                        &lease.consumer,
                        lease.max,
                        lease.lease_ms,
                        lease.user_id.as_ref().map(UserId::as_str),
                        clock.now(),
                    )?)
                })
                .await?;
            if !leased.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(leased);
            }
            if waiting.is_none() {
                waiting = Some(
                    Arc::clone(&self.long_polls)
                        .try_acquire_owned()
                        .map_err(|_| {
                            StoreError::Busy(
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

    /// Acknowledges events; returns the ids acked (others were not held by this consumer).
    pub async fn ack(&self, req: AckRequest) -> Result<Vec<i64>, StoreError> {
        let clock = self.clock.clone();
        self.store
            .write(move |conn| Ok(events::ack(conn, &req.consumer, &req.ids, clock.now())?))
            .await
    }

    /// Hands leased events back at once; returns the ids released.
    pub async fn nack(&self, req: AckRequest) -> Result<Vec<i64>, StoreError> {
        let clock = self.clock.clone();
        let released = self
            .store
            .write(move |conn| {
                Ok::<_, StoreError>(events::nack(conn, &req.consumer, &req.ids, clock.now())?)
            })
            .await?;
        if !released.is_empty() {
            self.signals.events_ready.notify_waiters();
        }
        Ok(released)
    }
}
