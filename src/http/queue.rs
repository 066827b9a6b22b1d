//! The dialers' endpoints: the queue (lease, ack, nack), attempt reports and reading a
//! callback.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Serialize;

use super::auth::Caller;
use super::openapi;
use super::{json_object, AppState, Problem};
use crate::lcm::fields::{describe, FieldError, Fields};
use crate::lcm::json::{self, Object};
use crate::lcm::UserId;
use crate::lifecycle::AttemptResult;
use crate::service::queue::{AckRequest, LeaseRequest, MAX_BATCH, MAX_LEASE_MS, MAX_WAIT_MS};
use crate::store::callbacks::Callback;
use crate::store::events::Event;

fn lease_request(map: &Object) -> Result<LeaseRequest, FieldError> {
    let f = Fields::new(map);
    Ok(LeaseRequest {
        consumer: f.text("consumer", 1, 64)?,
        max: f.count_in("max", 100, 1..=MAX_BATCH)?,
        lease_ms: f.count_in("lease_ms", 30_000, 1..=MAX_LEASE_MS)?,
        wait_ms: f.count_in("wait_ms", 0, 0..=MAX_WAIT_MS)?,
        user_id: f
            .optional_text("user_id", UserId::MAX_CHARS)?
            .map(|u| {
                UserId::parse(u).map_err(|e| FieldError {
                    field: "user_id",
                    ..e
                })
            })
            .transpose()?,
    })
}

fn ack_request(map: &Object) -> Result<AckRequest, FieldError> {
    let f = Fields::new(map);
    Ok(AckRequest {
        consumer: f.text("consumer", 1, 64)?,
        ids: f.ids("ids", MAX_BATCH as usize)?,
    })
}

#[utoipa::path(post, path = "/v1/queue/lease", tag = "dialers", security(("token" = ["dialer"])),
    request_body(content = openapi::LeaseBody, content_type = "application/json"),
    responses((status = 200, description = "The events leased, maybe none", body = Leased), openapi::Refusals))]
pub async fn lease(State(app): State<AppState>, body: Bytes) -> Result<Json<Leased>, Problem> {
    let request = lease_request(&json_object(&body)?)?;
    let events = app.service.lease(request).await?;
    Ok(Json(Leased { events }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Leased {
    events: Vec<Event>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Acked {
    acked: Vec<i64>,
    ignored: Vec<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Released {
    released: Vec<i64>,
    ignored: Vec<i64>,
}

#[utoipa::path(post, path = "/v1/queue/ack", tag = "dialers", security(("token" = ["dialer"])),
    request_body(content = openapi::SettleBody, content_type = "application/json"),
    responses((status = 200, description = "Done for good; ids not held are ignored", body = Acked), openapi::Refusals))]
pub async fn ack(State(app): State<AppState>, body: Bytes) -> Result<Json<Acked>, Problem> {
    let request = ack_request(&json_object(&body)?)?;
    let settled = app.service.ack(request).await?;
    Ok(Json(Acked {
        acked: settled.done,
        ignored: settled.ignored,
    }))
}

#[utoipa::path(post, path = "/v1/queue/nack", tag = "dialers", security(("token" = ["dialer"])),
    request_body(content = openapi::SettleBody, content_type = "application/json"),
    responses((status = 200, description = "Available again", body = Released), openapi::Refusals))]
pub async fn nack(State(app): State<AppState>, body: Bytes) -> Result<Json<Released>, Problem> {
    let request = ack_request(&json_object(&body)?)?;
    let settled = app.service.nack(request).await?;
    Ok(Json(Released {
        released: settled.done,
        ignored: settled.ignored,
    }))
}

#[utoipa::path(post, path = "/v1/callbacks/{id}/attempts", tag = "dialers", security(("token" = ["dialer"])),
    params(("id" = i64, Path, description = "The callback")),
    request_body(content = openapi::AttemptBody, content_type = "application/json"),
    responses((status = 200, description = "Recorded: connected completes, the others retry in the window", body = Callback), openapi::Refusals))]
pub async fn attempt(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Callback>, Problem> {
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
    let attempted = app.service.record_attempt(id, result).await?;
    Ok(Json(attempted.callback))
}

/// A callback; a desktop token that names an agent reads only that agent's.
#[utoipa::path(get, path = "/v1/callbacks/{id}", tag = "dialers",
    security(("token" = ["reporting", "dialer", "supervisor", "desktop"])),
    params(("id" = i64, Path, description = "The callback")),
    responses((status = 200, description = "The callback", body = Callback,
        links(
            ("get" = (operation_id = "get_callback", parameters(("id" = "$response.body#/id")))),
            ("cancel" = (operation_id = "cancel", parameters(("id" = "$response.body#/id")))),
            ("attempt" = (operation_id = "attempt", parameters(("id" = "$response.body#/id")))),
            ("reschedule" = (operation_id = "reschedule", parameters(("id" = "$response.body#/id")))),
            ("reassign" = (operation_id = "reassign", parameters(("id" = "$response.body#/id")))))), openapi::Refusals))]
pub async fn get_callback(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Result<Json<Callback>, Problem> {
    let caller = caller.map(|c| c.0).unwrap_or_default();
    let only = caller.reads_only()?;
    let callback = app.service.callback(callback_id(&id)?).await?;
    if let Some(agent) = only {
        if callback.user_id.as_str() != agent {
            return Err(Problem::forbidden(format!(
                "this desktop token reads only the callbacks of its agent {agent:?}"
            )));
        }
    }
    Ok(Json(callback))
}

pub(super) fn callback_id(text: &str) -> Result<i64, Problem> {
    text.parse().map_err(|_| Problem::bad_callback_id(text))
}
