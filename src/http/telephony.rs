//! Agents and calls, reported by the telephony side (contract section 4).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::{json_object, ApiError, AppState};
use crate::lcm::fields::Fields;
use crate::lcm::{AccountNumber, CallId, UserId};
use crate::store::lifecycle;
use crate::store::telephony::{self, Call, CallError};
use crate::store::StoreError;

pub async fn login(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Login>, ApiError> {
    set_login(app, user_id, true).await
}

pub async fn logout(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Login>, ApiError> {
    set_login(app, user_id, false).await
}

async fn set_login(
    app: AppState,
    user_id: String,
    logged_in: bool,
) -> Result<Json<Login>, ApiError> {
    let user = UserId::parse(user_id)?;
    let clock = app.clock.clone();
    let policy = app.policy.clone();
    let reply = Login {
        success: true,
        user_id: user.as_str().to_owned(),
        logged_in,
    };
    let deadline = app
        .store
        .write(move |conn| {
            let now = clock.now();
            telephony::set_agent_login(conn, &user, logged_in, now)?;
            if logged_in {
                return Ok(None);
            }
            Ok::<_, StoreError>(lifecycle::owner_left(conn, &user, now, &policy)?)
        })
        .await?;
    app.queue.signals.schedule(deadline);
    Ok(Json(reply))
}

/// `201` for a new call, `200` when the same call was already registered.
pub async fn register_call(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CallReply>), ApiError> {
    let map = json_object(&body)?;
    let f = Fields::new(&map);
    let callid = CallId::parse(f.text(CallId::FIELD, 1, CallId::MAX_CHARS)?)?;
    let account =
        AccountNumber::parse(f.text(AccountNumber::FIELD, 1, AccountNumber::MAX_CHARS)?)?;
    let user = UserId::parse(f.text(UserId::FIELD, 1, UserId::MAX_CHARS)?)?;
    let clock = app.clock.clone();
    let (call, created) = app
        .store
        .write(move |conn| telephony::register_call(conn, &callid, &account, &user, clock.now()))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(call_reply(call))))
}

pub async fn end_call(
    State(app): State<AppState>,
    Path(callid): Path<String>,
) -> Result<Json<CallReply>, ApiError> {
    let callid = CallId::parse(callid)?;
    let clock = app.clock.clone();
    let policy = app.policy.clone();
    let (call, deadline) = app
        .store
        .write(move |conn| {
            let now = clock.now();
            let call = telephony::end_call(conn, callid.as_str(), now)?;
            // An agent who was present only through this call may now be away.
            let deadline = match UserId::parse(call.user_id.as_str()) {
                Ok(user) => lifecycle::owner_left(conn, &user, now, &policy)?,
                Err(_) => None,
            };
            Ok::<_, CallError>((call, deadline))
        })
        .await?;
    app.queue.signals.schedule(deadline);
    Ok(Json(call_reply(call)))
}

#[derive(Serialize)]
pub struct Login {
    success: bool,
    #[serde(rename = "UserID")]
    user_id: String,
    logged_in: bool,
}

#[derive(Serialize)]
pub struct CallReply {
    success: bool,
    call: Call,
}

fn call_reply(call: Call) -> CallReply {
    CallReply {
        success: true,
        call,
    }
}
