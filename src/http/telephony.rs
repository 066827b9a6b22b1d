//! Agents and calls, reported by the telephony side (contract section 4).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::openapi;
use super::{json_object, AppState, Problem};
use crate::lcm::fields::{describe, FieldError, Fields};
use crate::lcm::json::Value;
use crate::lcm::{AccountNumber, CallId, UserId};
use crate::service::telephony::NewCall;
use crate::store::contacts::{Contact, Mode};
use crate::store::telephony::Call;

/// The most modes one contact may have.
const MODES_MAX: usize = 16;

#[utoipa::path(post, path = "/v1/agents/{user_id}/login", tag = "telephony", security(("token" = ["telephony"])),
    params(("user_id" = String, Path, description = "The agent")),
    responses((status = 200, description = "Logged in", body = Login), openapi::Refusals))]
pub async fn login(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Login>, Problem> {
    let user = UserId::parse(user_id)?;
    app.service.login(user.clone()).await?;
    Ok(Json(Login::new(user, true)))
}

#[utoipa::path(post, path = "/v1/agents/{user_id}/logout", tag = "telephony", security(("token" = ["telephony"])),
    params(("user_id" = String, Path, description = "The agent")),
    responses((status = 200, description = "Logged out", body = Login), openapi::Refusals))]
pub async fn logout(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Login>, Problem> {
    let user = UserId::parse(user_id)?;
    app.service.logout(user.clone()).await?;
    Ok(Json(Login::new(user, false)))
}

/// `201` for a new call, `200` when the same call was already registered. Optional:
/// `CampaignID` and `ContactID` (strings or whole numbers), and `modes`, the contact's numbers
/// (`[{"ModeID": 1, "Description": "Mobile", "CValue": "+15551234567"}]`).
#[utoipa::path(post, path = "/v1/calls", tag = "telephony", security(("token" = ["telephony"])),
    request_body(content = openapi::CallBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered and active", body = CallReply, links(
            ("end" = (operation_id = "end_call", parameters(("callid" = "$response.body#/call/callid")))))),
        (status = 200, description = "Already registered, the same", body = CallReply),
        openapi::Refusals))]
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
    let new = NewCall {
        contact: Contact {
            campaign_id: f.optional_id_text("CampaignID", 64)?,
            contact_id: f.optional_id_text("ContactID", 64)?,
        },
        modes: f.optional_array("modes")?.map(modes).transpose()?,
        ..NewCall::new(callid, account, user)
    };
    let registered = app.service.register_call(new).await?;
    let status = if registered.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(CallReply::new(registered.call))))
}

/// `modes`: at most [`MODES_MAX`] objects, each `ModeID`, `Description` and `CValue`.
fn modes(items: &[Value]) -> Result<Vec<Mode>, FieldError> {
    if items.len() > MODES_MAX {
        return Err(FieldError::new(
            "modes",
            format!(
                "modes holds {} modes; at most {MODES_MAX} allowed",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let in_item =
                |e: FieldError| FieldError::new("modes", format!("modes[{n}]: {}", e.detail));
            let Value::Object(mode) = item else {
                return Err(FieldError::new(
                    "modes",
                    format!(
                        "modes[{n}] must be an object with ModeID, Description and CValue, got {}",
                        describe(item)
                    ),
                ));
            };
            let f = Fields::new(mode);
            Ok(Mode {
                mode_id: f.count("ModeID").map_err(in_item)?,
                description: f.text("Description", 1, 64).map_err(in_item)?,
                cvalue: f.text("CValue", 1, 32).map_err(in_item)?,
            })
        })
        .collect()
}

#[utoipa::path(post, path = "/v1/calls/{callid}/end", tag = "telephony", security(("token" = ["telephony"])),
    params(("callid" = String, Path, description = "The call")),
    responses((status = 200, description = "Ended", body = CallReply), openapi::Refusals))]
pub async fn end_call(
    State(app): State<AppState>,
    Path(callid): Path<String>,
) -> Result<Json<CallReply>, Problem> {
    let call = app.service.end_call(CallId::parse(callid)?).await?;
    Ok(Json(CallReply::new(call)))
}

#[derive(Serialize, utoipa::ToSchema)]
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

#[derive(Serialize, utoipa::ToSchema)]
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
