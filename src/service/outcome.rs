//! Setting a business outcome with a personal callback
//! (`SetBusinessOutcomeWithPersonalCallback`): its rules and its transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{Error, Service};
use crate::lcm::{PersonalCallback, UtcWindow};
use crate::policy::Policy;
use crate::store::outcomes::{self, Recorded};
use crate::store::{callbacks, lifecycle};
use crate::zone::Zone;

/// What storing a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    callback_id: i64,
    /// When the scheduler must next look at the callback; `None` for an identical retry.
    next_at: Option<i64>,
    /// The window had already started: its redial event is on the queue now.
    opened: bool,
}

impl Service {
    /// Stores the outcome and its callback; returns the callback's id once it is committed.
    /// Rules (README: The API):
    ///
    /// * The call must be registered, with the request's AccountNumber, and the request's
    ///   agent logged in or on an active call.
    /// * An identical retry (every `data` field the same; `source` names the sending
    ///   application and is not part of the request's meaning) changes nothing and answers the
    ///   same `callback_id`, even if the agent has left since: the client must get the answer
    ///   its first try got.
    /// * A different request for the same callid replaces the outcome; the replaced row moves
    ///   to `outcome_history`. The new callback supersedes the contact's live one, if any.
    /// * The window is read in the request's zone (else `--timezone`), clipped to calling
    ///   hours, and refused if it is reversed, over, or starts beyond the horizon. A window
    ///   that has started is opened in the same transaction, so its redial is on the queue
    ///   when the client hears of success.
    pub async fn set_outcome(
        &self,
        request: PersonalCallback,
        source: Option<String>,
    ) -> Result<i64, Error> {
        let window = self.window(&request)?;
        let (clock, policy) = (self.clock.clone(), Arc::clone(&self.policy));
        let stored = self
            .store
            .write(move |conn| {
                record(
                    conn,
                    &request,
                    source.as_deref(),
                    &window,
                    clock.now(),
                    &policy,
                )
            })
            .await?;
        self.signals.schedule(stored.next_at);
        if stored.opened {
            self.signals.events_ready();
        }
        Ok(stored.callback_id)
    }

    /// The request's window in UTC, clipped to calling hours, within the horizon.
    fn window(&self, request: &PersonalCallback) -> Result<UtcWindow, Error> {
        let zone = request.timezone.unwrap_or(self.policy.timezone);
        let window = request
            .window
            .resolve(zone, self.policy.min_window)
            .map_err(Error::WindowReversed)?
            .clip(self.policy.calling_hours.as_ref())
            .map_err(Error::OutsideCallingHours)?;
        let now = self.clock.now();
        if window.start > now + self.policy.horizon {
            return Err(Error::BeyondHorizon {
                start: window.start,
                now,
                limit: self.policy.horizon,
            });
        }
        Ok(window)
    }
}

/// The request's transaction. Every refusal comes before the first write, as the writer
/// requires.
fn record(
    conn: &Connection,
    req: &PersonalCallback,
    source: Option<&str>,
    window: &UtcWindow,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Stored, Error> {
    let known = outcomes::prerequisites(conn, &req.callid, &req.user_id)?
        .ok_or_else(|| Error::UnknownCall(req.callid.clone()))?;
    if known.account_number != req.account_number {
        return Err(Error::AccountMismatch {
            callid: req.callid.clone(),
            registered: known.account_number,
            sent: req.account_number.clone(),
        });
    }
    if let Some(current) = &known.current {
        if let Some(callback_id) = current.callback_id {
            if same_outcome(current, req) && same_window(conn, callback_id, req, window)? {
                return Ok(Stored {
                    callback_id,
                    next_at: None,
                    opened: false,
                });
            }
        }
    }
    if !known.agent_present {
        return Err(Error::AgentNotLoggedIn(req.user_id.clone()));
    }
    if window.end <= now {
        return Err(Error::WindowOver {
            local: window.describe(),
            end: window.end,
            now,
        });
    }
    let created = lifecycle::create(conn, req, window, now, policy)?;
    let replacing = known.current.as_ref().map(|current| current.id);
    outcomes::save(conn, req, source, created.id, replacing, now)?;
    let opened = window.start <= now;
    let next_at = if opened {
        lifecycle::open_if_due(conn, created.id, now, policy)?
    } else {
        // The usual case, with no second read: the scheduler stages the redial ahead.
        Some(created.wake_at)
    };
    Ok(Stored {
        callback_id: created.id,
        next_at,
        opened,
    })
}

/// Whether the stored outcome's reporting fields are the request's.
fn same_outcome(stored: &Recorded, req: &PersonalCallback) -> bool {
    stored.account_number == req.account_number
        && stored.outcome_id == req.outcome_id
        && stored.business_outcome == req.business_outcome
        && stored.user_id == req.user_id
        && stored.agent_comments == req.agent_comments
        && stored.lead_score == req.lead_score
        && stored.target_amount == req.target_amount
}

/// Whether the stored callback asks for the same contact mode and the same local window in
/// the same zone as the request.
fn same_window(
    conn: &Connection,
    callback_id: i64,
    req: &PersonalCallback,
    window: &UtcWindow,
) -> Result<bool, rusqlite::Error> {
    Ok(callbacks::find(conn, callback_id)?.is_some_and(|c| {
        c.callback_mode_id == req.callback_mode_id
            && c.local_start == window.local_start
            && c.local_end == window.local_end
            && c.timezone == Zone::Known(window.zone)
    }))
}
