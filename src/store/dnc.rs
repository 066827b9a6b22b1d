//! The do-not-call list read and changed by hand (`/v1/dnc`); an LCM DNC outcome adds to the
//! same table ([`super::outcomes::list_dnc`]).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::callbacks::instant;
use crate::lcm::AccountNumber;
use crate::zone::serialize_utc;

/// A contact on the list, with who put it there and how.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Listing {
    #[serde(rename = "AccountNumber")]
    pub account_number: AccountNumber,
    #[serde(serialize_with = "serialize_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub since: DateTime<Utc>,
    /// The token's name, when listed by hand.
    pub added_by: Option<String>,
    /// The agent, call and message, when listed by an LCM DNC outcome.
    #[serde(rename = "UserID")]
    pub user_id: Option<String>,
    pub callid: Option<String>,
    pub message: Option<String>,
}

const COLUMNS: &str = "account_number, since, added_by, user_id, callid, message";

fn from_row(r: &Row<'_>) -> Result<Listing, rusqlite::Error> {
    Ok(Listing {
        account_number: r.get(0)?,
        since: instant(r.get(1)?),
        added_by: r.get(2)?,
        user_id: r.get(3)?,
        callid: r.get(4)?,
        message: r.get(5)?,
    })
}

pub fn find(
    conn: &Connection,
    account: &AccountNumber,
) -> Result<Option<Listing>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM dnc WHERE account_number = ?1"
    ))?
    .query_row([account], from_row)
    .optional()
}

/// Lists `account` by hand unless it is listed already (it keeps its first listing).
/// Returns whether it was added.
pub fn add(
    conn: &Connection,
    account: &AccountNumber,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, rusqlite::Error> {
    Ok(conn
        .prepare_cached(
            "INSERT OR IGNORE INTO dnc (account_number, since, added_by, source)
             VALUES (?1, ?2, ?3, 'api')",
        )?
        .execute(params![account, now.timestamp_millis(), by])?
        > 0)
}

/// Takes `account` off the list. Returns whether it was on it.
pub fn remove(conn: &Connection, account: &AccountNumber) -> Result<bool, rusqlite::Error> {
    Ok(conn
        .prepare_cached("DELETE FROM dnc WHERE account_number = ?1")?
        .execute([account])?
        > 0)
}

/// Up to `limit` listings after the AccountNumber `after`, in AccountNumber order.
pub fn page(
    conn: &Connection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Listing>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM dnc WHERE account_number > ?1 ORDER BY account_number LIMIT ?2 + 0"
    ))?
    .query_map(params![after.unwrap_or(""), limit], from_row)?
    .collect()
}
