//! The HTTP API: handlers that parse at the edge, call the service, and map its answer or
//! refusal to a reply. [`router`] lists every route with what it asks of the edge: who may
//! call it, how long it may take and which envelope its refusals take.

pub mod auth;
pub mod bus;
mod edge;
mod error;
mod lcm;
mod log;
mod queue;
pub mod server;
mod supervise;
mod telephony;

use std::sync::Arc;

use axum::body::Bytes;
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};

use crate::lcm::fields::describe;
use crate::lcm::json::{self, Object, Unreadable};
use crate::service::Service;

use auth::{Access, Role};
use edge::{Deadline, Edge, Route, RouteEdge, Speaks};
pub use error::Problem;

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
    pub service: Service,
    /// `--request-timeout` and `--body-timeout`.
    pub timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    /// `None`: no authentication (a loopback address, or `--insecure-no-auth`).
    pub tokens: Option<Arc<auth::Tokens>>,
    /// The bus's sockets.
    pub sockets: bus::Sockets,
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

const DESKTOP: Access = Access::Roles(&[Role::Desktop]);
const TELEPHONY: Access = Access::Roles(&[Role::Telephony]);
const DIALER: Access = Access::Roles(&[Role::Dialer]);
/// Reading one callback: a desktop token that names an agent reads only that agent's.
const READER: Access = Access::Roles(&[
    Role::Reporting,
    Role::Dialer,
    Role::Supervisor,
    Role::Desktop,
]);
/// Finding callbacks: a desktop token that names an agent finds only that agent's.
const FINDER: Access = Access::Roles(&[Role::Reporting, Role::Supervisor, Role::Desktop]);
const SUPERVISOR: Access = Access::Roles(&[Role::Supervisor]);
const CANCELLER: Access = Access::Roles(&[Role::Dialer, Role::Supervisor]);
const DNC_READER: Access = Access::Roles(&[Role::Reporting, Role::Supervisor]);
/// Unknown paths: only an admin learns that they do not exist.
const ADMIN: Access = Access::Roles(&[]);

/// A REST route that answers within `--request-timeout`.
const fn rest(access: Access) -> Route {
    Route {
        access,
        deadline: Deadline::Request,
        speaks: Speaks::Rest,
    }
}

pub fn router(state: AppState) -> Router {
    let edge = Arc::new(Edge {
        timeout: state.timeout,
        body_timeout: state.body_timeout,
        tokens: state.tokens.clone(),
    });
    let at = |route: Route| RouteEdge {
        edge: Arc::clone(&edge),
        route,
    };
    let guard = |route: Route, handler: MethodRouter<AppState>| {
        handler.layer(axum::middleware::from_fn_with_state(at(route), edge::edge))
    };
    let lcm = Route {
        access: DESKTOP,
        deadline: Deadline::Request,
        speaks: Speaks::Lcm,
    };
    let lease = Route {
        access: DIALER,
        deadline: Deadline::LongPoll,
        speaks: Speaks::Rest,
    };
    Router::new()
        .route("/healthz", guard(rest(Access::Open), get(healthz)))
        .route("/readyz", guard(rest(Access::Open), get(readyz)))
        .route("/v1/lcm", guard(lcm, post(lcm::post_lcm)))
        // The socket authenticates itself: a browser sends its token as `?token=`.
        .route("/v1/bus", guard(rest(Access::Open), get(bus::upgrade)))
        .route(
            "/v1/agents/{user_id}/login",
            guard(rest(TELEPHONY), post(telephony::login)),
        )
        .route(
            "/v1/agents/{user_id}/logout",
            guard(rest(TELEPHONY), post(telephony::logout)),
        )
        .route(
            "/v1/calls",
            guard(rest(TELEPHONY), post(telephony::register_call)),
        )
        .route(
            "/v1/calls/{callid}/end",
            guard(rest(TELEPHONY), post(telephony::end_call)),
        )
        .route(
            "/v1/callbacks/{id}",
            guard(rest(READER), get(queue::get_callback)),
        )
        .route(
            "/v1/callbacks/{id}/attempts",
            guard(rest(DIALER), post(queue::attempt)),
        )
        .route(
            "/v1/callbacks/{id}/cancel",
            guard(rest(CANCELLER), post(supervise::cancel)),
        )
        .route("/v1/callbacks", guard(rest(FINDER), get(supervise::find)))
        .route(
            "/v1/agents/{user_id}/callbacks",
            guard(rest(FINDER), get(supervise::find_for_agent)),
        )
        .route(
            "/v1/callbacks/{id}/reschedule",
            guard(rest(SUPERVISOR), post(supervise::reschedule)),
        )
        .route(
            "/v1/callbacks/{id}/reassign",
            guard(rest(SUPERVISOR), post(supervise::reassign)),
        )
        .route(
            "/v1/agents/{user_id}/callbacks/reassign",
            guard(rest(SUPERVISOR), post(supervise::reassign_all)),
        )
        .route("/v1/dnc", guard(rest(DNC_READER), get(supervise::list_dnc)))
        .route(
            "/v1/dnc/{account}",
            guard(
                rest(SUPERVISOR),
                axum::routing::put(supervise::put_dnc).delete(supervise::delete_dnc),
            ),
        )
        .route("/v1/queue/lease", guard(lease, post(queue::lease)))
        .route("/v1/queue/ack", guard(rest(DIALER), post(queue::ack)))
        .route("/v1/queue/nack", guard(rest(DIALER), post(queue::nack)))
        .fallback(not_found.layer(axum::middleware::from_fn_with_state(
            at(rest(ADMIN)),
            edge::edge,
        )))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// 200 when the instance can do its work now; 503 with every reason why not.
async fn readyz(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> (StatusCode, Json<serde_json::Value>) {
    match app.service.readiness().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "not ready", "reasons": reasons})),
        ),
    }
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// A request body that must be one JSON object. The object borrows its strings from `body`.
fn json_object(body: &Bytes) -> Result<Object<'_>, Problem> {
    match json::parse(body) {
        Ok(json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(Problem::invalid_body(format!(
            "the body must be a JSON object, got {}",
            describe(&other)
        ))),
        Err(Unreadable::Syntax(why)) => Err(Problem::invalid_body(format!(
            "the body is not JSON: {why}"
        ))),
        Err(Unreadable::DuplicateKey(key)) => Err(Problem::invalid_body(format!(
            "the key {key:?} appears more than once in one object; each key may appear once"
        ))),
    }
}
