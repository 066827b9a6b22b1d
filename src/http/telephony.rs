//! Agents and calls, reported by the telephony side (contract section 4).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::{json_object, AppState, Problem};
use crate::lcm::fields::Fields;
use crate::lcm::{AccountNumber, CallId, UserId};
use crate::store::telephony::Call;

pub async fn login(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Login>, Problem> {
    let user = UserId::parse(user_id)?;
    app.service.login(user.clone()).await?;
    Ok(Json(Login::new(user, true)))
}

pub async fn logout(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Login>, Problem> {
    let user = UserId::parse(user_id)?;
    app.service.logout(user.clone()).await?;
    Ok(Json(Login::new(user, false)))
}

/// `201` for a new call, `200` when the same call was already registered.
pub async fn register_call(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<CallReply>), Problem> {
    let map = json_object(&body)?;
    let f = Fields::new(&map);
    let callid = CallId::parse(f.text(CallId::FIELD, 1, CallId::MAX_CHARS)?)?;
    let account =
        AccountNumber::parse(f.text(AccountNumber::FIELD, 1, AccountNumber::MAX_CHARS)?)?;
    let user = UserId::parse(f.text(UserId::FIELD, 1, UserId::MAX_CHARS)?)?;
    let registered = app.service.register_call(callid, account, user).await?;
    let status = if registered.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(CallReply::new(registered.call))))
}

pub async fn end_call(
    State(app): State<AppState>,
    Path(callid): Path<String>,
) -> Result<Json<CallReply>, Problem> {
    let call = app.service.end_call(CallId::parse(callid)?).await?;
    Ok(Json(CallReply::new(call)))
}

#[derive(Serialize)]
pub struct Login {
    success: bool,
    #[serde(rename = "UserID")]
    user_id: UserId,
    logged_in: bool,
}

impl Login {
    fn new(user_id: UserId, logged_in: bool) -> Self {
        Self {
            success: true,
            user_id,
            logged_in,
        }
    }
}

#[derive(Serialize)]
pub struct CallReply {
    success: bool,
    call: Call,
}

impl CallReply {
    fn new(call: Call) -> Self {
        Self {
            success: true,
            call,
        }
    }
}
