//! The statements that move callbacks through their states, applying what
//! [`crate::lifecycle::decide`] decides; the state machine's table is in [`crate::lifecycle`].
//! Every change of a callback's `state` happens here.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::bus::{self, Change};
use super::events::{self, ids_json, Withdraw};
use super::sql::local_time;
use super::telephony::{agent_is_present, present};
use crate::lcm::{
    AccountNumber, CallId, CallbackAsked, CallbackKind, Disposition, UserId, UtcWindow,
};
use crate::lifecycle::decide::{
    self, agenda_slot, first_chance, restage, Absence, AfterAttempt, Live, Moved, Span, Step,
    STAGE_AHEAD,
};
use crate::lifecycle::{AttemptResult, CallbackState, EndReason, EventKind};
use crate::policy::{Fallback, Policy};

/// Set on a callback as it finishes: when a dialer first took one of its redials in its
/// current window (the callback SLA's first lease). Kept on the row because its events go
/// with it at the purge, and so that a report over a million finished callbacks reads a
/// column instead of the queue; the lease itself, the hot path, writes only the event.
const KEEP_FIRST_LEASE: &str = "first_leased_at = (SELECT min(e.first_leased_at) FROM events e
    WHERE e.callback_id = callbacks.id AND e.type = 'redial'
      AND e.first_leased_at >= callbacks.window_start)";

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
        local_start: local_time(r, 6)?,
        local_end: local_time(r, 7)?,
        zone: r.get(8)?,
        attempts: r.get(9)?,
        fallback: r.get(10)?,
        open_at: r.get(11)?,
        staged: r.get(12)?,
        open_until: r.get(13)?,
    })
}

fn live(conn: &Connection, id: i64) -> Result<Option<Live>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT {LIVE_COLUMNS} FROM callbacks WHERE id = ?1"
    ))?
    .query_row([id], live_from_row)
    .optional()
}

/// The callback `id` and the state it shows (`leased` while a dialer holds its redial).
pub fn load(conn: &Connection, id: i64) -> Result<Option<(Live, CallbackState)>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT {LIVE_COLUMNS}, shown_state FROM callbacks_shown WHERE id = ?1"
    ))?
    .query_row([id], |r| Ok((live_from_row(r)?, r.get(14)?)))
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

/// A callback just created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    pub id: i64,
    /// When the scheduler must first look at it: its staging time, or when its bucket unparks.
    pub wake_at: i64,
}

/// Creates a `scheduled` callback for `req`, superseding the contact's live one (whose open
/// events are withdrawn). The window is already clipped to calling hours. The caller opens it
/// ([`open_if_due`]) if its window has started.
pub fn create(
    conn: &Connection,
    d: &Disposition,
    asked: &CallbackAsked,
    window: &UtcWindow,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Created, rusqlite::Error> {
    let superseded = supersede(conn, &d.account_number, now)?;
    insert(conn, d, asked, window, superseded, now, policy)
}

/// Ends the contact's live callback, if it has one, as `superseded`; returns its id.
pub fn supersede(
    conn: &Connection,
    account: &AccountNumber,
    now: DateTime<Utc>,
) -> Result<Option<i64>, rusqlite::Error> {
    // Looked up first, not found by an UPDATE ... RETURNING: RETURNING costs a temporary
    // table on every run, and most requests have no live callback to supersede.
    let superseded = live_for(conn, account)?;
    if let Some(old) = superseded {
        conn.prepare_cached(&format!(
            "UPDATE callbacks SET state = 'superseded', next_at = NULL, parked_at = NULL,
                 staged = 0, updated_at = ?2, {KEEP_FIRST_LEASE}
             WHERE id = ?1"
        ))?
        .execute(params![old, now.timestamp_millis()])?;
        crate::telemetry::pending::ended(CallbackState::Superseded, None);
        events::withdraw(conn, old, Withdraw::Open, now)?;
        bus::callback_changed(conn, old, Change::Superseded, now)?;
    }
    Ok(superseded)
}

/// Inserts the `scheduled` callback `asked` for by `d`, recording the one it `supersedes`.
/// The contact must have no live callback left (the database refuses a second): [`create`]
/// supersedes it first; the ingest benchmark's baselines call this alone. The comments of a
/// message that sets no outcome row are kept on the callback.
pub fn insert(
    conn: &Connection,
    d: &Disposition,
    asked: &CallbackAsked,
    window: &UtcWindow,
    superseded: Option<i64>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Created, rusqlite::Error> {
    let comments = (!d.sets_outcome()).then_some(d);
    let now_ms = now.timestamp_millis();
    let (start, end) = (
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
    );
    let first = first_chance(policy, window.zone, start, end, now_ms);
    let stage_at = first.open - STAGE_AHEAD.num_milliseconds();
    let slot = agenda_slot(stage_at, now_ms);
    conn.prepare_cached(
        "INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
             window_end, local_start, local_end, timezone, start_dst, end_dst, state, open_at,
             next_at, parked_at, supersedes, created_at, updated_at, open_until,
             requested_start, requested_end, calling_hours, window_start_local,
             window_end_local, kind, personal, message, agent_comments, lead_score,
             target_amount)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'scheduled', ?21, ?14, ?22, ?12,
             ?13, ?13, ?15, ?16, ?17, ?18, ?19, ?20, ?23, ?24, ?25, ?26, ?27, ?28)",
    )?
    .execute(params![
        d.callid,
        d.account_number,
        asked.callback_mode_id,
        d.user_id,
        start,
        end,
        window.local_start,
        window.local_end,
        window.zone.name(),
        window.start_adjusted,
        window.end_adjusted,
        superseded,
        now_ms,
        slot.next_at(),
        first.until,
        window.requested_start.timestamp_millis(),
        window.requested_end.timestamp_millis(),
        window.calling_hours,
        window.local_rfc3339(window.start),
        window.local_rfc3339(window.end),
        first.open,
        slot.parked_at(),
        asked.kind,
        asked.kind == CallbackKind::Personal,
        d.subtopic,
        comments.map(|d| d.agent_comments.as_str()),
        comments.map(|d| d.lead_score),
        comments.map(|d| d.target_amount),
    ])?;
    Ok(Created {
        id: conn.last_insert_rowid(),
        wake_at: slot.wake_at(),
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
    let Some(cb) = live(conn, id)? else {
        return Ok(None);
    };
    if cb.state == CallbackState::Scheduled && cb.open_at <= now.timestamp_millis() {
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
        EventKind::Redial,
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

/// Any live state → expired, with its reason, and an `expired` event.
pub fn expire(
    conn: &Connection,
    id: i64,
    reason: EndReason,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    if end(conn, id, CallbackState::Expired, reason, now)? {
        issue_expired(conn, id, reason, now)?;
    }
    Ok(())
}

/// The `expired` event that tells dialers and reports the callback `id` ended for `reason`.
fn issue_expired(
    conn: &Connection,
    id: i64,
    reason: EndReason,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let attempts: i64 = conn
        .prepare_cached("SELECT attempts FROM callbacks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    let now_ms = now.timestamp_millis();
    events::issue(
        conn,
        id,
        EventKind::Expired,
        attempts,
        Some(reason),
        now_ms,
        now,
    )
}

/// What the scheduler did with one callback from its agenda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
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

/// Applies the scheduler's step ([`decide::advance`]) to a callback whose `next_at` has come.
/// Opening is left to the caller, so a batch of callbacks opens in one statement.
pub fn advance(
    conn: &Connection,
    cb: &Live,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Applied, rusqlite::Error> {
    Ok(match decide::advance(cb, now.timestamp_millis(), policy) {
        Step::Expire(reason) => {
            expire(conn, cb.id, reason, now)?;
            Applied::Expired
        }
        Step::Stage { open } => {
            stage(conn, cb, now)?;
            // Leasable at the window's opening if written ahead, else from this commit.
            crate::telemetry::pending::leasable(now.timestamp_millis() - cb.open_at);
            if open {
                Applied::Open
            } else {
                Applied::Staged
            }
        }
        Step::Open => Applied::Open,
        Step::Wait => Applied::Staged,
        Step::Pause(span) => {
            // A redial a dialer holds stays with it: it may be dialing already.
            events::withdraw(conn, cb.id, Withdraw::Unleased, now)?;
            reschedule(conn, cb.id, span, now)?;
            Applied::Paused
        }
        Step::OwnerDeadline => {
            let present = agent_is_present(conn, &cb.user_id)?;
            absence(conn, cb, decide::owner_deadline(cb, present, policy), now)?
        }
    })
}

/// Back to `scheduled`, leasable again in `span`; staged a little before. Returns when the
/// scheduler must next look at it.
fn reschedule(
    conn: &Connection,
    id: i64,
    span: Span,
    now: DateTime<Utc>,
) -> Result<i64, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let slot = restage(span.open, now_ms);
    conn.prepare_cached(
        "UPDATE callbacks SET state = 'scheduled', open_at = ?2, open_until = ?3, next_at = ?4,
             parked_at = ?6, staged = 0, updated_at = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        span.open,
        span.until,
        slot.next_at(),
        now_ms,
        slot.parked_at()
    ])?;
    Ok(slot.wake_at())
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
        .execute(params![id, fallback, now.timestamp_millis()])?;
    Ok(())
}

/// Applies what an owner-absent deadline found: the owner back, or the fallback.
fn absence(
    conn: &Connection,
    cb: &Live,
    absence: Absence,
    now: DateTime<Utc>,
) -> Result<Applied, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    match absence {
        Absence::OwnerBack => {
            set_next_at(conn, cb.id, cb.open_until, now)?;
            return Ok(Applied::OwnerBack);
        }
        Absence::Expire { reason, record } => {
            if let Some(fallback) = record {
                record_fallback(conn, cb.id, fallback, now)?;
            }
            expire(conn, cb.id, reason, now)?;
        }
        Absence::AnyAgent => {
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
                EventKind::Redial,
                cb.attempts + 1,
                None,
                now_ms,
                now,
            )?;
        }
        Absence::NextDay(moved) => {
            record_fallback(conn, cb.id, Fallback::NextDay, now)?;
            events::withdraw(conn, cb.id, Withdraw::Open, now)?;
            move_window(conn, cb.id, &moved, now)?;
        }
    }
    Ok(Applied::FellBack)
}

fn move_window(
    conn: &Connection,
    id: i64,
    moved: &Moved,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let slot = agenda_slot(moved.start - STAGE_AHEAD.num_milliseconds(), now_ms);
    conn.prepare_cached(
        "UPDATE callbacks SET state = 'scheduled', window_start = ?2, window_end = ?3,
             local_start = ?4, local_end = ?5, open_at = ?2, open_until = ?6,
             next_at = ?8, parked_at = ?11, staged = 0, updated_at = ?7,
             window_start_local = ?9, window_end_local = ?10
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        moved.start,
        moved.end,
        moved.local_start,
        moved.local_end,
        moved.open_until,
        now_ms,
        slot.next_at(),
        moved.start_rfc3339,
        moved.end_rfc3339,
        slot.parked_at(),
    ])?;
    Ok(())
}

/// Records a dialer's report on `cb` and applies what [`decide::attempt`] decided: the
/// attempt row, the open events closed (the event that led to the attempt is done even if
/// the dialer has not acked it), then completed, expired or a retry. Returns the callback's
/// `next_at` afterwards.
pub fn record_attempt(
    conn: &Connection,
    cb: &Live,
    result: AttemptResult,
    after: AfterAttempt,
    now: DateTime<Utc>,
) -> Result<Option<i64>, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let attempt = cb.attempts + 1;
    conn.prepare_cached(
        "INSERT INTO attempts (callback_id, attempt, result, at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![cb.id, attempt, result, now_ms])?;
    conn.prepare_cached("UPDATE callbacks SET attempts = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![cb.id, attempt, now_ms])?;
    events::finish_open(conn, cb.id, now)?;
    match after {
        AfterAttempt::Complete => {
            conn.prepare_cached(&format!(
                "UPDATE callbacks SET state = 'completed', end_reason = ?2, next_at = NULL,
                     parked_at = NULL, staged = 0, {KEEP_FIRST_LEASE}
                 WHERE id = ?1"
            ))?
            .execute(params![cb.id, EndReason::Connected])?;
            crate::telemetry::pending::ended(CallbackState::Completed, Some(EndReason::Connected));
            bus::callback_changed(conn, cb.id, Change::Completed(EndReason::Connected), now)?;
            Ok(None)
        }
        AfterAttempt::Expire(reason) => {
            expire(conn, cb.id, reason, now)?;
            Ok(None)
        }
        AfterAttempt::Retry(span) => Ok(Some(reschedule(conn, cb.id, span, now)?)),
    }
}

/// Any live state → cancelled (by hand: `POST /v1/callbacks/{id}/cancel`); its open events
/// are withdrawn.
pub fn cancel(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<(), rusqlite::Error> {
    end_cancelled(conn, id, EndReason::Cancelled, now)?;
    Ok(())
}

/// Any live state → cancelled for `reason`, its open events withdrawn. Returns whether it was
/// live.
fn end_cancelled(
    conn: &Connection,
    id: i64,
    reason: EndReason,
    now: DateTime<Utc>,
) -> Result<bool, rusqlite::Error> {
    end(conn, id, CallbackState::Cancelled, reason, now)
}

/// Any live state → the final `state` for `reason`, off the agenda, its open events withdrawn.
/// Returns whether it was live.
fn end(
    conn: &Connection,
    id: i64,
    state: CallbackState,
    reason: EndReason,
    now: DateTime<Utc>,
) -> Result<bool, rusqlite::Error> {
    let ended = conn
        .prepare_cached(&format!(
            "UPDATE callbacks SET state = ?4, end_reason = ?2, next_at = NULL,
                 parked_at = NULL, staged = 0, updated_at = ?3, {KEEP_FIRST_LEASE}
             WHERE id = ?1 AND state IN ('scheduled', 'due')"
        ))?
        .execute(params![id, reason, now.timestamp_millis(), state])?;
    if ended > 0 {
        crate::telemetry::pending::ended(state, Some(reason));
        events::withdraw(conn, id, Withdraw::Open, now)?;
        let change = match state {
            CallbackState::Expired => Change::Expired(reason),
            CallbackState::Completed => Change::Completed(reason),
            _ => Change::Cancelled(reason),
        };
        bus::callback_changed(conn, id, change, now)?;
    }
    Ok(ended > 0)
}

/// The contact's live callback, if any, → cancelled because an outcome ended it (`dnc`,
/// `reject`, `closed`): its open events are withdrawn and an `expired` event with the reason
/// tells dialers and reports the customer is not to be called. Returns its id.
pub fn end_by_outcome(
    conn: &Connection,
    account: &AccountNumber,
    reason: EndReason,
    now: DateTime<Utc>,
) -> Result<Option<i64>, rusqlite::Error> {
    let Some(id) = live_for(conn, account)? else {
        return Ok(None);
    };
    end_cancelled(conn, id, reason, now)?;
    issue_expired(conn, id, reason, now)?;
    Ok(Some(id))
}

/// The callback `id` → cancelled because a later outcome for its call asked for none; its
/// open events are withdrawn, as a superseded callback's are. Nothing if it is not live.
pub fn end_replaced(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<(), rusqlite::Error> {
    end_cancelled(conn, id, EndReason::Replaced, now)?;
    Ok(())
}

/// The contact's live callback, if it has one.
fn live_for(conn: &Connection, account: &AccountNumber) -> Result<Option<i64>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT id FROM callbacks WHERE account_number = ?1 AND state IN ('scheduled', 'due')",
    )?
    .query_row([account], |r| r.get(0))
    .optional()
}

/// The agent left (logged out, or ended their last call): each open personal callback of
/// theirs gets an owner-absent deadline. Returns the earliest such deadline.
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
        // The agent's callbacks are read from callbacks_by_agent, their whole history kept for
        // the retention period: an agent leaves a few times a day.
        "UPDATE callbacks SET next_at = min(next_at, ?2)
         WHERE user_id = ?1 AND kind = 'personal'
           AND state = 'due' AND personal = 1 AND coalesce(fallback, '') <> 'any-agent'
         RETURNING next_at",
    )?
    .query_map(params![user, deadline], |r| r.get::<_, i64>(0))?
    .try_fold(None, |earliest: Option<i64>, at| {
        let at = at?;
        Ok(Some(earliest.map_or(at, |e| e.min(at))))
    })
}

/// A supervisor moved the live callback `id` to `window` (already read, clipped and checked
/// against the horizon): its open events are withdrawn, a redial a dialer holds too (that
/// dialer's ack is then ignored), and it is scheduled again in the new window, keeping its
/// id, attempts and history. A personal callback that fell back to any agent is its owner's
/// again. Returns when the scheduler must next look at it.
pub fn move_to(
    conn: &Connection,
    id: i64,
    window: &UtcWindow,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Option<i64>, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let (start, end) = (
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
    );
    let first = first_chance(policy, window.zone, start, end, now_ms);
    let slot = restage(first.open, now_ms);
    events::withdraw(conn, id, Withdraw::Open, now)?;
    conn.prepare_cached(
        "UPDATE callbacks SET state = 'scheduled', window_start = ?2, window_end = ?3,
             local_start = ?4, local_end = ?5, timezone = ?6, start_dst = ?7, end_dst = ?8,
             open_at = ?9, open_until = ?10, next_at = ?11, parked_at = ?12, staged = 0,
             requested_start = ?13, requested_end = ?14, calling_hours = ?15,
             window_start_local = ?16, window_end_local = ?17, personal = (kind = 'personal'),
             fallback = NULL, fallback_at = NULL, first_leased_at = NULL, updated_at = ?18
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        start,
        end,
        window.local_start,
        window.local_end,
        window.zone.name(),
        window.start_adjusted,
        window.end_adjusted,
        first.open,
        first.until,
        slot.next_at(),
        slot.parked_at(),
        window.requested_start.timestamp_millis(),
        window.requested_end.timestamp_millis(),
        window.calling_hours,
        window.local_rfc3339(window.start),
        window.local_rfc3339(window.end),
        now_ms,
    ])?;
    bus::callback_changed(conn, id, Change::Rescheduled, now)?;
    open_if_due(conn, id, now, policy)
}

/// A supervisor gave the live personal callback `cb` to the agent `to`: its open events are
/// withdrawn, a redial a dialer holds too (it was for the agent before), and it is planned
/// again in the same window for `to`, leasable at once if its time has come, with the
/// owner-absent check for `to`. Both desktops hear of it. Returns when the scheduler must
/// next look at it.
pub fn reassign(
    conn: &Connection,
    cb: &Live,
    to: &UserId,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Option<i64>, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let open = cb.open_at.max(now_ms);
    let slot = restage(open, now_ms);
    events::withdraw(conn, cb.id, Withdraw::Open, now)?;
    conn.prepare_cached(
        "UPDATE callbacks SET user_id = ?2, personal = 1, fallback = NULL, fallback_at = NULL,
             state = 'scheduled', staged = 0, open_at = ?3, next_at = ?4, parked_at = ?5,
             updated_at = ?6
         WHERE id = ?1",
    )?
    .execute(params![
        cb.id,
        to,
        open,
        slot.next_at(),
        slot.parked_at(),
        now_ms
    ])?;
    bus::callback_changed_for(conn, cb.id, Change::Reassigned, Some(&cb.user_id), now)?;
    bus::callback_changed(conn, cb.id, Change::Reassigned, now)?;
    open_if_due(conn, cb.id, now, policy)
}

/// The live personal callbacks of `user` whose shown state is one of `states` (every live
/// one when empty), in window order: what `POST /v1/agents/{UserID}/callbacks/reassign` moves.
pub fn live_of_agent(
    conn: &Connection,
    user: &UserId,
    states: &[CallbackState],
) -> Result<Vec<(Live, CallbackState)>, rusqlite::Error> {
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    conn.prepare_cached(&format!(
        "SELECT {LIVE_COLUMNS}, shown_state FROM callbacks_shown
         WHERE user_id = ?1 AND state IN ('scheduled', 'due') AND kind = 'personal'
           AND (?2 = '[]' OR shown_state IN (SELECT value FROM json_each(?2)))
         ORDER BY window_start, id"
    ))?
    .query_map(
        params![user, serde_json::to_string(&states).unwrap_or_default()],
        |r| Ok((live_from_row(r)?, r.get(14)?)),
    )?
    .collect()
}

/// The contact's live callback, set on a call other than `callid`, → `completed` with reason
/// `contacted`: an outcome on that other call means the customer was reached
/// (`--complete-on-contact`). A callback whose redial a dialer holds is left to the dialer's
/// report: the call may be that redial. Returns its id.
pub fn complete_by_contact(
    conn: &Connection,
    account: &AccountNumber,
    callid: &CallId,
    now: DateTime<Utc>,
) -> Result<Option<i64>, rusqlite::Error> {
    let Some(id) = conn
        .prepare_cached(
            "SELECT id FROM callbacks_shown
             WHERE account_number = ?1 AND state IN ('scheduled', 'due') AND callid <> ?2
               AND shown_state <> 'leased'",
        )?
        .query_row(params![account, callid], |r| r.get(0))
        .optional()?
    else {
        return Ok(None);
    };
    end(
        conn,
        id,
        CallbackState::Completed,
        EndReason::Contacted,
        now,
    )?;
    Ok(Some(id))
}
