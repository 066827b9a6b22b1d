//! Agents and calls, as the telephony side reports them: the prerequisite of every LCM request.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::lcm::{AccountNumber, CallId, UserId};
use crate::lifecycle::CallState;

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Call {
    pub callid: CallId,
    #[serde(rename = "AccountNumber")]
    pub account_number: AccountNumber,
    #[serde(rename = "UserID")]
    pub user_id: UserId,
    pub state: CallState,
}

/// Marks an agent logged in or out, whether or not the agent was seen before.
pub fn set_agent_login(
    conn: &Connection,
    user: &UserId,
    logged_in: bool,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let sql = if logged_in {
        "INSERT INTO agents (user_id, logged_in, login_at, updated_at) VALUES (?1, 1, ?2, ?2)
         ON CONFLICT (user_id) DO UPDATE SET logged_in = 1, login_at = ?2, updated_at = ?2"
    } else {
        "INSERT INTO agents (user_id, logged_in, logout_at, updated_at) VALUES (?1, 0, ?2, ?2)
         ON CONFLICT (user_id) DO UPDATE SET logged_in = 0, logout_at = ?2, updated_at = ?2"
    };
    conn.prepare_cached(sql)?
        .execute(params![user, now.timestamp_millis()])?;
    super::bus::agent_state(conn, user, logged_in, now)
}

/// Stores a new, active call.
pub fn insert_call(
    conn: &Connection,
    callid: &CallId,
    account: &AccountNumber,
    user: &UserId,
    now: DateTime<Utc>,
) -> Result<Call, rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO calls (callid, account_number, user_id, state, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        callid,
        account,
        user,
        CallState::Active,
        now.timestamp_millis()
    ])?;
    Ok(Call {
        callid: callid.clone(),
        account_number: account.clone(),
        user_id: user.clone(),
        state: CallState::Active,
    })
}

/// Ends a call, if it is active; returns it as it is now (`None`: no such call).
pub fn end_call(
    conn: &Connection,
    callid: &CallId,
    now: DateTime<Utc>,
) -> Result<Option<Call>, rusqlite::Error> {
    conn.prepare_cached(
        "UPDATE calls SET state = 'ended', ended_at = ?2 WHERE callid = ?1 AND state = 'active'",
    )?
    .execute(params![callid, now.timestamp_millis()])?;
    find_call(conn, callid)
}

pub fn find_call(conn: &Connection, callid: &CallId) -> Result<Option<Call>, rusqlite::Error> {
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
        .query_row([user], |r| r.get(0))
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

/// The call `callid`, and whether its agent is present (logged in, or on an active call).
pub fn call_and_presence(
    conn: &Connection,
    callid: &CallId,
) -> Result<Option<(Call, bool)>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT callid, account_number, user_id, state, {} FROM calls c WHERE callid = ?1",
        present("c.user_id")
    ))?
    .query_row([callid], |r| {
        Ok((
            Call {
                callid: r.get(0)?,
                account_number: r.get(1)?,
                user_id: r.get(2)?,
                state: r.get(3)?,
            },
            r.get(4)?,
        ))
    })
    .optional()
}

/// Whether redial knows the agent: it has logged in at some time, or is on a call now. A
/// callback may be given only to a known agent, so a mistyped UserID is refused rather than
/// left with no one to call.
pub fn agent_is_known(conn: &Connection, user: &UserId) -> Result<bool, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM agents WHERE user_id = ?1) OR {}",
        present("?1")
    ))?
    .query_row([user], |r| r.get(0))
}
