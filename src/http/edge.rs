//! The one layer every request passes through before its route: the access log, the deadline
//! and the bearer token, in that order from the outside in.
//!
//! They are one middleware, not three: each axum `from_fn` layer clones the service below it
//! and boxes its future for every request, and three layers cost 7,300 instructions per LCM
//! request more than this one (`benches/instructions`: 169,453 against 162,130).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::{auth, limits, log};

/// What the edge needs: the request deadline and the tokens, if any.
pub struct Edge {
    pub timeout: Duration,
    /// `None`: no authentication (a loopback address, or `--insecure-no-auth`).
    pub tokens: Option<Arc<auth::Tokens>>,
}

pub async fn edge(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match auth::refuse(edge.tokens.as_deref(), &request) {
        Some(refused) => refused,
        None => limits::within_deadline(edge.timeout, &path, next.run(request)).await,
    };
    log::request(&method, &path, &response, started.elapsed());
    response
}
