//! `POST /v1/lcm`: the LCM message endpoint.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::edge::Speaks;
use super::log::LoggedCallId;
use super::{AppState, Problem};
use crate::lcm::envelope::{self, Envelope};

pub async fn post_lcm(State(app): State<AppState>, body: Bytes) -> Response {
    let (head, envelope) = Envelope::parse(&body);
    let stored = match envelope {
        Ok(Envelope { source, callback }) => app
            .service
            .set_outcome(callback, source)
            .await
            .map_err(Problem::from),
        Err(e) => Err(Problem::from(&e)),
    };
    let mut response = match stored {
        Ok(callback_id) => {
            (StatusCode::OK, Json(envelope::success(&head, callback_id))).into_response()
        }
        Err(problem) => problem.reply(Speaks::Lcm, &head),
    };
    response.extensions_mut().insert(LoggedCallId(head.callid));
    response
}
