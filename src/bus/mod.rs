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
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::bus::{self as outbox, Pushed};
use crate::store::{Store, StoreError};

/// Pushes read from the store at a time.
pub const PAGE: i64 = 1024;

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
    /// The envelope of a stored push: `{"channel":"LCM","topic":"Bus","subtopic":<kind>,
    /// "id":<id>,"message":<data>}`.
    fn render(p: &Pushed) -> Self {
        let kind = serde_json::to_string(&p.kind).expect("a string serializes");
        let text = format!(
            r#"{{"channel":"LCM","topic":"Bus","subtopic":{kind},"id":{},"message":{}}}"#,
            p.id, p.data
        );
        Self {
            id: p.id,
            text: text.into(),
        }
    }
}

/// The hub, shared by the sockets and its release loop.
pub struct Bus {
    store: Store,
    clock: Clock,
    /// Frames a subscriber's queue holds (`--bus-queue`).
    queue: usize,
    hub: Mutex<Hub>,
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
        let cursor = store.release_pushes(now).await?.last;
        Ok(Arc::new(Self {
            store,
            clock,
            queue: queue.max(1),
            hub: Mutex::new(Hub {
                cursor,
                ..Hub::default()
            }),
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

    /// Subscribers now.
    pub fn subscribers(&self) -> usize {
        self.hub().subscribers.len()
    }

    /// Delivers pushes as they become visible until `stop`: after each commit that wrote one,
    /// and at the instant the next one written ahead (a callback coming due) becomes visible.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut clock_moved = self.clock.subscribe();
        loop {
            let next = match self.deliver_visible().await {
                Ok(next) => next,
                Err(StoreError::Closed) => return,
                Err(e) => {
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
                _ = self.clock.until(wake), if next.is_some() => {}
                _ = clock_moved.changed() => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Releases and delivers every push visible now; returns the id of the next one written
    /// ahead, if any.
    async fn deliver_visible(&self) -> Result<Option<i64>, StoreError> {
        let now = self.clock.now().timestamp_millis();
        let released = self.store.release_pushes(now).await?;
        let upto = released.upto;
        loop {
            let cursor = {
                let mut hub = self.hub();
                if hub.subscribers.is_empty() {
                    // Nobody listens: nothing to read. A subscriber that comes later with
                    // `after` reads the store.
                    hub.cursor = hub.cursor.max(released.last);
                }
                hub.cursor
            };
            let (page, next) = self
                .store
                .read(move |conn| {
                    let page = if cursor < released.last {
                        outbox::page(conn, cursor, upto, None, PAGE)?
                    } else {
                        Vec::new()
                    };
                    let next = match page.len() as i64 {
                        PAGE => None,
                        _ => outbox::next_after(conn, upto)?,
                    };
                    Ok((page, next))
                })
                .await?;
            let frames: Vec<Frame> = page.iter().map(Frame::render).collect();
            {
                let mut hub = self.hub();
                for (push, frame) in page.iter().zip(&frames) {
                    hub.deliver(frame, push.user_id.as_deref());
                }
            }
            if (page.len() as i64) < PAGE {
                return Ok(next);
            }
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
        Ok(page.iter().map(Frame::render).collect())
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
        let mut hub = self.hub();
        let after = after.unwrap_or(hub.cursor);
        if after < hub.cursor {
            return Err(hub.cursor);
        }
        let (tx, rx) = mpsc::channel(self.queue);
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
