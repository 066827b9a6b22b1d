//! `POST /v1/lcm`: the LCM message endpoint.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::log::LoggedCallId;
use super::{AppState, BODY_LIMIT};
use crate::config::format_duration;
use crate::lcm::envelope::{self, Envelope, ReplyHead};
use crate::lcm::{LcmError, PersonalCallback, UtcWindow};
use crate::store::outcomes::{self, NewOutcome};

pub async fn post_lcm(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (head, result) = handle(&app, body).await;
    let (status, reply) = match &result {
        Ok(callback_id) => (StatusCode::OK, envelope::success(&head, *callback_id)),
        Err(e) => {
            if let LcmError::Store(cause) = e {
                tracing::error!(error = %cause, callid = head.callid, "request not stored");
            }
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, envelope::failure(&head, e))
        }
    };
    let mut response = (status, Json(reply)).into_response();
    response.extensions_mut().insert(LoggedCallId(head.callid));
    response
}

/// The request's window in UTC, clipped to calling hours, within the horizon.
fn window(app: &AppState, callback: &PersonalCallback) -> Result<UtcWindow, LcmError> {
    let zone = callback.timezone.unwrap_or(app.config.timezone);
    let window = callback
        .window
        .resolve(zone, app.config.min_window)
        .map_err(LcmError::WindowReversed)?
        .clip(app.policy.calling_hours.as_ref())
        .map_err(LcmError::OutsideCallingHours)?;
    let now = app.clock.now();
    if window.start > now + app.config.horizon {
        return Err(LcmError::BeyondHorizon {
            start: window.start,
            now,
            limit: app.config.horizon,
            horizon: format_duration(app.config.horizon),
        });
    }
    Ok(window)
}

/// Parses, resolves the window, and stores; the head is what the reply echoes.
async fn handle(
    app: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> (ReplyHead, Result<i64, LcmError>) {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let error = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                LcmError::TooLarge { limit: BODY_LIMIT }
            } else {
                LcmError::NotJson(rejection.body_text())
            };
            return (ReplyHead::default(), Err(error));
        }
    };
    let (head, envelope) = Envelope::parse(&body);
    let Envelope { source, callback } = match envelope {
        Ok(envelope) => envelope,
        Err(e) => return (head, Err(e)),
    };
    let window = match window(app, &callback) {
        Ok(window) => window,
        Err(e) => return (head, Err(e)),
    };
    let new = NewOutcome {
        request: callback,
        window,
        source,
    };
    let clock = app.clock.clone();
    let policy = app.policy.clone();
    let stored = app
        .store
        .write(move |conn| outcomes::set_outcome(conn, &new, clock.now(), &policy))
        .await;
    if let Ok(stored) = &stored {
        app.queue.signals.schedule(stored.next_at);
        if stored.opened {
            app.queue.signals.events_ready.notify_waiters();
        }
    }
    (head, stored.map(|s| s.callback_id))
}
