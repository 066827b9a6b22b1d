//! Agents and calls, reported by the telephony side (contract section 4).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::lcm::fields::{describe, Fields};
use crate::lcm::{AccountNumber, CallId, UserId};
use crate::store::telephony::{self, Call};

pub async fn login(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_login(app, user_id, true).await
}

pub async fn logout(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_login(app, user_id, false).await
}

async fn set_login(
    app: AppState,
    user_id: String,
    logged_in: bool,
) -> Result<Json<Value>, ApiError> {
    let user = UserId::parse(user_id)?;
    let clock = app.clock.clone();
    let reply = json!({"success": true, "UserID": user, "logged_in": logged_in});
    app.store
        .write(move |conn| telephony::set_agent_login(conn, &user, logged_in, clock.now()))
        .await?;
    Ok(Json(reply))
}

/// `201` for a new call, `200` when the same call was already registered.
pub async fn register_call(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(|r| ApiError::body_rejected(r.status(), r.body_text()))?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::body_rejected(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })?;
    let Value::Object(map) = &value else {
        return Err(ApiError::body_rejected(
            StatusCode::BAD_REQUEST,
            format!("the body must be a JSON object, got {}", describe(&value)),
        ));
    };
    let f = Fields::new(map);
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
) -> Result<Json<Value>, ApiError> {
    let callid = CallId::parse(callid)?;
    let clock = app.clock.clone();
    let call = app
        .store
        .write(move |conn| telephony::end_call(conn, callid.as_str(), clock.now()))
        .await?;
    Ok(Json(call_reply(call)))
}

fn call_reply(call: Call) -> Value {
    json!({"success": true, "call": call})
}
