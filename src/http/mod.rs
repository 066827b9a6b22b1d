//! The HTTP API: thin axum handlers that parse at the edge, hand the work to the store, and map
//! every refusal to an envelope. Routes are listed in [`router`].

pub mod auth;
mod edge;
mod error;
mod lcm;
pub mod limits;
mod log;
mod queue;
mod telephony;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;

use crate::clock::Clock;
use crate::config::Config;
use crate::lcm::fields::describe;
use crate::lcm::json::{self, Object, Unreadable};
use crate::queue::Queue;
use crate::store::lifecycle::Policy;
use crate::store::Store;

pub use error::ApiError;

/// The largest request body accepted; bigger ones get 413 with an envelope. The largest valid
/// LCM request (4,000 characters of comment, each up to 4 bytes) is under 17 KiB; the limit
/// bounds what `--max-connections` requests can hold in memory at once (64 MiB at 1,024).
pub const BODY_LIMIT: usize = 64 * 1024;

/// What every handler can reach. Handlers receive a clone per request, so it is one `Arc`:
/// cloning the parts one by one cost a dozen atomic counts per request, and as many on drop.
#[derive(Clone)]
pub struct AppState(Arc<App>);

/// The parts of [`AppState`].
pub struct App {
    pub store: Store,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub policy: Arc<Policy>,
    pub queue: Queue,
    /// `None`: no authentication (a loopback address, or `--insecure-no-auth`).
    pub tokens: Option<Arc<auth::Tokens>>,
}

impl AppState {
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

pub fn router(state: AppState) -> Router {
    let edge = Arc::new(edge::Edge {
        timeout: state
            .config
            .request_timeout
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(10)),
        tokens: state.tokens.clone(),
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/lcm", post(lcm::post_lcm))
        .route("/v1/agents/{user_id}/login", post(telephony::login))
        .route("/v1/agents/{user_id}/logout", post(telephony::logout))
        .route("/v1/calls", post(telephony::register_call))
        .route("/v1/calls/{callid}/end", post(telephony::end_call))
        .route("/v1/callbacks/{id}", get(queue::get_callback))
        .route("/v1/callbacks/{id}/attempts", post(queue::attempt))
        .route("/v1/callbacks/{id}/cancel", post(queue::cancel))
        .route("/v1/queue/lease", post(queue::lease))
        .route("/v1/queue/ack", post(queue::ack))
        .route("/v1/queue/nack", post(queue::nack))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(edge, edge::edge))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// A request body that must be one JSON object. The object borrows its strings from `body`.
fn json_object(body: &Result<Bytes, BytesRejection>) -> Result<Object<'_>, ApiError> {
    let body = body
        .as_ref()
        .map_err(|r| ApiError::body_rejected(r.status(), r.body_text()))?;
    match json::parse(body) {
        Ok(json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::body_rejected(
            StatusCode::BAD_REQUEST,
            format!("the body must be a JSON object, got {}", describe(&other)),
        )),
        Err(Unreadable::Syntax(why)) => Err(ApiError::body_rejected(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {why}"),
        )),
        Err(Unreadable::DuplicateKey(key)) => Err(ApiError::body_rejected(
            StatusCode::BAD_REQUEST,
            format!(
                "the key {key:?} appears more than once in one object; each key may appear once"
            ),
        )),
    }
}
