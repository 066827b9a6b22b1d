//! Reading callbacks back as the API shows them; changes go through [`super::lifecycle`].

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::lcm::{AccountNumber, CallId, Subtopic, UserId};
use crate::lifecycle::CallbackState;
use crate::zone::{serialize_utc, Zone};

/// A callback as the API shows it (contract section 5).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    pub window_start: DateTime<Utc>,
    #[serde(serialize_with = "serialize_utc")]
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
