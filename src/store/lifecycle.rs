//! The callback state machine. Every change of a callback's `state` happens here.
//!
//! ```text
//!             open (window start, or retry time)
//!  scheduled ───────────────────────────────────▶ due ══ leased ══▶ completed
//!      ▲                                           │      (a dialer     (connected)
//!      │ busy / no_answer / failed, retry          │       holds its
//!      └──────────────── (inside the window) ──────┘       redial)
//!
//!  due ──▶ scheduled                calling hours closed: paused until the next opening
//!  any live state ──▶ expired     window ended, max attempts, owner absent (fallback `expire`)
//!  any live state ──▶ superseded  a newer callback for the same AccountNumber
//!  any live state ──▶ cancelled   POST /v1/callbacks/{id}/cancel
//! ```
//!
//! * `leased` is not stored: it is a live callback whose current redial event a dialer has
//!   taken (leased, or acked before reporting the attempt), read from the queue
//!   ([`super::callbacks::STATE`]). Leases, nacks and leases running
//!   out therefore write only the events table, and the two can never disagree.
//! * Staging: a callback's `redial` event is written up to [`STAGE_AHEAD`] before its window
//!   opens (or its retry is due), with `available_at` at that instant. A lease never hands out
//!   an event before its `available_at`, so at the instant itself the event is leasable with
//!   no write at all: a burst of windows opening in the same second costs nothing at its start.
//!   Opening (scheduled → due, owner check) follows in the tick; a lease writes only the
//!   events table, and the callback shows as `leased` either way.
//! * Ending a callback (expired, superseded, cancelled, completed) withdraws its open events;
//!   `expired` also writes an `expired` event so dialers and reports learn the customer was not
//!   reached.
//! * `next_at` is the one instant the scheduler must next look at a live callback: the staging
//!   time, then `open_at` (window start or retry time) while `scheduled`, `open_until` (or an
//!   earlier owner-absent deadline) while `due`, and NULL once finished.
//! * Parking: a `scheduled` callback whose staging time falls in a later hour ([`PARK_BUCKET`])
//!   than the next [`UNPARK_AHEAD`] has no `next_at` yet; `parked_at` says when the scheduler
//!   moves it onto the agenda ([`unpark`]), ten minutes before that hour begins. The agenda
//!   index is ordered by instant, so each new far-off callback used to write a page at a
//!   random place in it; parked ones sort by bucket and then id, so a stream of them appends
//!   to a few pages, and a bucket joins the agenda in bulk. A callback never has both
//!   `next_at` and `parked_at`, and a finished one has neither.
//! * Calling hours ([`crate::hours`]): `open_at` is always an instant when calling is allowed,
//!   and `open_until` is when that span of calling hours closes, or the window's end if that
//!   comes first; a redial is never handed out at or after `open_until`. At `open_until`
//!   before the window's end the callback pauses (due → scheduled): its unleased redial is
//!   withdrawn and the next one staged for the next opening. Retries move to the next opening
//!   the same way. Without calling hours, `open_until` is the window's end.
//! * Owner absent: a personal callback whose owner is neither logged in nor on a call when its
//!   window opens, or who logs out while it is open, gets a deadline `--pcb-fallback-after`
//!   later. If the owner is still away then, the fallback applies: `any-agent` re-issues the
//!   redial with `personal: false`; `next-day` moves the window to the same local hours the next
//!   day, once; `expire` ends the callback. The choice and its time are recorded.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::events::{self, ids_json, Kind, Withdraw};
use super::telephony::{agent_is_present, present};
use crate::hours::CallingHours;
use crate::lcm::window::{format_local, local_rfc3339, to_utc};
use crate::lcm::{PersonalCallback, UserId, UtcWindow};

/// How long before a window opens (or a retry is due) its redial event is written.
pub const STAGE_AHEAD: Duration = Duration::seconds(60);

/// Far-off callbacks wait for the scheduler in buckets of this length (see "Parking" above).
pub const PARK_BUCKET: Duration = Duration::hours(1);

/// A bucket joins the agenda this long before it begins: ample time to move even a crowded
/// bucket, a batch per tick, before its first staging time.
pub const UNPARK_AHEAD: Duration = Duration::minutes(10);

/// Where a callback the scheduler first needs at `stage_at` (ms) waits, seen at `now_ms`:
/// `(next_at, parked_at)`, exactly one of them set.
pub fn agenda_slot(stage_at: i64, now_ms: i64) -> (Option<i64>, Option<i64>) {
    let bucket = PARK_BUCKET.num_milliseconds();
    let unpark_at = stage_at.div_euclid(bucket) * bucket - UNPARK_AHEAD.num_milliseconds();
    if unpark_at > now_ms {
        (None, Some(unpark_at))
    } else {
        (Some(stage_at), None)
    }
}

/// What to do when a personal callback's owner is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fallback {
    /// Re-issue the redial to any agent (`personal: false`).
    AnyAgent,
    /// Move the window to the same hours the next day, once.
    NextDay,
    /// End the callback as expired.
    Expire,
}

impl Fallback {
    fn as_str(self) -> &'static str {
        match self {
            Fallback::AnyAgent => "any-agent",
            Fallback::NextDay => "next-day",
            Fallback::Expire => "expire",
        }
    }
}

/// The rules the state machine follows, from the command line.
#[derive(Debug, Clone)]
pub struct Policy {
    pub retry_busy: Duration,
    pub retry_no_answer: Duration,
    pub retry_failed: Duration,
    pub max_attempts: i64,
    pub max_deliveries: i64,
    pub fallback: Fallback,
    pub fallback_after: Duration,
    /// When contacts may be called; `None`: at any time.
    pub calling_hours: Option<CallingHours>,
}

impl Default for Policy {
    /// Cisco Outbound Option's retry defaults; fallback `expire` after 15 minutes.
    fn default() -> Self {
        Self {
            retry_busy: Duration::minutes(1),
            retry_no_answer: Duration::minutes(20),
            retry_failed: Duration::minutes(5),
            max_attempts: 5,
            max_deliveries: 10,
            fallback: Fallback::Expire,
            fallback_after: Duration::minutes(15),
            calling_hours: None,
        }
    }
}

/// What a dialer reports after dialing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Connected,
    Busy,
    NoAnswer,
    Failed,
}

impl AttemptResult {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "connected" => Some(Self::Connected),
            "busy" => Some(Self::Busy),
            "no_answer" => Some(Self::NoAnswer),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Failed => "failed",
        }
    }
}

/// Why an attempt or a cancel was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no callback has id {0}")]
    Unknown(i64),
    #[error("callback {id} is {state}; only a live callback can take this")]
    Finished { id: i64, state: String },
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

impl From<rusqlite::Error> for TransitionError {
    fn from(e: rusqlite::Error) -> Self {
        TransitionError::Store(e.into())
    }
}

/// The fields the state machine reads.
#[derive(Debug, Clone)]
pub struct Live {
    pub id: i64,
    pub state: String,
    pub user_id: String,
    pub personal: bool,
    pub window_start: i64,
    pub window_end: i64,
    pub local_start: String,
    pub local_end: String,
    pub timezone: String,
    pub attempts: i64,
    pub fallback: Option<String>,
    pub open_at: i64,
    pub open_until: i64,
    pub staged: bool,
}

const LIVE_COLUMNS: &str = "id, state, user_id, personal, window_start, window_end, local_start,
    local_end, timezone, attempts, fallback, coalesce(open_at, window_start), staged,
    coalesce(open_until, window_end)";

fn live_from_row(r: &Row<'_>) -> Result<Live, rusqlite::Error> {
    Ok(Live {
        id: r.get(0)?,
        state: r.get(1)?,
        user_id: r.get(2)?,
        personal: r.get(3)?,
        window_start: r.get(4)?,
        window_end: r.get(5)?,
        local_start: r.get(6)?,
        local_end: r.get(7)?,
        timezone: r.get(8)?,
        attempts: r.get(9)?,
        fallback: r.get(10)?,
        open_at: r.get(11)?,
        staged: r.get(12)?,
        open_until: r.get(13)?,
    })
}

fn load(conn: &Connection, id: i64) -> Result<Option<Live>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT {LIVE_COLUMNS} FROM callbacks WHERE id = ?1"
    ))?
    .query_row([id], live_from_row)
    .optional()
}

/// Live callbacks whose `next_at` has come, earliest first.
pub fn agenda(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Live>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT {LIVE_COLUMNS} FROM callbacks WHERE next_at <= ?1 ORDER BY next_at LIMIT ?2 + 0"
    ))?
    .query_map(params![now.timestamp_millis(), limit], live_from_row)?
    .collect()
}

/// The earliest instant the scheduler has work with a callback: the first `next_at`, or the
/// first bucket to unpark. Each `IS NOT NULL` lets SQLite read the minimum from its partial
/// index instead of scanning every callback.
pub fn next_at(conn: &Connection) -> Result<Option<i64>, rusqlite::Error> {
    let agenda: Option<i64> = conn
        .prepare_cached("SELECT min(next_at) FROM callbacks WHERE next_at IS NOT NULL")?
        .query_row([], |r| r.get(0))?;
    let parked: Option<i64> = conn
        .prepare_cached("SELECT min(parked_at) FROM callbacks WHERE parked_at IS NOT NULL")?
        .query_row([], |r| r.get(0))?;
    Ok(agenda.into_iter().chain(parked).min())
}

/// Moves up to `limit` parked callbacks whose bucket is due onto the agenda, at their staging
/// time. Returns how many moved.
pub fn unpark(conn: &Connection, now: DateTime<Utc>, limit: i64) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(
        "UPDATE callbacks SET next_at = coalesce(open_at, window_start) - ?3, parked_at = NULL
         WHERE id IN (SELECT id FROM callbacks WHERE parked_at <= ?1 ORDER BY parked_at
                      LIMIT ?2 + 0)",
    )?
    .execute(params![
        now.timestamp_millis(),
        limit,
        STAGE_AHEAD.num_milliseconds()
    ])
}

/// The first instant at or after `at` (ms) when the callback may be dialed, and when that
/// chance closes: the end of that span of calling hours, or the window's end if sooner.
/// `None` if calling is not allowed again before the window ends.
fn callable(policy: &Policy, zone: Tz, at: i64, window_end: i64) -> Option<(i64, i64)> {
    let (open, until) = match &policy.calling_hours {
        None => (at, window_end),
        Some(hours) => {
            let span = hours.span_from(zone, utc(at));
            (
                span.start.timestamp_millis(),
                span.end.timestamp_millis().min(window_end),
            )
        }
    };
    (open < window_end).then_some((open, until))
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn zone_of(cb: &Live) -> Tz {
    cb.timezone.parse().unwrap_or(Tz::UTC)
}

/// A callback just created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    pub id: i64,
    /// When the scheduler must first look at it: its staging time, or when its bucket unparks.
    pub wake_at: i64,
}

/// Creates a `scheduled` callback for `req`, superseding the contact's live one (whose open
/// events are withdrawn). The window is already clipped to calling hours, so its start is an
/// instant when calling is allowed. The caller opens it if its window has started.
pub fn create(
    conn: &Connection,
    req: &PersonalCallback,
    window: &UtcWindow,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Created, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    // Looked up first, not found by an UPDATE ... RETURNING: RETURNING costs a temporary
    // table on every run, and most requests have no live callback to supersede.
    let superseded: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM callbacks
             WHERE account_number = ?1 AND state IN ('scheduled', 'due')",
        )?
        .query_row([req.account_number.as_str()], |r| r.get(0))
        .optional()?;
    if let Some(old) = superseded {
        conn.prepare_cached(
            "UPDATE callbacks SET state = 'superseded', next_at = NULL, parked_at = NULL,
                 staged = 0, updated_at = ?2
             WHERE id = ?1",
        )?
        .execute(params![old, now_ms])?;
        events::withdraw(conn, old, Withdraw::Open, now)?;
    }
    let (start, end) = (
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
    );
    // A window that has started opens now, or at the next opening if calling hours are closed.
    let (open_at, open_until) =
        callable(policy, window.zone, start.max(now_ms), end).unwrap_or((start, end));
    let stage_at = open_at - STAGE_AHEAD.num_milliseconds();
    let (next_at, parked_at) = agenda_slot(stage_at, now_ms);
    conn.prepare_cached(
        "INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
             window_end, local_start, local_end, timezone, start_dst, end_dst, state, open_at,
             next_at, parked_at, supersedes, created_at, updated_at, open_until,
             requested_start, requested_end, calling_hours, window_start_local,
             window_end_local)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'scheduled', ?21, ?14, ?22, ?12,
             ?13, ?13, ?15, ?16, ?17, ?18, ?19, ?20)",
    )?
    .execute(params![
        req.callid.as_str(),
        req.account_number.as_str(),
        req.callback_mode_id,
        req.user_id.as_str(),
        start,
        end,
        window.local_start,
        window.local_end,
        window.zone.name(),
        window.start_adjusted.as_str(),
        window.end_adjusted.as_str(),
        superseded,
        now_ms,
        next_at,
        open_until,
        window.requested_start.timestamp_millis(),
        window.requested_end.timestamp_millis(),
        window.calling_hours,
        window.local_rfc3339(window.start),
        window.local_rfc3339(window.end),
        open_at,
        parked_at,
    ])?;
    Ok(Created {
        id: conn.last_insert_rowid(),
        wake_at: parked_at.unwrap_or(stage_at),
    })
}

/// Stages and opens the callback `id` at once if its time has come (a window that started
/// before the request arrived); returns when the scheduler must next look at it.
pub fn open_if_due(
    conn: &Connection,
    id: i64,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Option<i64>, rusqlite::Error> {
    let Some(cb) = load(conn, id)? else {
        return Ok(None);
    };
    if cb.state == "scheduled" && cb.open_at <= now.timestamp_millis() {
        stage(conn, &cb, now)?;
        open(conn, &[id], now, policy)?;
    }
    conn.prepare_cached("SELECT coalesce(next_at, parked_at) FROM callbacks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
}

/// Writes the callback's next redial event, leasable from `open_at`.
fn stage(conn: &Connection, cb: &Live, now: DateTime<Utc>) -> Result<(), rusqlite::Error> {
    events::issue(
        conn,
        cb.id,
        Kind::Redial,
        cb.attempts + 1,
        None,
        cb.open_at,
        now,
    )?;
    conn.prepare_cached("UPDATE callbacks SET staged = 1, next_at = ?2 WHERE id = ?1")?
        .execute(params![cb.id, cb.open_at])?;
    Ok(())
}

/// The `next_at` of a callback opening at `?2` (ms): its `open_until`, or, for a personal
/// callback whose owner is neither logged in nor on a call, a deadline `?3` ms later. SQL, so
/// that a whole batch opens in one statement.
fn opened_next_at() -> String {
    format!(
        "CASE WHEN personal = 1 AND coalesce(fallback, '') <> 'any-agent'
            AND NOT {}
        THEN min(coalesce(open_until, window_end), ?2 + ?3) ELSE coalesce(open_until, window_end) END",
        present("callbacks.user_id")
    )
}

/// The staged redials of `ids` have become leasable: scheduled → due, with `open_until` or an
/// owner-absent deadline as the next instant. Callbacks no longer staged (an attempt was
/// reported first, or they were opened already) are left alone. Returns how many opened.
pub fn open(
    conn: &Connection,
    ids: &[i64],
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "UPDATE callbacks SET state = 'due', staged = 0, next_at = {}, opened_at = coalesce(opened_at, ?2),
             updated_at = ?2
         WHERE staged = 1 AND id IN (SELECT value FROM json_each(?1))",
        opened_next_at()
    ))?
    .execute(params![
        ids_json(ids),
        now.timestamp_millis(),
        policy.fallback_after.num_milliseconds()
    ])
}

fn owner_present(conn: &Connection, cb: &Live) -> Result<bool, rusqlite::Error> {
    match UserId::parse(cb.user_id.as_str()) {
        Ok(user) => agent_is_present(conn, &user),
        Err(_) => Ok(false),
    }
}

/// Any live state → expired, with its reason, and an `expired` event.
pub fn expire(
    conn: &Connection,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE callbacks SET state = 'expired', end_reason = ?2, next_at = NULL,
                 parked_at = NULL, staged = 0, updated_at = ?3
             WHERE id = ?1 AND state IN ('scheduled', 'due')",
        )?
        .execute(params![id, reason, now.timestamp_millis()])?;
    if changed > 0 {
        events::withdraw(conn, id, Withdraw::Open, now)?;
        let attempts: i64 = conn
            .prepare_cached("SELECT attempts FROM callbacks WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        events::issue(
            conn,
            id,
            Kind::Expired,
            attempts,
            Some(reason),
            now.timestamp_millis(),
            now,
        )?;
    }
    Ok(())
}

/// What the scheduler did with one callback from its agenda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The redial event is written, leasable from the callback's `open_at`.
    Staged,
    /// Its redial is leasable now: the caller opens it with [`open`], in a batch.
    Open,
    Expired,
    /// Calling hours closed before the window's end: back to `scheduled` until they reopen.
    Paused,
    FellBack,
    /// The owner came back before the deadline: nothing to do until the window ends.
    OwnerBack,
}

/// The scheduler's step for one callback whose `next_at` has come. Opening is left to the
/// caller, so a batch of callbacks opens in one statement.
pub fn advance(
    conn: &Connection,
    cb: &Live,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Step, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    if now_ms >= cb.window_end {
        expire(conn, cb.id, "window-ended", now)?;
        return Ok(Step::Expired);
    }
    if cb.state == "scheduled" || cb.staged {
        if cb.open_at <= now_ms && now_ms >= cb.open_until {
            // Its span of calling hours passed before it was opened (the scheduler was
            // stopped, say): wait for the next one.
            return pause(conn, cb, now, policy);
        }
        if !cb.staged {
            stage(conn, cb, now)?;
        }
        if cb.open_at <= now_ms {
            return Ok(Step::Open);
        }
        return Ok(Step::Staged);
    }
    // due before the window's end: calling hours closed, or an owner-absent deadline.
    if now_ms >= cb.open_until {
        return pause(conn, cb, now, policy);
    }
    if owner_present(conn, cb)? {
        set_next_at(conn, cb.id, cb.open_until, now)?;
        return Ok(Step::OwnerBack);
    }
    fall_back(conn, cb, now, policy)?;
    Ok(Step::FellBack)
}

/// due (or staged) → scheduled at the close of calling hours: the redial nobody took is
/// withdrawn and the next one staged for the next opening; a redial a dialer holds stays with
/// it.
fn pause(
    conn: &Connection,
    cb: &Live,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Step, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let Some((open, until)) = callable(policy, zone_of(cb), now_ms, cb.window_end) else {
        expire(conn, cb.id, "window-ended", now)?;
        return Ok(Step::Expired);
    };
    events::withdraw(conn, cb.id, Withdraw::Unleased, now)?;
    reschedule(conn, cb.id, open, until, now)?;
    Ok(Step::Paused)
}

/// Back to `scheduled`, leasable again from `open` until `until`; staged a little before.
fn reschedule(
    conn: &Connection,
    id: i64,
    open: i64,
    until: i64,
    now: DateTime<Utc>,
) -> Result<i64, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let stage_at = (open - STAGE_AHEAD.num_milliseconds()).max(now_ms);
    let (next_at, parked_at) = agenda_slot(stage_at, now_ms);
    conn.prepare_cached(
        "UPDATE callbacks SET state = 'scheduled', open_at = ?2, open_until = ?3, next_at = ?4,
             parked_at = ?6, staged = 0, updated_at = ?5
         WHERE id = ?1",
    )?
    .execute(params![id, open, until, next_at, now_ms, parked_at])?;
    Ok(parked_at.unwrap_or(stage_at))
}

fn set_next_at(
    conn: &Connection,
    id: i64,
    next_at: i64,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("UPDATE callbacks SET next_at = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, next_at, now.timestamp_millis()])?;
    Ok(())
}

fn record_fallback(
    conn: &Connection,
    id: i64,
    fallback: Fallback,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("UPDATE callbacks SET fallback = ?2, fallback_at = ?3 WHERE id = ?1")?
        .execute(params![id, fallback.as_str(), now.timestamp_millis()])?;
    Ok(())
}

fn fall_back(
    conn: &Connection,
    cb: &Live,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<(), rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    match policy.fallback {
        Fallback::Expire => {
            record_fallback(conn, cb.id, Fallback::Expire, now)?;
            expire(conn, cb.id, "owner-absent", now)
        }
        Fallback::AnyAgent => {
            record_fallback(conn, cb.id, Fallback::AnyAgent, now)?;
            events::withdraw(conn, cb.id, Withdraw::Open, now)?;
            conn.prepare_cached(
                "UPDATE callbacks SET personal = 0, state = 'due',
                     next_at = coalesce(open_until, window_end), updated_at = ?2
                 WHERE id = ?1",
            )?
            .execute(params![cb.id, now_ms])?;
            events::issue(
                conn,
                cb.id,
                Kind::Redial,
                cb.attempts + 1,
                None,
                now_ms,
                now,
            )
        }
        Fallback::NextDay if cb.fallback.as_deref() == Some("next-day") => {
            // Moved once already: the owner missed the second day too.
            expire(conn, cb.id, "owner-absent", now)
        }
        Fallback::NextDay => {
            let Some(moved) = next_day(cb, policy) else {
                return expire(conn, cb.id, "owner-absent", now);
            };
            record_fallback(conn, cb.id, Fallback::NextDay, now)?;
            events::withdraw(conn, cb.id, Withdraw::Open, now)?;
            let (next_at, parked_at) =
                agenda_slot(moved.start - STAGE_AHEAD.num_milliseconds(), now_ms);
            conn.prepare_cached(
                "UPDATE callbacks SET state = 'scheduled', window_start = ?2, window_end = ?3,
                     local_start = ?4, local_end = ?5, open_at = ?2, open_until = ?6,
                     next_at = ?8, parked_at = ?11, staged = 0, updated_at = ?7,
                     window_start_local = ?9, window_end_local = ?10
                 WHERE id = ?1",
            )?
            .execute(params![
                cb.id,
                moved.start,
                moved.end,
                moved.local_start,
                moved.local_end,
                moved.open_until,
                now_ms,
                next_at,
                local_rfc3339(zone_of(cb), utc(moved.start)),
                local_rfc3339(zone_of(cb), utc(moved.end)),
                parked_at,
            ])?;
            Ok(())
        }
    }
}

/// A window moved to the next day.
struct Moved {
    start: i64,
    end: i64,
    open_until: i64,
    local_start: String,
    local_end: String,
}

/// The same local hours one day later, read in the callback's zone and clipped to calling
/// hours; `None` if no minute of it may be called.
fn next_day(cb: &Live, policy: &Policy) -> Option<Moved> {
    let zone = zone_of(cb);
    let parse = |s: &str| NaiveDateTime::parse_from_str(s, "%d/%m/%Y %H:%M").ok();
    let start = parse(&cb.local_start)? + Duration::days(1);
    let end = parse(&cb.local_end)? + Duration::days(1);
    let length = cb.window_end - cb.window_start;
    let start_ms = to_utc(zone, start).0.timestamp_millis();
    let end_ms = to_utc(zone, end).0.timestamp_millis();
    // A point window keeps its length.
    let end_ms = if end_ms > start_ms {
        end_ms
    } else {
        start_ms + length
    };
    let (start_ms, end_ms) = match &policy.calling_hours {
        None => (start_ms, end_ms),
        Some(hours) => {
            let (s, e) = hours.clip(zone, utc(start_ms), utc(end_ms))?;
            (s.timestamp_millis(), e.timestamp_millis())
        }
    };
    let (_, open_until) = callable(policy, zone, start_ms, end_ms)?;
    Some(Moved {
        start: start_ms,
        end: end_ms,
        open_until,
        local_start: format_local(start),
        local_end: format_local(end),
    })
}

/// A dialer's report. `connected` completes the callback; the other results retry inside the
/// window after the policy's delay, until `max_attempts` or the window's end. Returns the
/// callback's `next_at` afterwards.
pub fn record_attempt(
    conn: &Connection,
    id: i64,
    result: AttemptResult,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Option<i64>, TransitionError> {
    let cb = load(conn, id)?.ok_or(TransitionError::Unknown(id))?;
    let late_connect = cb.state == "expired" && result == AttemptResult::Connected;
    // Paused at the close of calling hours while a dialer held the redial: its report counts.
    let paused_in_hand = cb.state == "scheduled" && holds_redial(conn, &cb)?;
    if cb.state != "due" && !late_connect && !paused_in_hand {
        return Err(TransitionError::Finished {
            id,
            state: cb.state,
        });
    }
    let now_ms = now.timestamp_millis();
    let attempt = cb.attempts + 1;
    conn.prepare_cached(
        "INSERT INTO attempts (callback_id, attempt, result, at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, attempt, result.as_str(), now_ms])?;
    conn.prepare_cached("UPDATE callbacks SET attempts = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, attempt, now_ms])?;
    events::finish_open(conn, id, now)?;
    let delay = match result {
        AttemptResult::Connected => {
            // A dial that began inside the window and connected just after it ended still
            // reached the customer.
            conn.prepare_cached(
                "UPDATE callbacks SET state = 'completed', end_reason = 'connected', next_at = NULL,
                     parked_at = NULL, staged = 0
                 WHERE id = ?1",
            )?
            .execute([id])?;
            return Ok(None);
        }
        AttemptResult::Busy => policy.retry_busy,
        AttemptResult::NoAnswer => policy.retry_no_answer,
        AttemptResult::Failed => policy.retry_failed,
    };
    if attempt >= policy.max_attempts {
        expire(conn, id, "max-attempts", now)?;
        return Ok(None);
    }
    let retry_at = now_ms + delay.num_milliseconds();
    let Some((open, until)) = callable(policy, zone_of(&cb), retry_at, cb.window_end) else {
        expire(conn, id, "window-ended", now)?;
        return Ok(None);
    };
    Ok(Some(reschedule(conn, id, open, until, now)?))
}

/// Whether a dialer holds (or has acked) the callback's current redial.
fn holds_redial(conn: &Connection, cb: &Live) -> Result<bool, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM events WHERE callback_id = ?1 AND type = 'redial'
             AND state IN ('leased', 'acked') AND attempt = ?2)",
    )?
    .query_row(params![cb.id, cb.attempts + 1], |r| r.get(0))
}

/// Any live state → cancelled; its open events are withdrawn.
pub fn cancel(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<(), TransitionError> {
    let cb = load(conn, id)?.ok_or(TransitionError::Unknown(id))?;
    if !matches!(cb.state.as_str(), "scheduled" | "due") {
        return Err(TransitionError::Finished {
            id,
            state: cb.state,
        });
    }
    conn.prepare_cached(
        "UPDATE callbacks SET state = 'cancelled', end_reason = 'cancelled', next_at = NULL,
             parked_at = NULL, staged = 0, updated_at = ?2
         WHERE id = ?1",
    )?
    .execute(params![id, now.timestamp_millis()])?;
    events::withdraw(conn, id, Withdraw::Open, now)?;
    Ok(())
}

/// The agent logged out: each open personal callback of theirs gets an owner-absent deadline.
/// Returns the earliest such deadline.
pub fn owner_left(
    conn: &Connection,
    user: &UserId,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Option<i64>, rusqlite::Error> {
    if agent_is_present(conn, user)? {
        return Ok(None);
    }
    let deadline = now.timestamp_millis() + policy.fallback_after.num_milliseconds();
    conn.prepare_cached(
        "UPDATE callbacks SET next_at = min(next_at, ?2)
         WHERE user_id = ?1 AND state = 'due' AND personal = 1
           AND coalesce(fallback, '') <> 'any-agent'
         RETURNING next_at",
    )?
    .query_map(params![user.as_str(), deadline], |r| r.get::<_, i64>(0))?
    .try_fold(None, |earliest: Option<i64>, at| {
        let at = at?;
        Ok(Some(earliest.map_or(at, |e| e.min(at))))
    })
}
