//! The rules redial follows, as the command line sets them: how a request's window is read,
//! when contacts may be called, how often and how soon they are redialed, what happens when a
//! personal callback's owner is away, and the limits the service holds dialers to.

use chrono::Duration;
use chrono_tz::Tz;

use crate::hours::CallingHours;

/// What to do when a personal callback's owner is away (`--pcb-fallback`). Recorded on the
/// callback when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Fallback {
    /// Re-issue the redial to any agent (`personal: false`).
    AnyAgent,
    /// Move the window to the same hours the next day, once.
    NextDay,
    /// End the callback as expired.
    Expire,
}

impl Fallback {
    pub const ALL: [Fallback; 3] = [Fallback::AnyAgent, Fallback::NextDay, Fallback::Expire];

    /// The name on the command line and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::AnyAgent => "any-agent",
            Fallback::NextDay => "next-day",
            Fallback::Expire => "expire",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    /// The zone local times are read in when a request names none (`--timezone`).
    pub timezone: Tz,
    /// How long a point window (start equal to end) stays open.
    pub min_window: Duration,
    /// The furthest ahead a window may start.
    pub horizon: Duration,
    /// When contacts may be called; `None`: at any time.
    pub calling_hours: Option<CallingHours>,
    pub retry_busy: Duration,
    pub retry_no_answer: Duration,
    pub retry_failed: Duration,
    pub max_attempts: i64,
    /// Deliveries of one event without an ack before it is dead-lettered.
    pub max_deliveries: i64,
    pub fallback: Fallback,
    /// How long the owner may be away from an open personal callback.
    pub fallback_after: Duration,
    /// Dialers long-polling at once.
    pub max_long_polls: usize,
    /// An outcome on another call for a contact ends its live callback as reached
    /// (`--complete-on-contact`).
    pub complete_on_contact: bool,
    /// Where redials go when NATS hands them to dialers (`--dispatch nats`): the HTTP lease
    /// then refuses, naming it. `None`: dialers lease over HTTP.
    pub dispatch: Option<String>,
}

impl Default for Policy {
    /// The command line's defaults: Cisco Outbound Option's retries, fallback `expire` after 15
    /// minutes, windows read in UTC.
    fn default() -> Self {
        Self {
            timezone: Tz::UTC,
            min_window: Duration::minutes(15),
            horizon: Duration::days(365),
            calling_hours: None,
            retry_busy: Duration::minutes(1),
            retry_no_answer: Duration::minutes(20),
            retry_failed: Duration::minutes(5),
            max_attempts: 5,
            max_deliveries: 10,
            fallback: Fallback::Expire,
            fallback_after: Duration::minutes(15),
            max_long_polls: 512,
            complete_on_contact: true,
            dispatch: None,
        }
    }
}
