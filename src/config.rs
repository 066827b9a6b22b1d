//! Command line and environment, parsed and checked once at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::dialer::DialerArgs;
use crate::hours::CallingHours;
use crate::http::server::Limits;
use crate::policy::{Fallback, Policy};
use crate::relay::stream::Wanted;
use crate::relay::subject::Class;
use crate::relay::RelayConfig;
use crate::scheduler::housekeeping::parse_schedule;
use crate::store::{StoreOptions, Synchronous};
use async_nats::jetstream::stream::RetentionPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "redial",
    version,
    about = "Callback scheduler for contact centers"
)]
pub struct Cli {
    /// Log lines as human-readable text or as JSON objects.
    #[arg(
        long,
        env = "REDIAL_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the scheduler.
    Serve(Box<Config>),
    /// Run the reference dialer: lease events, report an attempt, ack.
    Dialer(DialerArgs),
    /// Copy the database, consistently, while the service runs (SQLite's online backup).
    Backup(BackupArgs),
    /// Listen on the bus as a desktop or a supervisor screen: print each push, one per line.
    Bus(crate::bus::client::BusArgs),
    /// Print a report from the database file (read-only; safe while the service runs).
    Report(crate::report::ReportArgs),
}

/// `redial backup --db PATH OUT`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The service's database file.
    #[arg(long, env = "REDIAL_DB", default_value = "data/redial.db")]
    pub db: PathBuf,
    /// Where to write the copy; must not exist yet.
    pub out: PathBuf,
}

/// Everything `serve` needs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "REDIAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer tokens and their roles, one `<token> <role>[,<role>...]` per line (README:
    /// Security). Without it every request is allowed, and only a loopback address is served.
    #[arg(long, env = "REDIAL_TOKENS")]
    pub tokens: Option<PathBuf>,
    /// Serve a non-loopback address without tokens.
    #[arg(long, env = "REDIAL_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// SQLite database file; created, with its folder, on first start.
    #[arg(long, env = "REDIAL_DB", default_value = "data/redial.db")]
    pub db: PathBuf,
    /// The outcome catalogue, a CSV or JSON file (README: The outcome catalogue), loaded in place
    /// of the one stored; without it, the stored one stays.
    #[arg(long, env = "REDIAL_OUTCOMES")]
    pub outcomes: Option<PathBuf>,
    /// IANA zone in which callback windows without their own `TimeZone` are read.
    #[arg(long, env = "REDIAL_TIMEZONE", default_value = "UTC", value_parser = parse_zone)]
    pub timezone: Tz,
    /// How long a point window (start equal to end) stays open, e.g. `15m`.
    #[arg(long, env = "REDIAL_MIN_WINDOW", default_value = "15m", value_parser = duration(SECOND, WEEK))]
    pub min_window: chrono::Duration,
    /// The furthest ahead a callback window may start, e.g. `365d`.
    #[arg(long, env = "REDIAL_HORIZON", default_value = "365d", value_parser = duration(MINUTE, TEN_YEARS))]
    pub horizon: chrono::Duration,
    /// Local hours in which contacts may be called, in each contact's zone, e.g. `08:00-21:00`
    /// (default: any hour).
    #[arg(long, env = "REDIAL_CALLING_HOURS", value_parser = CallingHours::parse_hours)]
    pub calling_hours: Option<(u32, u32)>,
    /// Weekdays on which contacts may be called, in each contact's zone, e.g. `Mon-Sat` or
    /// `Mon-Fri,Sun` (default: every day).
    #[arg(long, env = "REDIAL_CALLING_DAYS", value_parser = CallingHours::parse_days)]
    pub calling_days: Option<u8>,
    /// The most connections served at once. At the cap the longest idle one is closed to make
    /// room; if none is idle, a new connection is answered 503 at once.
    #[arg(long, env = "REDIAL_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// The most connections served at once for one client address; more are answered 503.
    #[arg(long, env = "REDIAL_MAX_CONNECTIONS_PER_PEER", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_peer: u32,
    /// How long a request's line and headers may take to arrive, from the connection's start
    /// or the end of the previous response; an idle keep-alive connection is closed after it.
    #[arg(long, env = "REDIAL_HEADER_TIMEOUT", default_value = "10s", value_parser = duration(MILLISECOND, HOUR))]
    pub header_timeout: chrono::Duration,
    /// How long a request's body may take to arrive, once its headers have; past it, 408.
    #[arg(long, env = "REDIAL_BODY_TIMEOUT", default_value = "10s", value_parser = duration(MILLISECOND, HOUR))]
    pub body_timeout: chrono::Duration,
    /// How long a request may take before it is answered 503 (a lease gets its wait on top).
    #[arg(long, env = "REDIAL_REQUEST_TIMEOUT", default_value = "10s", value_parser = duration(MILLISECOND, HOUR))]
    pub request_timeout: chrono::Duration,
    /// The most dialers long-polling at once; more are answered 503.
    #[arg(long, env = "REDIAL_MAX_LONG_POLLS", default_value_t = 512)]
    pub max_long_polls: usize,
    /// Threads serving HTTP (default: one fewer than the machine's cores, at least one).
    #[arg(long, env = "REDIAL_HTTP_THREADS", default_value_t = default_http_threads(),
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub http_threads: u16,
    /// `full` fsyncs every commit (survives power loss); `normal` only at checkpoints
    /// (survives a crash of the process, not of the machine).
    #[arg(long, env = "REDIAL_SYNCHRONOUS", value_enum, default_value = "full")]
    pub synchronous: Synchronous,
    /// The largest the database may grow, in MiB (default: as large as the disk allows). A
    /// request that would pass it is answered 503 and nothing of it is stored.
    #[arg(long, env = "REDIAL_MAX_DB_MIB")]
    pub max_db_mib: Option<u64>,
    /// Requests that may queue for the database writer.
    #[arg(long, env = "REDIAL_WRITER_QUEUE", default_value_t = 16_384)]
    pub writer_queue: usize,
    /// The most requests committed in one transaction.
    #[arg(long, env = "REDIAL_BATCH_MAX", default_value_t = 1024)]
    pub batch_max: usize,
    /// Delay before redialing after a busy signal.
    #[arg(long, env = "REDIAL_RETRY_BUSY", default_value = "1m", value_parser = duration(ZERO, WEEK))]
    pub retry_busy: chrono::Duration,
    /// Delay before redialing after no answer.
    #[arg(long, env = "REDIAL_RETRY_NO_ANSWER", default_value = "20m", value_parser = duration(ZERO, WEEK))]
    pub retry_no_answer: chrono::Duration,
    /// Delay before redialing after a failed dial.
    #[arg(long, env = "REDIAL_RETRY_FAILED", default_value = "5m", value_parser = duration(ZERO, WEEK))]
    pub retry_failed: chrono::Duration,
    /// Dial attempts per callback before it expires.
    #[arg(long, env = "REDIAL_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_attempts: i64,
    /// Deliveries of one event without an ack before it is dead-lettered.
    #[arg(long, env = "REDIAL_MAX_DELIVERIES", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_deliveries: i64,
    /// What happens to a personal callback whose owner is away.
    #[arg(
        long,
        env = "REDIAL_PCB_FALLBACK",
        value_enum,
        default_value = "expire"
    )]
    pub pcb_fallback: Fallback,
    /// How long the owner may be away from an open personal callback before the fallback.
    #[arg(long, env = "REDIAL_PCB_FALLBACK_AFTER", default_value = "15m", value_parser = duration(ZERO, WEEK))]
    pub pcb_fallback_after: chrono::Duration,
    /// End a contact's live callback as `completed` (reason `contacted`) when an outcome is
    /// set for it on another call: the customer called in, or another campaign reached them.
    /// `--complete-on-contact false` leaves it to be dialed.
    #[arg(long, env = "REDIAL_COMPLETE_ON_CONTACT", default_value_t = true,
          action = clap::ArgAction::Set, value_name = "true|false")]
    pub complete_on_contact: bool,
    /// Record Prometheus metrics and serve them at `GET /metrics`. `--metrics false` records
    /// nothing (for measuring what recording costs).
    #[arg(long, env = "REDIAL_METRICS", default_value_t = true,
          action = clap::ArgAction::Set, value_name = "true|false")]
    pub metrics: bool,
    /// Give each agent its own series (live callbacks, attempts, first-lease lag), labelled
    /// `user_id`. Off by default: a series per agent grows with the floor.
    #[arg(long, env = "REDIAL_METRICS_PER_AGENT")]
    pub metrics_per_agent: bool,
    /// How long finished callbacks and events are kept.
    #[arg(long, env = "REDIAL_RETENTION", default_value = "30d", value_parser = duration(ZERO, HUNDRED_YEARS))]
    pub retention: chrono::Duration,
    /// When the retention purge runs (cron, seconds first).
    #[arg(long, env = "REDIAL_PURGE_CRON", default_value = "0 0 3 * * *", value_parser = parse_schedule)]
    pub purge_cron: cron::Schedule,
    /// The most bus sockets (`GET /v1/bus`) open at once; more are answered 503.
    #[arg(long, env = "REDIAL_MAX_BUS_CLIENTS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_bus_clients: u32,
    /// Pushes a bus socket may fall behind by before it is told it lagged and is closed.
    #[arg(long, env = "REDIAL_BUS_QUEUE", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub bus_queue: u32,
    /// How often an idle bus socket is pinged; one that has sent nothing (not even a pong)
    /// for two of these is closed, and so is one that takes longer than this to take a frame.
    #[arg(long, env = "REDIAL_BUS_PING", default_value = "30s", value_parser = duration(MILLISECOND, HOUR))]
    pub bus_ping: chrono::Duration,
    /// Publish the bus's events to NATS JetStream at this URL (README: More than one box).
    #[arg(long, env = "REDIAL_NATS", value_name = "URL")]
    pub nats: Option<String>,
    /// A NATS credentials file (JWT and seed), for --nats.
    #[arg(long, env = "REDIAL_NATS_CREDS", value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// A NATS token, for --nats.
    #[arg(long, env = "REDIAL_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// The JetStream stream the relay publishes to; created if missing.
    #[arg(long, env = "REDIAL_NATS_STREAM", default_value = "REDIAL")]
    pub nats_stream: String,
    /// The first token of every subject the relay publishes (`redial.events.redial...`).
    #[arg(long, env = "REDIAL_NATS_SUBJECT", default_value = "redial", value_parser = parse_subject_prefix)]
    pub nats_subject: String,
    /// What the relay publishes: redial, expired, outcomes, callbacks, agents (default: with
    /// --dispatch nats, redial, expired and outcomes; else expired and outcomes).
    #[arg(long, env = "REDIAL_NATS_PUBLISH", value_enum, value_delimiter = ',')]
    pub nats_publish: Option<Vec<Class>>,
    /// The stream's retention, when the relay creates it: `limits` keeps every message until
    /// max age (any number of consumers, replays); `work-queue` deletes one once a consumer
    /// acks it (one consumer per subject); `interest` once every consumer has.
    #[arg(
        long,
        env = "REDIAL_NATS_RETENTION",
        value_enum,
        default_value = "limits"
    )]
    pub nats_retention: Retention,
    /// How long the stream keeps a message, when the relay creates it.
    #[arg(long, env = "REDIAL_NATS_MAX_AGE", default_value = "7d", value_parser = duration(MINUTE, HUNDRED_YEARS))]
    pub nats_max_age: chrono::Duration,
    /// The stream's duplicate window, when the relay creates it: a message published again
    /// within it (after a restart) is dropped by the server.
    #[arg(long, env = "REDIAL_NATS_DUPLICATE_WINDOW", default_value = "2m", value_parser = duration(SECOND, WEEK))]
    pub nats_duplicate_window: chrono::Duration,
    /// The stream's replicas, when the relay creates it (3 in a three-node cluster).
    #[arg(long, env = "REDIAL_NATS_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=5))]
    pub nats_replicas: u32,
    /// Who hands redials to dialers: `http` (POST /v1/queue/lease) or `nats` (the stream;
    /// the HTTP lease then refuses, naming the stream). One at a time, so that no callback
    /// is dialed twice.
    #[arg(long, env = "REDIAL_DISPATCH", value_enum, default_value = "http")]
    pub dispatch: Dispatch,
}

impl Config {
    /// The relay's settings, if `--nats` is given; refuses flags that would hand redials to
    /// two dispatchers, or to none.
    pub fn relay(&self) -> Result<Option<RelayConfig>, String> {
        let Some(url) = &self.nats else {
            return match self.dispatch {
                Dispatch::Nats => Err("--dispatch nats needs --nats URL".to_owned()),
                Dispatch::Http => Ok(None),
            };
        };
        let publish = self
            .nats_publish
            .clone()
            .unwrap_or_else(|| match self.dispatch {
                Dispatch::Nats => vec![Class::Redial, Class::Expired, Class::Outcomes],
                Dispatch::Http => vec![Class::Expired, Class::Outcomes],
            });
        match (self.dispatch, publish.contains(&Class::Redial)) {
            (Dispatch::Http, true) => {
                return Err(
                    "--nats-publish redial needs --dispatch nats: with --dispatch http \
                            dialers lease redials over HTTP, and a callback must not be dialed \
                            by two"
                        .to_owned(),
                )
            }
            (Dispatch::Nats, false) => {
                return Err(
                    "--dispatch nats hands redials to dialers through the stream, so \
                            --nats-publish must include redial"
                        .to_owned(),
                )
            }
            _ => {}
        }
        Ok(Some(RelayConfig {
            url: url.clone(),
            creds: self.nats_creds.clone(),
            token: self.nats_token.clone(),
            stream: Wanted {
                name: self.nats_stream.clone(),
                prefix: self.nats_subject.clone(),
                retention: match self.nats_retention {
                    Retention::Limits => RetentionPolicy::Limits,
                    Retention::Interest => RetentionPolicy::Interest,
                    Retention::WorkQueue => RetentionPolicy::WorkQueue,
                },
                max_age: std_duration(self.nats_max_age),
                duplicate_window: std_duration(self.nats_duplicate_window),
                replicas: self.nats_replicas as usize,
            },
            publish,
        }))
    }

    /// Parses `serve`'s flags from `args` (without the program name and subcommand), with the
    /// same defaults as the command line.
    pub fn from_args<I, S>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let argv = ["redial".into(), "serve".into()]
            .into_iter()
            .chain(args.into_iter().map(Into::into));
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(config) => Ok(*config),
            _ => unreachable!("the subcommand is serve"),
        }
    }

    pub fn policy(&self) -> Policy {
        Policy {
            timezone: self.timezone,
            min_window: self.min_window,
            horizon: self.horizon,
            max_long_polls: self.max_long_polls,
            retry_busy: self.retry_busy,
            retry_no_answer: self.retry_no_answer,
            retry_failed: self.retry_failed,
            max_attempts: self.max_attempts,
            max_deliveries: self.max_deliveries,
            fallback: self.pcb_fallback,
            fallback_after: self.pcb_fallback_after,
            complete_on_contact: self.complete_on_contact,
            dispatch: match self.dispatch {
                Dispatch::Http => None,
                Dispatch::Nats => Some(format!(
                    "stream {}, subjects {}.events.redial.>",
                    self.nats_stream, self.nats_subject
                )),
            },
            calling_hours: CallingHours::new(self.calling_hours, self.calling_days),
        }
    }

    pub fn connection_limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections as usize,
            max_per_peer: self.max_connections_per_peer as usize,
            header_timeout: std_duration(self.header_timeout),
        }
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            path: self.db.clone(),
            synchronous: self.synchronous,
            queue_capacity: self.writer_queue.max(1),
            batch_max: self.batch_max.max(1),
            max_mib: self.max_db_mib,
        }
    }
}

fn parse_zone(s: &str) -> Result<Tz, String> {
    s.parse::<Tz>()
        .map_err(|_| format!("{s:?} is not an IANA time zone (e.g. Europe/London, UTC)"))
}

/// One thread fewer than the machine has cores: the writer thread, which every request that
/// stores something waits for, keeps a core to itself. On two cores, a second HTTP thread
/// served fewer requests, not more: the two took turns with the writer and the clients on the
/// same cores and stole each other's connections (BENCHMARKS.md, 2026-11-25).
fn default_http_threads() -> u16 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u16::try_from(cores.saturating_sub(1).clamp(1, 1024)).unwrap_or(1)
}

/// A duration as `std` counts it; every duration flag is checked to be one.
/// A stream's retention (`--nats-retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Retention {
    Limits,
    Interest,
    WorkQueue,
}

/// Who hands redials to dialers (`--dispatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dispatch {
    Http,
    Nats,
}

/// A subject prefix: tokens of letters, digits, `-` and `_`, joined by dots.
fn parse_subject_prefix(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a subject prefix: expected tokens of letters, digits, - and _ \
             joined by dots, such as \"redial\" or \"site1.redial\""
        ))
    }
}

pub fn std_duration(d: chrono::Duration) -> std::time::Duration {
    d.to_std().unwrap_or_default()
}

const ZERO: chrono::Duration = chrono::Duration::zero();
const MILLISECOND: chrono::Duration = chrono::Duration::milliseconds(1);
const SECOND: chrono::Duration = chrono::Duration::seconds(1);
const MINUTE: chrono::Duration = chrono::Duration::minutes(1);
const HOUR: chrono::Duration = chrono::Duration::hours(1);
const WEEK: chrono::Duration = chrono::Duration::days(7);
const TEN_YEARS: chrono::Duration = chrono::Duration::days(3650);
const HUNDRED_YEARS: chrono::Duration = chrono::Duration::days(36_500);

/// The parser of a duration flag that accepts `min` to `max`. The bounds keep every instant
/// computed from a flag (now + horizon, now - retention, a deadline) representable, so no
/// value can panic the service later; clap's error names the flag, this one the bound.
fn duration(
    min: chrono::Duration,
    max: chrono::Duration,
) -> impl Fn(&str) -> Result<chrono::Duration, String> + Clone + Send + Sync + 'static {
    move |s| {
        let d = parse_duration(s)?;
        if d > max {
            Err(format!(
                "{s} is more than {}, the largest value accepted",
                format_duration(max)
            ))
        } else if d < min {
            Err(format!(
                "{s} is less than {}, the smallest value accepted",
                format_duration(min)
            ))
        } else {
            Ok(d)
        }
    }
}

/// Parses a duration such as `90s`, `15m`, `2h`, `30d` or `250ms`.
pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let not_a_duration = || format!("{s:?} is not a duration; expected e.g. 90s, 15m, 2h, 30d");
    let n: i64 = digits.parse().map_err(|_| not_a_duration())?;
    let d = match unit {
        "ms" => chrono::Duration::try_milliseconds(n),
        "s" => chrono::Duration::try_seconds(n),
        "m" => n.checked_mul(60).and_then(chrono::Duration::try_seconds),
        "h" => n.checked_mul(3600).and_then(chrono::Duration::try_seconds),
        "d" => chrono::Duration::try_days(n),
        _ => {
            return Err(format!(
                "{s:?} has no known unit; expected ms, s, m, h or d"
            ))
        }
    };
    d.ok_or_else(|| format!("{s:?} is longer than any duration redial can count"))
}

/// A duration in the largest unit that divides it, the form [`parse_duration`] reads.
pub fn format_duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds();
    [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ]
    .into_iter()
    .find(|(_, unit)| ms % unit == 0 && ms != 0)
    .map_or_else(
        || format!("{ms}ms"),
        |(name, unit)| format!("{}{name}", ms / unit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(chrono::Duration::minutes(15)));
        assert_eq!(
            parse_duration("250ms"),
            Ok(chrono::Duration::milliseconds(250))
        );
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("9223372036854775807d").is_err());
        for s in ["365d", "15m", "90s", "250ms", "2h"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::from_args::<_, &str>([]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.db, PathBuf::from("data/redial.db"));
        assert_eq!(c.timezone, Tz::UTC);
        assert_eq!(c.min_window, chrono::Duration::minutes(15));
        assert_eq!(c.synchronous, Synchronous::Full);
        let p = c.policy();
        assert_eq!(p.retry_busy, chrono::Duration::minutes(1));
        assert_eq!(p.retry_no_answer, chrono::Duration::minutes(20));
        assert_eq!(p.retry_failed, chrono::Duration::minutes(5));
        assert_eq!((p.max_attempts, p.max_deliveries), (5, 10));
        assert_eq!(p.fallback, Fallback::Expire);
        assert_eq!(c.retention, chrono::Duration::days(30));
        assert_eq!(c.horizon, chrono::Duration::days(365));
        assert_eq!(p.calling_hours, None);
    }

    /// Every duration flag refuses a value past its bound with an error that names the flag
    /// and the largest value accepted, instead of panicking later at `now + horizon`.
    #[test]
    fn duration_flags_refuse_what_they_cannot_hold() {
        let flags = [
            ("--min-window", "7d"),
            ("--horizon", "3650d"),
            ("--request-timeout", "1h"),
            ("--header-timeout", "1h"),
            ("--body-timeout", "1h"),
            ("--retry-busy", "7d"),
            ("--retry-no-answer", "7d"),
            ("--retry-failed", "7d"),
            ("--pcb-fallback-after", "7d"),
            ("--retention", "36500d"),
        ];
        for (flag, largest) in flags {
            assert!(
                Config::from_args([flag, largest]).is_ok(),
                "{flag} {largest}"
            );
            let error = Config::from_args([flag, "100000000d"])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(flag) && error.contains(largest),
                "{flag}: {error}"
            );
        }
        let error = Config::from_args(["--min-window", "0m"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--min-window") && error.contains("1s"),
            "{error}"
        );
    }

    #[test]
    fn http_threads_leave_the_writer_a_core() {
        let cores = std::thread::available_parallelism().unwrap().get();
        let c = Config::from_args::<_, &str>([]).unwrap();
        assert_eq!(usize::from(c.http_threads), cores.saturating_sub(1).max(1));
        let c = Config::from_args(["--http-threads", "3"]).unwrap();
        assert_eq!(c.http_threads, 3);
        assert!(Config::from_args(["--http-threads", "0"]).is_err());
    }
}
