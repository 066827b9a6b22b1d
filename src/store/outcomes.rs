//! Business outcomes: what a message needs to know before it writes, and the outcome rows it
//! writes. A replaced outcome moves to `outcome_history`.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, ToSql};

use super::callbacks::instant;
use super::telephony::present;
use crate::lcm::{AccountNumber, CallId, Disposition, Subtopic, TelephonyOutcome, UserId};

/// An outcome as stored: the fields a repeated message is compared by.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub id: i64,
    pub message: Subtopic,
    pub callback_id: Option<i64>,
    pub account_number: AccountNumber,
    pub outcome_id: Option<i64>,
    pub business_outcome: Option<i64>,
    pub call_outcome: Option<TelephonyOutcome>,
    pub user_id: UserId,
    pub agent_comments: String,
    pub lead_score: f64,
    pub target_amount: f64,
}

/// A contact on the do-not-call list: since when, and by which message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub since: DateTime<Utc>,
    pub callid: Option<String>,
    pub message: Option<String>,
}

/// What a message about a call needs to know before it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Prerequisites {
    /// The AccountNumber the call was registered with.
    pub account_number: AccountNumber,
    /// The call's current outcome.
    pub current: Option<Recorded>,
    /// The message's agent is logged in, or on an active call.
    pub agent_present: bool,
    /// The call's contact is on the do-not-call list.
    pub dnc: Option<Listed>,
}

/// Reads a message's prerequisites in one statement (lookups by key); `None` when `callid` is
/// not registered. `user` is the message's agent.
pub fn prerequisites(
    conn: &Connection,
    callid: &CallId,
    user: &UserId,
) -> Result<Option<Prerequisites>, rusqlite::Error> {
    // Written once: every message reads it, and formatting it each time was a measurable
    // part of a request's cost.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT c.account_number, o.id, o.callback_id, o.account_number, o.outcome_id,
                 o.business_outcome, o.user_id, o.agent_comments, o.lead_score,
                 o.target_amount, {}, o.message, o.call_outcome, d.since, d.callid, d.message
             FROM calls c LEFT JOIN outcomes o ON o.callid = c.callid
                 LEFT JOIN dnc d ON d.account_number = c.account_number
             WHERE c.callid = ?1",
            present("?2")
        )
    });
    conn.prepare_cached(&SQL)?
        .query_row(params![callid, user], |r| {
            let current = match r.get::<_, Option<i64>>(1)? {
                None => None,
                Some(id) => Some(Recorded {
                    id,
                    message: r.get(11)?,
                    callback_id: r.get(2)?,
                    account_number: r.get(3)?,
                    outcome_id: r.get(4)?,
                    business_outcome: r.get(5)?,
                    call_outcome: r.get(12)?,
                    user_id: r.get(6)?,
                    agent_comments: r.get(7)?,
                    lead_score: r.get(8)?,
                    target_amount: r.get(9)?,
                }),
            };
            let dnc = match r.get::<_, Option<i64>>(13)? {
                None => None,
                Some(since) => Some(Listed {
                    since: instant(since),
                    callid: r.get(14)?,
                    message: r.get(15)?,
                }),
            };
            Ok(Prerequisites {
                account_number: r.get(0)?,
                current,
                agent_present: r.get(10)?,
                dnc,
            })
        })
        .optional()
}

/// Stores the outcome `d` sets for its call, with the callback it created, if any: a new row,
/// or in place of the call's current outcome `replacing`, which moves to `outcome_history`.
pub fn save(
    conn: &Connection,
    d: &Disposition,
    source: Option<&str>,
    callback_id: Option<i64>,
    replacing: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let Some(current) = replacing else {
        conn.prepare_cached(
            "INSERT INTO outcomes (account_number, outcome_id, business_outcome, user_id,
                 agent_comments, lead_score, target_amount, source, callback_id, received_at,
                 message, call_outcome, callid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(row(d, &source, &callback_id, &now_ms, &d.callid))?;
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO outcome_history (outcome, callid, account_number, outcome_id,
             business_outcome, user_id, agent_comments, lead_score, target_amount, source,
             callback_id, received_at, replaced_at, message, call_outcome)
         SELECT id, callid, account_number, outcome_id, business_outcome, user_id,
             agent_comments, lead_score, target_amount, source, callback_id, received_at, ?2,
             message, call_outcome
         FROM outcomes WHERE id = ?1",
    )?
    .execute(params![current, now_ms])?;
    conn.prepare_cached(
        "UPDATE outcomes SET account_number = ?1, outcome_id = ?2, business_outcome = ?3,
             user_id = ?4, agent_comments = ?5, lead_score = ?6, target_amount = ?7,
             source = ?8, callback_id = ?9, received_at = ?10, message = ?11,
             call_outcome = ?12
         WHERE id = ?13",
    )?
    .execute(row(d, &source, &callback_id, &now_ms, &current))?;
    Ok(())
}

/// An outcome row's values, `?1` to `?12`, in the order both of [`save`]'s statements name
/// them; `?13` is `last`: the call (a new row) or the row replaced.
fn row<'a>(
    d: &'a Disposition,
    source: &'a Option<&str>,
    callback_id: &'a Option<i64>,
    received_at: &'a i64,
    last: &'a dyn ToSql,
) -> [&'a dyn ToSql; 13] {
    [
        &d.account_number,
        &d.outcome_id,
        &d.business_outcome,
        &d.user_id,
        &d.agent_comments,
        &d.lead_score,
        &d.target_amount,
        source,
        callback_id,
        received_at,
        &d.subtopic,
        &d.call_outcome,
        last,
    ]
}

/// Puts `account` on the do-not-call list, unless it is already there (it keeps its first
/// listing).
pub fn list_dnc(
    conn: &Connection,
    d: &Disposition,
    source: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO dnc (account_number, since, callid, user_id, message, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        d.account_number,
        now.timestamp_millis(),
        d.callid,
        d.user_id,
        d.subtopic,
        source
    ])?;
    Ok(())
}
