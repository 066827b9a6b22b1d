//! The relay to NATS JetStream (`--nats`): every push of the bus's outbox, in id order, as a
//! JetStream message, with the same guarantees the HTTP queue gives.
//!
//! - **What and when.** The relay is a subscriber of the bus's hub for every push: it hears
//!   them in the order they become visible, which for a redial is the instant its window
//!   opens (it was written a minute ahead), never before. Behind the hub (at start, after a
//!   restart, or when it fell behind), it reads the stored pushes after its mark first.
//! - **Exactly where.** [`subject::of`] names the subject; the payload is the push's message
//!   as stored, a slice of its envelope, and a redial's carries its `deadline` (the window's
//!   end), since JetStream 2.9 cannot expire a message.
//! - **Counted once acknowledged.** Publishes are pipelined, up to [`IN_FLIGHT`] awaiting
//!   their PubAck, all taken by one reply subscription; the mark moves over a push only when
//!   it and every push before it were acknowledged, and is written to `relay_marks` every
//!   [`SAVE_EVERY`] and at shutdown. A PubAck that takes over five seconds ends the session.
//! - **Sent again, dropped by the server.** Each message has `Nats-Msg-Id` =
//!   `<instance>.<push id>`: after a restart or a lost connection the relay publishes again
//!   from its mark, and the stream drops what it already has within its duplicate window.
//! - **NATS away.** redial goes on taking requests and scheduling; the relay retries with
//!   back-off and catches up in order. `/metrics` and `/readyz` show how far behind it is.

pub mod stream;
pub mod subject;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::ContextBuilder};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::bus::{Audience, Bus, Frame};
use crate::clock::Clock;
use crate::store::bus::split_envelope;
use crate::store::{relay as marks, Store, StoreError};
use crate::telemetry;
use subject::Class;

/// Publishes awaiting their PubAck at most.
pub const IN_FLIGHT: usize = 1024;
/// Pushes the relay's subscription to the hub holds: the largest burst of windows opening at
/// one instant that it takes live; a larger one it reads from the store.
const QUEUE: usize = 65_536;
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
        let (client, js) = match connect(&self.config).await {
            Ok(connected) => connected,
            Err(why) => return (Ended::Lost(why), false),
        };
        *self.status.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client.clone());
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
        let inbox = client.new_inbox();
        let acks = match client.subscribe(format!("{inbox}.*")).await {
            Ok(acks) => acks,
            Err(e) => {
                return (
                    Ended::Lost(format!("cannot subscribe to PubAcks: {e}")),
                    false,
                )
            }
        };
        self.status.mark.store(mark, Ordering::Relaxed);
        self.status.set_problem(None);
        tracing::info!(mark, stream = %self.config.stream.name, "the relay publishes");
        let mut pump = Pump {
            relay: self,
            client,
            inbox,
            acks,
            instance,
            source: Source::after(mark),
            pending: VecDeque::new(),
            next_token: 0,
            mark,
            saved: mark,
        };
        let ended = pump.run(stop).await;
        // Whatever was acknowledged is kept, however the session ended.
        let _ = pump.save().await;
        (ended, true)
    }
}

/// A push handed to NATS (or skipped) whose place in the line is not yet behind the mark.
struct Pending {
    id: i64,
    /// The last token of its reply subject.
    token: u64,
    sent: Instant,
    acked: bool,
}

/// One session's publishing. Every publish asks for its PubAck on `<inbox>.<token>`, and one
/// subscription to `<inbox>.*` takes them all: no future or channel per message, which at a
/// hundred thousand messages a second is most of what a publish would cost.
struct Pump<'r> {
    relay: &'r Relay,
    client: async_nats::Client,
    inbox: String,
    acks: async_nats::Subscriber,
    instance: String,
    source: Source,
    /// In push order; tokens increase by one from the front.
    pending: VecDeque<Pending>,
    next_token: u64,
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
                ack = self.acks.next() => match ack {
                    Some(ack) => {
                        if let Err(why) = self.acknowledged(&ack) {
                            return Ended::Lost(why);
                        }
                    }
                    None => return Ended::Lost("the PubAck subscription ended".into()),
                },
                _ = save.tick() => {
                    if let Some(front) = self.pending.front() {
                        if !front.acked && front.sent.elapsed() > ACK_TIMEOUT {
                            return Ended::Lost(format!(
                                "no PubAck within {} s", ACK_TIMEOUT.as_secs()
                            ));
                        }
                    }
                    if let Err(e) = self.save().await {
                        return Ended::Lost(e.to_string());
                    }
                }
                frame = self.source.next(&self.relay.bus), if self.pending.len() < IN_FLIGHT => {
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

    /// At shutdown: waits a little for the PubAcks in flight, so that the mark is as far on
    /// as it can be (what is not acknowledged is published again at the next start).
    async fn drain(&mut self) -> Ended {
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        while self.pending.iter().any(|p| !p.acked) {
            tokio::select! {
                ack = self.acks.next() => match ack {
                    Some(ack) => {
                        if self.acknowledged(&ack).is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        Ended::Stopped
    }

    /// A PubAck: its publish is done; the mark moves over every done push at the front.
    fn acknowledged(&mut self, ack: &async_nats::Message) -> Result<(), String> {
        let token: Option<u64> = ack
            .subject
            .as_str()
            .rsplit('.')
            .next()
            .and_then(|t| t.parse().ok());
        let (Some(token), Some(front)) = (token, self.pending.front()) else {
            return Ok(());
        };
        let Some(at) = token.checked_sub(front.token) else {
            return Ok(());
        };
        // `{"stream":"REDIAL","seq":N}`, or `{"error":{...}}`.
        if ack.payload.windows(8).any(|w| w == b"\"error\":") {
            return Err(format!(
                "the stream refused a message: {}",
                String::from_utf8_lossy(&ack.payload)
            ));
        }
        if let Some(entry) = self.pending.get_mut(at as usize) {
            if !entry.acked {
                entry.acked = true;
                self.relay.status.published.fetch_add(1, Ordering::Relaxed);
                telemetry::relayed();
            }
        }
        while self.pending.front().is_some_and(|p| p.acked) {
            let done = self.pending.pop_front().expect("a front");
            self.mark = done.id;
        }
        self.relay.status.mark.store(self.mark, Ordering::Relaxed);
        Ok(())
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

    /// Sends the push's message, if the relay publishes its class; either way it takes its
    /// place in the line.
    async fn publish(&mut self, frame: Frame) -> Result<(), String> {
        let id = frame.id;
        let message = split_envelope(frame.text.as_str()).and_then(|(kind, raw)| {
            let class = subject::class(kind)?;
            if !self.relay.config.publish.contains(&class) {
                return None;
            }
            subject::of_parts(&self.relay.config.stream.prefix, kind, raw)
        });
        let token = self.next_token;
        self.next_token += 1;
        let Some(message) = message else {
            // Not published: done once everything before it is.
            self.pending.push_back(Pending {
                id,
                token,
                sent: Instant::now(),
                acked: true,
            });
            if self.pending.len() == 1 {
                self.pending.clear();
                self.mark = id;
                self.relay.status.mark.store(id, Ordering::Relaxed);
            }
            return Ok(());
        };
        let payload = bytes::Bytes::from(frame.text.clone()).slice_ref(message.payload.as_bytes());
        let mut number = itoa::Buffer::new();
        let mut message_id = String::with_capacity(self.instance.len() + 20);
        message_id.push_str(&self.instance);
        message_id.push('.');
        message_id.push_str(number.format(id));
        let mut reply = String::with_capacity(self.inbox.len() + 20);
        reply.push_str(&self.inbox);
        reply.push('.');
        reply.push_str(number.format(token));
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id.as_str());
        self.client
            .publish_with_reply_and_headers(message.subject, reply, headers, payload)
            .await
            .map_err(|e| format!("publish failed: {e}"))?;
        self.pending.push_back(Pending {
            id,
            token,
            sent: Instant::now(),
            acked: false,
        });
        Ok(())
    }
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
            match bus.join_with(Audience::All, Some(self.after), QUEUE) {
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
