//! The bus's hub: it reads the pushes the writer committed ([`crate::store::bus`]) as they
//! become visible and hands each, rendered once, to the sockets subscribed to it. A
//! subscriber's queue is bounded; one that is full is dropped (the socket says "lagged" and
//! closes), so a slow client never slows the hub, the writer or the others.
//!
//! A subscriber that asks for pushes after an id first reads the stored ones ([`Bus::page`])
//! until it has caught up with the hub, then joins it ([`Bus::join`]): none is missed or
//! repeated in between.

pub mod client;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::bus::{self as outbox, Pushed};
use crate::store::{Store, StoreError};

/// Pushes read from the store at a time.
pub const PAGE: i64 = 4096;

/// How long before an instant the pushes written ahead for it are read: after the
/// scheduler has written them ([`crate::lifecycle::decide::STAGE_AHEAD`] before).
const READ_AHEAD_MS: i64 = 30_000;

/// The pushes read ahead are those of this many ms from the next instant on (a burst of
/// more than [`outbox::PER_MS`] pushes spills into the following milliseconds).
const READ_AHEAD_SPAN_MS: i64 = 1_000;

/// The most pushes read ahead; the rest are read when they become visible.
const READ_AHEAD_MAX: i64 = 32_768;

/// Pushes to come, read ahead ([`Bus::deliver_visible`]), in id order.
struct Ahead {
    /// The first of them not yet delivered.
    from: i64,
    /// The last id the read covered.
    through: i64,
    frames: Vec<(Frame, Option<String>)>,
}

pub use crate::lcm::control::Audience;

impl Audience {
    fn user(&self) -> Option<&str> {
        match self {
            Audience::Agent(user) => Some(user.as_str()),
            Audience::All => None,
        }
    }
}

/// One push as a socket sends it: its id, and its envelope as text.
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: i64,
    pub text: Utf8Bytes,
}

impl Frame {
    /// The frame of a stored push, and the agent it is for.
    fn of(push: Pushed) -> (Self, Option<String>) {
        let frame = Self {
            id: push.id,
            text: push.envelope.into(),
        };
        (frame, push.user_id)
    }
}

/// The hub, shared by the sockets and its release loop.
pub struct Bus {
    store: Store,
    clock: Clock,
    /// Frames a subscriber's queue holds (`--bus-queue`).
    queue: usize,
    hub: Mutex<Hub>,
    /// Woken when the first subscriber joins: pushes of an instant to come are then worth
    /// reading ahead.
    joined: Notify,
}

#[derive(Default)]
struct Hub {
    /// Every push up to this id has been handed to the live subscribers.
    cursor: i64,
    next: u64,
    subscribers: HashMap<u64, Subscriber>,
    by_agent: HashMap<String, HashSet<u64>>,
    all: HashSet<u64>,
}

struct Subscriber {
    audience: Audience,
    /// Pushes up to this id were sent by the replay.
    after: i64,
    tx: mpsc::Sender<Frame>,
}

/// A live subscription. Its queue ends (`recv` gives `None`) when it fell behind by more than
/// it holds; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    bus: Arc<Bus>,
    pub rx: mpsc::Receiver<Frame>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.hub().remove(self.id);
    }
}

impl Hub {
    fn remove(&mut self, id: u64) {
        if let Some(sub) = self.subscribers.remove(&id) {
            match sub.audience {
                Audience::All => {
                    self.all.remove(&id);
                }
                Audience::Agent(user) => {
                    if let Some(ids) = self.by_agent.get_mut(user.as_str()) {
                        ids.remove(&id);
                        if ids.is_empty() {
                            self.by_agent.remove(user.as_str());
                        }
                    }
                }
            }
        }
    }

    /// Hands `frame` to the subscribers of `user` and to `all`; drops those whose queue is
    /// full or gone.
    fn deliver(&mut self, frame: &Frame, user: Option<&str>) {
        let mut dropped = Vec::new();
        let agents = user
            .and_then(|u| self.by_agent.get(u))
            .into_iter()
            .flatten();
        for id in agents.chain(self.all.iter()) {
            let sub = &self.subscribers[id];
            if frame.id <= sub.after {
                continue;
            }
            if sub.tx.try_send(frame.clone()).is_err() {
                dropped.push(*id);
            }
        }
        for id in dropped {
            self.remove(id);
        }
        self.cursor = frame.id;
    }
}

impl Bus {
    /// The hub over `store`, its cursor at the last push visible now: subscribers hear what
    /// comes from here on, and earlier pushes by replay.
    pub async fn start(store: Store, clock: Clock, queue: usize) -> Result<Arc<Self>, StoreError> {
        let now = clock.now().timestamp_millis();
        let cursor = store.release_pushes(now, None).await?.last;
        Ok(Arc::new(Self {
            store,
            clock,
            queue: queue.max(1),
            hub: Mutex::new(Hub {
                cursor,
                ..Hub::default()
            }),
            joined: Notify::new(),
        }))
    }

    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last push handed to live subscribers.
    pub fn cursor(&self) -> i64 {
        self.hub().cursor
    }

    /// Frames a subscriber's queue holds.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// Delivers pushes as they become visible until `stop`: after each commit that wrote one,
    /// and at the instant the next one written ahead (a callback coming due) becomes visible.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut clock_moved = self.clock.subscribe();
        let mut ahead = None;
        loop {
            let next = match self.deliver_visible(&mut ahead).await {
                Ok(next) => next,
                Err(StoreError::Closed) => return,
                Err(e) => {
                    ahead = None;
                    tracing::error!(error = %e, "bus delivery failed; retrying in a second");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        _ = stop.cancelled() => return,
                    }
                }
            };
            let wake = next.map_or(i64::MAX, outbox::visible_at);
            tokio::select! {
                _ = self.store.pushed() => {}
                _ = self.joined.notified() => {}
                _ = self.clock.until(wake), if next.is_some() => {}
                _ = clock_moved.changed() => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Releases and delivers every push visible now; returns the id of the next one written
    /// ahead, if any. The pushes of the second from that next instant on are read now, when
    /// it is near ([`READ_AHEAD_MS`]), and held in `ahead`: when a burst of windows opens,
    /// they go out as they become visible instead of being read then. They are dropped if any
    /// push among their ids is written or taken back meanwhile (the writer watches them:
    /// [`outbox::release`]).
    async fn deliver_visible(&self, ahead: &mut Option<Ahead>) -> Result<Option<i64>, StoreError> {
        let now = self.clock.now().timestamp_millis();
        let watch = ahead.as_ref().map(|a| (a.from, a.through));
        let released = self.store.release_pushes(now, watch).await?;
        if released.watched > 0 && ahead.take().is_some() {
            tracing::debug!(writes = released.watched, "pushes read ahead are stale");
        }
        let upto = released.upto;
        loop {
            // Stored pushes before the held ones first, then the held ones now visible.
            let ceiling = match ahead.as_ref() {
                Some(a) => upto.min(a.from - 1),
                None => upto,
            };
            let cursor = {
                let mut hub = self.hub();
                if hub.subscribers.is_empty() && ahead.is_none() {
                    // Nobody listens: nothing to read. A subscriber that comes later with
                    // `after` reads the store.
                    hub.cursor = hub.cursor.max(released.last);
                }
                hub.cursor
            };
            let page = if cursor < ceiling.min(released.last) {
                self.read(cursor, ceiling, PAGE).await?
            } else {
                Vec::new()
            };
            let full = page.len() as i64 == PAGE;
            self.deliver(page.iter());
            if full {
                continue;
            }
            let Some(held) = ahead.as_mut().filter(|a| a.from <= upto) else {
                break;
            };
            let visible = held.frames.partition_point(|(f, _)| f.id <= upto);
            self.deliver(held.frames.drain(..visible).as_slice().iter());
            match held.frames.first() {
                Some((next, _)) => held.from = next.id,
                // Whatever else comes in their ids is read as any push is.
                None => *ahead = None,
            }
            if ahead.is_some() {
                break;
            }
        }
        let next = match ahead.as_ref() {
            Some(a) => Some(a.from),
            None => {
                self.store
                    .read(move |conn| Ok(outbox::next_after(conn, upto)?))
                    .await?
            }
        };
        let Some(next) = next else {
            return Ok(None);
        };
        let at = outbox::visible_at(next);
        if ahead.is_none() && at - now <= READ_AHEAD_MS && !self.hub().subscribers.is_empty() {
            // Watch the ids first, then read: a write that the read may have missed is then
            // counted, and the pushes read are dropped.
            let through = outbox::last_id_at(at + READ_AHEAD_SPAN_MS);
            self.store
                .release_pushes(now, Some((next, through)))
                .await?;
            let frames = self.read(next - 1, through, READ_AHEAD_MAX).await?;
            tracing::debug!(pushes = frames.len(), at, "bus read ahead");
            if let Some((first, _)) = frames.first() {
                *ahead = Some(Ahead {
                    from: first.id,
                    through,
                    frames,
                });
            }
        }
        Ok(Some(next))
    }

    /// Pushes after `after` up to `upto`, at most `limit`, with the agent each is for.
    async fn read(
        &self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<(Frame, Option<String>)>, StoreError> {
        self.store
            .read(move |conn| {
                let page = outbox::page(conn, after, upto, None, limit)?;
                Ok(page.into_iter().map(Frame::of).collect())
            })
            .await
    }

    /// Hands `frames` to their subscribers, in order.
    fn deliver<'a>(&self, frames: impl Iterator<Item = &'a (Frame, Option<String>)>) {
        let mut hub = self.hub();
        let mut count = 0;
        for (frame, user) in frames {
            if frame.id > hub.cursor {
                hub.deliver(frame, user.as_deref());
                count += 1;
            }
        }
        drop(hub);
        if count > 0 {
            tracing::debug!(pushes = count, "bus delivered");
        }
    }

    /// The stored pushes for `audience` after `after` up to `upto`, a page at a time, for a
    /// subscriber catching up ([`Bus::join`] says when it has).
    pub async fn page(
        &self,
        audience: &Audience,
        after: i64,
        upto: i64,
    ) -> Result<Vec<Frame>, StoreError> {
        let user = audience.user().map(str::to_owned);
        let page = self
            .store
            .read(move |conn| Ok(outbox::page(conn, after, upto, user.as_deref(), PAGE)?))
            .await?;
        Ok(page.into_iter().map(|push| Frame::of(push).0).collect())
    }

    /// Pushes the retention purge deleted: every id up to this one (0: none).
    pub async fn purged_through(&self) -> Result<i64, StoreError> {
        self.store
            .read(|conn| Ok(outbox::purged_through(conn)?))
            .await
    }

    /// Subscribes `audience` to live pushes after `after`, if the hub has delivered nothing
    /// later; otherwise returns the hub's cursor, up to which the subscriber must catch up
    /// from the store first ([`Bus::page`]). Without `after`: from the hub's cursor on.
    pub fn join(
        self: &Arc<Self>,
        audience: Audience,
        after: Option<i64>,
    ) -> Result<(Subscription, i64), i64> {
        self.join_with(audience, after, self.queue)
    }

    /// As [`Bus::join`], with a queue of `queue` frames: the relay's holds a whole burst of
    /// windows opening at once, which a desktop's need not.
    pub fn join_with(
        self: &Arc<Self>,
        audience: Audience,
        after: Option<i64>,
        queue: usize,
    ) -> Result<(Subscription, i64), i64> {
        let mut hub = self.hub();
        let after = after.unwrap_or(hub.cursor);
        if after < hub.cursor {
            return Err(hub.cursor);
        }
        if hub.subscribers.is_empty() {
            self.joined.notify_one();
        }
        let (tx, rx) = mpsc::channel(queue.max(1));
        let id = hub.next;
        hub.next += 1;
        match &audience {
            Audience::All => {
                hub.all.insert(id);
            }
            Audience::Agent(user) => {
                hub.by_agent
                    .entry(user.as_str().to_owned())
                    .or_default()
                    .insert(id);
            }
        }
        hub.subscribers.insert(
            id,
            Subscriber {
                audience,
                after,
                tx,
            },
        );
        let subscription = Subscription {
            id,
            bus: Arc::clone(self),
            rx,
        };
        Ok((subscription, after))
    }
}
