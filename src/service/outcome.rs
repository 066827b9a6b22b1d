//! Setting what a message about a call says: an outcome, a callback, or both (every write
//! message of the LCM family but `SendAgentState`). Its rules and its transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{Error, Service};
use crate::catalogue::Catalogue;
use chrono_tz::Tz;

use crate::lcm::{CallbackAsked, Disposition, LocalWindow, TelephonyOutcome, UtcWindow};
use crate::lifecycle::EndReason;
use crate::policy::Policy;
use crate::store::outcomes::{self, Prerequisites, Recorded};
use crate::store::{bus, callbacks, lifecycle};
use crate::zone::Zone;

/// What storing a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    /// The callback it set (or, for an identical retry, had set).
    callback_id: Option<i64>,
    /// When the scheduler must next look at that callback; `None` for an identical retry.
    next_at: Option<i64>,
    /// Events became leasable now: a window that had started, or an `expired` event.
    events: bool,
}

impl Stored {
    const NOTHING: Stored = Stored {
        callback_id: None,
        next_at: None,
        events: false,
    };
}

impl Service {
    /// Stores what the message `d` says, committed before it returns; returns the id of the
    /// callback it set, if it set one. Rules (README: The LCM family):
    ///
    /// * The call must be registered, with the message's AccountNumber, and the message's
    ///   agent logged in or on an active call.
    /// * An identical retry (the same message, every `data` field the same; `source` names the
    ///   sending application and is not part of its meaning) changes nothing and answers as the
    ///   first did, even if the agent has left since.
    /// * A message that sets an outcome replaces the call's outcome, if it has one (the
    ///   replaced row moves to `outcome_history`). If the replaced outcome had a live callback
    ///   and the new message asks for none, that callback ends (`cancelled`, reason
    ///   `replaced`). `SetPersonalCallbackWithComments` leaves the outcome as it was.
    /// * A callback is read in the request's zone (else `--timezone`), clipped to calling
    ///   hours, and refused if it is reversed, over, beyond the horizon, for a contact on the
    ///   do-not-call list, or set with an outcome that closes the contact. It supersedes the
    ///   contact's live callback. A window that has started is opened in the same
    ///   transaction.
    /// * A telephony outcome DNC puts the contact on the do-not-call list; DNC and Reject end
    ///   its live callback, and so does an outcome that closes the contact. The callback is
    ///   `cancelled` with the reason, and an `expired` event with it tells the dialers.
    /// * With an outcome catalogue loaded, OutcomeId and BusinessOutcome must be in it.
    /// * An outcome on another call for a contact with a live callback, asking for none, means
    ///   the customer was reached: the callback ends `completed`, reason `contacted`
    ///   (`--complete-on-contact`, on by default), unless a dialer holds its redial.
    pub async fn set_outcome(
        &self,
        d: Disposition,
        source: Option<String>,
    ) -> Result<Option<i64>, Error> {
        let closes = check_catalogue(&self.catalogue, &d)?;
        let window = match &d.callback {
            Some(asked) => Some(self.window(
                &asked.window,
                asked.timezone.unwrap_or(self.policy.timezone),
            )?),
            None => None,
        };
        let (clock, policy) = (self.clock.clone(), Arc::clone(&self.policy));
        let stored = self
            .store
            .write(move |conn| {
                record(
                    conn,
                    &d,
                    source.as_deref(),
                    window.as_ref(),
                    closes,
                    clock.now(),
                    &policy,
                )
            })
            .await?;
        self.signals.schedule(stored.next_at);
        if stored.events {
            self.signals.events_ready();
        }
        Ok(stored.callback_id)
    }

    /// A callback's window read in `zone`, in UTC, clipped to calling hours, within the
    /// horizon: for a new callback and a rescheduled one alike.
    pub(super) fn window(&self, window: &LocalWindow, zone: Tz) -> Result<UtcWindow, Error> {
        let window = window
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

/// Checks the message's outcome ids against the catalogue; returns whether one of them
/// closes the contact. A callback cannot be set with such an outcome.
fn check_catalogue(catalogue: &Catalogue, d: &Disposition) -> Result<bool, Error> {
    let mut closes = false;
    for (field, id) in [
        ("OutcomeId", d.outcome_id),
        ("BusinessOutcome", d.business_outcome),
    ] {
        let Some(id) = id else { continue };
        if !catalogue.admits(id) {
            return Err(Error::NotInCatalogue {
                field,
                id,
                known: catalogue.len(),
            });
        }
        if catalogue.closes(id) {
            if d.callback.is_some() {
                return Err(Error::ClosingWithCallback { field, id });
            }
            closes = true;
        }
    }
    Ok(closes)
}

/// The message's transaction. Every refusal comes before the first write, as the writer
/// requires.
fn record(
    conn: &Connection,
    d: &Disposition,
    source: Option<&str>,
    window: Option<&UtcWindow>,
    closes: bool,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Stored, Error> {
    let known = outcomes::prerequisites(conn, &d.callid, &d.user_id)?
        .ok_or_else(|| Error::UnknownCall(d.callid.clone()))?;
    if known.account_number != d.account_number {
        return Err(Error::AccountMismatch {
            callid: d.callid.clone(),
            registered: known.account_number,
            sent: d.account_number.clone(),
        });
    }
    if let Some(callback_id) = identical(conn, d, &known, window)? {
        return Ok(Stored {
            callback_id,
            ..Stored::NOTHING
        });
    }
    if !known.agent_present {
        return Err(Error::AgentNotLoggedIn(d.user_id.clone()));
    }
    let asked = d.callback.as_ref().zip(window);
    if let Some((_, window)) = asked {
        if let Some(listed) = known.dnc {
            return Err(Error::DoNotCall {
                account: d.account_number.clone(),
                listed,
            });
        }
        not_over(window, now)?;
    }
    let mut stored = Stored::NOTHING;
    let created = match asked {
        Some((asked, window)) => Some(lifecycle::create(conn, d, asked, window, now, policy)?),
        None => None,
    };
    let replaced = known.current.as_ref().filter(|_| d.sets_outcome());
    if d.sets_outcome() {
        let callback_id = created.map(|c| c.id);
        outcomes::save(conn, d, source, callback_id, replaced.map(|r| r.id), now)?;
    }
    let ended_by = match d.call_outcome {
        Some(TelephonyOutcome::Dnc) => {
            outcomes::list_dnc(conn, d, source, now)?;
            Some(EndReason::Dnc)
        }
        Some(TelephonyOutcome::Reject) => Some(EndReason::Reject),
        _ if closes => Some(EndReason::Closed),
        _ => None,
    };
    if let Some(reason) = ended_by {
        stored.events |= lifecycle::end_by_outcome(conn, &d.account_number, reason, now)?.is_some();
    }
    if created.is_none() {
        if let Some(callback) = replaced.and_then(|r| r.callback_id) {
            lifecycle::end_replaced(conn, callback, now)?;
        }
        if ended_by.is_none() && policy.complete_on_contact {
            lifecycle::complete_by_contact(conn, &d.account_number, &d.callid, now)?;
        }
    }
    if let (Some(created), Some((_, window))) = (created, asked) {
        stored.callback_id = Some(created.id);
        stored.next_at = if window.start <= now {
            stored.events = true;
            lifecycle::open_if_due(conn, created.id, now, policy)?
        } else {
            // The usual case, with no second read: the scheduler stages the redial ahead.
            Some(created.wake_at)
        };
    }
    bus::outcome_set(conn, d, stored.callback_id, now)?;
    Ok(stored)
}

/// Refuses a window that has ended by `now`: a new callback's and a rescheduled one's.
pub(super) fn not_over(window: &UtcWindow, now: DateTime<Utc>) -> Result<(), Error> {
    if window.end <= now {
        return Err(Error::WindowOver {
            local: window.describe(),
            end: window.end,
            now,
        });
    }
    Ok(())
}

/// For an identical retry of the message that set what the call has now, the callback that
/// message set (`Some(None)`: it set none); `None` when `d` is not one.
fn identical(
    conn: &Connection,
    d: &Disposition,
    known: &Prerequisites,
    window: Option<&UtcWindow>,
) -> Result<Option<Option<i64>>, rusqlite::Error> {
    if !d.sets_outcome() {
        let Some(asked) = callbacks::latest_set_by(conn, &d.callid, d.subtopic)? else {
            return Ok(None);
        };
        let same = asked.account_number == d.account_number
            && asked.user_id == d.user_id
            && asked.agent_comments.as_deref() == Some(d.agent_comments.as_str())
            && asked.lead_score == Some(d.lead_score)
            && asked.target_amount == Some(d.target_amount)
            && same_callback(
                d.callback.as_ref(),
                window,
                asked.callback_mode_id,
                (&asked.local_start, &asked.local_end),
                &asked.timezone,
            );
        return Ok(same.then_some(Some(asked.id)));
    }
    let Some(current) = known.current.as_ref().filter(|c| same_outcome(c, d)) else {
        return Ok(None);
    };
    match (d.callback.as_ref(), current.callback_id) {
        (None, _) => Ok(Some(None)),
        (Some(_), None) => Ok(None),
        (Some(_), Some(id)) => Ok(callbacks::find(conn, id)?
            .filter(|c| {
                same_callback(
                    d.callback.as_ref(),
                    window,
                    c.callback_mode_id,
                    (&c.local_start, &c.local_end),
                    &c.timezone,
                )
            })
            .map(|_| Some(id))),
    }
}

/// Whether the stored outcome is the one `d` sets: the same message, every field the same.
fn same_outcome(stored: &Recorded, d: &Disposition) -> bool {
    stored.message == d.subtopic
        && stored.account_number == d.account_number
        && stored.outcome_id == d.outcome_id
        && stored.business_outcome == d.business_outcome
        && stored.call_outcome == d.call_outcome
        && stored.user_id == d.user_id
        && stored.agent_comments == d.agent_comments
        && stored.lead_score == d.lead_score
        && stored.target_amount == d.target_amount
}

/// Whether a stored callback asks for the same contact mode and the same local window in the
/// same zone as the message.
fn same_callback(
    asked: Option<&CallbackAsked>,
    window: Option<&UtcWindow>,
    mode: i64,
    (local_start, local_end): (&str, &str),
    zone: &Zone,
) -> bool {
    let (Some(asked), Some(window)) = (asked, window) else {
        return false;
    };
    asked.callback_mode_id == mode
        && window.local_start == local_start
        && window.local_end == local_end
        && *zone == Zone::Known(window.zone)
}
