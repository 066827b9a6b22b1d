//! Errors of the REST endpoints (agents, calls, callbacks), in the same `error` object the LCM
//! envelope uses: `{"success": false, "error": {"type", "message", "detail", "field"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::lcm::envelope::{self, ReplyHead};
use crate::lcm::error::ErrorObject;
use crate::lcm::fields::FieldError;
use crate::lcm::LcmError;
use crate::store::telephony::CallError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub detail: String,
    pub field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            detail: detail.into(),
            field: None,
        }
    }

    pub fn body_rejected(status: StatusCode, detail: String) -> Self {
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "Request too large."
        } else {
            "Invalid request."
        };
        Self::new(status, message, detail)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: format!("Invalid {}.", e.field),
            detail: e.detail,
            field: Some(e.field),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable, try again.",
            e.to_string(),
        )
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Conflict { field, .. } => Self {
                status: StatusCode::CONFLICT,
                message: format!("Invalid {field}."),
                detail: e.to_string(),
                field: Some(field),
            },
            CallError::Unknown(_) => Self {
                status: StatusCode::NOT_FOUND,
                message: "Invalid Call ID.".to_owned(),
                detail: e.to_string(),
                field: Some("callid"),
            },
            CallError::Store(e) => e.into(),
        }
    }
}

/// A refusal decided before a handler runs (authentication, overload, a deadline), in the
/// envelope the route speaks: LCM's for `/v1/lcm`, the REST error otherwise.
pub fn refusal(path: &str, error: LcmError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if path == "/v1/lcm" {
        return (
            status,
            Json(envelope::failure(&ReplyHead::default(), &error)),
        )
            .into_response();
    }
    ApiError {
        status,
        message: error.message(),
        detail: error.detail(),
        field: error.field(),
    }
    .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = if self.status.is_server_error() {
            "Server_Error"
        } else {
            "WS_Error"
        };
        let body = Refusal {
            success: false,
            error: ErrorObject {
                kind,
                message: self.message,
                detail: self.detail,
                field: self.field,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

#[derive(Serialize)]
struct Refusal {
    success: bool,
    error: ErrorObject,
}
