//! The redial queue's table: issuing events, leasing, acknowledging, returning leases that ran
//! out. Delivery is at-least-once: an event keeps its `id` across deliveries so a dialer can
//! drop a duplicate.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};
use serde::Serialize;

use super::bus;
use super::callbacks::instant;
use crate::lcm::{AccountNumber, CallId, UserId};
use crate::lifecycle::{EndReason, EventKind};
use crate::zone::{serialize_utc, Zone};

/// What a dialer receives (contract section 5).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Event {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub callback_id: i64,
    pub callid: CallId,
    #[serde(rename = "AccountNumber")]
    pub account_number: AccountNumber,
    #[serde(rename = "CallbackModeID")]
    pub callback_mode_id: i64,
    #[serde(rename = "UserID")]
    pub user_id: UserId,
    pub personal: bool,
    #[serde(rename = "OutcomeId")]
    pub outcome_id: Option<i64>,
    #[serde(rename = "BusinessOutcome")]
    pub business_outcome: Option<i64>,
    /// RFC 3339 on the wire, written when the reply is (the writer, which reads events inside
    /// its transaction, does no formatting).
    #[serde(serialize_with = "serialize_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub window_start: DateTime<Utc>,
    #[serde(serialize_with = "serialize_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub window_end: DateTime<Utc>,
    pub timezone: Zone,
    pub attempt: i64,
    /// Why the callback ended, on `expired` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
    /// The number to dial, when the contact's modes name it (`POST /v1/calls`).
    #[serde(rename = "CValue", skip_serializing_if = "Option::is_none")]
    pub cvalue: Option<String>,
    /// Whether this lease is the event's first (the callback SLA's first lease, for metrics).
    #[serde(skip)]
    pub first_lease: bool,
}

const EVENT_COLUMNS: &str = "e.id, e.type, e.callback_id, d.callid, d.account_number,
    d.callback_mode_id, e.user_id, e.personal, d.outcome_id, d.business_outcome, d.window_start,
    d.window_end, d.timezone, e.attempt, d.reason, d.cvalue, e.first_leased_at IS NULL";

fn event_from_row(r: &Row<'_>) -> Result<Event, rusqlite::Error> {
    Ok(Event {
        id: r.get(0)?,
        kind: r.get(1)?,
        callback_id: r.get(2)?,
        callid: r.get(3)?,
        account_number: r.get(4)?,
        callback_mode_id: r.get(5)?,
        user_id: r.get(6)?,
        personal: r.get(7)?,
        outcome_id: r.get(8)?,
        business_outcome: r.get(9)?,
        window_start: instant(r.get(10)?),
        window_end: instant(r.get(11)?),
        timezone: r.get(12)?,
        attempt: r.get(13)?,
        reason: r.get(14)?,
        cvalue: r.get(15)?,
        first_lease: r.get(16)?,
    })
}

/// Puts an event for `callback_id` on the queue, a snapshot of the callback as it is now,
/// leasable from `available_at` (ms). A redial may be handed out until the window ends; an
/// expired event has no end.
pub fn issue(
    conn: &Connection,
    callback_id: i64,
    kind: EventKind,
    attempt: i64,
    reason: Option<EndReason>,
    available_at: i64,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let expires = kind == EventKind::Redial;
    let issued = conn
        .prepare_cached(
            "INSERT INTO events (type, callback_id, user_id, personal, attempt, state,
                 available_at, expires_at, created_at, updated_at)
             SELECT ?2, id, user_id, personal, ?3, 'ready', ?6,
                 CASE WHEN ?5 THEN coalesce(open_until, window_end) END, ?4, ?4
             FROM callbacks WHERE id = ?1",
        )?
        .execute(params![
            callback_id,
            kind,
            attempt,
            now.timestamp_millis(),
            expires,
            available_at
        ])?;
    if issued == 0 {
        // No such callback: nothing to issue, and no details to write.
        return Ok(());
    }
    let event_id = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO event_details (event_id, callid, account_number, callback_mode_id,
             outcome_id, business_outcome, window_start, window_end, timezone, reason, cvalue)
         SELECT ?2, c.callid, c.account_number, c.callback_mode_id, o.outcome_id,
             o.business_outcome, c.window_start, c.window_end, c.timezone, ?3, m.cvalue
         FROM callbacks c LEFT JOIN outcomes o ON o.callback_id = c.id
             LEFT JOIN contact_modes m
                 ON m.account_number = c.account_number AND m.mode_id = c.callback_mode_id
         WHERE c.id = ?1",
    )?
    .execute(params![callback_id, event_id, reason])?;
    if kind == EventKind::Redial {
        bus::callback_due(conn, callback_id, event_id, attempt, available_at, now)?;
    }
    Ok(())
}

/// Which of a callback's events a withdrawal takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdraw {
    /// Every event no dialer has finished: the callback was superseded, cancelled, answered or
    /// ended, so none may be dialed.
    Open,
    /// Only those no dialer holds: calling hours closed, and a leased one stays with its
    /// dialer, who may be dialing already.
    Unleased,
}

/// Withdraws the callback's events as `which` says. Returns how many.
pub fn withdraw(
    conn: &Connection,
    callback_id: i64,
    which: Withdraw,
    now: DateTime<Utc>,
) -> Result<usize, rusqlite::Error> {
    let states = match which {
        Withdraw::Open => "('ready', 'leased')",
        Withdraw::Unleased => "('ready')",
    };
    let withdrawn = conn
        .prepare_cached(&format!(
            "UPDATE events SET state = 'withdrawn', updated_at = ?2
             WHERE callback_id = ?1 AND state IN {states}"
        ))?
        .execute(params![callback_id, now.timestamp_millis()])?;
    bus::withdraw_due(conn, callback_id)?;
    Ok(withdrawn)
}

/// Closes the callback's open events because a dialer reported an attempt for it: the event
/// that led to the attempt is done even if the dialer has not acked it yet.
pub fn finish_open(
    conn: &Connection,
    callback_id: i64,
    now: DateTime<Utc>,
) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(
        "UPDATE events SET state = 'acked', updated_at = ?2
         WHERE callback_id = ?1 AND state IN ('ready', 'leased') AND type = 'redial'",
    )?
    .execute(params![callback_id, now.timestamp_millis()])
}

/// Leases up to `max` ready events to `consumer` until `now + lease_ms`, oldest first. With
/// `user_id`, only that agent's personal callbacks and those any agent may take (normal
/// callbacks, and personal ones fallen back to any agent). An event is never handed out
/// before its `available_at` (a staged redial before its window opens), nor a redial whose
/// window has ended, even if the scheduler has not expired it yet.
///
/// The batch is read first, with what the dialer receives (`event_details` joined by key, in
/// the order the lease takes them), and its narrow queue rows are then rewritten by id. That
/// is one statement less per lease than an `UPDATE ... RETURNING` followed by reading the
/// details back, and no temporary table for the returned ids (BENCHMARKS.md: the lease).
pub fn lease(
    conn: &Connection,
    consumer: &str,
    max: i64,
    lease_ms: i64,
    user_id: Option<&UserId>,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let ready = "e.state = 'ready' AND e.available_at <= ?1
        AND (e.expires_at IS NULL OR e.expires_at > ?1)";
    // One agent's: each half read in order from its own index, the two merged.
    let sql = match user_id {
        None => format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN event_details d ON d.event_id = e.id
             WHERE {ready} AND ?3 IS NULL
             ORDER BY e.available_at, e.id LIMIT ?2 + 0"
        ),
        Some(_) => format!(
            "SELECT * FROM (SELECT {EVENT_COLUMNS}, e.available_at AS at FROM events e
                     JOIN event_details d ON d.event_id = e.id
                 WHERE {ready} AND e.personal = 1 AND e.user_id = ?3
                 ORDER BY e.available_at, e.id LIMIT ?2 + 0)
             UNION ALL
             SELECT * FROM (SELECT {EVENT_COLUMNS}, e.available_at AS at FROM events e
                     JOIN event_details d ON d.event_id = e.id
                 WHERE {ready} AND e.personal = 0
                 ORDER BY e.available_at, e.id LIMIT ?2 + 0)
             ORDER BY 18, 1 LIMIT ?2 + 0"
        ),
    };
    let mut events = conn
        .prepare_cached(&sql)?
        .query_map(params![now_ms, max, user_id], event_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    if events.is_empty() {
        return Ok(events);
    }
    events.sort_by_key(|e| e.id);
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    conn.prepare_cached(
        "UPDATE events SET state = 'leased', consumer = ?1, available_at = ?2,
             deliveries = deliveries + 1, updated_at = ?3,
             first_leased_at = coalesce(first_leased_at, ?3)
         WHERE id IN (SELECT value FROM json_each(?4))",
    )?
    .execute(params![consumer, now_ms + lease_ms, now_ms, ids_json(&ids)])?;
    Ok(events)
}

/// Marks events done. Only the consumer that leased an event may ack it, and only while no
/// other consumer has leased it since. Acking again is harmless, and so is acking an event
/// already closed by the attempt report for it. Returns the ids acked.
pub fn ack(
    conn: &Connection,
    consumer: &str,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, rusqlite::Error> {
    conn.prepare_cached(
        "UPDATE events SET state = 'acked',
             updated_at = CASE WHEN state = 'acked' THEN updated_at ELSE ?3 END
         WHERE consumer = ?1 AND state IN ('leased', 'ready', 'acked')
           AND id IN (SELECT value FROM json_each(?2))
         RETURNING id",
    )?
    .query_map(
        params![consumer, ids_json(ids), now.timestamp_millis()],
        |r| r.get(0),
    )?
    .collect()
}

/// Hands leased events back at once. Returns the ids released.
pub fn nack(
    conn: &Connection,
    consumer: &str,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, rusqlite::Error> {
    conn.prepare_cached(
        "UPDATE events SET state = 'ready', available_at = ?3, updated_at = ?3
         WHERE consumer = ?1 AND state = 'leased' AND id IN (SELECT value FROM json_each(?2))
         RETURNING id",
    )?
    .query_map(
        params![consumer, ids_json(ids), now.timestamp_millis()],
        |r| r.get(0),
    )?
    .collect()
}

/// Leases that ran out, handled: the event is ready again with the same id, or dead once it
/// has been delivered `max_deliveries` times, or withdrawn if it may no longer be handed out
/// (its window or its span of calling hours closed meanwhile). Returns `dead` per event.
pub fn return_expired_leases(
    conn: &Connection,
    now: DateTime<Utc>,
    max_deliveries: i64,
    limit: i64,
) -> Result<Vec<bool>, rusqlite::Error> {
    conn.prepare_cached(
        "UPDATE events
         SET state = CASE WHEN deliveries >= ?2 THEN 'dead'
                          WHEN expires_at <= ?1 THEN 'withdrawn' ELSE 'ready' END,
             updated_at = ?1
         WHERE id IN (SELECT id FROM events WHERE state = 'leased' AND available_at <= ?1
                      ORDER BY available_at LIMIT ?3 + 0)
         RETURNING state = 'dead'",
    )?
    .query_map(
        params![now.timestamp_millis(), max_deliveries, limit],
        |r| r.get(0),
    )?
    .collect()
}

/// When the earliest lease runs out, if any is held.
pub fn next_lease_expiry(conn: &Connection) -> Result<Option<i64>, rusqlite::Error> {
    conn.prepare_cached("SELECT min(available_at) FROM events WHERE state = 'leased'")?
        .query_row([], |r| r.get(0))
}

/// Ids as a JSON array, for `id IN (SELECT value FROM json_each(?))`: one statement for a batch.
pub fn ids_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("integers serialize")
}
