//! The LCM side of redial: the message envelope, the `SetBusinessOutcomeWithPersonalCallback`
//! request and its field rules, and the callback window. Everything here is pure: it turns
//! bytes into typed values or into an error that names the field.

pub mod envelope;
pub mod error;
pub mod fields;
pub mod ids;
pub mod json;
pub mod request;
pub mod window;

pub use envelope::{Envelope, ReplyHead};
pub use error::{ErrorObject, LcmError};
pub use ids::{AccountNumber, CallId, UserId};
pub use request::PersonalCallback;
pub use window::{LocalWindow, UtcWindow};
