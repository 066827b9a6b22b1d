//! `POST /v1/lcm`: the LCM message endpoint, for every message of the family.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::edge::Speaks;
use super::log::LoggedCallId;
use super::{AppState, Problem};
use crate::lcm::envelope::{self, Envelope};
use crate::lcm::rows::Rows;
use crate::lcm::Message;

pub async fn post_lcm(State(app): State<AppState>, body: Bytes) -> Response {
    let (head, envelope) = Envelope::parse(&body);
    let service = &app.service;
    let answer = match envelope {
        Err(e) => Err(Problem::from(&e)),
        Ok(Envelope { source, message }) => match message {
            Message::Disposition(d) => service
                .set_outcome(d, source)
                .await
                .map(|callback_id| envelope::success(&head, callback_id)),
            Message::AgentState(state) => service
                .agent_state(state)
                .await
                .map(|()| envelope::success(&head, None)),
            Message::CallbackList(list) => service
                .callback_list(list)
                .await
                .map(|rows| envelope::rows(&head, Rows::Callbacks(rows))),
            Message::Contact(read) => service
                .contact_read(read)
                .await
                .map(|rows| envelope::rows(&head, rows)),
        }
        .map_err(Problem::from),
    };
    let mut response = match answer {
        Ok(reply) => (StatusCode::OK, Json(reply)).into_response(),
        Err(problem) => problem.reply(Speaks::Lcm, &head),
    };
    response.extensions_mut().insert(LoggedCallId(head.callid));
    response
}
