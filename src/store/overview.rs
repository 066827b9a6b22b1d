//! What the supervisor page shows at a glance: counts of live work, today's expiries, dead
//! letters, and the windows of the next hour; and one callback's history. Each read goes
//! through an index over a bounded set, so the page may poll it every few seconds.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::{json, Value};

use super::callbacks::{instant, SLICE_MS};
use super::gauges;
use crate::zone::{serialize_utc, utc_rfc3339};

/// The page's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub scheduled: i64,
    /// Due now and not held by a dialer.
    pub due: i64,
    /// Due and held by a dialer.
    pub leased: i64,
    /// Callbacks that expired since the start of today (in the asked zone).
    pub expired_today: i64,
    /// Events delivered too often without an ack.
    pub dead_letters: i64,
}

/// Live windows opening in one five-minute slice of the next hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Slice {
    #[serde(serialize_with = "serialize_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub from: DateTime<Utc>,
    pub windows: i64,
}

/// The next hour in slices of this many ms.
pub const SLICE_OF_HOUR_MS: i64 = 300_000;

/// The counters at `now`; "today" began at `day_start`.
pub fn counts(
    conn: &Connection,
    now: DateTime<Utc>,
    day_start: DateTime<Utc>,
) -> Result<Counts, rusqlite::Error> {
    let live = gauges::counts(conn, now, 0, false)?;
    let of = |list: &[(String, i64)], state: &str| {
        list.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n)
    };
    // `callbacks_finished` holds the finished ones by when they finished.
    let expired_today = conn
        .prepare_cached(
            "SELECT count(*) FROM callbacks
             WHERE updated_at >= ?1 AND state NOT IN ('scheduled', 'due') AND state = 'expired'",
        )?
        .query_row([day_start.timestamp_millis()], |r| r.get(0))?;
    Ok(Counts {
        scheduled: of(&live.callbacks, "scheduled"),
        due: of(&live.callbacks, "due"),
        leased: of(&live.callbacks, "leased"),
        expired_today,
        dead_letters: of(&live.events, "dead"),
    })
}

/// Live windows opening from `now` to an hour later, in twelve slices of five minutes.
pub fn next_hour(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<Slice>, rusqlite::Error> {
    let from = now.timestamp_millis();
    let to = from + 12 * SLICE_OF_HOUR_MS;
    let mut slices: Vec<Slice> = (0..12)
        .map(|i| Slice {
            from: instant(from + i * SLICE_OF_HOUR_MS),
            windows: 0,
        })
        .collect();
    // Through `callbacks_by_slice`: the ten-minute slices that hold the hour.
    let rows = conn
        .prepare_cached(
            "SELECT (window_start - ?1) / ?5, count(*) FROM callbacks
             WHERE window_start / 600000 BETWEEN ?3 AND ?4
               AND window_start >= ?1 AND window_start < ?2
               AND state IN ('scheduled', 'due')
             GROUP BY 1",
        )?
        .query_map(
            params![from, to, from / SLICE_MS, to / SLICE_MS, SLICE_OF_HOUR_MS],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    for (slice, n) in rows {
        if let Some(s) = slices.get_mut(slice as usize) {
            s.windows = n;
        }
    }
    Ok(slices)
}

/// One step of a callback's life.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Step {
    #[serde(serialize_with = "serialize_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// `outcome`, `scheduled`, `redial`, `leased`, `attempt`, `expired` (the event), a
    /// supervisor's action (`reschedule`, `reassign`, `cancel`, ...), or `ended`.
    pub what: String,
    /// What the step says: its fields vary with `what`.
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// Everything recorded about the callback `id`, oldest first: the outcomes that set or
/// replaced it, its redials and leases, the attempts reported, supervisors' changes, and how
/// it ended.
pub fn history(conn: &Connection, id: i64) -> Result<Vec<Step>, rusqlite::Error> {
    let mut steps = Vec::new();
    let mut push = |at: i64, what: &str, detail: Value| {
        steps.push(Step {
            at: instant(at),
            what: what.to_owned(),
            detail,
        })
    };
    for table in ["outcomes", "outcome_history"] {
        let mut statement = conn.prepare_cached(&format!(
            "SELECT received_at, callid, outcome_id, business_outcome, user_id, agent_comments,
                    source
             FROM {table} WHERE callback_id = ?1"
        ))?;
        let rows = statement.query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                json!({
                    "callid": r.get::<_, String>(1)?,
                    "OutcomeId": r.get::<_, i64>(2)?,
                    "BusinessOutcome": r.get::<_, i64>(3)?,
                    "UserID": r.get::<_, String>(4)?,
                    "AgentComments": r.get::<_, String>(5)?,
                    "source": r.get::<_, Option<String>>(6)?,
                }),
            ))
        })?;
        for row in rows {
            let (at, detail) = row?;
            push(at, "outcome", detail);
        }
    }
    let created = conn
        .prepare_cached(
            "SELECT created_at, window_start, window_end, user_id, state, end_reason, updated_at
             FROM callbacks WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, i64>(6)?,
            ))
        });
    let (created_at, start, end, owner, state, reason, updated_at) = match created {
        Ok(row) => row,
        Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    push(
        created_at,
        "scheduled",
        json!({"window_start": rfc3339(start), "window_end": rfc3339(end), "UserID": owner}),
    );
    let mut statement = conn.prepare_cached(
        "SELECT e.id, e.type, e.attempt, e.state, e.created_at, e.first_leased_at, e.deliveries,
                e.consumer, d.reason
         FROM events e JOIN event_details d ON d.event_id = e.id
         WHERE e.callback_id = ?1",
    )?;
    let events = statement.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, Option<String>>(8)?,
        ))
    })?;
    for event in events {
        let (event_id, kind, attempt, state, at, leased, deliveries, consumer, reason) = event?;
        push(
            at,
            &kind,
            json!({"event_id": event_id, "attempt": attempt, "state": state, "reason": reason}),
        );
        if let Some(leased) = leased {
            push(
                leased,
                "leased",
                json!({"event_id": event_id, "consumer": consumer, "deliveries": deliveries}),
            );
        }
    }
    let mut statement =
        conn.prepare_cached("SELECT at, attempt, result FROM attempts WHERE callback_id = ?1")?;
    let attempts = statement.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            json!({"attempt": r.get::<_, i64>(1)?, "result": r.get::<_, String>(2)?}),
        ))
    })?;
    for attempt in attempts {
        let (at, detail) = attempt?;
        push(at, "attempt", detail);
    }
    let mut statement = conn.prepare_cached(
        "SELECT at, action, actor, reason, before, after FROM audit WHERE callback_id = ?1",
    )?;
    let changes = statement.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            json!({
                "actor": r.get::<_, String>(2)?,
                "reason": r.get::<_, Option<String>>(3)?,
                "before": parse(r.get::<_, Option<String>>(4)?),
                "after": parse(r.get::<_, Option<String>>(5)?),
            }),
        ))
    })?;
    for change in changes {
        let (at, action, detail) = change?;
        push(at, &action, detail);
    }
    if state != "scheduled" && state != "due" {
        push(
            updated_at,
            "ended",
            json!({"state": state, "reason": reason}),
        );
    }
    // Stable: steps of one instant keep the order they were read in (the outcome first).
    steps.sort_by_key(|s| s.at);
    Ok(steps)
}

fn rfc3339(ms: i64) -> String {
    utc_rfc3339(instant(ms))
}

fn parse(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}
