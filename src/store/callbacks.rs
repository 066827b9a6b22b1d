//! Reading callbacks back as the API shows them; changes go through [`super::lifecycle`].

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::lcm::{AccountNumber, CallId, Subtopic, UserId};
use crate::lifecycle::CallbackState;
use crate::zone::{serialize_utc, Zone};

/// A callback as the API shows it (contract section 5).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Callback {
    pub id: i64,
    /// As shown: `leased` while a dialer holds its redial.
    pub state: CallbackState,
    pub callid: CallId,
    #[serde(rename = "AccountNumber")]
    pub account_number: AccountNumber,
    #[serde(rename = "CallbackModeID")]
    pub callback_mode_id: i64,
    #[serde(rename = "UserID")]
    pub user_id: UserId,
    #[serde(serialize_with = "serialize_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub window_start: DateTime<Utc>,
    #[serde(serialize_with = "serialize_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub window_end: DateTime<Utc>,
    pub timezone: Zone,
    /// As the request sent them, `DD/MM/YYYY HH:mm`.
    pub local_start: String,
    pub local_end: String,
    pub attempts: i64,
}

/// An instant stored in ms, as a `DateTime`.
pub fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn from_row(r: &Row<'_>) -> Result<Callback, rusqlite::Error> {
    Ok(Callback {
        id: r.get(0)?,
        state: r.get(1)?,
        callid: r.get(2)?,
        account_number: r.get(3)?,
        callback_mode_id: r.get(4)?,
        user_id: r.get(5)?,
        window_start: instant(r.get(6)?),
        window_end: instant(r.get(7)?),
        timezone: r.get(8)?,
        local_start: r.get(9)?,
        local_end: r.get(10)?,
        attempts: r.get(11)?,
    })
}

pub fn find(conn: &Connection, id: i64) -> Result<Option<Callback>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT id, shown_state, callid, account_number, callback_mode_id, user_id,
             window_start, window_end, timezone, local_start, local_end, attempts
         FROM callbacks_shown WHERE id = ?1",
    )?
    .query_row([id], from_row)
    .optional()
}

/// What a callback was asked with: the fields an identical retry of the message that set
/// it is compared by.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    pub id: i64,
    pub account_number: AccountNumber,
    pub user_id: UserId,
    pub callback_mode_id: i64,
    pub local_start: String,
    pub local_end: String,
    pub timezone: Zone,
    pub agent_comments: Option<String>,
    pub lead_score: Option<f64>,
    pub target_amount: Option<f64>,
}

/// The latest callback `message` set for the call `callid`.
pub fn latest_set_by(
    conn: &Connection,
    callid: &CallId,
    message: Subtopic,
) -> Result<Option<Asked>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT id, account_number, user_id, callback_mode_id, local_start, local_end, timezone,
             agent_comments, lead_score, target_amount
         FROM callbacks WHERE callid = ?1 AND message = ?2 ORDER BY id DESC LIMIT 1",
    )?
    .query_row(params![callid, message], |r| {
        Ok(Asked {
            id: r.get(0)?,
            account_number: r.get(1)?,
            user_id: r.get(2)?,
            callback_mode_id: r.get(3)?,
            local_start: r.get(4)?,
            local_end: r.get(5)?,
            timezone: r.get(6)?,
            agent_comments: r.get(7)?,
            lead_score: r.get(8)?,
            target_amount: r.get(9)?,
        })
    })
    .optional()
}

/// What `GET /v1/callbacks` narrows to; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub user_id: Option<UserId>,
    /// States as shown (`leased` included); any of them.
    pub states: Vec<CallbackState>,
    pub account: Option<AccountNumber>,
    /// Window start at or after, and before, these instants (ms).
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// `Some(true)`: personal callbacks only; `Some(false)`: normal ones only.
    pub personal: Option<bool>,
}

/// Where a page starts: after this window start and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub window_start: i64,
    pub id: i64,
}

/// The slice of time whose windows `callbacks_by_slice` keeps together (schema step 12):
/// ten minutes, written into its statements as `window_start / 600000`.
pub const SLICE_MS: i64 = 600_000;

/// Up to `limit` callbacks matching `filter`, in window order (window start, then id), after
/// `after`. Keyset pagination: a page starts at the cursor's place in an index, so the
/// thousandth page costs what the first does, and callbacks inserted between pages are
/// neither seen twice nor skipped (one inserted behind the cursor is seen on no page).
///
/// One agent's or one contact's callbacks are read from their index in window order. The
/// others are read ten minutes at a time from `callbacks_by_slice`, each slice sorted, the
/// next non-empty slice found from the index, until the page is full; live ones from the
/// first live window on ([`live_from`]).
pub fn page(
    conn: &Connection,
    filter: &Filter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<Callback>, rusqlite::Error> {
    // One lower bound on the window's start: given two, SQLite may start at the lower and
    // filter the rest row by row. A cursor before `from` says nothing `from` does not.
    let after = after.filter(|c| filter.from.is_none_or(|from| c.window_start >= from));
    if filter.user_id.is_some() || filter.account.is_some() {
        return read(conn, filter, after, None, limit);
    }
    let live = asks_live_only(filter);
    let last_slice = filter.to.map(|to| (to - 1).div_euclid(SLICE_MS));
    let first = match (after, filter.from) {
        (Some(cursor), _) => Some(cursor.window_start),
        (None, Some(from)) => Some(from),
        (None, None) if live => live_from(conn)?,
        (None, None) => None,
    };
    let mut slice = match first {
        Some(at) => Some(at.div_euclid(SLICE_MS)),
        None => next_slice(conn, i64::MIN, last_slice)?,
    };
    let mut page = Vec::new();
    while let Some(at) = slice {
        let rows = read(conn, filter, after, Some(at), limit - page.len() as i64)?;
        page.extend(rows);
        if page.len() as i64 >= limit {
            break;
        }
        slice = next_slice(conn, at, last_slice)?;
    }
    Ok(page)
}

/// Whether only live states are asked for: their callbacks start no earlier than
/// [`live_from`].
fn asks_live_only(filter: &Filter) -> bool {
    !filter.states.is_empty() && filter.states.iter().all(|s| s.is_live())
}

/// No live callback's window starts before this: every live callback is on the scheduler's
/// agenda (`next_at`) or parked until its hour (`parked_at`, before its window), and a
/// finished one is on neither. Both are read from their partial indexes, which hold only
/// live callbacks, so a page of live ones skips a month of finished ones. (An index of live
/// callbacks by slice would find them faster, and cost every new callback 3 KiB more
/// written: BENCHMARKS.md, experiments not kept.)
fn live_from(conn: &Connection) -> Result<Option<i64>, rusqlite::Error> {
    let agenda: Option<i64> = conn
        .prepare_cached("SELECT min(window_start) FROM callbacks WHERE next_at IS NOT NULL")?
        .query_row([], |r| r.get(0))?;
    let parked: Option<i64> = conn
        .prepare_cached("SELECT min(parked_at) FROM callbacks WHERE parked_at IS NOT NULL")?
        .query_row([], |r| r.get(0))?;
    Ok(agenda.into_iter().chain(parked).min())
}

/// The first slice after `slice` that holds a callback, up to `last`.
fn next_slice(
    conn: &Connection,
    slice: i64,
    last: Option<i64>,
) -> Result<Option<i64>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT min(window_start / 600000) FROM callbacks
         WHERE window_start / 600000 > ?1 AND window_start / 600000 <= ?2",
    )?
    .query_row(params![slice, last.unwrap_or(i64::MAX)], |r| r.get(0))
}

/// One statement of [`page`]: the filters asked for (so each combination gets the plan of
/// its own index), within the slice `slice` when given.
fn read(
    conn: &Connection,
    filter: &Filter,
    after: Option<Cursor>,
    slice: Option<i64>,
    limit: i64,
) -> Result<Vec<Callback>, rusqlite::Error> {
    let mut sql = String::from(
        "SELECT id, shown_state, callid, account_number, callback_mode_id, user_id,
             window_start, window_end, timezone, local_start, local_end, attempts
         FROM callbacks_shown WHERE 1",
    );
    sql.push_str(match slice {
        Some(_) => " AND window_start / 600000 = ?9",
        // Every statement binds the same nine parameters.
        None => " AND ?9 IS NULL",
    });
    if after.is_some() {
        sql.push_str(" AND (window_start, id) > (?1, ?2)");
    } else if filter.from.is_some() {
        sql.push_str(" AND window_start >= ?5");
    }
    if filter.user_id.is_some() {
        sql.push_str(" AND user_id = ?3");
    }
    if filter.account.is_some() {
        sql.push_str(" AND account_number = ?4");
    }
    if filter.to.is_some() {
        sql.push_str(" AND window_start < ?6");
    }
    if let Some(personal) = filter.personal {
        sql.push_str(if personal {
            " AND kind = 'personal'"
        } else {
            " AND kind = 'normal'"
        });
    }
    if !filter.states.is_empty() {
        // The stored state first: it rules out a finished callback before its shown state,
        // which looks into the queue, is worked out.
        if asks_live_only(filter) {
            sql.push_str(" AND state IN ('scheduled', 'due')");
        }
        sql.push_str(" AND shown_state IN (SELECT value FROM json_each(?7))");
    }
    sql.push_str(" ORDER BY window_start, id LIMIT ?8 + 0");
    let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
    let (after_start, after_id) = after.map_or((i64::MIN, i64::MIN), |c| (c.window_start, c.id));
    conn.prepare_cached(&sql)?
        .query_map(
            params![
                after_start,
                after_id,
                filter.user_id,
                filter.account,
                filter.from,
                filter.to,
                serde_json::to_string(&states).unwrap_or_default(),
                limit,
                slice,
            ],
            from_row,
        )?
        .collect()
}

/// Whether the callback `id` was set as personal (it has an owner to change).
pub fn is_personal(conn: &Connection, id: i64) -> Result<bool, rusqlite::Error> {
    conn.prepare_cached("SELECT kind = 'personal' FROM callbacks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
}
