//! The supervisor page's reads: the overview, the reports over HTTP, one callback's history,
//! and who the token is (so that the page shows only the buttons it may use).

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use chrono_tz::Tz;
use serde::Serialize;

use super::auth::{Caller, Role};
use super::openapi;
use super::queue::callback_id;
use super::supervise::tz_param;
use super::{AppState, Problem};
use crate::lcm::fields::{quote, FieldError};
use crate::report::range_of;
use crate::service::overview::{History, Overview};
use crate::store::reports::{self, OutcomesBy, SlaBy};
use crate::zone::{utc_rfc3339, Zone};

/// The query of these reads: each key at most once, and only those `allowed`.
fn query(
    raw: Option<&str>,
    allowed: &[&'static str],
) -> Result<Vec<(&'static str, String)>, FieldError> {
    let mut seen: Vec<(&'static str, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let Some(name) = allowed.iter().find(|a| **a == key.as_ref()) else {
            return Err(FieldError::new(
                "query",
                format!(
                    "{} is not a parameter of this path; expected {}",
                    quote(&key),
                    allowed.join(", ")
                ),
            ));
        };
        if seen.iter().any(|(k, _)| k == name) {
            return Err(FieldError::new(name, format!("{name} may be given once")));
        }
        seen.push((name, value.into_owned()));
    }
    Ok(seen)
}

fn get<'a>(pairs: &'a [(&'static str, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
}

fn zone(pairs: &[(&'static str, String)], default: Tz) -> Result<Tz, FieldError> {
    tz_param(get(pairs, "tz"), default)
}

/// `GET /v1/overview?tz=`.
#[utoipa::path(get, path = "/v1/overview", tag = "supervisors",
    security(("token" = ["reporting", "supervisor"])),
    params(("tz" = Option<String>, Query, description = "The IANA zone whose today counts (default --timezone)")),
    responses((status = 200, description = "Counters and the next hour", body = Overview), openapi::Refusals))]
pub async fn overview(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Overview>, Problem> {
    let pairs = query(raw.as_deref(), &["tz"])?;
    let zone = zone(&pairs, app.service.policy().timezone)?;
    Ok(Json(app.service.overview(zone).await?))
}

/// A report's rows: `columns` names them, each row has a value per column.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportReply {
    report: String,
    /// The range, as instants.
    from: String,
    to: String,
    timezone: Zone,
    columns: Vec<String>,
    #[schema(value_type = Vec<Vec<Value>>)]
    rows: Vec<Vec<serde_json::Value>>,
}

/// `GET /v1/reports/{report}?from=&to=&tz=&by=`: `redial report`'s statements over HTTP.
#[utoipa::path(get, path = "/v1/reports/{report}", tag = "supervisors",
    security(("token" = ["reporting", "supervisor"])),
    params(
        ("report" = String, Path, description = "sla, outcomes, agents or audit"),
        ("from" = Option<String>, Query, description = "A date YYYY-MM-DD in tz, or an RFC 3339 instant (default today)"),
        ("to" = Option<String>, Query, description = "A date (included) or an instant (excluded); default: from's day"),
        ("tz" = Option<String>, Query, description = "The IANA zone of dates and days (default --timezone)"),
        ("by" = Option<String>, Query, description = "sla: day, agent or campaign; outcomes: outcome, agent or day")),
    responses((status = 200, description = "The report's rows", body = ReportReply), openapi::Refusals))]
pub async fn report(
    State(app): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ReportReply>, Problem> {
    let pairs = query(raw.as_deref(), &["from", "to", "tz", "by"])?;
    let zone = zone(&pairs, app.service.policy().timezone)?;
    let range = range_of(
        get(&pairs, "from"),
        get(&pairs, "to"),
        zone,
        app.service.clock().now(),
    )?;
    let by = get(&pairs, "by");
    let refuse_by = |expected: &str| {
        FieldError::new(
            "by",
            format!(
                "by {} is not a grouping of this report; expected {expected}",
                quote(by.unwrap_or(""))
            ),
        )
    };
    let statement = match name.as_str() {
        "sla" => reports::sla(
            &range,
            match by.unwrap_or("day") {
                "day" => SlaBy::Day,
                "agent" => SlaBy::Agent,
                "campaign" => SlaBy::Campaign,
                _ => return Err(refuse_by("day, agent or campaign").into()),
            },
        ),
        "outcomes" => reports::outcomes(
            &range,
            match by.unwrap_or("outcome") {
                "outcome" => OutcomesBy::Outcome,
                "agent" => OutcomesBy::Agent,
                "day" => OutcomesBy::Day,
                _ => return Err(refuse_by("outcome, agent or day").into()),
            },
        ),
        "agents" | "audit" if by.is_some() => return Err(refuse_by("nothing: leave it out").into()),
        "agents" => reports::agents(&range),
        "audit" => reports::audit(&range),
        other => {
            return Err(Problem::not_found_named(
                "report",
                format!(
                    "there is no report {}; expected sla, outcomes, agents or audit",
                    quote(other)
                ),
            ))
        }
    };
    let rows = app.service.report(statement).await?;
    Ok(Json(ReportReply {
        report: name,
        from: utc_rfc3339(range.from),
        to: utc_rfc3339(range.to),
        timezone: Zone::from(zone),
        columns: rows.columns,
        rows: rows
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(json_value).collect())
            .collect(),
    }))
}

fn json_value(value: rusqlite::types::Value) -> serde_json::Value {
    use rusqlite::types::Value as V;
    match value {
        V::Null => serde_json::Value::Null,
        V::Integer(n) => n.into(),
        V::Real(x) => serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into),
        V::Text(t) => t.into(),
        V::Blob(b) => format!("{} bytes", b.len()).into(),
    }
}

/// `GET /v1/callbacks/{id}/history`; a desktop token that names an agent reads only its own.
#[utoipa::path(get, path = "/v1/callbacks/{id}/history", tag = "supervisors",
    security(("token" = ["reporting", "dialer", "supervisor", "desktop"])),
    params(("id" = i64, Path, description = "The callback")),
    responses((status = 200, description = "The callback and its history, oldest first", body = History), openapi::Refusals))]
pub async fn history(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Result<Json<History>, Problem> {
    let caller = caller.map(|c| c.0).unwrap_or_default();
    let only = caller.reads_only()?;
    let history = app.service.history(callback_id(&id)?).await?;
    if let Some(agent) = only {
        if history.callback.user_id.as_str() != agent {
            return Err(Problem::forbidden(format!(
                "this desktop token reads only the callbacks of its agent {agent:?}"
            )));
        }
    }
    Ok(Json(history))
}

/// Who the token is.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Whoami {
    /// The token's name (`name=`), or `local` without tokens.
    name: String,
    /// Its roles; `admin` without tokens (everything is allowed).
    roles: Vec<&'static str>,
    /// The agent a desktop token is limited to.
    agent: Option<String>,
}

/// `GET /v1/whoami`: any known token.
#[utoipa::path(get, path = "/v1/whoami", tag = "operations",
    security(("token" = ["desktop", "telephony", "dialer", "reporting", "supervisor"])),
    responses((status = 200, description = "The token's name and roles", body = Whoami), openapi::Refusals))]
pub async fn whoami(caller: Option<Extension<Caller>>) -> Json<Whoami> {
    let caller = caller.map(|c| c.0).unwrap_or_default();
    Json(match &caller.0 {
        Some(identity) => Whoami {
            name: identity.name.clone(),
            roles: identity.role_names(),
            agent: identity.agent.clone(),
        },
        None => Whoami {
            name: caller.name(),
            roles: vec![Role::Admin.name()],
            agent: None,
        },
    })
}
