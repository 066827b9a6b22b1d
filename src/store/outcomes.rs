//! Business outcomes and the callback each one asks for: the write behind
//! `SetBusinessOutcomeWithPersonalCallback`.
//!
//! * An identical retry (every `data` field the same; `source` is not part of the request's
//!   meaning) changes nothing and answers the same `callback_id`.
//! * A different request for the same callid replaces the outcome; the replaced row moves to
//!   `outcome_history`.
//! * The new callback supersedes the live callback of the same AccountNumber, if any.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::callbacks;
use super::lifecycle::{self, Policy};
use super::telephony::present;
use crate::lcm::{LcmError, PersonalCallback, UtcWindow};

/// A request ready to store: the parsed fields and the window in UTC.
#[derive(Debug, Clone)]
pub struct NewOutcome {
    pub request: PersonalCallback,
    pub window: UtcWindow,
    pub source: Option<String>,
}

impl From<rusqlite::Error> for LcmError {
    fn from(e: rusqlite::Error) -> Self {
        LcmError::Store(e.into())
    }
}

/// What storing a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub callback_id: i64,
    /// When the scheduler must next look at the callback; `None` for an identical retry.
    pub next_at: Option<i64>,
    /// The window had already started: its redial event is on the queue now.
    pub opened: bool,
}

/// Stores the outcome and its callback. A window that has already started is opened in the
/// same transaction, so its redial is on the queue when the client hears of success.
pub fn set_outcome(
    conn: &Connection,
    new: &NewOutcome,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Stored, LcmError> {
    let req = &new.request;
    let known =
        prerequisites(conn, req)?.ok_or_else(|| LcmError::UnknownCall(req.callid.to_string()))?;
    if known.account_number != req.account_number.as_str() {
        return Err(LcmError::AccountMismatch {
            callid: req.callid.to_string(),
            registered: known.account_number,
            sent: req.account_number.to_string(),
        });
    }
    let current = known.current;
    if let Some(Current {
        callback_id: Some(callback_id),
        identical: true,
        ..
    }) = current
    {
        if same_window(conn, callback_id, new)? {
            return Ok(Stored {
                callback_id,
                next_at: None,
                opened: false,
            });
        }
    }
    if !known.agent_present {
        return Err(LcmError::AgentNotLoggedIn(req.user_id.to_string()));
    }
    if new.window.end <= now {
        return Err(LcmError::WindowOver {
            local: format!(
                "{} to {} ({})",
                new.window.local_start,
                new.window.local_end,
                new.window.zone.name()
            ),
            end: new.window.end,
            now,
        });
    }
    let created = lifecycle::create(conn, req, &new.window, now, policy)?;
    let callback_id = created.id;
    let now_ms = now.timestamp_millis();
    match current {
        Some(current) => {
            conn.prepare_cached(
                "INSERT INTO outcome_history (outcome, callid, account_number, outcome_id,
                     business_outcome, user_id, agent_comments, lead_score, target_amount, source,
                     callback_id, received_at, replaced_at)
                 SELECT id, callid, account_number, outcome_id, business_outcome, user_id,
                     agent_comments, lead_score, target_amount, source, callback_id, received_at, ?2
                 FROM outcomes WHERE id = ?1",
            )?
            .execute(params![current.id, now_ms])?;
            conn.prepare_cached(
                "UPDATE outcomes SET account_number = ?2, outcome_id = ?3, business_outcome = ?4,
                     user_id = ?5, agent_comments = ?6, lead_score = ?7, target_amount = ?8,
                     source = ?9, callback_id = ?10, received_at = ?11
                 WHERE id = ?1",
            )?
            .execute(params![
                current.id,
                req.account_number.as_str(),
                req.outcome_id,
                req.business_outcome,
                req.user_id.as_str(),
                req.agent_comments,
                req.lead_score,
                req.target_amount,
                new.source,
                callback_id,
                now_ms
            ])?;
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO outcomes (callid, account_number, outcome_id, business_outcome,
                     user_id, agent_comments, lead_score, target_amount, source, callback_id,
                     received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                req.callid.as_str(),
                req.account_number.as_str(),
                req.outcome_id,
                req.business_outcome,
                req.user_id.as_str(),
                req.agent_comments,
                req.lead_score,
                req.target_amount,
                new.source,
                callback_id,
                now_ms
            ])?;
        }
    }
    let opened = new.window.start <= now;
    let next_at = if opened {
        lifecycle::open_if_due(conn, callback_id, now, policy)?
    } else {
        // Usual case, no second read: the scheduler stages the redial ahead of the start.
        Some(created.wake_at)
    };
    Ok(Stored {
        callback_id,
        next_at,
        opened,
    })
}

/// The call's current outcome, and whether its reporting fields equal the request's.
struct Current {
    id: i64,
    callback_id: Option<i64>,
    identical: bool,
}

/// What a request needs to know before it writes: its registered call, the call's current
/// outcome, and whether the agent is present.
struct Prerequisites {
    /// The AccountNumber the call was registered with.
    account_number: String,
    current: Option<Current>,
    /// Logged in, or on an active call.
    agent_present: bool,
}

/// Reads the request's prerequisites in one statement (three lookups by key); `None` when
/// the call is not registered.
fn prerequisites(
    conn: &Connection,
    req: &PersonalCallback,
) -> Result<Option<Prerequisites>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT c.account_number, o.id, o.callback_id, o.account_number, o.outcome_id,
                o.business_outcome, o.user_id, o.agent_comments, o.lead_score, o.target_amount,
                {}
         FROM calls c LEFT JOIN outcomes o ON o.callid = c.callid
         WHERE c.callid = ?1",
        present("?2")
    ))?
    .query_row([req.callid.as_str(), req.user_id.as_str()], |r| {
        let current = match r.get::<_, Option<i64>>(1)? {
            None => None,
            Some(id) => Some(Current {
                id,
                callback_id: r.get(2)?,
                identical: r.get::<_, String>(3)? == req.account_number.as_str()
                    && r.get::<_, i64>(4)? == req.outcome_id
                    && r.get::<_, i64>(5)? == req.business_outcome
                    && r.get::<_, String>(6)? == req.user_id.as_str()
                    && r.get::<_, String>(7)? == req.agent_comments
                    && r.get::<_, f64>(8)? == req.lead_score
                    && r.get::<_, f64>(9)? == req.target_amount,
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

/// Whether the stored callback asks for the same contact mode and the same local window in the
/// same zone as the request.
fn same_window(
    conn: &Connection,
    callback_id: i64,
    new: &NewOutcome,
) -> Result<bool, rusqlite::Error> {
    Ok(callbacks::find(conn, callback_id)?.is_some_and(|c| {
        c.callback_mode_id == new.request.callback_mode_id
            && c.local_start == new.window.local_start
            && c.local_end == new.window.local_end
            && c.timezone == new.window.zone.name()
    }))
}
