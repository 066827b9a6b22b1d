//! The audit of supervisors' changes: who changed which callback or contact, when, from what
//! to what. Written in the transaction of the change itself, so one never stands without the
//! other.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::lcm::AccountNumber;

/// One change, as the audit records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reschedule,
    Reassign,
    Cancel,
    DncAdd,
    DncRemove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reschedule => "reschedule",
            Action::Reassign => "reassign",
            Action::Cancel => "cancel",
            Action::DncAdd => "dnc-add",
            Action::DncRemove => "dnc-remove",
        }
    }
}

/// Who made a change and why: the token's name ('local' when no tokens are configured) and
/// the reason they gave, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub reason: Option<String>,
}

/// The fields of a callback a supervisor can change, as a JSON object: its state (as shown),
/// owner, window and zone.
pub fn snapshot(conn: &Connection, id: i64) -> Result<Option<String>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT json_object('state', shown_state, 'UserID', user_id,
             'personal', json(CASE WHEN personal = 1 THEN 'true' ELSE 'false' END),
             'window_start', strftime('%Y-%m-%dT%H:%M:%SZ', window_start / 1000, 'unixepoch'),
             'window_end', strftime('%Y-%m-%dT%H:%M:%SZ', window_end / 1000, 'unixepoch'),
             'local_start', local_start, 'local_end', local_end, 'timezone', timezone)
         FROM callbacks_shown WHERE id = ?1",
    )?
    .query_row([id], |r| r.get(0))
    .optional()
}

/// A callback's change: `before` and `after` are [`snapshot`]s.
pub fn callback(
    conn: &Connection,
    action: Action,
    actor: &Actor,
    id: i64,
    before: Option<&str>,
    after: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, action, callback_id, account_number, reason, before, after)
         SELECT ?1, ?2, ?3, id, account_number, ?4, ?5, ?6 FROM callbacks WHERE id = ?7",
    )?
    .execute(params![
        now.timestamp_millis(),
        actor.name,
        action.as_str(),
        actor.reason,
        before,
        after,
        id
    ])?;
    Ok(())
}

/// A contact's change (the do-not-call list by hand).
pub fn contact(
    conn: &Connection,
    action: Action,
    actor: &Actor,
    account: &AccountNumber,
    before: Option<&str>,
    after: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, action, account_number, reason, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        now.timestamp_millis(),
        actor.name,
        action.as_str(),
        account,
        actor.reason,
        before,
        after
    ])?;
    Ok(())
}
