//! Every refusal of an operation, and the `error` object each one shows. The edges choose the
//! envelope and the status; what the refusal says is decided here, once.

use chrono::{DateTime, Utc};

use crate::config::format_duration;
use crate::lcm::error::field_message;
use crate::lcm::window::{NoCallingMinute, Reversed};
use crate::lcm::{AccountNumber, CallId, ErrorObject, UserId};
use crate::lifecycle::decide::Finished;
use crate::lifecycle::CallbackState;
use crate::store::outcomes::Listed;
use crate::store::StoreError;
use crate::zone::utc_rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Invalid Call ID:{0}")]
    UnknownCall(CallId),
    #[error(
        "AccountNumber {:?} does not match call {:?}, which was registered with AccountNumber {:?}",
        .sent.as_str(), .callid.as_str(), .registered.as_str()
    )]
    AccountMismatch {
        callid: CallId,
        registered: AccountNumber,
        sent: AccountNumber,
    },
    #[error("Agent not logged in: UserID {:?} is neither logged in nor on an active call", .0.as_str())]
    AgentNotLoggedIn(UserId),
    #[error("the window ends at {} before it starts at {}", .0.end, .0.start)]
    WindowReversed(Reversed),
    #[error("the window {local} ended at {}; the time now is {}", utc_rfc3339(*.end), utc_rfc3339(*.now))]
    WindowOver {
        /// The window as sent, e.g. `13/01/2021 13:45 to 13/01/2021 13:45 (UTC)`.
        local: String,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("the window {} has no minute inside calling hours; calling is allowed {} in {}",
        .0.local, .0.rules, .0.zone.name())]
    OutsideCallingHours(NoCallingMinute),
    #[error("the window starts at {}, more than {} after the time now, {}; the furthest start accepted is {}",
        utc_rfc3339(*.start), format_duration(*.limit), utc_rfc3339(*.now), utc_rfc3339(*.now + *.limit))]
    BeyondHorizon {
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: chrono::Duration,
    },
    #[error("AccountNumber {:?} is on the do-not-call list since {}{}; no callback may be set for it",
        .account.as_str(), utc_rfc3339(.listed.since), listed_by(.listed))]
    DoNotCall {
        account: AccountNumber,
        listed: Listed,
    },
    #[error("{field} {id} is not in the outcome catalogue ({known} outcomes, loaded with --outcomes); expected one of its OutcomeIDs")]
    NotInCatalogue {
        field: &'static str,
        id: i64,
        known: usize,
    },
    #[error("{field} {id} closes the contact (the outcome catalogue says so): no callback can be set with it")]
    ClosingWithCallback { field: &'static str, id: i64 },
    #[error("call {:?} is already registered with {field} {registered:?}, not {sent:?}", .callid.as_str())]
    CallConflict {
        callid: CallId,
        field: &'static str,
        registered: String,
        sent: String,
    },
    #[error("no call {:?} is registered", .0.as_str())]
    CallNotRegistered(CallId),
    #[error("no callback has id {0}")]
    UnknownCallback(i64),
    #[error("callback {id} is {state}; only a live callback can take this")]
    Finished { id: i64, state: CallbackState },
    #[error("callback {0} is a normal callback, which any agent may take; only a personal callback has an owner to change")]
    NotPersonal(i64),
    #[error("UserID {:?} is not an agent redial knows: it has never logged in or taken a call", .0.as_str())]
    UnknownAgent(UserId),
    #[error("UserID {:?} already owns callback {id}; reassign it to another agent", .user.as_str())]
    SameOwner { id: i64, user: UserId },
    #[error("to {:?} is the agent the callbacks would be moved from; name another agent", .0.as_str())]
    SameAgent(UserId),
    #[error("AccountNumber {:?} is not on the do-not-call list", .0.as_str())]
    NotListed(AccountNumber),
    #[error("this instance hands redials to dialers through NATS JetStream (--dispatch nats): consume {0} with a pull consumer (README: More than one box); POST /v1/queue/lease hands out nothing here")]
    DispatchedByNats(String),
    /// The service is at a limit of its own; trying again shortly works.
    #[error("the service is busy, try again shortly: {0}")]
    Busy(String),
    /// The database could not do it; nothing of the request was kept.
    #[error(transparent)]
    Unavailable(#[from] StoreError),
}

/// `, set by SetCallOutcomeWithComments on call "12345"`, as far as the listing says.
fn listed_by(listed: &Listed) -> String {
    match (&listed.message, &listed.callid) {
        (Some(message), Some(callid)) => format!(", set by {message} on call {callid:?}"),
        (Some(message), None) => format!(", set by {message}"),
        (None, Some(callid)) => format!(", set on call {callid:?}"),
        (None, None) => String::new(),
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Unavailable(e.into())
    }
}

impl From<Finished> for Error {
    fn from(f: Finished) -> Self {
        Error::Finished {
            id: f.id,
            state: f.state,
        }
    }
}

impl Error {
    /// The request's field the refusal is about, where there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::UnknownCall(_) | Error::CallNotRegistered(_) => Some("callid"),
            Error::AccountMismatch { .. } | Error::DoNotCall { .. } => Some("AccountNumber"),
            Error::NotInCatalogue { field, .. } | Error::ClosingWithCallback { field, .. } => {
                Some(field)
            }
            Error::AgentNotLoggedIn(_) => Some("UserID"),
            Error::WindowReversed(_) | Error::WindowOver { .. } => Some("EndDate"),
            Error::OutsideCallingHours(_) => Some("StartTime"),
            Error::BeyondHorizon { .. } => Some("StartDate"),
            Error::CallConflict { field, .. } => Some(field),
            Error::UnknownCallback(_) | Error::Finished { .. } | Error::NotPersonal(_) => {
                Some("id")
            }
            Error::UnknownAgent(_) | Error::SameOwner { .. } => Some("UserID"),
            Error::SameAgent(_) => Some("to"),
            Error::NotListed(_) => Some("AccountNumber"),
            Error::DispatchedByNats(_) => None,
            Error::Busy(_) | Error::Unavailable(_) => None,
        }
    }

    /// Whether the service failed rather than the request: trying again may work.
    pub fn is_server_error(&self) -> bool {
        matches!(self, Error::Busy(_) | Error::Unavailable(_))
    }

    /// The `error` object of the reply, with the vendor's short messages.
    pub fn error_object(&self) -> ErrorObject {
        let message = match self {
            Error::Busy(_) | Error::Unavailable(_) => return ErrorObject::failed(self.to_string()),
            Error::AgentNotLoggedIn(_) => "Agent not logged in.".to_owned(),
            Error::WindowReversed(_)
            | Error::WindowOver { .. }
            | Error::OutsideCallingHours(_)
            | Error::BeyondHorizon { .. } => "Invalid callback window.".to_owned(),
            Error::UnknownCallback(_) => "Unknown callback.".to_owned(),
            Error::Finished { .. } => "Callback already finished.".to_owned(),
            Error::DispatchedByNats(_) => "Redials are dispatched through NATS.".to_owned(),
            _ => field_message(self.field().unwrap_or("request")),
        };
        ErrorObject::refused(message, self.to_string(), self.field())
    }
}
