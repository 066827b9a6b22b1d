//! `GetPersonalCallbackList`: an agent's live personal callbacks, a page at a time, read
//! from `callbacks_by_agent` in window order.

use chrono::{Duration, NaiveDate};
use rusqlite::Connection;

use crate::lcm::UserId;

/// A listed callback: its clipped window as local RFC 3339 text in its zone, and what the
/// telephony side registered of its contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub callback_mode_id: i64,
    pub window_start_local: String,
    pub window_end_local: String,
    pub campaign_id: Option<String>,
    pub contact_id: Option<String>,
    pub mode_description: Option<String>,
    pub cvalue: Option<String>,
}

/// No zone is further than this from UTC (Kiribati, UTC+14; Baker Island, UTC−12): the UTC
/// bounds that surely hold every window starting on the local dates asked for.
const WIDEST_OFFSET: Duration = Duration::hours(14);

/// The page's statement: the agent's callbacks from `callbacks_by_agent` between UTC bounds
/// wide enough for every zone, the live personal ones of them, then the local dates asked
/// for.
const PAGE: &str = "SELECT c.callback_mode_id, c.window_start_local, c.window_end_local,
        k.campaign_id, k.contact_id, m.description, m.cvalue
    FROM callbacks c
        LEFT JOIN contacts k ON k.account_number = c.account_number
        LEFT JOIN contact_modes m
            ON m.account_number = c.account_number AND m.mode_id = c.callback_mode_id
    WHERE c.user_id = ?1 AND c.state IN ('scheduled', 'due') AND c.kind = 'personal'
      AND c.window_start >= ?2 AND c.window_start < ?3
      AND substr(c.window_start_local, 1, 10) BETWEEN ?4 AND ?5
    ORDER BY c.window_start, c.id
    LIMIT ?7 + 0 OFFSET ?6 + 0";

/// `user`'s live personal callbacks whose window starts, in their own zone, on a date from
/// `from` to `to`: `rows` of them from the `first` (counted from 1), by window start.
pub fn personal_callbacks(
    conn: &Connection,
    user: &UserId,
    from: NaiveDate,
    to: NaiveDate,
    first: i64,
    rows: i64,
) -> Result<Vec<Listed>, rusqlite::Error> {
    conn.prepare_cached(PAGE)?
        .query_map(page_params(user, from, to, first, rows), |r| {
            Ok(Listed {
                callback_mode_id: r.get(0)?,
                window_start_local: r.get(1)?,
                window_end_local: r.get(2)?,
                campaign_id: r.get(3)?,
                contact_id: r.get(4)?,
                mode_description: r.get(5)?,
                cvalue: r.get(6)?,
            })
        })?
        .collect()
}

/// How SQLite runs the page's statement (`EXPLAIN QUERY PLAN`), one line a step: for the
/// benchmark's record.
pub fn page_plan(conn: &Connection, user: &UserId) -> Result<Vec<String>, rusqlite::Error> {
    let day = NaiveDate::from_ymd_opt(2026, 1, 13).expect("a date");
    conn.prepare(&format!("EXPLAIN QUERY PLAN {PAGE}"))?
        .query_map(page_params(user, day, day, 1, 10), |r| {
            r.get::<_, String>(3)
        })?
        .collect()
}

fn page_params(
    user: &UserId,
    from: NaiveDate,
    to: NaiveDate,
    first: i64,
    rows: i64,
) -> (&UserId, i64, i64, String, String, i64, i64) {
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let lower = (midnight(from) - WIDEST_OFFSET).timestamp_millis();
    let upper = (midnight(to) + Duration::days(1) + WIDEST_OFFSET).timestamp_millis();
    (
        user,
        lower,
        upper,
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
        first - 1,
        rows,
    )
}
