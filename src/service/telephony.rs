//! Agents and calls, as the telephony side reports them (contract section 4). Events arrive in
//! any order: logging out an agent never seen is recorded, not refused; ending an ended call
//! changes nothing. An agent who leaves (logs out, or ends the last call that kept them
//! present) gives each open personal callback of theirs an owner-absent deadline.

use std::sync::Arc;

use super::{Error, Service};
use crate::lcm::request::AgentState;
use crate::lcm::telephony::AgentPresence;
use crate::lcm::{AccountNumber, CallId, UserId};
use crate::store::contacts::{self, Contact, Mode};
use crate::store::lifecycle;
use crate::store::telephony::{self, Call};

/// A call the telephony side registers, with what it says of the call's contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    pub callid: CallId,
    pub account: AccountNumber,
    pub user: UserId,
    /// The contact's campaign and contact ids, where given.
    pub contact: Contact,
    /// The contact's modes, where given: they replace those it had.
    pub modes: Option<Vec<Mode>>,
}

impl NewCall {
    /// A call with nothing said of its contact.
    pub fn new(callid: CallId, account: AccountNumber, user: UserId) -> Self {
        Self {
            callid,
            account,
            user,
            contact: Contact::default(),
            modes: None,
        }
    }

    fn says_of_contact(&self) -> bool {
        self.contact != Contact::default() || self.modes.is_some()
    }
}

/// A call registered: `created` is false when the same call was registered before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub call: Call,
    pub created: bool,
}

impl Service {
    pub async fn login(&self, user: UserId) -> Result<(), Error> {
        self.set_login(user, true).await
    }

    pub async fn logout(&self, user: UserId) -> Result<(), Error> {
        self.set_login(user, false).await
    }

    async fn set_login(&self, user: UserId, logged_in: bool) -> Result<(), Error> {
        let (clock, policy) = (self.clock.clone(), Arc::clone(&self.policy));
        let deadline = self
            .store
            .write(move |conn| {
                let now = clock.now();
                telephony::set_agent_login(conn, &user, logged_in, now)?;
                if logged_in {
                    return Ok(None);
                }
                Ok::<_, Error>(lifecycle::owner_left(conn, &user, now, &policy)?)
            })
            .await?;
        self.signals.schedule(deadline);
        Ok(())
    }

    /// `SendAgentState`: a state that means logged in logs the agent in, one that means
    /// logged out logs them out, with the same effect as the REST login and logout.
    pub async fn agent_state(&self, state: AgentState) -> Result<(), Error> {
        match state.presence {
            AgentPresence::LoggedIn => self.login(state.user_id).await,
            AgentPresence::LoggedOut => self.logout(state.user_id).await,
        }
    }

    /// Registers an active call, and what it says of its contact. The same call again, with
    /// the same AccountNumber and UserID, changes nothing but the contact's ids and modes
    /// given; with others it is a conflict that names both values.
    pub async fn register_call(&self, new: NewCall) -> Result<Registered, Error> {
        let clock = self.clock.clone();
        self.store
            .write(move |conn| {
                let NewCall {
                    callid,
                    account,
                    user,
                    ..
                } = &new;
                let now = clock.now();
                let registered = match telephony::find_call(conn, callid)? {
                    None => Registered {
                        call: telephony::insert_call(conn, callid, account, user, now)?,
                        created: true,
                    },
                    Some(existing) => same_call(existing, callid, account, user)?,
                };
                if new.says_of_contact() {
                    contacts::register(conn, account, &new.contact, new.modes.as_deref(), now)?;
                }
                Ok(registered)
            })
            .await
    }

    /// Ends a call; an agent who was present only through it may now be away.
    pub async fn end_call(&self, callid: CallId) -> Result<Call, Error> {
        let (clock, policy) = (self.clock.clone(), Arc::clone(&self.policy));
        let (call, deadline) = self
            .store
            .write(move |conn| {
                let now = clock.now();
                let call = telephony::end_call(conn, &callid, now)?
                    .ok_or_else(|| Error::CallNotRegistered(callid.clone()))?;
                let deadline = lifecycle::owner_left(conn, &call.user_id, now, &policy)?;
                Ok::<_, Error>((call, deadline))
            })
            .await?;
        self.signals.schedule(deadline);
        Ok(call)
    }
}

/// The call registered again: the same call, or a conflict naming both values.
fn same_call(
    existing: Call,
    callid: &CallId,
    account: &AccountNumber,
    user: &UserId,
) -> Result<Registered, Error> {
    let conflict = |field, registered: &str, sent: &str| Error::CallConflict {
        callid: callid.clone(),
        field,
        registered: registered.to_owned(),
        sent: sent.to_owned(),
    };
    if existing.account_number != *account {
        return Err(conflict(
            AccountNumber::FIELD,
            existing.account_number.as_str(),
            account.as_str(),
        ));
    }
    if existing.user_id != *user {
        return Err(conflict(
            UserId::FIELD,
            existing.user_id.as_str(),
            user.as_str(),
        ));
    }
    Ok(Registered {
        call: existing,
        created: false,
    })
}
