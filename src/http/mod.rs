//! The HTTP API: handlers that parse at the edge, call the service, and map its answer or
//! refusal to a reply. [`router`] lists every route with what it asks of the edge: who may
//! call it, how long it may take and which envelope its refusals take.

pub mod auth;
pub mod bus;
mod edge;
mod error;
mod lcm;
mod log;
pub mod openapi;
mod overview;
mod queue;
pub mod server;
mod supervise;
mod telephony;
mod ui;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};

use crate::lcm::fields::describe;
use crate::lcm::json::{self, Object, Unreadable};
use crate::service::Service;
use crate::telemetry;

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
    /// The relay to NATS, with `--nats`.
    pub relay: Option<Arc<crate::relay::Status>>,
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
/// The overview and the reports: counts and figures, no contact's details.
const WATCHER: Access = Access::Roles(&[Role::Reporting, Role::Supervisor]);
/// Any known token.
const ANYONE: Access = Access::Roles(&[
    Role::Desktop,
    Role::Telephony,
    Role::Dialer,
    Role::Reporting,
    Role::Supervisor,
]);
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

/// `/metrics`: counts of callbacks and agents, for monitoring systems.
const METRICS: Access = Access::Roles(&[Role::Reporting]);

/// One path of the API: the methods it answers, what it asks of the edge, its handlers.
pub struct Endpoint {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    pub route: Route,
    handler: MethodRouter<AppState>,
}

fn at(path: &'static str, methods: &'static [&'static str], route: Route) -> Endpoint {
    Endpoint {
        path,
        methods,
        route,
        handler: MethodRouter::new(),
    }
}

impl Endpoint {
    fn to(mut self, handler: MethodRouter<AppState>) -> Self {
        self.handler = handler;
        self
    }
}

/// Every path the service answers, in one table: the router is built from it, and the tests
/// check the OpenAPI document and the roles against it.
pub fn endpoints() -> Vec<Endpoint> {
    use axum::routing::{delete, put};
    const GET: &[&str] = &["GET"];
    const POST: &[&str] = &["POST"];
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
    vec![
        at("/healthz", GET, rest(Access::Open)).to(get(healthz)),
        at("/readyz", GET, rest(Access::Open)).to(get(readyz)),
        at("/metrics", GET, rest(METRICS)).to(get(metrics)),
        at("/openapi.json", GET, rest(Access::Open)).to(get(openapi::openapi_json)),
        at("/ui", GET, rest(Access::Open)).to(get(ui::page)),
        at("/ui/{file}", GET, rest(Access::Open)).to(get(ui::asset)),
        at("/v1/lcm", POST, lcm).to(post(lcm::post_lcm)),
        // The socket authenticates itself: a browser sends its token as `?token=`.
        at("/v1/bus", GET, rest(Access::Open)).to(get(bus::upgrade)),
        at("/v1/agents/{user_id}/login", POST, rest(TELEPHONY)).to(post(telephony::login)),
        at("/v1/agents/{user_id}/logout", POST, rest(TELEPHONY)).to(post(telephony::logout)),
        at("/v1/calls", POST, rest(TELEPHONY)).to(post(telephony::register_call)),
        at("/v1/calls/{callid}/end", POST, rest(TELEPHONY)).to(post(telephony::end_call)),
        at("/v1/callbacks", GET, rest(FINDER)).to(get(supervise::find)),
        at("/v1/callbacks/{id}", GET, rest(READER)).to(get(queue::get_callback)),
        at("/v1/callbacks/{id}/history", GET, rest(READER)).to(get(overview::history)),
        at("/v1/overview", GET, rest(WATCHER)).to(get(overview::overview)),
        at("/v1/reports/{report}", GET, rest(WATCHER)).to(get(overview::report)),
        at("/v1/whoami", GET, rest(ANYONE)).to(get(overview::whoami)),
        at("/v1/callbacks/{id}/attempts", POST, rest(DIALER)).to(post(queue::attempt)),
        at("/v1/callbacks/{id}/cancel", POST, rest(CANCELLER)).to(post(supervise::cancel)),
        at("/v1/callbacks/{id}/reschedule", POST, rest(SUPERVISOR)).to(post(supervise::reschedule)),
        at("/v1/callbacks/{id}/reassign", POST, rest(SUPERVISOR)).to(post(supervise::reassign)),
        at("/v1/agents/{user_id}/callbacks", GET, rest(FINDER)).to(get(supervise::find_for_agent)),
        at(
            "/v1/agents/{user_id}/callbacks/reassign",
            POST,
            rest(SUPERVISOR),
        )
        .to(post(supervise::reassign_all)),
        at("/v1/dnc", GET, rest(DNC_READER)).to(get(supervise::list_dnc)),
        at("/v1/dnc/{account}", &["PUT", "DELETE"], rest(SUPERVISOR))
            .to(put(supervise::put_dnc).merge(delete(supervise::delete_dnc))),
        at("/v1/queue/lease", POST, lease).to(post(queue::lease)),
        at("/v1/queue/ack", POST, rest(DIALER)).to(post(queue::ack)),
        at("/v1/queue/nack", POST, rest(DIALER)).to(post(queue::nack)),
    ]
}

pub fn router(state: AppState) -> Router {
    let edge = Arc::new(Edge {
        timeout: state.timeout,
        body_timeout: state.body_timeout,
        tokens: state.tokens.clone(),
    });
    let guard = |path: &'static str, route: Route| RouteEdge {
        edge: Arc::clone(&edge),
        route,
        meters: Arc::new(telemetry::RouteMeters::new(path)),
    };
    let mut router = Router::new();
    for endpoint in endpoints() {
        let layer =
            axum::middleware::from_fn_with_state(guard(endpoint.path, endpoint.route), edge::edge);
        router = router.route(endpoint.path, endpoint.handler.layer(layer));
    }
    router
        .fallback(not_found.layer(axum::middleware::from_fn_with_state(
            guard("unmatched", rest(ADMIN)),
            edge::edge,
        )))
        .with_state(state)
}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process answers (liveness only)", body = openapi::Health)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// 200 when the instance can do its work now; 503 with every reason why not. With `--nats`,
/// the relay's state beside, which does not make the instance unready: it takes requests
/// and schedules while NATS is away, and catches up.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready: the writer drains, the database has room, the scheduler keeps time", body = openapi::Health),
        (status = 503, description = "Not ready, with every reason", body = openapi::Health)))]
async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let (status, mut body) = match app.service.readiness().await {
        Ok(()) => (StatusCode::OK, serde_json::json!({"status": "ready"})),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "not ready", "reasons": reasons}),
        ),
    };
    if let Some(relay) = &app.relay {
        let backlog = app.service.relay_backlog(relay.mark()).await;
        let (behind, lag_ms) = backlog.unwrap_or((-1, -1));
        body["relay"] = serde_json::json!({
            "connected": relay.connected(),
            "mark": relay.mark(),
            "published": relay.published(),
            "behind": behind,
            "lag_seconds": lag_ms as f64 / 1000.0,
            "problem": relay.problem(),
        });
    }
    (status, Json(body))
}

/// The Prometheus text format of every series (`crate::telemetry`), with the gauges read
/// now. 404 when the service runs with `--metrics false`.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("token" = ["reporting"])),
    responses(
        (status = 200, description = "Every series in the Prometheus text format", body = String, content_type = "text/plain"),
        openapi::Refusals))]
async fn metrics(State(app): State<AppState>) -> Result<Response, Problem> {
    let Some(installed) = telemetry::installed() else {
        return Err(Problem::metrics_off());
    };
    app.service.scrape(installed.per_agent).await?;
    if let Some(relay) = &app.relay {
        let (behind, lag_ms) = app.service.relay_backlog(relay.mark()).await?;
        telemetry::relay_state(relay.connected(), behind, lag_ms);
    }
    let sockets = &app.sockets;
    telemetry::bus_clients(sockets.max - sockets.permits.available_permits().min(sockets.max));
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        installed.handle.render(),
    )
        .into_response())
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
