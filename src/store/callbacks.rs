//! Reading callbacks back as the API shows them; changes go through [`super::lifecycle`].

use chrono::{DateTime, SecondsFormat};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

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

/// A callback's state as the API and reports show it: the stored state, except that a live
/// callback whose current redial a dialer has taken (leased, or acked before reporting the
/// attempt) is `leased`, whether or not the scheduler has made it `due` yet.
pub const STATE: &str = "CASE WHEN state IN ('scheduled', 'due') AND EXISTS (SELECT 1 FROM events e
        WHERE e.callback_id = callbacks.id AND e.state IN ('leased', 'acked') AND e.type = 'redial'
            AND e.attempt = callbacks.attempts + 1)
    THEN 'leased' ELSE state END";

const COLUMNS: &str = "callid, account_number, callback_mode_id, user_id, window_start,
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
    conn.prepare_cached(&format!(
        "SELECT id, {STATE}, {COLUMNS} FROM callbacks WHERE id = ?1"
    ))?
    .query_row([id], from_row)
    .optional()
}
