//! The LCM side of redial: the message envelope, the family's requests and their field rules,
//! the callback window, and the rows of the read replies. Everything here is pure: it turns
//! bytes into typed values or into an error that names the field.

pub mod control;
pub mod envelope;
pub mod error;
pub mod fields;
pub mod ids;
pub mod json;
pub mod request;
pub mod rows;
pub mod subtopic;
pub mod telephony;
pub mod window;

pub use envelope::{Envelope, ReplyHead, RequestId};
pub use error::{ErrorObject, LcmError};
pub use ids::{AccountNumber, CallId, UserId};
pub use request::{CallbackAsked, CallbackKind, Disposition, Message};
pub use subtopic::Subtopic;
pub use telephony::TelephonyOutcome;
pub use window::{LocalWindow, UtcWindow};
