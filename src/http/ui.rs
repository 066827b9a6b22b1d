//! `GET /ui`: the supervisor page, three files in `ui/` embedded in the binary at build time
//! (no CDN, no build step). The page holds no data itself: it reads the API with the token
//! the supervisor types, kept in the tab's `sessionStorage`, so these routes are open.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::openapi;
use super::Problem;

/// The page's files: name, media type, contents.
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/app.css"),
    ),
];

/// The page itself.
#[utoipa::path(get, path = "/ui", tag = "operations", security(()),
    responses((status = 200, description = "The supervisor page", body = String, content_type = "text/html")))]
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../ui/index.html"),
    )
        .into_response()
}

/// The page's script and style sheet.
#[utoipa::path(get, path = "/ui/{file}", tag = "operations", security(()),
    params(("file" = String, Path, description = "app.js or app.css")),
    responses(
        (status = 200, description = "The file", body = String, content_type = "text/plain"),
        (status = 404, description = "No such file", body = openapi::Refusal)))]
pub async fn asset(Path(file): Path<String>) -> Result<Response, Problem> {
    let (_, kind, body) = FILES
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| Problem::no_such_file(&file))?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, *kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response())
}
