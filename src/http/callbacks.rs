//! `GET /v1/callbacks/{id}`: one callback, read from a read connection.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::{ApiError, AppState};
use crate::store::callbacks::{self, Callback};

pub async fn get_callback(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Callback>, ApiError> {
    let parsed: i64 = id.parse().map_err(|_| ApiError {
        status: StatusCode::BAD_REQUEST,
        message: "Invalid callback id.".to_owned(),
        detail: format!("callback id {id:?} is not an integer"),
        field: Some("id"),
    })?;
    app.store
        .read(move |conn| Ok(callbacks::find(conn, parsed)?))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "Unknown callback.",
                format!("no callback has id {parsed}"),
            )
        })
}
