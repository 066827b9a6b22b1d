//! What can be wrong with an LCM message itself, before anything is looked up, and the
//! `error` object every refusal's reply carries (`type`, `message`, `detail`, `field`).

use serde::Serialize;

use super::fields::FieldError;

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
}

impl From<FieldError> for LcmError {
    fn from(e: FieldError) -> Self {
        LcmError::Field(e)
    }
}

impl LcmError {
    /// The offending field, where there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            LcmError::TooLarge { .. } | LcmError::NotJson(_) => None,
            LcmError::Envelope(e) | LcmError::Field(e) => Some(e.field),
            LcmError::DuplicateKey { field, .. } => *field,
            LcmError::EmptyCallId => Some("callid"),
        }
    }

    /// The `error` object of the reply: `message` is the short text a desktop shows, in the
    /// vendor's words, and `detail` the precise cause.
    pub fn error_object(&self) -> ErrorObject {
        let message = match self {
            LcmError::TooLarge { .. } => "Request too large.".to_owned(),
            LcmError::NotJson(_) | LcmError::DuplicateKey { field: None, .. } => {
                "Invalid request.".to_owned()
            }
            _ => field_message(self.field().unwrap_or("request")),
        };
        ErrorObject::refused(message, self.to_string(), self.field())
    }
}

/// The `error` object of every refusal, LCM or REST, with its members in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorObject {
    /// `WS_Error` for anything the client can fix, as the vendor's table has it;
    /// `Server_Error` when the service itself failed.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
    pub detail: String,
    pub field: Option<&'static str>,
}

impl ErrorObject {
    /// A refusal the client can fix (`WS_Error`).
    pub fn refused(message: String, detail: String, field: Option<&'static str>) -> Self {
        Self {
            kind: "WS_Error",
            message,
            detail,
            field,
        }
    }

    /// The service failed, not the request (`Server_Error`): trying again may work.
    pub fn failed(detail: String) -> Self {
        Self {
            kind: "Server_Error",
            message: "Service unavailable, try again.".to_owned(),
            detail,
            field: None,
        }
    }
}

/// `Invalid <Field>.`, with the vendor's own wording for the call id.
pub fn field_message(field: &str) -> String {
    match field {
        "callid" => "Invalid Call ID.".to_owned(),
        other => format!("Invalid {other}."),
    }
}
