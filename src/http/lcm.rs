//! `POST /v1/lcm`: the LCM message endpoint, for every message of the family. [`reply`] is
//! what every edge that takes LCM envelopes answers with: this route and the bus.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::log::LoggedCallId;
use super::openapi;
use super::{AppState, Problem};
use crate::lcm::envelope::{self, Envelope};
use crate::lcm::rows::Rows;
use crate::lcm::{LcmError, Message, ReplyHead};
use crate::service::Service;

#[utoipa::path(post, path = "/v1/lcm", tag = "lcm", security(("token" = ["desktop"])),
    request_body(content = openapi::LcmEnvelope, content_type = "application/json"),
    responses(openapi::LcmReplies))]
pub async fn post_lcm(State(app): State<AppState>, body: Bytes) -> Response {
    let (head, envelope) = Envelope::parse(&body);
    let (status, json) = reply(&app.service, &head, envelope).await;
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response();
    response.extensions_mut().insert(LoggedCallId(head.callid));
    response
}

/// Runs a request of the family through the service and returns the reply envelope's status
/// and JSON; a refusal is the error envelope, echoing what `head` read of the request. A bus
/// message (`topic: "Bus"`) is refused: only the bus serves it.
pub async fn reply(
    service: &Service,
    head: &ReplyHead,
    parsed: Result<Envelope, LcmError>,
) -> (StatusCode, Vec<u8>) {
    let answer = match parsed {
        Err(e) => Err(Problem::from(&e)),
        Ok(Envelope { source, message }) => match message {
            Message::Disposition(d) => service
                .set_outcome(d, source)
                .await
                .map(|callback_id| json(&envelope::success(head, callback_id))),
            Message::AgentState(state) => service
                .agent_state(state)
                .await
                .map(|()| json(&envelope::success(head, None))),
            Message::CallbackList(list) => service
                .callback_list(list)
                .await
                .map(|rows| json(&envelope::rows(head, Rows::Callbacks(rows)))),
            Message::Contact(read) => service
                .contact_read(read)
                .await
                .map(|rows| json(&envelope::rows(head, rows))),
            Message::Control(_) => return refusal(head, Problem::bus_only()),
        }
        .map_err(Problem::from),
    };
    match answer {
        Ok(json) => (StatusCode::OK, json),
        Err(problem) => refusal(head, problem),
    }
}

/// The error envelope of `problem`, with its status.
pub fn refusal(head: &ReplyHead, problem: Problem) -> (StatusCode, Vec<u8>) {
    let status = problem.status;
    (status, json(&envelope::failure(head, problem.error)))
}

fn json(reply: &envelope::Reply<'_>) -> Vec<u8> {
    serde_json::to_vec(reply).expect("a reply serializes")
}
