//! One log line per request: method, path, status, latency and callid. The callid is empty when
//! the request carries none, so that every line has the same fields for log shippers.

use std::time::Duration;

use axum::http::Method;
use axum::response::Response;

/// Put into a response's extensions by handlers that know the request's callid.
#[derive(Clone)]
pub struct LoggedCallId(pub String);

/// Logs the answer to one request, `took` after it arrived.
pub fn request(method: &Method, path: &str, response: &Response, took: Duration) {
    let latency_us = took.as_micros() as u64;
    let status = response.status().as_u16();
    let callid = response
        .extensions()
        .get::<LoggedCallId>()
        .map(|c| c.0.as_str())
        .unwrap_or("");
    tracing::info!(%method, path, status, latency_us, callid, "request");
}
