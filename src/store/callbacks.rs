//! Callback windows: creating them (superseding the contact's live one) and reading them back.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::lcm::{PersonalCallback, UtcWindow};

/// A callback as the API shows it (contract section 5).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Callback {
    pub id: i64,
    pub state: String,
    pub callid: String,
    #[serde(rename = "AccountNumber")]
    pub account_number: String,
    #[serde(rename = "CallbackModeID")]
    pub callback_mode_id: i64,
    #[serde(rename = "UserID")]
    pub user_id: String,
    pub window_start: String,
    pub window_end: String,
    pub timezone: String,
    pub local_start: String,
    pub local_end: String,
    pub attempts: i64,
}

/// RFC 3339 with `Z`, the form every instant takes on the wire.
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Inserts the callback for `req`, first marking the contact's live callback superseded.
/// A window that has already opened starts out `due`.
pub fn insert(
    conn: &Connection,
    req: &PersonalCallback,
    window: &UtcWindow,
    now: DateTime<Utc>,
) -> Result<i64, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let superseded: Option<i64> = conn
        .prepare_cached(
            "UPDATE callbacks SET state = 'superseded', updated_at = ?2
             WHERE account_number = ?1 AND state IN ('scheduled', 'due', 'leased')
             RETURNING id",
        )?
        .query_row(params![req.account_number.as_str(), now_ms], |r| r.get(0))
        .optional()?;
    let state = if window.start <= now {
        "due"
    } else {
        "scheduled"
    };
    conn.prepare_cached(
        "INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
             window_end, local_start, local_end, timezone, start_dst, end_dst, state, supersedes,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
    )?
    .execute(params![
        req.callid.as_str(),
        req.account_number.as_str(),
        req.callback_mode_id,
        req.user_id.as_str(),
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
        window.local_start,
        window.local_end,
        window.zone.name(),
        window.start_adjusted.as_str(),
        window.end_adjusted.as_str(),
        state,
        superseded,
        now_ms,
    ])?;
    Ok(conn.last_insert_rowid())
}

const COLUMNS: &str = "id, state, callid, account_number, callback_mode_id, user_id, window_start,
    window_end, timezone, local_start, local_end, attempts";

fn from_row(r: &Row<'_>) -> Result<Callback, rusqlite::Error> {
    Ok(Callback {
        id: r.get(0)?,
        state: r.get(1)?,
        callid: r.get(2)?,
        account_number: r.get(3)?,
        callback_mode_id: r.get(4)?,
        user_id: r.get(5)?,
        window_start: rfc3339(r.get(6)?),
        window_end: rfc3339(r.get(7)?),
        timezone: r.get(8)?,
        local_start: r.get(9)?,
        local_end: r.get(10)?,
        attempts: r.get(11)?,
    })
}

pub fn find(conn: &Connection, id: i64) -> Result<Option<Callback>, rusqlite::Error> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM callbacks WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}
