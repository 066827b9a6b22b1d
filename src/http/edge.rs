//! The one layer every request passes through before its handler: the access log, the
//! route's token check, the body read whole within its size and time, and the deadline. What
//! each route asks of it ([`Route`]) is declared beside the route.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::auth::{self, Access, Tokens};
use super::error::Problem;
use super::{log, BODY_LIMIT};
use crate::lcm::{LcmError, ReplyHead};
use crate::service::queue::MAX_WAIT_MS;
use crate::telemetry;

/// Seconds a client is told to wait before trying again after a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// What the edge holds for every route.
pub struct Edge {
    /// `--request-timeout`.
    pub timeout: Duration,
    /// `--body-timeout`.
    pub body_timeout: Duration,
    /// `None`: no authentication (a loopback address, or `--insecure-no-auth`).
    pub tokens: Option<Arc<Tokens>>,
}

/// What a route asks of the edge.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub access: Access,
    pub deadline: Deadline,
    pub speaks: Speaks,
}

/// How long a route's handler may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// `--request-timeout`.
    Request,
    /// `--request-timeout` and the longest long-poll wait on top.
    LongPoll,
}

/// The envelope a route's refusals take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    Lcm,
    Rest,
}

/// The edge as one route's middleware state.
#[derive(Clone)]
pub struct RouteEdge {
    pub edge: Arc<Edge>,
    pub route: Route,
    /// The route's request series, labelled with its path template (`unmatched` for the
    /// fallback).
    pub meters: Arc<telemetry::RouteMeters>,
}

/// The layer itself, from the outside in. It is one middleware, not four: each axum `from_fn`
/// layer clones the service below it and boxes its future for every request (BENCHMARKS.md:
/// one edge layer).
pub async fn edge(State(at): State<RouteEdge>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = at.serve(request, next).await;
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from(RETRY_AFTER_SECS));
    }
    let took = started.elapsed();
    log::request(&method, &path, &response, took);
    at.meters
        .record(method_label(&method), response.status().as_u16(), took);
    response
}

/// A method as a metrics label, without allocating.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

impl RouteEdge {
    async fn serve(&self, request: Request, next: Next) -> Response {
        let Route {
            access,
            deadline,
            speaks,
        } = self.route;
        // Refusals decided here come before the body is read: their LCM replies echo
        // nothing of the request.
        let refuse = |problem: Problem| problem.reply(speaks, &ReplyHead::default());
        let caller = match auth::check(self.edge.tokens.as_deref(), access, request.headers()) {
            Ok(caller) => caller,
            Err(problem) => return refuse(problem),
        };
        let (mut parts, body) = request.into_parts();
        // Only the routes that audit or narrow by agent read it; the others pay no clone.
        if caller.0.is_some() {
            parts.extensions.insert(caller);
        }
        let body = match read_body(body, self.edge.body_timeout).await {
            Ok(body) => body,
            Err(problem) => return refuse(problem),
        };
        let request = Request::from_parts(parts, Body::from(body));
        let budget = match deadline {
            Deadline::Request => self.edge.timeout,
            Deadline::LongPoll => self.edge.timeout + Duration::from_millis(MAX_WAIT_MS as u64),
        };
        match tokio::time::timeout(budget, next.run(request)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!("request timed out");
                refuse(Problem::timed_out(budget))
            }
        }
    }
}

/// The whole body, at most [`BODY_LIMIT`] bytes, within `limit` of the request's head: a
/// client that sends its body slowly, or not at all, holds nothing of the service's longer.
async fn read_body(body: Body, limit: Duration) -> Result<Bytes, Problem> {
    match tokio::time::timeout(limit, Limited::new(body, BODY_LIMIT).collect()).await {
        Err(_) => Err(Problem::slow_body(limit)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err((&LcmError::TooLarge { limit: BODY_LIMIT }).into())
        }
        Ok(Err(e)) => Err(Problem::unreadable_body(format!(
            "the body could not be read: {e}"
        ))),
    }
}
