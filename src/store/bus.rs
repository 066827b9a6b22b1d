//! The bus's outbox: every event pushed to desktops and supervisor screens is a row of
//! `bus_events`, written in the transaction that made it happen, so a subscriber that
//! reconnects with the last id it saw misses nothing, even across a restart.
//!
//! An id orders pushes by the instant they become visible, not by commit: the millisecond
//! since 2000-01-01 UTC times [`PER_MS`], plus a sequence within that millisecond. A
//! callback's due push is written ahead of its window, as its redial is, with the id of the
//! window's start; a push committed meanwhile gets a smaller id and is delivered first. Ids
//! stay below 2^53, so a browser reads them exactly, until 2069.
//!
//! The bus delivers pushes in id order, and a push committed after the bus has read past an
//! id must take a larger one: [`release`] (run in the writer, between transactions) records
//! the last id visible at an instant, and every later push is numbered after it. That floor
//! lives in the writer thread, the only one that writes.

use std::cell::Cell;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use crate::lcm::{Disposition, UserId};
use crate::lifecycle::EndReason;

/// 2000-01-01T00:00:00Z, in ms: ids count from here.
const EPOCH_MS: i64 = 946_684_800_000;
/// Pushes one millisecond can hold; more spill into the next millisecond.
pub const PER_MS: i64 = 4096;

thread_local! {
    /// The last id released: a new push takes a larger one.
    static RELEASED: Cell<i64> = const { Cell::new(0) };
    /// Whether this thread wrote a push since the writer last asked.
    static PUSHED: Cell<bool> = const { Cell::new(false) };
    /// Pushes with ids in this range are watched ([`release`]'s `watch`): the bus holds them
    /// read ahead of their instant.
    static WATCH: Cell<(i64, i64)> = const { Cell::new((i64::MAX, i64::MIN)) };
    /// Writes to watched pushes since the last release.
    static WATCHED: Cell<u64> = const { Cell::new(0) };
}

/// Counts a write to the push `id` if it is watched.
fn touched(id: i64) {
    let (from, through) = WATCH.with(Cell::get);
    if (from..=through).contains(&id) {
        WATCHED.with(|w| w.set(w.get() + 1));
    }
}

/// The first id of millisecond `ms`.
pub fn first_id(ms: i64) -> i64 {
    (ms - EPOCH_MS).max(0) * PER_MS
}

/// The instant (ms) a push with `id` becomes visible.
pub fn visible_at(id: i64) -> i64 {
    id / PER_MS + EPOCH_MS
}

/// The last id that may be visible at `at_ms`.
pub fn last_id_at(at_ms: i64) -> i64 {
    first_id(at_ms + 1) - 1
}

/// What [`release`] released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// The last id that may now be read: [`last_id_at`] the instant.
    pub upto: i64,
    /// The last push stored up to it (0: none).
    pub last: i64,
    /// Pushes written or taken back since the previous release among the ids it was asked
    /// to watch: nonzero means what the bus read ahead there is stale.
    pub watched: u64,
}

/// Releases every push visible at `at_ms` (run in the writer, between transactions): pushes
/// committed from now on are numbered after the last of them, so a reader that has read up to
/// it misses none. From here to the next release, writes to pushes with ids in `watch` are
/// counted: the bus reads the pushes of an instant to come ahead, and keeps them only if none
/// was written or taken back since.
pub fn release(
    conn: &Connection,
    at_ms: i64,
    watch: Option<(i64, i64)>,
) -> Result<Released, rusqlite::Error> {
    let upto = last_id_at(at_ms);
    let last: Option<i64> = conn
        .prepare_cached("SELECT max(id) FROM bus_events WHERE id <= ?1")?
        .query_row([upto], |r| r.get(0))?;
    let last = last.unwrap_or(0);
    RELEASED.with(|r| r.set(r.get().max(last)));
    let watched = WATCHED.with(|w| w.replace(0));
    WATCH.with(|w| w.set(watch.unwrap_or((i64::MAX, i64::MIN))));
    Ok(Released {
        upto,
        last,
        watched,
    })
}

/// Whether the writer thread wrote a push since it last asked (the writer asks after each
/// commit, to wake the bus).
pub fn take_pushed() -> bool {
    PUSHED.with(|p| p.replace(false))
}

/// The id of a new push visible from `at_ms`, counted as written: call it, then insert the
/// row with that id in the same transaction. The id follows the last one released and the
/// last one of its millisecond; a full millisecond spills into the next.
fn claim(conn: &Connection, at_ms: i64) -> Result<i64, rusqlite::Error> {
    let mut id = first_id(at_ms).max(RELEASED.with(Cell::get) + 1);
    let mut last =
        conn.prepare_cached("SELECT max(id) FROM bus_events WHERE id >= ?1 AND id < ?2")?;
    loop {
        let ms = visible_at(id);
        let end = first_id(ms + 1);
        let taken: Option<i64> = last.query_row(params![first_id(ms), end], |r| r.get(0))?;
        let candidate = taken.map_or(id, |t| id.max(t + 1));
        if candidate < end {
            PUSHED.with(|p| p.set(true));
            touched(candidate);
            return Ok(candidate);
        }
        id = end;
    }
}

/// The JSON of a callback's push, from its row `c`: `?2` is the reason it ended, if it did.
const CALLBACK_DATA: &str = "json_object(
    'callback_id', c.id, 'callid', c.callid, 'AccountNumber', c.account_number,
    'CallbackModeID', c.callback_mode_id, 'UserID', c.user_id, 'personal', json(CASE WHEN c.personal = 1 THEN 'true' ELSE 'false' END),
    'state', c.state, 'reason', ?2,
    'window_start', strftime('%Y-%m-%dT%H:%M:%SZ', c.window_start / 1000, 'unixepoch'),
    'window_end', strftime('%Y-%m-%dT%H:%M:%SZ', c.window_end / 1000, 'unixepoch'),
    'timezone', c.timezone, 'local_start', c.window_start_local,
    'local_end', c.window_end_local, 'attempts', c.attempts)";

/// What happened to a callback, for [`callback_changed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Cancelled(EndReason),
    Expired(EndReason),
    Superseded,
    Completed(EndReason),
    /// A supervisor moved its window (`POST /v1/callbacks/{id}/reschedule`).
    Rescheduled,
    /// A supervisor gave it to another agent; pushed to the owner before and the owner after.
    Reassigned,
}

impl Change {
    fn kind(self) -> &'static str {
        match self {
            Change::Cancelled(_) => "CallbackCancelled",
            Change::Expired(_) => "CallbackExpired",
            Change::Superseded => "CallbackSuperseded",
            Change::Completed(_) => "CallbackCompleted",
            Change::Rescheduled => "CallbackRescheduled",
            Change::Reassigned => "CallbackReassigned",
        }
    }

    fn reason(self) -> Option<EndReason> {
        match self {
            Change::Cancelled(r) | Change::Expired(r) | Change::Completed(r) => Some(r),
            Change::Superseded | Change::Rescheduled | Change::Reassigned => None,
        }
    }
}

/// The callback `id` ended or changed: its owner's desktop and supervisors hear of it, now.
pub fn callback_changed(
    conn: &Connection,
    id: i64,
    change: Change,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    callback_changed_for(conn, id, change, None, now)
}

/// As [`callback_changed`], heard by the desktop of `agent` in place of the owner's: the owner
/// a reassigned callback was taken from.
pub fn callback_changed_for(
    conn: &Connection,
    id: i64,
    change: Change,
    agent: Option<&UserId>,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let push_id = claim(conn, now.timestamp_millis())?;
    conn.prepare_cached(&format!(
        "INSERT INTO bus_events (id, kind, user_id, callback_id, data, created_at)
         SELECT ?3, ?4, coalesce(?6, c.user_id), c.id, {CALLBACK_DATA}, ?5
         FROM callbacks c WHERE c.id = ?1"
    ))?
    .execute(params![
        id,
        change.reason(),
        push_id,
        change.kind(),
        now.timestamp_millis(),
        agent,
    ])?;
    Ok(())
}

/// A redial of the callback `callback_id` becomes leasable at `at_ms` (queue event
/// `event_id`): a personal callback's owner hears `PersonalCallbackDue` then; a callback any
/// agent may take is `CallbackDue`, for supervisors. The message is also the redial as the
/// relay publishes it to NATS (`id`, `type`, `deadline`), so that a burst of windows goes out
/// as stored, unparsed.
pub fn callback_due(
    conn: &Connection,
    callback_id: i64,
    event_id: i64,
    attempt: i64,
    at_ms: i64,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let push_id = claim(conn, at_ms)?;
    conn.prepare_cached(
        "INSERT INTO bus_events (id, kind, user_id, callback_id, data, created_at)
         SELECT ?4, CASE WHEN c.personal = 1 THEN 'PersonalCallbackDue' ELSE 'CallbackDue' END,
             CASE WHEN c.personal = 1 THEN c.user_id END, c.id, json_object(
             'callback_id', c.id, 'event_id', ?2, 'id', ?2, 'type', 'redial', 'callid', c.callid,
             'AccountNumber', c.account_number, 'CallbackModeID', c.callback_mode_id,
             'UserID', c.user_id, 'personal', json(CASE WHEN c.personal = 1 THEN 'true' ELSE 'false' END),
             'window_start', strftime('%Y-%m-%dT%H:%M:%SZ', c.window_start / 1000, 'unixepoch'),
             'window_end', strftime('%Y-%m-%dT%H:%M:%SZ', c.window_end / 1000, 'unixepoch'),
             'timezone', c.timezone, 'local_start', c.window_start_local,
             'local_end', c.window_end_local, 'attempt', ?3,
             'deadline', strftime('%Y-%m-%dT%H:%M:%SZ', c.window_end / 1000, 'unixepoch'),
             'CValue', (SELECT m.cvalue FROM contact_modes m
                        WHERE m.account_number = c.account_number
                          AND m.mode_id = c.callback_mode_id)), ?5
         FROM callbacks c WHERE c.id = ?1",
    )?
    .execute(params![
        callback_id,
        event_id,
        attempt,
        push_id,
        now.timestamp_millis()
    ])?;
    Ok(())
}

/// The callback's due pushes not yet released are taken back: its redial was withdrawn
/// before its window opened (superseded, cancelled, calling hours closed).
pub fn withdraw_due(conn: &Connection, callback_id: i64) -> Result<usize, rusqlite::Error> {
    let unreleased = RELEASED.with(Cell::get) + 1;
    let deleted = conn
        .prepare_cached(
            "DELETE FROM bus_events WHERE callback_id = ?1 AND id >= ?2
                 AND kind IN ('PersonalCallbackDue', 'CallbackDue')
             RETURNING id",
        )?
        .query_map(params![callback_id, unreleased], |r| r.get::<_, i64>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    deleted.iter().copied().for_each(touched);
    Ok(deleted.len())
}

/// A message set what a call says: `OutcomeSetForCall` to the agent and supervisors.
pub fn outcome_set(
    conn: &Connection,
    d: &Disposition,
    callback_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let id = claim(conn, now.timestamp_millis())?;
    conn.prepare_cached(
        "INSERT INTO bus_events (id, kind, user_id, callback_id, data, created_at)
         VALUES (?1, 'OutcomeSetForCall', ?7, ?9, json_object('callid', ?2,
             'AccountNumber', ?3, 'OutcomeId', ?4, 'BusinessOutcome', ?5, 'CallOutcome', ?6,
             'UserID', ?7, 'message', ?8, 'callback_id', ?9), ?10)",
    )?
    .execute(params![
        id,
        d.callid,
        d.account_number,
        d.outcome_id,
        d.business_outcome,
        d.call_outcome,
        d.user_id,
        d.subtopic,
        callback_id,
        now.timestamp_millis()
    ])?;
    Ok(())
}

/// An agent logged in or out: `AgentStateChanged` to the agent and supervisors.
pub fn agent_state(
    conn: &Connection,
    user: &UserId,
    logged_in: bool,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let id = claim(conn, now_ms)?;
    conn.prepare_cached(
        "INSERT INTO bus_events (id, kind, user_id, data, created_at)
         VALUES (?1, 'AgentStateChanged', ?2, json_object('UserID', ?2, 'logged_in', json(CASE WHEN ?3 THEN 'true' ELSE 'false' END),
             'at', strftime('%Y-%m-%dT%H:%M:%fZ', ?4 / 1000.0, 'unixepoch')), ?4)",
    )?
    .execute(params![id, user, logged_in, now_ms])?;
    Ok(())
}

/// One stored push, as a bus socket sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub id: i64,
    /// The agent whose desktop hears it; `None`: supervisors only.
    pub user_id: Option<String>,
    /// Its envelope: `{"channel":"LCM","topic":"Bus","subtopic":<kind>,"id":<id>,
    /// "message":<data>}`, written once as the row is read; every subscriber shares it.
    pub envelope: String,
}

/// A stored envelope's kind and message, read back without parsing it: [`page`] writes the
/// kind (one of the bus's, which need no escaping) and the id before `"message":`, so the
/// first `,"message":` is the one that starts the message. The relay reads every push this
/// way.
pub fn split_envelope(envelope: &str) -> Option<(&str, &str)> {
    const KIND: &str = "\"subtopic\":\"";
    const MESSAGE: &str = ",\"message\":";
    let kind_at = envelope.find(KIND)? + KIND.len();
    let kind_len = envelope[kind_at..].find('"')?;
    let message_at = envelope.find(MESSAGE)? + MESSAGE.len();
    let message = envelope[message_at..].strip_suffix('}')?;
    Some((&envelope[kind_at..kind_at + kind_len], message))
}

/// Pushes after `after` up to `upto` (ids), oldest first, at most `limit`; with `user`, only
/// that agent's.
pub fn page(
    conn: &Connection,
    after: i64,
    upto: i64,
    user: Option<&str>,
    limit: i64,
) -> Result<Vec<Pushed>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT id, user_id, kind, data FROM bus_events
         WHERE id > ?1 AND id <= ?2 AND (?3 IS NULL OR user_id = ?3)
         ORDER BY id LIMIT ?4 + 0",
    )?
    .query_map(params![after, upto, user, limit], |r| {
        let id = r.get(0)?;
        Ok(Pushed {
            id,
            user_id: r.get(1)?,
            envelope: envelope(id, r.get_ref(2)?.as_str()?, r.get_ref(3)?.as_str()?),
        })
    })?
    .collect()
}

/// The envelope of a push, in one allocation (SQLite's `||` would make one a piece).
fn envelope(id: i64, kind: &str, message: &str) -> String {
    const HEAD: &str = r#"{"channel":"LCM","topic":"Bus","subtopic":"#;
    let mut id_text = itoa::Buffer::new();
    let id_text = id_text.format(id);
    let mut out =
        String::with_capacity(HEAD.len() + kind.len() + id_text.len() + message.len() + 24);
    out.push_str(HEAD);
    if kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.push('"');
        out.push_str(kind);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(kind).to_string());
    }
    out.push_str(r#","id":"#);
    out.push_str(id_text);
    out.push_str(r#","message":"#);
    out.push_str(message);
    out.push('}');
    out
}

/// The first push after `after` (visible or not): when the bus must next look.
pub fn next_after(conn: &Connection, after: i64) -> Result<Option<i64>, rusqlite::Error> {
    conn.prepare_cached("SELECT min(id) FROM bus_events WHERE id > ?1")?
        .query_row([after], |r| r.get(0))
}

/// The highest id the retention purge has deleted (0: none).
pub fn purged_through(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.prepare_cached("SELECT coalesce(max(through), 0) FROM bus_purged")?
        .query_row([], |r| r.get(0))
}

/// Deletes up to `batch` pushes visible before `cutoff` and relayed to every stream that
/// relays them, remembering the highest id deleted.
/// Returns how many went.
pub fn purge_batch(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<usize, rusqlite::Error> {
    let last: Option<i64> = conn
        .prepare_cached(
            // A push not yet relayed to a stream stays until it is (`relay_marks`).
            "SELECT max(id) FROM (SELECT id FROM bus_events
                                  WHERE id < ?1
                                    AND id <= (SELECT coalesce(min(mark), 9223372036854775807)
                                               FROM relay_marks)
                                  ORDER BY id LIMIT ?2 + 0)",
        )?
        .query_row(params![first_id(cutoff.timestamp_millis()), batch], |r| {
            r.get(0)
        })?;
    let Some(last) = last else {
        return Ok(0);
    };
    conn.prepare_cached(
        "INSERT INTO bus_purged (only, through) VALUES (1, ?1)
         ON CONFLICT (only) DO UPDATE SET through = max(through, ?1)",
    )?
    .execute([last])?;
    conn.prepare_cached("DELETE FROM bus_events WHERE id <= ?1")?
        .execute([last])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_envelope_splits_into_its_kind_and_message_as_stored() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE bus_events (id INTEGER PRIMARY KEY, kind TEXT, user_id TEXT, data TEXT);
             INSERT INTO bus_events VALUES (5, 'OutcomeSetForCall', 'a',
                 json_object('AgentComments', 'said ,\"message\": twice}', 'n', 1));",
        )
        .unwrap();
        let pushed = page(&conn, 0, 10, None, 10).unwrap();
        let (kind, message) = split_envelope(&pushed[0].envelope).unwrap();
        assert_eq!(kind, "OutcomeSetForCall");
        let parsed: serde_json::Value = serde_json::from_str(message).unwrap();
        assert_eq!(parsed["AgentComments"], "said ,\"message\": twice}");
        assert_eq!(parsed["n"], 1);
        assert_eq!(split_envelope("{}"), None);
        let whole: serde_json::Value = serde_json::from_str(&pushed[0].envelope).unwrap();
        assert_eq!(
            (
                &whole["channel"],
                &whole["topic"],
                &whole["subtopic"],
                &whole["id"]
            ),
            (
                &"LCM".into(),
                &"Bus".into(),
                &"OutcomeSetForCall".into(),
                &5.into()
            )
        );
        let odd: serde_json::Value = serde_json::from_str(&envelope(6, "a\"b", "{}")).unwrap();
        assert_eq!(
            odd["subtopic"], "a\"b",
            "a kind is written as a JSON string"
        );
    }

    #[test]
    fn ids_order_by_the_instant_and_fit_a_javascript_number() {
        let at = Utc.with_ymd_and_hms(2069, 1, 1, 0, 0, 0).unwrap();
        let ms = at.timestamp_millis();
        assert!(first_id(ms + 1) - 1 < 1 << 53);
        assert_eq!(visible_at(first_id(ms)), ms);
        assert_eq!(visible_at(first_id(ms + 1) - 1), ms);
        assert!(first_id(ms) < first_id(ms + 1));
    }
}
