//! What a supervisor does with callbacks: find them, move one to another window, give one
//! or all of an agent's to a colleague, cancel, and keep the do-not-call list by hand. Every
//! change is audited in its own transaction (`store::audit`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rusqlite::Connection;

use super::outcome::not_over;
use super::{Error, Service};
use crate::lcm::{AccountNumber, LocalWindow, UserId};
use crate::lifecycle::{decide, CallbackState, EndReason};
use crate::store::audit::{self, Action, Actor};
use crate::store::callbacks::{self, Callback, Cursor, Filter};
use crate::store::dnc::{self, Listing};
use crate::store::{lifecycle, telephony};

/// The most callbacks one page of `GET /v1/callbacks` holds.
pub const MAX_PAGE: i64 = 1000;

/// A page of callbacks and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub callbacks: Vec<Callback>,
    pub next: Option<Cursor>,
}

/// What moving all of an agent's callbacks did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub ids: Vec<i64>,
}

impl Service {
    /// Up to `limit` callbacks matching `filter` after `after`, in window order.
    pub async fn find_callbacks(
        &self,
        filter: Filter,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<Page, Error> {
        let limit = limit.clamp(1, MAX_PAGE);
        let callbacks = self
            .store
            .read(move |conn| Ok(callbacks::page(conn, &filter, after, limit)?))
            .await?;
        // A full page may have a next one; a short page is the last.
        let next = (callbacks.len() as i64 == limit)
            .then(|| callbacks.last())
            .flatten()
            .map(|c| Cursor {
                window_start: c.window_start.timestamp_millis(),
                id: c.id,
            });
        Ok(Page { callbacks, next })
    }

    /// Moves the live callback `id` to a new local window, read in `zone` (else the zone it
    /// was set in, else `--timezone`) with the same rules as a new request: calling hours,
    /// the horizon, a window that has not ended. Its open events are withdrawn and the new
    /// window is scheduled; it keeps its id, attempts and history.
    pub async fn reschedule(
        &self,
        id: i64,
        window: LocalWindow,
        zone: Option<Tz>,
        actor: Actor,
    ) -> Result<Callback, Error> {
        let current = self.callback(id).await?;
        let zone = zone
            .or(current.timezone.known())
            .unwrap_or(self.policy.timezone);
        let window = self.window(&window, zone)?;
        let (clock, policy) = (self.clock.clone(), Arc::clone(&self.policy));
        let next_at = self
            .store
            .write(move |conn| {
                let now = clock.now();
                let (cb, _) = lifecycle::load(conn, id)?.ok_or(Error::UnknownCallback(id))?;
                decide::cancel(&cb)?;
                not_over(&window, now)?;
                audited(conn, Action::Reschedule, &actor, id, now, |conn| {
                    lifecycle::move_to(conn, id, &window, now, &policy)
                })
            })
            .await?;
        self.changed(next_at);
        self.callback(id).await
    }

    /// Gives the live personal callback `id` to the agent `to`.
    pub async fn reassign(&self, id: i64, to: UserId, actor: Actor) -> Result<Callback, Error> {
        let (clock, policy) = (self.clock.clone(), Arc::clone(&self.policy));
        let next_at = self
            .store
            .write(move |conn| {
                let now = clock.now();
                let (cb, _) = lifecycle::load(conn, id)?.ok_or(Error::UnknownCallback(id))?;
                decide::cancel(&cb)?;
                if !callbacks::is_personal(conn, id)? {
                    return Err(Error::NotPersonal(id));
                }
                if cb.user_id == to {
                    return Err(Error::SameOwner { id, user: to });
                }
                if !telephony::agent_is_known(conn, &to)? {
                    return Err(Error::UnknownAgent(to));
                }
                audited(conn, Action::Reassign, &actor, id, now, |conn| {
                    lifecycle::reassign(conn, &cb, &to, now, &policy)
                })
            })
            .await?;
        self.changed(next_at);
        self.callback(id).await
    }

    /// Gives every live personal callback of `from` whose state (as shown) is one of `states`
    /// (every live one when empty) to `to`, in one transaction: all move, or none.
    pub async fn reassign_all(
        &self,
        from: UserId,
        to: UserId,
        states: Vec<CallbackState>,
        actor: Actor,
    ) -> Result<Moved, Error> {
        let (clock, policy) = (self.clock.clone(), Arc::clone(&self.policy));
        let (ids, next_at) = self
            .store
            .write(move |conn| {
                let now = clock.now();
                if from == to {
                    return Err(Error::SameAgent(to));
                }
                if !telephony::agent_is_known(conn, &to)? {
                    return Err(Error::UnknownAgent(to));
                }
                let mut ids = Vec::new();
                let mut earliest: Option<i64> = None;
                for (cb, _) in lifecycle::live_of_agent(conn, &from, &states)? {
                    let next_at = audited(conn, Action::Reassign, &actor, cb.id, now, |conn| {
                        lifecycle::reassign(conn, &cb, &to, now, &policy)
                    })?;
                    earliest = earliest.into_iter().chain(next_at).min();
                    ids.push(cb.id);
                }
                Ok::<_, Error>((ids, earliest))
            })
            .await?;
        self.changed(next_at);
        Ok(Moved { ids })
    }

    /// Any live callback → cancelled, by a dialer or a supervisor; its open events are
    /// withdrawn and the change is audited with `actor`'s reason.
    pub async fn cancel(&self, id: i64, actor: Actor) -> Result<Callback, Error> {
        let clock = self.clock.clone();
        self.store
            .write(move |conn| {
                let now = clock.now();
                let (cb, _) = lifecycle::load(conn, id)?.ok_or(Error::UnknownCallback(id))?;
                decide::cancel(&cb)?;
                audited(conn, Action::Cancel, &actor, id, now, |conn| {
                    lifecycle::cancel(conn, id, now)
                })
            })
            .await?;
        self.callback(id).await
    }

    /// Puts `account` on the do-not-call list by hand, as a DNC outcome would: its live
    /// callback, if any, ends (`cancelled`, reason `dnc`, with an `expired` event for the
    /// dialers). Returns the listing and whether it is new (a listed contact keeps its first
    /// listing).
    pub async fn list_dnc(
        &self,
        account: AccountNumber,
        actor: Actor,
    ) -> Result<(Listing, bool), Error> {
        let clock = self.clock.clone();
        let (listing, added, ended) = self
            .store
            .write(move |conn| {
                let now = clock.now();
                let added = dnc::add(conn, &account, &actor.name, now)?;
                let mut ended = false;
                if added {
                    let after = serde_json::json!({"dnc": true}).to_string();
                    audit::contact(
                        conn,
                        Action::DncAdd,
                        &actor,
                        &account,
                        None,
                        Some(&after),
                        now,
                    )?;
                    ended =
                        lifecycle::end_by_outcome(conn, &account, EndReason::Dnc, now)?.is_some();
                }
                let listing = dnc::find(conn, &account)?.ok_or(Error::NotListed(account))?;
                Ok::<_, Error>((listing, added, ended))
            })
            .await?;
        if ended {
            self.signals.events_ready();
        }
        Ok((listing, added))
    }

    /// Takes `account` off the do-not-call list: callbacks may be set for it again.
    pub async fn unlist_dnc(&self, account: AccountNumber, actor: Actor) -> Result<(), Error> {
        let clock = self.clock.clone();
        self.store
            .write(move |conn| {
                let now = clock.now();
                let Some(listing) = dnc::find(conn, &account)? else {
                    return Err(Error::NotListed(account));
                };
                dnc::remove(conn, &account)?;
                let before = serde_json::to_string(&listing).unwrap_or_default();
                audit::contact(
                    conn,
                    Action::DncRemove,
                    &actor,
                    &account,
                    Some(&before),
                    None,
                    now,
                )?;
                Ok::<_, Error>(())
            })
            .await
    }

    /// Up to `limit` listings after the AccountNumber `after`.
    pub async fn dnc_page(&self, after: Option<String>, limit: i64) -> Result<Vec<Listing>, Error> {
        let limit = limit.clamp(1, MAX_PAGE);
        Ok(self
            .store
            .read(move |conn| Ok(dnc::page(conn, after.as_deref(), limit)?))
            .await?)
    }

    /// Tells the workers a callback was moved: the scheduler's next instant, and a redial
    /// that may be leasable now.
    fn changed(&self, next_at: Option<i64>) {
        self.signals.schedule(next_at);
        self.signals.events_ready();
    }
}

/// Applies `change` to the callback `id` in the writer's transaction and audits it: who, why,
/// and the callback's state, owner, window and zone before and after.
fn audited<T>(
    conn: &Connection,
    action: Action,
    actor: &Actor,
    id: i64,
    now: DateTime<Utc>,
    change: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
) -> Result<T, Error> {
    let before = audit::snapshot(conn, id)?;
    let changed = change(conn)?;
    let after = audit::snapshot(conn, id)?;
    audit::callback(
        conn,
        action,
        actor,
        id,
        before.as_deref(),
        after.as_deref(),
        now,
    )?;
    Ok(changed)
}
