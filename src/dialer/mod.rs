//! The reference dialer: the smallest correct client of the queue, used by the README and the
//! tests. It long-polls for events, prints one line per event, reports the chosen attempt
//! result for each redial, and acks the batch. Delivery is at-least-once, so it remembers the
//! ids it has handled and acks a redelivered one without dialing it twice (`Handled`).
//! With `--nats` it takes redials from the JetStream stream instead ([`nats`]).

pub mod nats;

use std::collections::HashSet;
use std::io::Write;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::lifecycle::EventKind;

#[derive(Debug, Clone, Args)]
pub struct DialerArgs {
    /// Base URL of the redial service.
    #[arg(long, env = "REDIAL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Bearer token with the `dialer` role, when the service checks tokens.
    #[arg(long, env = "REDIAL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// This dialer's name; leases and acks are held per consumer (HTTP).
    #[arg(long, required_unless_present = "nats")]
    pub consumer: Option<String>,
    /// Take only this agent's personal callbacks.
    #[arg(long)]
    pub user_id: Option<String>,
    /// The attempt result to report for every redial.
    #[arg(long, value_enum, default_value = "connected")]
    pub result: DialResult,
    /// Events per lease.
    #[arg(long, default_value_t = 10)]
    pub batch: u32,
    /// How long a lease is held before the event is redelivered.
    #[arg(long, default_value_t = 30_000)]
    pub lease_ms: u64,
    /// How long one lease request waits for an event.
    #[arg(long, default_value_t = 20_000)]
    pub wait_ms: u64,
    /// Stop after handling this many events (default: run until interrupted).
    #[arg(long)]
    pub max_events: Option<u64>,
    #[command(flatten)]
    pub nats: nats::NatsArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialResult {
    Connected,
    Busy,
    NoAnswer,
    Failed,
}

impl DialResult {
    fn as_str(self) -> &'static str {
        match self {
            DialResult::Connected => "connected",
            DialResult::Busy => "busy",
            DialResult::NoAnswer => "no_answer",
            DialResult::Failed => "failed",
        }
    }
}

/// Runs the dialer until interrupted or `--max-events` is reached.
pub async fn run(args: DialerArgs) -> anyhow::Result<()> {
    if args.nats.nats.is_some() {
        return nats::run(args).await;
    }
    let max_events = args.max_events;
    let mut dialer = Dialer::new(args)?;
    let mut count = 0u64;
    let mut out = std::io::stdout();
    loop {
        // Only the wait for a lease is cut short: a batch in hand is dialed, reported and acked.
        let events = tokio::select! {
            events = dialer.lease() => events?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        count += dialer.handle(&events, &mut out).await?;
        out.flush()?;
        if max_events.is_some_and(|max| count >= max) {
            return Ok(());
        }
    }
}

/// One dialer's connection to the service and its memory of what it has handled.
pub struct Dialer {
    args: DialerArgs,
    client: reqwest::Client,
    base: String,
    handled: Handled,
}

impl Dialer {
    pub fn new(args: DialerArgs) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &args.token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the token must be printable ASCII")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .context("cannot build the HTTP client")?;
        let base = args.url.trim_end_matches('/').to_owned();
        Ok(Self {
            args,
            client,
            base,
            handled: Handled::default(),
        })
    }

    /// Waits up to `--wait-ms` for a batch of events.
    pub async fn lease(&self) -> anyhow::Result<Vec<Value>> {
        let args = &self.args;
        let lease = json!({
            "consumer": args.consumer.as_deref().unwrap_or("dialer"), "max": args.batch, "lease_ms": args.lease_ms,
            "wait_ms": args.wait_ms, "user_id": args.user_id,
        });
        let reply = post(
            &self.client,
            &format!("{}/v1/queue/lease", self.base),
            &lease,
        )
        .await?;
        Ok(reply["events"].as_array().cloned().unwrap_or_default())
    }

    /// Dials each event not handled before and reports the attempt for a redial, writing one
    /// line per event to `out`, then acks the whole batch. Returns how many were new.
    pub async fn handle(&mut self, events: &[Value], out: &mut impl Write) -> anyhow::Result<u64> {
        let mut ids = Vec::new();
        let mut new = 0;
        for event in events {
            let id = event["id"].as_i64().context("an event without an id")?;
            ids.push(id);
            if !self.handled.first_time(id) {
                writeln!(out, "event {id} again: already handled, acking only")?;
                continue;
            }
            let mut line = describe(event);
            if event["type"].as_str().and_then(EventKind::parse) == Some(EventKind::Redial) {
                line.push_str(&self.dial(event).await);
            }
            writeln!(out, "{line}")?;
            new += 1;
        }
        if !ids.is_empty() {
            let ack =
                json!({"consumer": self.args.consumer.as_deref().unwrap_or("dialer"), "ids": ids});
            let reply = post(&self.client, &format!("{}/v1/queue/ack", self.base), &ack).await?;
            self.handled.acked(&ids_in(&reply["acked"]));
        }
        Ok(new)
    }

    /// "Dials" the redial `event` and reports the attempt with `--result`; what happened,
    /// for the event's line.
    async fn dial(&self, event: &Value) -> String {
        let result = self.args.result.as_str();
        let url = format!(
            "{}/v1/callbacks/{}/attempts",
            self.base, event["callback_id"]
        );
        match post(&self.client, &url, &json!({"result": result})).await {
            Ok(callback) => format!(
                " -> {result} (callback {})",
                callback["state"].as_str().unwrap_or("?")
            ),
            Err(e) => format!(" -> not reported: {e}"),
        }
    }

    /// How many handled events the service has not yet confirmed as acked: those that may
    /// still be delivered again.
    pub fn unconfirmed(&self) -> usize {
        self.handled.0.len()
    }
}

/// The ids of events handled but not known to be acked. An acked event never comes back, so
/// its id is forgotten once the ack's reply lists it: what stays are the ids the ack could not
/// close because this dialer no longer held them (the lease ran out, and the event may already
/// be with another dialer; answered under `ignored`), which a later delivery may bring again.
/// The set is as large as the leases lost, not as the events handled since start.
#[derive(Debug, Default)]
struct Handled(HashSet<i64>);

impl Handled {
    /// Whether `id` is new; from now on it is not.
    fn first_time(&mut self, id: i64) -> bool {
        self.0.insert(id)
    }

    /// Forgets ids the service has acked for good.
    fn acked(&mut self, ids: &[i64]) {
        for id in ids {
            self.0.remove(id);
        }
    }
}

/// The integers of a JSON array; anything else is no ids.
fn ids_in(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// One line for an event: what to dial, for whom, in which window.
fn describe(e: &Value) -> String {
    let text = |key: &str| e[key].as_str().unwrap_or("").to_owned();
    let mut line = format!(
        "event {} {} callback {} callid {} AccountNumber {} mode {} UserID {}{} attempt {} window {}..{}",
        e["id"],
        text("type"),
        e["callback_id"],
        text("callid"),
        text("AccountNumber"),
        e["CallbackModeID"],
        text("UserID"),
        if e["personal"] == true { " personal" } else { " any-agent" },
        e["attempt"],
        text("window_start"),
        text("window_end"),
    );
    if let Some(reason) = e["reason"].as_str() {
        line.push_str(&format!(" reason {reason}"));
    }
    line
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    send(client.post(url).json(body), url).await
}

/// Sends `request` to `url` and returns the JSON reply; an answer other than 2xx is an error
/// with the service's own detail.
async fn send(request: reqwest::RequestBuilder, url: &str) -> anyhow::Result<Value> {
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let reply: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url} answered {status}: {}", reply["error"]["detail"]);
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redelivered_id_is_seen_again_until_acked_and_then_forgotten() {
        let mut handled = Handled::default();
        assert!(handled.first_time(1));
        assert!(handled.first_time(2));
        assert!(
            !handled.first_time(1),
            "a redelivery before the ack is a duplicate"
        );
        // The ack's reply: 1 acked, 2 ignored (its lease ran out first).
        handled.acked(&ids_in(&json!([1])));
        assert_eq!(
            handled.0,
            HashSet::from([2]),
            "only the unacked id is remembered"
        );
        assert!(
            !handled.first_time(2),
            "an id whose ack was ignored may come back"
        );
    }

    #[test]
    fn ids_in_reads_only_integers() {
        assert_eq!(ids_in(&json!([3, "4", 5])), vec![3, 5]);
        assert_eq!(ids_in(&Value::Null), Vec::<i64>::new());
    }
}
