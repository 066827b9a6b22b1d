//! Every refusal an HTTP client can get, as one [`Problem`]: a status and the `error` object.
//! Each layer's refusal becomes one here, and [`Problem::reply`] puts it in the envelope its
//! route speaks: LCM's for `/v1/lcm`, `{"success": false, "error": {...}}` for the others.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::edge::Speaks;
use super::openapi::Refusal;
use crate::lcm::envelope::{self, ReplyHead};
use crate::lcm::fields::FieldError;
use crate::lcm::{ErrorObject, LcmError};
use crate::service;

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub error: ErrorObject,
}

impl From<&LcmError> for Problem {
    fn from(e: &LcmError) -> Self {
        let status = match e {
            LcmError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            error: e.error_object(),
        }
    }
}

impl From<FieldError> for Problem {
    fn from(e: FieldError) -> Self {
        (&LcmError::Field(e)).into()
    }
}

impl From<service::Error> for Problem {
    fn from(e: service::Error) -> Self {
        use service::Error as E;
        let status = match &e {
            E::UnknownCall(_)
            | E::AccountMismatch { .. }
            | E::DoNotCall { .. }
            | E::NotInCatalogue { .. }
            | E::ClosingWithCallback { .. }
            | E::AgentNotLoggedIn(_)
            | E::WindowReversed(_)
            | E::WindowOver { .. }
            | E::OutsideCallingHours(_)
            | E::BeyondHorizon { .. }
            | E::UnknownAgent(_)
            | E::SameOwner { .. }
            | E::SameAgent(_) => StatusCode::BAD_REQUEST,
            E::CallNotRegistered(_) | E::UnknownCallback(_) | E::NotListed(_) => {
                StatusCode::NOT_FOUND
            }
            E::CallConflict { .. }
            | E::Finished { .. }
            | E::NotPersonal(_)
            | E::DispatchedByNats(_) => StatusCode::CONFLICT,
            E::Busy(_) | E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if let E::Unavailable(cause) = &e {
            tracing::error!(error = %cause, "request not served");
        }
        Self {
            status,
            error: e.error_object(),
        }
    }
}

impl Problem {
    fn refused(
        status: StatusCode,
        message: &str,
        detail: String,
        field: Option<&'static str>,
    ) -> Self {
        Self {
            status,
            error: ErrorObject::refused(message.to_owned(), detail, field),
        }
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::refused(
            StatusCode::UNAUTHORIZED,
            "Unauthorized.",
            detail.to_owned(),
            None,
        )
    }

    pub fn forbidden(detail: String) -> Self {
        Self::refused(StatusCode::FORBIDDEN, "Forbidden.", detail, None)
    }

    /// The body did not arrive whole within `--body-timeout`.
    pub fn slow_body(limit: Duration) -> Self {
        Self::refused(
            StatusCode::REQUEST_TIMEOUT,
            "Request timeout.",
            format!(
                "the request's body did not arrive within {} ms; send it whole, then try again",
                limit.as_millis()
            ),
            None,
        )
    }

    /// The body could not be read (the connection broke, or its framing was wrong).
    pub fn unreadable_body(why: String) -> Self {
        Self::refused(StatusCode::BAD_REQUEST, "Invalid request.", why, None)
    }

    /// A REST body that is not one JSON object.
    pub fn invalid_body(detail: String) -> Self {
        Self::refused(StatusCode::BAD_REQUEST, "Invalid request.", detail, None)
    }

    /// A bus message sent where only LCM requests are read.
    pub fn bus_only() -> Self {
        Self::refused(
            StatusCode::BAD_REQUEST,
            "Invalid topic.",
            "topic \"Bus\" (Subscribe, Unsubscribe) is served on the bus, a WebSocket at GET \
             /v1/bus; POST /v1/lcm takes topic \"WebService\""
                .to_owned(),
            Some("topic"),
        )
    }

    /// `GET /metrics` on a service started with `--metrics false`.
    pub fn metrics_off() -> Self {
        Self::refused(
            StatusCode::NOT_FOUND,
            "Metrics are off.",
            "this service runs with --metrics false; start it with --metrics true to serve \
             GET /metrics"
                .to_owned(),
            None,
        )
    }

    /// A path segment naming something that does not exist, with what does.
    pub fn not_found_named(field: &'static str, detail: String) -> Self {
        Self::refused(StatusCode::NOT_FOUND, "Not found.", detail, Some(field))
    }

    /// A file of the supervisor page that does not exist.
    pub fn no_such_file(name: &str) -> Self {
        Self::refused(
            StatusCode::NOT_FOUND,
            "Not found.",
            format!("the page has no file {name:?}; it has app.js and app.css"),
            Some("file"),
        )
    }

    /// A path segment that should be a callback id and is not.
    pub fn bad_callback_id(text: &str) -> Self {
        Self::refused(
            StatusCode::BAD_REQUEST,
            "Invalid callback id.",
            format!("callback id {text:?} is not an integer"),
            Some("id"),
        )
    }

    /// The request ran past its time. Its write may still commit, which is why an identical
    /// request is safe to send again.
    pub fn timed_out(budget: Duration) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: ErrorObject::failed(format!(
                "the service is busy, try again shortly: the request did not finish within {} \
                 ms; it may still be stored, and an identical request is safe to send again",
                budget.as_millis()
            )),
        }
    }

    /// In the envelope `speaks` names; an LCM reply echoes what `head` read of the request.
    pub fn reply(self, speaks: Speaks, head: &ReplyHead) -> Response {
        match speaks {
            Speaks::Lcm => (self.status, Json(envelope::failure(head, self.error))).into_response(),
            Speaks::Rest => self.into_response(),
        }
    }
}

/// The REST form.
impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Refusal {
            success: false,
            error: self.error,
        };
        (self.status, Json(body)).into_response()
    }
}
