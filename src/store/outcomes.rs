//! Business outcomes: what a request needs to know before it writes, and the outcome rows it
//! writes. A replaced outcome moves to `outcome_history`.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, ToSql};

use super::telephony::present;
use crate::lcm::{AccountNumber, CallId, PersonalCallback, UserId};

/// An outcome as stored: the fields a repeated request is compared by.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub id: i64,
    pub callback_id: Option<i64>,
    pub account_number: AccountNumber,
    pub outcome_id: i64,
    pub business_outcome: i64,
    pub user_id: UserId,
    pub agent_comments: String,
    pub lead_score: f64,
    pub target_amount: f64,
}

/// What a request needs to know before it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Prerequisites {
    /// The AccountNumber the call was registered with.
    pub account_number: AccountNumber,
    /// The call's current outcome.
    pub current: Option<Recorded>,
    /// The request's agent is logged in, or on an active call.
    pub agent_present: bool,
}

/// Reads a request's prerequisites in one statement (three lookups by key); `None` when
/// `callid` is not registered.
pub fn prerequisites(
    conn: &Connection,
    callid: &CallId,
    user: &UserId,
) -> Result<Option<Prerequisites>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT c.account_number, o.id, o.callback_id, o.account_number, o.outcome_id,
                o.business_outcome, o.user_id, o.agent_comments, o.lead_score, o.target_amount,
                {}
         FROM calls c LEFT JOIN outcomes o ON o.callid = c.callid
         WHERE c.callid = ?1",
        present("?2")
    ))?
    .query_row(params![callid, user], |r| {
        let current = match r.get::<_, Option<i64>>(1)? {
            None => None,
            Some(id) => Some(Recorded {
                id,
                callback_id: r.get(2)?,
                account_number: r.get(3)?,
                outcome_id: r.get(4)?,
                business_outcome: r.get(5)?,
                user_id: r.get(6)?,
                agent_comments: r.get(7)?,
                lead_score: r.get(8)?,
                target_amount: r.get(9)?,
            }),
        };
        Ok(Prerequisites {
            account_number: r.get(0)?,
            current,
            agent_present: r.get(10)?,
        })
    })
    .optional()
}

/// Stores `req`'s outcome for its call with its callback: a new row, or in place of the
/// call's current outcome `replacing`, which moves to `outcome_history`.
pub fn save(
    conn: &Connection,
    req: &PersonalCallback,
    source: Option<&str>,
    callback_id: i64,
    replacing: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let Some(current) = replacing else {
        conn.prepare_cached(
            "INSERT INTO outcomes (account_number, outcome_id, business_outcome, user_id,
                 agent_comments, lead_score, target_amount, source, callback_id, received_at,
                 callid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(row(req, &source, &callback_id, &now_ms, &req.callid))?;
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO outcome_history (outcome, callid, account_number, outcome_id,
             business_outcome, user_id, agent_comments, lead_score, target_amount, source,
             callback_id, received_at, replaced_at)
         SELECT id, callid, account_number, outcome_id, business_outcome, user_id,
             agent_comments, lead_score, target_amount, source, callback_id, received_at, ?2
         FROM outcomes WHERE id = ?1",
    )?
    .execute(params![current, now_ms])?;
    conn.prepare_cached(
        "UPDATE outcomes SET account_number = ?1, outcome_id = ?2, business_outcome = ?3,
             user_id = ?4, agent_comments = ?5, lead_score = ?6, target_amount = ?7,
             source = ?8, callback_id = ?9, received_at = ?10
         WHERE id = ?11",
    )?
    .execute(row(req, &source, &callback_id, &now_ms, &current))?;
    Ok(())
}

/// An outcome row's values, `?1` to `?10`, in the order both of [`save`]'s statements name
/// them; `?11` is `last`: the call (a new row) or the row replaced.
fn row<'a>(
    req: &'a PersonalCallback,
    source: &'a Option<&str>,
    callback_id: &'a i64,
    received_at: &'a i64,
    last: &'a dyn ToSql,
) -> [&'a dyn ToSql; 11] {
    [
        &req.account_number,
        &req.outcome_id,
        &req.business_outcome,
        &req.user_id,
        &req.agent_comments,
        &req.lead_score,
        &req.target_amount,
        source,
        callback_id,
        received_at,
        last,
    ]
}
