//! Agents and calls, as the telephony side reports them: the prerequisite of every LCM request.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::StoreError;
use crate::lcm::{AccountNumber, CallId, UserId};

/// Why a call could not be registered or ended.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("call {callid:?} is already registered with {field} {registered:?}, not {sent:?}")]
    Conflict {
        callid: String,
        field: &'static str,
        registered: String,
        sent: String,
    },
    #[error("no call {0:?} is registered")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for CallError {
    fn from(e: rusqlite::Error) -> Self {
        CallError::Store(e.into())
    }
}

/// A call as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    pub callid: String,
    #[serde(rename = "AccountNumber")]
    pub account_number: String,
    #[serde(rename = "UserID")]
    pub user_id: String,
    pub state: String,
}

/// Marks an agent logged in or out. Logging out an agent never seen is recorded, not refused:
/// telephony events arrive in any order.
pub fn set_agent_login(
    conn: &Connection,
    user: &UserId,
    logged_in: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = now.timestamp_millis();
    let sql = if logged_in {
        "INSERT INTO agents (user_id, logged_in, login_at, updated_at) VALUES (?1, 1, ?2, ?2)
         ON CONFLICT (user_id) DO UPDATE SET logged_in = 1, login_at = ?2, updated_at = ?2"
    } else {
        "INSERT INTO agents (user_id, logged_in, logout_at, updated_at) VALUES (?1, 0, ?2, ?2)
         ON CONFLICT (user_id) DO UPDATE SET logged_in = 0, logout_at = ?2, updated_at = ?2"
    };
    conn.prepare_cached(sql)?
        .execute(params![user.as_str(), now])?;
    Ok(())
}

/// Registers an active call. Registering the same call again with the same AccountNumber and
/// UserID is a no-op (`Ok(false)`); with different ones it is a conflict.
pub fn register_call(
    conn: &Connection,
    callid: &CallId,
    account: &AccountNumber,
    user: &UserId,
    now: DateTime<Utc>,
) -> Result<(Call, bool), CallError> {
    if let Some(existing) = find_call(conn, callid.as_str())? {
        let conflict = |field, registered: &str, sent: &str| CallError::Conflict {
            callid: callid.to_string(),
            field,
            registered: registered.to_owned(),
            sent: sent.to_owned(),
        };
        if existing.account_number != account.as_str() {
            return Err(conflict(
                "AccountNumber",
                &existing.account_number,
                account.as_str(),
            ));
        }
        if existing.user_id != user.as_str() {
            return Err(conflict("UserID", &existing.user_id, user.as_str()));
        }
        return Ok((existing, false));
    }
    conn.prepare_cached(
        "INSERT INTO calls (callid, account_number, user_id, state, started_at)
         VALUES (?1, ?2, ?3, 'active', ?4)",
    )?
    .execute(params![
        callid.as_str(),
        account.as_str(),
        user.as_str(),
        now.timestamp_millis()
    ])?;
    let call = Call {
        callid: callid.to_string(),
        account_number: account.to_string(),
        user_id: user.to_string(),
        state: "active".to_owned(),
    };
    Ok((call, true))
}

/// Ends a call. Ending an ended call again changes nothing.
pub fn end_call(conn: &Connection, callid: &str, now: DateTime<Utc>) -> Result<Call, CallError> {
    conn.prepare_cached(
        "UPDATE calls SET state = 'ended', ended_at = ?2 WHERE callid = ?1 AND state = 'active'",
    )?
    .execute(params![callid, now.timestamp_millis()])?;
    find_call(conn, callid)?.ok_or_else(|| CallError::Unknown(callid.to_owned()))
}

pub fn find_call(conn: &Connection, callid: &str) -> Result<Option<Call>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT callid, account_number, user_id, state FROM calls WHERE callid = ?1",
    )?
    .query_row([callid], |r| {
        Ok(Call {
            callid: r.get(0)?,
            account_number: r.get(1)?,
            user_id: r.get(2)?,
            state: r.get(3)?,
        })
    })
    .optional()
}

/// Whether the agent may set an outcome: logged in, or on an active call.
pub fn agent_is_present(conn: &Connection, user: &UserId) -> Result<bool, rusqlite::Error> {
    conn.prepare_cached(&format!("SELECT {}", present("?1")))?
        .query_row([user.as_str()], |r| r.get(0))
}

/// The rule for an agent being present, as an SQL expression, for statements that ask it of
/// many rows or beside other lookups: the agent `user` (a parameter or a column) is logged in
/// or on an active call.
pub fn present(user: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM agents a WHERE a.user_id = {user} AND a.logged_in = 1)
          OR EXISTS (SELECT 1 FROM calls k WHERE k.user_id = {user} AND k.state = 'active'))"
    )
}
