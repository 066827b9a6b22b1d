//! Everything that can refuse an LCM request, and the one mapping from a refusal to the
//! `error` object of the reply envelope (`type`, `message`, `detail`, `field`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::fields::FieldError;
use super::window::{NoCallingMinute, Reversed};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LcmError {
    #[error("the body is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    #[error("{}", .0.detail)]
    Envelope(FieldError),
    #[error("the key {key:?} appears more than once in one object; each key may appear once")]
    DuplicateKey {
        key: String,
        /// The key, when it is one of the request's fields.
        field: Option<&'static str>,
    },
    #[error("Callid is empty")]
    EmptyCallId,
    #[error("{}", .0.detail)]
    Field(FieldError),
    #[error("Invalid Call ID:{0}")]
    UnknownCall(String),
    #[error("AccountNumber {sent:?} does not match call {callid:?}, which was registered with AccountNumber {registered:?}")]
    AccountMismatch {
        callid: String,
        registered: String,
        sent: String,
    },
    #[error("Agent not logged in: UserID {0:?} is neither logged in nor on an active call")]
    AgentNotLoggedIn(String),
    #[error("the window ends at {} before it starts at {}", .0.end, .0.start)]
    WindowReversed(Reversed),
    #[error("the window {local} ended at {}; the time now is {}",
        .end.to_rfc3339_opts(SecondsFormat::Secs, true), .now.to_rfc3339_opts(SecondsFormat::Secs, true))]
    WindowOver {
        /// The window as sent, e.g. `13/01/2021 13:45 to 13/01/2021 13:45 (UTC)`.
        local: String,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("the window {} has no minute inside calling hours; calling is allowed {} in {}",
        .0.local, .0.rules, .0.zone.name())]
    OutsideCallingHours(NoCallingMinute),
    #[error("the window starts at {}, more than {horizon} after the time now, {}; the furthest start accepted is {}",
        .start.to_rfc3339_opts(SecondsFormat::Secs, true), .now.to_rfc3339_opts(SecondsFormat::Secs, true),
        (*.now + *.limit).to_rfc3339_opts(SecondsFormat::Secs, true))]
    BeyondHorizon {
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: chrono::Duration,
        /// The limit as configured, e.g. `365d`.
        horizon: String,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the service cannot store the request now: {0}")]
    Store(#[from] StoreError),
}

impl From<FieldError> for LcmError {
    fn from(e: FieldError) -> Self {
        LcmError::Field(e)
    }
}

impl LcmError {
    /// The HTTP status of the reply.
    pub fn status(&self) -> u16 {
        match self {
            LcmError::TooLarge { .. } => 413,
            LcmError::Unauthorized(_) => 401,
            LcmError::Forbidden(_) => 403,
            LcmError::Store(_) => 503,
            _ => 400,
        }
    }

    /// `WS_Error` for anything the client can fix, as the vendor's table has it.
    pub fn kind(&self) -> &'static str {
        match self {
            LcmError::Store(_) => "Server_Error",
            _ => "WS_Error",
        }
    }

    /// The short text a desktop shows.
    pub fn message(&self) -> String {
        match self {
            LcmError::TooLarge { .. } => "Request too large.".to_owned(),
            LcmError::NotJson(_) | LcmError::DuplicateKey { field: None, .. } => {
                "Invalid request.".to_owned()
            }
            LcmError::DuplicateKey {
                field: Some(field), ..
            } => field_message(field),
            LcmError::Envelope(e) | LcmError::Field(e) => field_message(e.field),
            LcmError::EmptyCallId | LcmError::UnknownCall(_) => field_message("callid"),
            LcmError::AccountMismatch { .. } => field_message("AccountNumber"),
            LcmError::AgentNotLoggedIn(_) => "Agent not logged in.".to_owned(),
            LcmError::WindowReversed(_)
            | LcmError::WindowOver { .. }
            | LcmError::OutsideCallingHours(_)
            | LcmError::BeyondHorizon { .. } => "Invalid callback window.".to_owned(),
            LcmError::Unauthorized(_) => "Unauthorized.".to_owned(),
            LcmError::Forbidden(_) => "Forbidden.".to_owned(),
            LcmError::Store(_) => "Service unavailable, try again.".to_owned(),
        }
    }

    /// The precise cause.
    pub fn detail(&self) -> String {
        self.to_string()
    }

    /// The offending field, where there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            LcmError::TooLarge { .. }
            | LcmError::NotJson(_)
            | LcmError::Store(_)
            | LcmError::Unauthorized(_)
            | LcmError::Forbidden(_) => None,
            LcmError::Envelope(e) | LcmError::Field(e) => Some(e.field),
            LcmError::DuplicateKey { field, .. } => *field,
            LcmError::EmptyCallId | LcmError::UnknownCall(_) => Some("callid"),
            LcmError::AccountMismatch { .. } => Some("AccountNumber"),
            LcmError::AgentNotLoggedIn(_) => Some("UserID"),
            LcmError::WindowReversed(_) | LcmError::WindowOver { .. } => Some("EndDate"),
            LcmError::OutsideCallingHours(_) => Some("StartTime"),
            LcmError::BeyondHorizon { .. } => Some("StartDate"),
        }
    }

    /// The `error` object of the reply.
    pub fn error_object(&self) -> ErrorObject {
        ErrorObject {
            kind: self.kind(),
            message: self.message(),
            detail: self.detail(),
            field: self.field(),
        }
    }
}

/// The `error` object of every refusal, LCM or REST, with its members in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorObject {
    /// `WS_Error`, or `Server_Error` when the service itself failed.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
    pub detail: String,
    pub field: Option<&'static str>,
}

/// `Invalid <Field>.`, with the vendor's own wording for the call id.
fn field_message(field: &str) -> String {
    match field {
        "callid" => "Invalid Call ID.".to_owned(),
        other => format!("Invalid {other}."),
    }
}
