//! Supervisors' endpoints: finding callbacks (`GET /v1/callbacks`, one agent's), moving and
//! closing them, and the do-not-call list by hand. Parse, call the service, reply.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono_tz::Tz;
use serde::Serialize;

use super::auth::Caller;
use super::openapi;
use super::queue::callback_id;
use super::{json_object, AppState, Problem};
use crate::lcm::fields::{quote, FieldError, Fields};
use crate::lcm::json::Object;
use crate::lcm::request;
use crate::lcm::{AccountNumber, UserId};
use crate::lifecycle::CallbackState;
use crate::service::supervise::MAX_PAGE;
use crate::store::audit::Actor;
use crate::store::callbacks::{Callback, Cursor, Filter};
use crate::store::dnc::Listing;
use crate::zone::{range_end, Bound};

/// The longest `reason` a change may carry.
const REASON_MAX_CHARS: usize = 500;

/// A page of callbacks; `next` is the cursor to pass as `after` for the following page,
/// `null` after the last.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallbackPage {
    callbacks: Vec<Callback>,
    next: Option<String>,
}

/// `GET /v1/callbacks`.
#[utoipa::path(get, path = "/v1/callbacks", tag = "supervisors",
    security(("token" = ["reporting", "supervisor", "desktop"])),
    params(
        ("user_id" = Option<String>, Query, description = "One agent's"),
        ("state" = Option<String>, Query, description = "States, comma-separated or repeated: scheduled, due, leased, completed, expired, cancelled, superseded"),
        ("account" = Option<String>, Query, description = "One contact's (AccountNumber)"),
        ("from" = Option<String>, Query, description = "Windows starting at or after: RFC 3339, or a date YYYY-MM-DD in tz"),
        ("to" = Option<String>, Query, description = "Windows starting before: RFC 3339, or a date (its whole day)"),
        ("tz" = Option<String>, Query, description = "The IANA zone of dates (default --timezone)"),
        ("personal" = Option<bool>, Query, description = "Personal callbacks only (true) or the others"),
        ("limit" = Option<i64>, Query, description = "Rows per page, 1 to 1,000 (default 100)"),
        ("after" = Option<String>, Query, description = "The previous page's next")),
    responses((status = 200, description = "A page, by window start then id", body = CallbackPage,
        links(
            ("get" = (operation_id = "get_callback", parameters(("id" = "$response.body#/callbacks/0/id")))),
            ("cancel" = (operation_id = "cancel", parameters(("id" = "$response.body#/callbacks/0/id")))),
            ("attempt" = (operation_id = "attempt", parameters(("id" = "$response.body#/callbacks/0/id")))),
            ("reschedule" = (operation_id = "reschedule", parameters(("id" = "$response.body#/callbacks/0/id")))),
            ("reassign" = (operation_id = "reassign", parameters(("id" = "$response.body#/callbacks/0/id")))))), openapi::Refusals))]
pub async fn find(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    RawQuery(query): RawQuery,
) -> Result<Json<CallbackPage>, Problem> {
    let caller = caller.map(|c| c.0).unwrap_or_default();
    let mut asked = Asked::read(query.as_deref(), app.service.policy().timezone)?;
    if let Some(agent) = caller.reads_only()? {
        match &asked.filter.user_id {
            Some(user) if user.as_str() != agent => {
                return Err(own_only(agent));
            }
            _ => asked.filter.user_id = Some(UserId::parse(agent)?),
        }
    }
    page(&app, asked).await
}

/// `GET /v1/agents/{UserID}/callbacks`: the same, for one agent.
#[utoipa::path(get, path = "/v1/agents/{user_id}/callbacks", tag = "supervisors",
    security(("token" = ["reporting", "supervisor", "desktop"])),
    params(
        ("user_id" = String, Path, description = "The agent"),
        ("state" = Option<String>, Query, description = "States, comma-separated or repeated"),
        ("account" = Option<String>, Query, description = "One contact's (AccountNumber)"),
        ("from" = Option<String>, Query, description = "RFC 3339, or a date YYYY-MM-DD in tz"),
        ("to" = Option<String>, Query, description = "RFC 3339, or a date (its whole day)"),
        ("tz" = Option<String>, Query, description = "The IANA zone of dates"),
        ("personal" = Option<bool>, Query, description = "Personal callbacks only, or the others"),
        ("limit" = Option<i64>, Query, description = "Rows per page, 1 to 1,000"),
        ("after" = Option<String>, Query, description = "The previous page's next")),
    responses((status = 200, description = "A page of the agent's callbacks", body = CallbackPage), openapi::Refusals))]
pub async fn find_for_agent(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(user): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<CallbackPage>, Problem> {
    let caller = caller.map(|c| c.0).unwrap_or_default();
    let user = UserId::parse(user)?;
    if let Some(agent) = caller.reads_only()? {
        if user.as_str() != agent {
            return Err(own_only(agent));
        }
    }
    let mut asked = Asked::read(query.as_deref(), app.service.policy().timezone)?;
    if asked.filter.user_id.as_ref().is_some_and(|u| *u != user) {
        return Err(FieldError::new(
            "user_id",
            "user_id is the path's agent here; leave it out or use GET /v1/callbacks",
        )
        .into());
    }
    asked.filter.user_id = Some(user);
    page(&app, asked).await
}

async fn page(app: &AppState, asked: Asked) -> Result<Json<CallbackPage>, Problem> {
    let page = app
        .service
        .find_callbacks(asked.filter, asked.after, asked.limit)
        .await?;
    Ok(Json(CallbackPage {
        callbacks: page.callbacks,
        next: page.next.map(cursor_text),
    }))
}

fn own_only(agent: &str) -> Problem {
    Problem::forbidden(format!(
        "this desktop token reads only the callbacks of its agent {agent:?}"
    ))
}

/// The `tz` query parameter of the reads that take dates: an IANA zone, `default` without it.
pub(super) fn tz_param(value: Option<&str>, default: Tz) -> Result<Tz, FieldError> {
    match value {
        None => Ok(default),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            FieldError::new(
                "tz",
                format!(
                    "tz {} is not a known IANA zone; expected a name such as \"Europe/Paris\"",
                    quote(name)
                ),
            )
        }),
    }
}

/// What a find asks for, read from its query string.
struct Asked {
    filter: Filter,
    after: Option<Cursor>,
    limit: i64,
}

impl Asked {
    /// Reads the query string. Every parameter is checked; an unknown one is refused, so a
    /// misspelt filter is not silently ignored.
    fn read(query: Option<&str>, default_zone: Tz) -> Result<Self, FieldError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let one = |key: &'static str| -> Result<Option<&str>, FieldError> {
            let mut values = pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v);
            let first = values.next();
            if values.next().is_some() {
                return Err(FieldError::new(key, format!("{key} may be given once")));
            }
            Ok(first.map(String::as_str))
        };
        for (key, _) in &pairs {
            if ![
                "user_id", "state", "account", "from", "to", "tz", "personal", "limit", "after",
            ]
            .contains(&key.as_str())
            {
                return Err(FieldError::new(
                    "query",
                    format!(
                        "{} is not a parameter of this path; expected user_id, state, account, \
                         from, to, tz, personal, limit or after",
                        quote(key)
                    ),
                ));
            }
        }
        let zone = tz_param(one("tz")?, default_zone)?;
        let instant = |key: &'static str, bound: Bound| -> Result<Option<i64>, FieldError> {
            one(key)?
                .map(|text| {
                    range_end(text, zone, bound)
                        .map(|at| at.timestamp_millis())
                        .ok_or_else(|| {
                            FieldError::new(
                                key,
                                format!(
                                    "{key} {} is neither an RFC 3339 instant nor a date \
                                     YYYY-MM-DD",
                                    quote(text)
                                ),
                            )
                        })
                })
                .transpose()
        };
        let mut states = Vec::new();
        for (_, value) in pairs.iter().filter(|(k, _)| k == "state") {
            for text in value.split(',') {
                states.push(CallbackState::parse(text).ok_or_else(|| {
                    FieldError::new(
                        "state",
                        format!(
                            "state {} is not a callback state; expected scheduled, due, \
                             leased, completed, expired, cancelled or superseded",
                            quote(text)
                        ),
                    )
                })?);
            }
        }
        let personal = match one("personal")? {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(FieldError::new(
                    "personal",
                    format!("personal {} must be true or false", quote(other)),
                ))
            }
        };
        let limit = match one("limit")? {
            None => 100,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    FieldError::new(
                        "limit",
                        format!(
                            "limit {} must be a whole number from 1 to {MAX_PAGE}",
                            quote(text)
                        ),
                    )
                })?,
        };
        let after = one("after")?
            .map(|text| {
                parse_cursor(text).ok_or_else(|| {
                    FieldError::new(
                        "after",
                        format!(
                            "after {} is not a cursor; pass the `next` of the previous page",
                            quote(text)
                        ),
                    )
                })
            })
            .transpose()?;
        let (from, to) = (instant("from", Bound::From)?, instant("to", Bound::To)?);
        Ok(Asked {
            filter: Filter {
                user_id: one("user_id")?
                    .map(|u| {
                        UserId::parse(u).map_err(|e| FieldError {
                            field: "user_id",
                            ..e
                        })
                    })
                    .transpose()?,
                states,
                account: one("account")?
                    .map(|a| {
                        AccountNumber::parse(a).map_err(|e| FieldError {
                            field: "account",
                            ..e
                        })
                    })
                    .transpose()?,
                from,
                to,
                personal,
            },
            after,
            limit,
        })
    }
}

/// A cursor as the client sees it: the last row's window start and id. Opaque to clients;
/// they pass back what they were given.
fn cursor_text(c: Cursor) -> String {
    format!("{}.{}", c.window_start, c.id)
}

fn parse_cursor(text: &str) -> Option<Cursor> {
    let (start, id) = text.split_once('.')?;
    Some(Cursor {
        window_start: start.parse().ok()?,
        id: id.parse().ok()?,
    })
}

/// The body of a change: optional (`{}` or none at all) apart from what the change needs.
fn body_object(body: &Bytes) -> Result<Option<Object<'_>>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    json_object(body).map(Some)
}

fn actor(caller: Option<Extension<Caller>>, f: Option<&Fields>) -> Result<Actor, FieldError> {
    let reason = match f {
        Some(f) => f.optional_text("reason", REASON_MAX_CHARS)?,
        None => None,
    };
    Ok(Actor {
        name: caller.map(|c| c.0).unwrap_or_default().name(),
        reason,
    })
}

/// `POST /v1/callbacks/{id}/reschedule`: `StartDate`, `StartTime`, `EndDate`, `EndTime` as
/// in the LCM messages, an optional `TimeZone` and `reason`.
#[utoipa::path(post, path = "/v1/callbacks/{id}/reschedule", tag = "supervisors", security(("token" = ["supervisor"])),
    params(("id" = i64, Path, description = "The callback")),
    request_body(content = openapi::RescheduleBody, content_type = "application/json"),
    responses((status = 200, description = "Moved to the new window", body = Callback), openapi::Refusals))]
pub async fn reschedule(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Callback>, Problem> {
    let id = callback_id(&id)?;
    let map = json_object(&body)?;
    let f = Fields::new(&map);
    let window = request::window(&f)?;
    let zone = request::timezone(&f)?;
    let actor = actor(caller, Some(&f))?;
    Ok(Json(app.service.reschedule(id, window, zone, actor).await?))
}

/// `POST /v1/callbacks/{id}/reassign` `{"UserID": "..."}`.
#[utoipa::path(post, path = "/v1/callbacks/{id}/reassign", tag = "supervisors", security(("token" = ["supervisor"])),
    params(("id" = i64, Path, description = "The callback")),
    request_body(content = openapi::ReassignBody, content_type = "application/json"),
    responses((status = 200, description = "Given to the agent", body = Callback), openapi::Refusals))]
pub async fn reassign(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Callback>, Problem> {
    let id = callback_id(&id)?;
    let map = json_object(&body)?;
    let f = Fields::new(&map);
    let to = UserId::parse(f.text(UserId::FIELD, 1, UserId::MAX_CHARS)?)?;
    let actor = actor(caller, Some(&f))?;
    Ok(Json(app.service.reassign(id, to, actor).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MovedReply {
    moved: usize,
    ids: Vec<i64>,
}

/// `POST /v1/agents/{UserID}/callbacks/reassign` `{"to": "...", "state": [...]}`.
#[utoipa::path(post, path = "/v1/agents/{user_id}/callbacks/reassign", tag = "supervisors", security(("token" = ["supervisor"])),
    params(("user_id" = String, Path, description = "The agent whose callbacks move")),
    request_body(content = openapi::ReassignAllBody, content_type = "application/json"),
    responses((status = 200, description = "Moved, in one transaction", body = MovedReply), openapi::Refusals))]
pub async fn reassign_all(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(from): Path<String>,
    body: Bytes,
) -> Result<Json<MovedReply>, Problem> {
    let from = UserId::parse(from)?;
    let map = json_object(&body)?;
    let f = Fields::new(&map);
    let to = UserId::parse(f.text("to", 1, UserId::MAX_CHARS)?)
        .map_err(|e| FieldError { field: "to", ..e })?;
    let mut states = Vec::new();
    if let Some(values) = f.optional_array("state")? {
        for value in values {
            let state = match value {
                crate::lcm::json::Value::String(s) => {
                    CallbackState::parse(s).filter(|s| s.is_live())
                }
                _ => None,
            };
            states.push(state.ok_or_else(|| {
                FieldError::new(
                    "state",
                    format!(
                        "state holds {}; expected live states: \"scheduled\", \"due\", \"leased\"",
                        crate::lcm::fields::describe(value)
                    ),
                )
            })?);
        }
    }
    let actor = actor(caller, Some(&f))?;
    let moved = app.service.reassign_all(from, to, states, actor).await?;
    Ok(Json(MovedReply {
        moved: moved.ids.len(),
        ids: moved.ids,
    }))
}

/// `POST /v1/callbacks/{id}/cancel`, with no body or `{"reason": "..."}`.
#[utoipa::path(post, path = "/v1/callbacks/{id}/cancel", tag = "supervisors", security(("token" = ["dialer", "supervisor"])),
    params(("id" = i64, Path, description = "The callback")),
    request_body(content = Option<openapi::ReasonBody>, content_type = "application/json"),
    responses((status = 200, description = "Cancelled", body = Callback), openapi::Refusals))]
pub async fn cancel(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Callback>, Problem> {
    let id = callback_id(&id)?;
    let map = body_object(&body)?;
    let f = map.as_ref().map(Fields::new);
    let actor = actor(caller, f.as_ref())?;
    Ok(Json(app.service.cancel(id, actor).await?))
}

fn account_in_path(text: String) -> Result<AccountNumber, Problem> {
    Ok(AccountNumber::parse(text)?)
}

/// `PUT /v1/dnc/{AccountNumber}`: 201 when added, 200 when it was listed already.
#[utoipa::path(put, path = "/v1/dnc/{account}", tag = "supervisors", security(("token" = ["supervisor"])),
    params(("account" = String, Path, description = "The contact (AccountNumber)")),
    request_body(content = Option<openapi::ReasonBody>, content_type = "application/json"),
    responses(
        (status = 201, description = "Listed; its live callback, if any, ended", body = Listing, links(
            ("unlist" = (operation_id = "delete_dnc", parameters(("account" = "$response.body#/AccountNumber")))))),
        (status = 200, description = "Already listed", body = Listing),
        openapi::Refusals))]
pub async fn put_dnc(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(account): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Listing>), Problem> {
    let account = account_in_path(account)?;
    let map = body_object(&body)?;
    let f = map.as_ref().map(Fields::new);
    let actor = actor(caller, f.as_ref())?;
    let (listing, added) = app.service.list_dnc(account, actor).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(listing)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Unlisted {
    #[serde(rename = "AccountNumber")]
    account_number: AccountNumber,
    dnc: bool,
}

/// `DELETE /v1/dnc/{AccountNumber}`: 404 when it was not listed.
#[utoipa::path(delete, path = "/v1/dnc/{account}", tag = "supervisors", security(("token" = ["supervisor"])),
    params(("account" = String, Path, description = "The contact (AccountNumber)")),
    responses((status = 200, description = "No longer listed", body = Unlisted), openapi::Refusals))]
pub async fn delete_dnc(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(account): Path<String>,
) -> Result<Json<Unlisted>, Problem> {
    let account = account_in_path(account)?;
    let actor = actor(caller, None)?;
    app.service.unlist_dnc(account.clone(), actor).await?;
    Ok(Json(Unlisted {
        account_number: account,
        dnc: false,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DncPage {
    dnc: Vec<Listing>,
    next: Option<String>,
}

/// `GET /v1/dnc?after=&limit=`, in AccountNumber order.
#[utoipa::path(get, path = "/v1/dnc", tag = "supervisors", security(("token" = ["reporting", "supervisor"])),
    params(
        ("limit" = Option<i64>, Query, description = "Rows per page, 1 to 1,000 (default 100)"),
        ("after" = Option<String>, Query, description = "The previous page's next")),
    responses((status = 200, description = "A page, by AccountNumber", body = DncPage), openapi::Refusals))]
pub async fn list_dnc(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<DncPage>, Problem> {
    let mut after = None;
    let mut limit = 100;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "after" => after = Some(value.into_owned()),
            "limit" => {
                limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        FieldError::new(
                            "limit",
                            format!(
                                "limit {} must be a whole number from 1 to {MAX_PAGE}",
                                quote(&value)
                            ),
                        )
                    })?
            }
            other => {
                return Err(FieldError::new(
                    "query",
                    format!(
                        "{} is not a parameter of this path; expected after or limit",
                        quote(other)
                    ),
                )
                .into())
            }
        }
    }
    let dnc = app.service.dnc_page(after, limit).await?;
    let next = (dnc.len() as i64 == limit)
        .then(|| dnc.last().map(|l| l.account_number.to_string()))
        .flatten();
    Ok(Json(DncPage { dnc, next }))
}
