//! One log line per request: method, path, status, latency, and the callid when there is one.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Put into a response's extensions by handlers that know the request's callid.
#[derive(Clone)]
pub struct LoggedCallId(pub String);

pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let latency_us = started.elapsed().as_micros() as u64;
    let status = response.status().as_u16();
    let callid = response
        .extensions()
        .get::<LoggedCallId>()
        .map(|c| c.0.as_str())
        .unwrap_or("");
    tracing::info!(%method, path, status, latency_us, callid, "request");
    response
}
