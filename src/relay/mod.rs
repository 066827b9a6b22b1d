//! The relay to NATS JetStream (`--nats`): every push of the bus's outbox, in id order, as a
//! JetStream message, with the same guarantees the HTTP queue gives.
//!
//! - **What and when.** The relay is a subscriber of the bus's hub for every push: it hears
//!   them in the order they become visible, which for a redial is the instant its window
//!   opens (it was written a minute ahead), never before. Behind the hub (at start, after a
//!   restart, or when it fell behind), it reads the stored pushes after its mark first.
//! - **Exactly where.** [`subject::of`] names the subject and shapes the payload; a redial
//!   carries its `deadline` (the window's end), since JetStream 2.9 cannot expire a message.
//! - **Counted once acknowledged.** Publishes are pipelined, up to [`IN_FLIGHT`] awaiting
//!   their PubAck; the mark moves over a push only when it and every push before it were
//!   acknowledged, and is written to `relay_marks` every [`SAVE_EVERY`] and at shutdown.
//! - **Sent again, dropped by the server.** Each message has `Nats-Msg-Id` =
//!   `<instance>.<push id>`: after a restart or a lost connection the relay publishes again
//!   from its mark, and the stream drops what it already has within its duplicate window.
//! - **NATS away.** redial goes on taking requests and scheduling; the relay retries with
//!   back-off and catches up in order. `/metrics` and `/readyz` show how far behind it is.

pub mod stream;
pub mod subject;

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, context::ContextBuilder, message::PublishMessage};
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::bus::{Audience, Bus, Frame};
use crate::clock::Clock;
use crate::store::{relay as marks, Store, StoreError};
use crate::telemetry;
use subject::Class;

/// Publishes awaiting their PubAck at most.
pub const IN_FLIGHT: usize = 1024;
/// How often the mark is written while it moves.
pub const SAVE_EVERY: Duration = Duration::from_millis(200);
/// How long a PubAck may take before the connection is taken for lost.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two attempts to reach NATS.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What the relay needs to know (`--nats` and the flags beside it).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub url: String,
    pub creds: Option<PathBuf>,
    pub token: Option<String>,
    pub stream: stream::Wanted,
    /// What it publishes.
    pub publish: Vec<Class>,
}

/// How the relay is doing, for `/metrics` and `/readyz`.
#[derive(Debug, Default)]
pub struct Status {
    /// The session's client: connected is what it says now (it reconnects by itself, and a
    /// publish waits for its PubAck up to five seconds before the session is given up).
    client: Mutex<Option<async_nats::Client>>,
    mark: AtomicI64,
    published: AtomicU64,
    problem: Mutex<Option<String>>,
}

impl Status {
    /// Whether it holds a connection to JetStream now.
    pub fn connected(&self) -> bool {
        let client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        client
            .as_ref()
            .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
            && self.problem().is_none()
    }

    /// Every push up to this id is in the stream.
    pub fn mark(&self) -> i64 {
        self.mark.load(Ordering::Relaxed)
    }

    /// Messages acknowledged by the stream since start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Why it is not publishing, if it is not.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }
}

/// Connects to NATS and its JetStream, failing at once when it does not answer.
pub async fn connect(
    config: &RelayConfig,
) -> Result<(async_nats::Client, jetstream::Context), String> {
    let mut options = async_nats::ConnectOptions::new()
        .name("redial")
        .connection_timeout(Duration::from_secs(5));
    if let Some(path) = &config.creds {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| format!("cannot read --nats-creds {}: {e}", path.display()))?;
    }
    if let Some(token) = &config.token {
        options = options.token(token.clone());
    }
    let client = options
        .connect(&config.url)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", config.url))?;
    let js = ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .ack_timeout(ACK_TIMEOUT)
        .max_ack_inflight(IN_FLIGHT * 2)
        .build(client.clone());
    Ok((client, js))
}

/// The check at start: a stream that exists with settings the relay cannot publish to stops
/// the service, with every difference named. NATS not answering does not: the relay retries.
pub async fn check_at_start(config: &RelayConfig) -> anyhow::Result<()> {
    match connect(config).await {
        Ok((_, js)) => match stream::ensure(&js, &config.stream).await {
            Err(e @ stream::StreamError::Conflict { .. }) => Err(anyhow::anyhow!(e)),
            Err(e) => {
                tracing::warn!(error = %e, "JetStream not ready at start; the relay retries");
                Ok(())
            }
            Ok(()) => Ok(()),
        },
        Err(e) => {
            tracing::warn!(error = %e, "NATS not reachable at start; the relay retries");
            Ok(())
        }
    }
}

/// Why a session with NATS ended.
enum Ended {
    /// The service stops.
    Stopped,
    /// The stream cannot be published to: nothing will change that but the operator.
    Fatal(String),
    /// NATS went away or failed a publish: try again.
    Lost(String),
}

/// The relay task.
pub struct Relay {
    pub store: Store,
    pub bus: Arc<Bus>,
    pub clock: Clock,
    pub config: RelayConfig,
    pub status: Arc<Status>,
}

type Acked = Pin<Box<dyn Future<Output = (i64, Result<(), String>)> + Send>>;

impl Relay {
    /// Relays until `stop`, reconnecting with back-off whenever NATS goes away.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(250);
        let mut first = true;
        loop {
            let (ended, made_progress) = self.session(&stop).await;
            match ended {
                Ended::Stopped => return,
                Ended::Fatal(why) => {
                    tracing::error!(error = %why, "the relay stops");
                    self.status.set_problem(Some(why));
                    return;
                }
                Ended::Lost(why) => {
                    if first || made_progress {
                        tracing::warn!(error = %why, "the relay lost NATS; retrying");
                    }
                    self.status.set_problem(Some(why));
                }
            }
            first = false;
            if made_progress {
                backoff = Duration::from_millis(250);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One connection: publishes from the stored mark on until it is lost or `stop`.
    /// Returns why it ended, and whether it connected at all.
    async fn session(&self, stop: &CancellationToken) -> (Ended, bool) {
        let js = match connect(&self.config).await {
            Ok((client, js)) => {
                *self.status.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
                js
            }
            Err(why) => return (Ended::Lost(why), false),
        };
        match stream::ensure(&js, &self.config.stream).await {
            Ok(()) => {}
            Err(e @ stream::StreamError::Conflict { .. }) => {
                return (Ended::Fatal(e.to_string()), false)
            }
            Err(e) => return (Ended::Lost(e.to_string()), false),
        }
        let name = self.config.stream.name.clone();
        let mark = match self.store.read(move |c| Ok(marks::mark(c, &name)?)).await {
            Ok(mark) => mark,
            Err(e) => return (Ended::Lost(e.to_string()), false),
        };
        let instance = match self.store.read(|c| Ok(marks::instance(c)?)).await {
            Ok(name) => name,
            Err(e) => return (Ended::Lost(e.to_string()), false),
        };
        self.status.mark.store(mark, Ordering::Relaxed);
        self.status.set_problem(None);
        tracing::info!(mark, stream = %self.config.stream.name, "the relay publishes");
        let mut pump = Pump {
            relay: self,
            js,
            instance,
            source: Source::after(mark),
            acks: FuturesOrdered::new(),
            mark,
            saved: mark,
        };
        let ended = pump.run(stop).await;
        // Whatever was acknowledged is kept, however the session ended.
        let _ = pump.save().await;
        (ended, true)
    }
}

/// One session's publishing.
struct Pump<'r> {
    relay: &'r Relay,
    js: jetstream::Context,
    instance: String,
    source: Source,
    acks: FuturesOrdered<Acked>,
    /// Every push up to here is in the stream.
    mark: i64,
    /// The mark as last written to the database.
    saved: i64,
}

impl Pump<'_> {
    async fn run(&mut self, stop: &CancellationToken) -> Ended {
        let mut save = tokio::time::interval(SAVE_EVERY);
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return self.drain().await,
                Some((id, acked)) = self.acks.next(), if !self.acks.is_empty() => {
                    if let Err(why) = acked {
                        return Ended::Lost(why);
                    }
                    self.acknowledged(id);
                }
                _ = save.tick() => {
                    if let Err(e) = self.save().await {
                        return Ended::Lost(e.to_string());
                    }
                }
                frame = self.source.next(&self.relay.bus), if self.acks.len() < IN_FLIGHT => {
                    match frame {
                        Ok(frame) => {
                            if let Err(why) = self.publish(frame).await {
                                return Ended::Lost(why);
                            }
                        }
                        Err(e) => return Ended::Lost(e.to_string()),
                    }
                }
            }
        }
    }

    /// At shutdown: waits a little for the acks in flight, so that the mark is as far on as
    /// it can be (what is not acknowledged is published again at the next start).
    async fn drain(&mut self) -> Ended {
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.acks.next() => match next {
                    Some((id, Ok(()))) => self.acknowledged(id),
                    _ => return Ended::Stopped,
                },
                _ = &mut deadline => return Ended::Stopped,
            }
        }
    }

    fn acknowledged(&mut self, id: i64) {
        self.mark = id;
        self.relay.status.mark.store(id, Ordering::Relaxed);
    }

    async fn save(&mut self) -> Result<(), StoreError> {
        if self.mark <= self.saved {
            return Ok(());
        }
        let (name, mark, clock) = (
            self.relay.config.stream.name.clone(),
            self.mark,
            self.relay.clock.clone(),
        );
        self.relay
            .store
            .write(move |c| Ok::<_, StoreError>(marks::advance(c, &name, mark, clock.now())?))
            .await?;
        self.saved = mark;
        Ok(())
    }

    /// Sends the push's message, if the relay publishes its class; its ack joins the line.
    async fn publish(&mut self, frame: Frame) -> Result<(), String> {
        let id = frame.id;
        let message = parse(&frame)
            .and_then(|(kind, body)| subject::of(&self.relay.config.stream.prefix, &kind, &body))
            .filter(|m| self.relay.config.publish.contains(&m.class));
        let Some(message) = message else {
            // Not published: it counts as done once everything before it is.
            self.acks.push_back(Box::pin(async move { (id, Ok(())) }));
            return Ok(());
        };
        let payload = serde_json::to_vec(&message.payload).expect("a payload serializes");
        let publish = PublishMessage::build()
            .message_id(format!("{}.{id}", self.instance))
            .payload(payload.into());
        let pending = self
            .js
            .send_publish(message.subject, publish)
            .await
            .map_err(|e| format!("publish failed: {e}"))?;
        let status = Arc::clone(&self.relay.status);
        self.acks.push_back(Box::pin(async move {
            let acked = pending.await.map(|_| {
                status.published.fetch_add(1, Ordering::Relaxed);
                telemetry::relayed();
            });
            (id, acked.map_err(|e| format!("no PubAck: {e}")))
        }));
        Ok(())
    }
}

/// A push's kind and message.
fn parse(frame: &Frame) -> Option<(String, serde_json::Map<String, Value>)> {
    let envelope: Value = serde_json::from_str(frame.text.as_str()).ok()?;
    let kind = envelope.get("subtopic")?.as_str()?.to_owned();
    let message = envelope.get("message")?.as_object()?.clone();
    Some((kind, message))
}

/// The pushes after a mark, in id order: the stored ones first, then the hub's live ones.
struct Source {
    after: i64,
    backlog: VecDeque<Frame>,
    live: Option<crate::bus::Subscription>,
}

impl Source {
    fn after(after: i64) -> Self {
        Self {
            after,
            backlog: VecDeque::new(),
            live: None,
        }
    }

    /// The next push. Cancel-safe: nothing is taken before it is returned.
    async fn next(&mut self, bus: &Arc<Bus>) -> Result<Frame, StoreError> {
        loop {
            if let Some(frame) = self.backlog.pop_front() {
                self.after = frame.id;
                return Ok(frame);
            }
            if let Some(live) = self.live.as_mut() {
                match live.rx.recv().await {
                    Some(frame) if frame.id > self.after => {
                        self.after = frame.id;
                        return Ok(frame);
                    }
                    Some(_) => continue,
                    // Fell behind by more than its queue: read the store from here.
                    None => self.live = None,
                }
                continue;
            }
            match bus.join(Audience::All, Some(self.after)) {
                Ok((subscription, _)) => self.live = Some(subscription),
                Err(cursor) => {
                    let page = bus.page(&Audience::All, self.after, cursor).await?;
                    if page.is_empty() {
                        // Nothing stored up to the hub's cursor: join from there.
                        self.after = cursor;
                    }
                    self.backlog.extend(page);
                }
            }
        }
    }
}
