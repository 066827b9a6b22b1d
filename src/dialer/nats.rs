//! The reference dialer's NATS mode (`redial dialer --nats URL --durable NAME`): a JetStream
//! pull consumer of the redials the relay publishes (`--dispatch nats`), with explicit acks.
//! What any consumer of the stream must do, this one does:
//!
//! 1. **Drop a redial whose window has ended**, before dialing: the message carries its
//!    `deadline` because JetStream 2.9 cannot expire it. Dropped with a terminal ack, so the
//!    server does not deliver it again.
//! 2. **Drop a redial that is no longer wanted**: the callback finished (cancelled, superseded,
//!    completed) or was attempted since (`attempts` has reached the redial's `attempt`), read
//!    from `GET /v1/callbacks/{id}` just before dialing.
//! 3. **Dial, report the attempt over HTTP, then ack.** If the dialer dies between the dial
//!    and the ack, the message is delivered again after `--ack-wait`; the report of the first
//!    attempt has moved `attempts` on, so rule 2 drops it. Duplicates by message id are also
//!    dropped in memory (`Handled`).
//!
//! `--ack-wait` must exceed the longest dial (default 60 s); `--max-deliver` bounds how often a
//! redial that keeps failing before its ack is tried (default 5). The consumer is durable: a
//! dialer restarted with the same `--durable` continues where its acks left off.

use std::time::Duration;

use anyhow::{bail, Context as _};
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::AckKind;
use chrono::{DateTime, Utc};
use clap::Args;
use futures_util::StreamExt;
use serde_json::Value;

use super::{describe, send, Dialer, DialerArgs};
use crate::relay::subject::token;

#[derive(Debug, Clone, Default, Args)]
pub struct NatsArgs {
    /// Take redials from NATS JetStream at this URL instead of the HTTP queue.
    #[arg(long = "nats", value_name = "URL")]
    pub nats: Option<String>,
    /// The durable consumer's name: dialers sharing it share the work.
    #[arg(long, requires = "nats")]
    pub durable: Option<String>,
    /// The stream the relay publishes to.
    #[arg(long, default_value = "REDIAL")]
    pub nats_stream: String,
    /// The relay's subject prefix.
    #[arg(long, default_value = "redial")]
    pub nats_subject: String,
    /// A NATS credentials file.
    #[arg(long)]
    pub nats_creds: Option<std::path::PathBuf>,
    /// A NATS token.
    #[arg(long, env = "REDIAL_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// How long a delivered redial may go unacknowledged before it is delivered again: more
    /// than the longest dial.
    #[arg(long, default_value_t = 60_000)]
    pub ack_wait_ms: u64,
    /// How often one redial is delivered at most.
    #[arg(long, default_value_t = 5)]
    pub max_deliver: i64,
}

/// What the dialer did with one redial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handling {
    /// Dialed and reported; the line says how it went.
    Dialed(String),
    /// Not dialed, and why.
    Dropped(String),
}

/// Runs the NATS dialer until interrupted or `--max-events`.
pub async fn run(args: DialerArgs) -> anyhow::Result<()> {
    let max_events = args.max_events;
    let n = args.nats.clone();
    let url = n.nats.clone().context("--nats URL")?;
    let Some(durable) = n.durable.clone() else {
        bail!("--nats needs --durable NAME: the consumer the stream keeps this dialer's place in");
    };
    let mut options = async_nats::ConnectOptions::new().name("redial-dialer");
    if let Some(path) = &n.nats_creds {
        options = options.credentials_file(path).await?;
    }
    if let Some(t) = &n.nats_token {
        options = options.token(t.clone());
    }
    let client = options
        .connect(&url)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(&n.nats_stream).await.with_context(|| {
        format!(
            "no stream {} (is redial running with --nats?)",
            n.nats_stream
        )
    })?;
    let filter = match &args.user_id {
        Some(user) => format!("{}.events.redial.agent.{}", n.nats_subject, token(user)),
        None => format!("{}.events.redial.>", n.nats_subject),
    };
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: filter,
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_millis(n.ack_wait_ms),
                max_deliver: n.max_deliver,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("cannot create the consumer {durable}"))?;
    let mut messages = consumer.messages().await?;
    let mut dialer = Dialer::new(args)?;
    let mut count = 0u64;
    loop {
        let message = tokio::select! {
            next = messages.next() => match next {
                Some(message) => message.map_err(|e| anyhow::anyhow!("{e}"))?,
                None => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let redial: Value = serde_json::from_slice(&message.payload)
            .with_context(|| format!("a message on {} is not JSON", message.subject))?;
        let handling = dialer.handle_redial(&redial, Utc::now()).await;
        let (line, ack) = match handling {
            Handling::Dialed(line) => (line, AckKind::Ack),
            Handling::Dropped(why) => (
                format!("{} dropped: {why}", describe(&redial)),
                AckKind::Term,
            ),
        };
        // Confirmed by the server before the next one: an ack lost on the way would bring the
        // redial back after --ack-wait.
        message
            .double_ack_with(ack)
            .await
            .map_err(|e| anyhow::anyhow!("cannot ack: {e}"))?;
        println!("{line}");
        count += 1;
        if max_events.is_some_and(|max| count >= max) {
            return Ok(());
        }
    }
}

impl Dialer {
    /// Applies the consumer's rules to one redial from the stream at `now`: drops it if its
    /// window has ended, if it was handled already, or if the callback no longer wants it;
    /// else dials and reports the attempt.
    pub async fn handle_redial(&mut self, redial: &Value, now: DateTime<Utc>) -> Handling {
        let Some(id) = redial["id"].as_i64() else {
            return Handling::Dropped("no id".into());
        };
        let deadline = redial["deadline"]
            .as_str()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok());
        match deadline {
            None => return Handling::Dropped("no deadline".into()),
            Some(deadline) if deadline <= now => {
                return Handling::Dropped(format!("its window ended at {deadline}"))
            }
            Some(_) => {}
        }
        if !self.handled.first_time(id) {
            return Handling::Dropped(format!("redial {id} was handled already"));
        }
        let url = format!("{}/v1/callbacks/{}", self.base, redial["callback_id"]);
        match send(self.client.get(&url), &url).await {
            Ok(callback) => {
                let state = callback["state"].as_str().unwrap_or("");
                if !["scheduled", "due", "leased"].contains(&state) {
                    return Handling::Dropped(format!("the callback is {state}"));
                }
                let (done, attempt) = (callback["attempts"].as_i64(), redial["attempt"].as_i64());
                if let (Some(done), Some(attempt)) = (done, attempt) {
                    if done >= attempt {
                        return Handling::Dropped(format!(
                            "attempt {attempt} was made already ({done} so far)"
                        ));
                    }
                }
            }
            Err(e) => return Handling::Dropped(format!("the callback cannot be read: {e}")),
        }
        let line = format!("{}{}", describe(redial), self.dial(redial).await);
        // An id handled and acked over NATS never comes back: forget it.
        self.handled.acked(&[id]);
        Handling::Dialed(line)
    }
}
