//! The dialers' endpoints: the queue (lease, ack, nack) and attempt reports.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::{json_object, ApiError, AppState};
use crate::lcm::fields::{describe, FieldError, Fields};
use crate::lcm::json;
use crate::queue::{AckRequest, LeaseRequest};
use crate::store::callbacks::{self, Callback};
use crate::store::events::Event;
use crate::store::lifecycle::{self, AttemptResult, TransitionError};

pub async fn lease(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Leased>, ApiError> {
    let request = LeaseRequest::parse(&json_object(&body)?)?;
    let events = app.queue.lease(request).await?;
    Ok(Json(Leased { events }))
}

#[derive(Serialize)]
pub struct Leased {
    events: Vec<Event>,
}

#[derive(Serialize)]
pub struct Acked {
    acked: Vec<i64>,
    ignored: Vec<i64>,
}

#[derive(Serialize)]
pub struct Released {
    released: Vec<i64>,
    ignored: Vec<i64>,
}

pub async fn ack(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Acked>, ApiError> {
    let request = AckRequest::parse(&json_object(&body)?)?;
    let ids = request.ids.clone();
    let acked = app.queue.ack(request).await?;
    let ignored = ignored(&ids, &acked);
    Ok(Json(Acked { acked, ignored }))
}

pub async fn nack(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Released>, ApiError> {
    let request = AckRequest::parse(&json_object(&body)?)?;
    let ids = request.ids.clone();
    let released = app.queue.nack(request).await?;
    let ignored = ignored(&ids, &released);
    Ok(Json(Released { released, ignored }))
}

/// Ids the consumer sent that it does not hold (never leased by it, acked already, or leased
/// by another consumer since its lease ran out).
fn ignored(sent: &[i64], done: &[i64]) -> Vec<i64> {
    sent.iter()
        .copied()
        .filter(|id| !done.contains(id))
        .collect()
}

pub async fn attempt(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Callback>, ApiError> {
    let id = callback_id(&id)?;
    let map = json_object(&body)?;
    let text = Fields::new(&map).text("result", 1, 16)?;
    let result = AttemptResult::parse(&text).ok_or_else(|| FieldError {
        field: "result",
        detail: format!(
            "result {} is not an attempt result; expected \"connected\", \"no_answer\", \"busy\" or \"failed\"",
            describe(&json::Value::String(text.as_str().into()))
        ),
    })?;
    let clock = app.clock.clone();
    let policy = app.policy.clone();
    let next_at = app
        .store
        .write(move |conn| lifecycle::record_attempt(conn, id, result, clock.now(), &policy))
        .await?;
    app.queue.signals.schedule(next_at);
    // An attempt that expired the callback put an `expired` event on the queue.
    app.queue.signals.events_ready.notify_waiters();
    current(&app, id).await
}

pub async fn cancel(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Callback>, ApiError> {
    let id = callback_id(&id)?;
    let clock = app.clock.clone();
    app.store
        .write(move |conn| lifecycle::cancel(conn, id, clock.now()))
        .await?;
    current(&app, id).await
}

pub async fn get_callback(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Callback>, ApiError> {
    current(&app, callback_id(&id)?).await
}

async fn current(app: &AppState, id: i64) -> Result<Json<Callback>, ApiError> {
    app.store
        .read(move |conn| Ok(callbacks::find(conn, id)?))
        .await?
        .map(Json)
        .ok_or_else(|| unknown(id))
}

fn callback_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError {
        status: StatusCode::BAD_REQUEST,
        message: "Invalid callback id.".to_owned(),
        detail: format!("callback id {text:?} is not an integer"),
        field: Some("id"),
    })
}

fn unknown(id: i64) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: "Unknown callback.".to_owned(),
        detail: format!("no callback has id {id}"),
        field: Some("id"),
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::Unknown(id) => unknown(id),
            TransitionError::Finished { .. } => ApiError {
                status: StatusCode::CONFLICT,
                message: "Callback already finished.".to_owned(),
                detail: e.to_string(),
                field: Some("id"),
            },
            TransitionError::Store(e) => e.into(),
        }
    }
}
