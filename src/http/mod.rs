//! The HTTP API: thin axum handlers that parse at the edge, hand the work to the store, and map
//! every refusal to an envelope. Routes are listed in [`router`].

mod callbacks;
mod error;
mod lcm;
mod log;
mod telephony;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;

pub use error::ApiError;

/// The largest request body accepted; bigger ones get 413 with an envelope.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Clock,
    pub config: Arc<Config>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/lcm", post(lcm::post_lcm))
        .route("/v1/agents/{user_id}/login", post(telephony::login))
        .route("/v1/agents/{user_id}/logout", post(telephony::logout))
        .route("/v1/calls", post(telephony::register_call))
        .route("/v1/calls/{callid}/end", post(telephony::end_call))
        .route("/v1/callbacks/{id}", get(callbacks::get_callback))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(log::log_request))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}
