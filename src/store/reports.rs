//! The statements behind `redial report`. The per-callback figures are the views'
//! (`v_callback_sla`, `v_outcomes`, `callbacks_shown` in `schema.sql`); these statements only
//! choose rows and group them. Each is built as text with its bounds written in, so that
//! `redial report ... --sql` prints a statement a `sqlite3` user can run as it is.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rusqlite::types::Value;
use rusqlite::Connection;

use super::callbacks::SLICE_MS;
use crate::zone::utc_rfc3339;

/// Rows with named columns, as a report prints them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Runs `sql` and keeps every row.
pub fn run(conn: &Connection, sql: &str) -> Result<Rows, rusqlite::Error> {
    let mut statement = conn.prepare(sql)?;
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let width = columns.len();
    let rows = statement
        .query_map([], |r| {
            (0..width)
                .map(|i| r.get::<_, Value>(i))
                .collect::<Result<Vec<_>, _>>()
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rows { columns, rows })
}

/// The instants a report covers: window starts (or outcome times) from `from`, before `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Days are read in this zone.
    pub zone: Tz,
}

/// How the callback SLA is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaBy {
    Day,
    Agent,
    Campaign,
}

/// The callback SLA of the callbacks whose window opened in `range`, one row per group and a
/// last row `total`: how many, first redial handed out inside the window (count and %), lag
/// from window start to the first lease (p50, p95, max, nearest rank, in whole seconds),
/// connected (count and %), attempts per callback, expired by reason, cancelled, superseded,
/// completed by contact, still live.
///
/// One pass over the callbacks counts them by group and by lag in whole seconds; everything
/// else is read from those counts, which are few (a day has at most as many distinct lags as
/// seconds in a window). Counts add up, so the total is the groups' counts summed, and a
/// percentile is where the running count of a group's lags reaches its share.
pub fn sla(range: &Range, by: SlaBy) -> String {
    let mut from_view = "v_callback_sla".to_owned();
    let (key, label, column) = match by {
        SlaBy::Day => (
            day_number("window_start", range),
            "date(k * 86400, 'unixepoch')",
            "day",
        ),
        SlaBy::Agent => ("user_id".to_owned(), "k", "agent"),
        SlaBy::Campaign => {
            from_view.push_str(" s LEFT JOIN contacts ct ON ct.account_number = s.account_number");
            ("coalesce(ct.campaign_id, '-')".to_owned(), "k", "campaign")
        }
    };
    let counts = "count(*) AS n, sum(in_window) AS in_window, sum(connected) AS connected,
           sum(attempts) AS attempts,
           sum(state = 'expired' AND end_reason = 'window-ended') AS expired_window_ended,
           sum(state = 'expired' AND end_reason = 'max-attempts') AS expired_max_attempts,
           sum(state = 'expired' AND end_reason = 'owner-absent') AS expired_owner_absent,
           sum(state = 'expired'
               AND end_reason NOT IN ('window-ended', 'max-attempts', 'owner-absent'))
               AS expired_other,
           sum(state = 'cancelled') AS cancelled, sum(state = 'superseded') AS superseded,
           sum(contacted) AS contacted, sum(state IN ('scheduled', 'due')) AS still_live";
    let summed = "sum(n) AS n, sum(in_window) AS in_window, sum(connected) AS connected,
           sum(attempts) AS attempts, sum(expired_window_ended) AS expired_window_ended,
           sum(expired_max_attempts) AS expired_max_attempts,
           sum(expired_owner_absent) AS expired_owner_absent, sum(expired_other) AS expired_other,
           sum(cancelled) AS cancelled, sum(superseded) AS superseded,
           sum(contacted) AS contacted, sum(still_live) AS still_live";
    format!(
        "WITH h AS (
    SELECT {key} AS k, lag_ms / 1000 AS lag_s,
           {counts}
    FROM {from_view}
    WHERE {within}
    GROUP BY 1, 2
),
g AS (
    SELECT 0 AS last, {label} AS grp, lag_s, n, in_window, connected, attempts,
           expired_window_ended, expired_max_attempts, expired_owner_absent, expired_other,
           cancelled, superseded, contacted, still_live
    FROM h
    UNION ALL
    SELECT 1, 'total', lag_s, {summed}
    FROM h GROUP BY lag_s
),
r AS (
    SELECT *, sum(CASE WHEN lag_s IS NOT NULL THEN n END)
                  OVER (PARTITION BY last, grp ORDER BY lag_s ROWS UNBOUNDED PRECEDING) AS upto,
              sum(CASE WHEN lag_s IS NOT NULL THEN n END) OVER (PARTITION BY last, grp) AS leased
    FROM g
)
SELECT grp AS \"{column}\",
       sum(n) AS callbacks,
       sum(in_window) AS in_window,
       round(100.0 * sum(in_window) / sum(n), 1) AS in_window_pct,
       min(CASE WHEN upto * 100 >= leased * 50 THEN lag_s END) AS lag_p50_s,
       min(CASE WHEN upto * 100 >= leased * 95 THEN lag_s END) AS lag_p95_s,
       max(lag_s) AS lag_max_s,
       sum(connected) AS connected,
       round(100.0 * sum(connected) / sum(n), 1) AS connected_pct,
       round(1.0 * sum(attempts) / sum(n), 2) AS attempts_per_callback,
       sum(expired_window_ended) AS expired_window_ended,
       sum(expired_max_attempts) AS expired_max_attempts,
       sum(expired_owner_absent) AS expired_owner_absent,
       sum(expired_other) AS expired_other,
       sum(cancelled) AS cancelled,
       sum(superseded) AS superseded,
       sum(contacted) AS completed_by_contact,
       sum(still_live) AS still_live
FROM r
GROUP BY last, grp
ORDER BY last, grp;
",
        within = windows_within(range),
    )
}

/// Business outcomes set in `range` (the current outcome of each call), counted by outcome
/// (with the catalogue's descriptions), by agent or by day.
pub fn outcomes(range: &Range, by: OutcomesBy) -> String {
    let (keys, columns) = match by {
        OutcomesBy::Outcome => (
            "outcome_id, outcome_description, business_outcome, business_outcome_description, call_outcome",
            "outcome_id, outcome_description, business_outcome, business_outcome_description, call_outcome",
        ),
        OutcomesBy::Agent => ("user_id", "user_id AS agent"),
        OutcomesBy::Day => ("day", "day"),
    };
    let day = format!(
        "date(({}) * 86400, 'unixepoch')",
        day_number("received_at", range)
    );
    format!(
        "SELECT {columns}, count(*) AS outcomes, sum(callback_id IS NOT NULL) AS with_callback
FROM (SELECT *, {day} AS day
      FROM v_outcomes
      WHERE status = 'current' AND received_at >= {from} AND received_at < {to})
GROUP BY {keys}
ORDER BY outcomes DESC, {keys};
",
        from = range.from.timestamp_millis(),
        to = range.to.timestamp_millis(),
    )
}

/// How `redial report outcomes` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomesBy {
    Outcome,
    Agent,
    Day,
}

/// Per agent: the personal callbacks they own now (live), how many of those are due now,
/// and for the windows that opened in `range`, how many, how many had their first redial
/// handed out inside the window, and how many were missed (expired).
pub fn agents(range: &Range) -> String {
    format!(
        "WITH live AS (
    SELECT user_id, count(*) AS owned, sum(shown_state IN ('due', 'leased')) AS due_now
    FROM callbacks_shown
    WHERE state IN ('scheduled', 'due') AND kind = 'personal'
    GROUP BY user_id
),
ranged AS (
    SELECT user_id, count(*) AS callbacks, sum(in_window) AS made_in_window,
           sum(state = 'expired') AS missed
    FROM v_callback_sla
    WHERE {within}
    GROUP BY user_id
)
SELECT a.user_id AS agent, coalesce(l.owned, 0) AS owned, coalesce(l.due_now, 0) AS due_now,
       coalesce(r.callbacks, 0) AS callbacks, coalesce(r.made_in_window, 0) AS made_in_window,
       coalesce(r.missed, 0) AS missed
FROM (SELECT user_id FROM live UNION SELECT user_id FROM ranged) a
LEFT JOIN live l ON l.user_id = a.user_id
LEFT JOIN ranged r ON r.user_id = a.user_id
ORDER BY a.user_id;
",
        within = windows_within(range),
    )
}

/// Supervisors' changes made in `range` (`v_audit`), in the order they were made.
pub fn audit(range: &Range) -> String {
    format!(
        "SELECT at_utc AS at, actor, action, callback_id, account_number, reason, before, after
FROM v_audit
WHERE at >= {from} AND at < {to}
ORDER BY id;
",
        from = range.from.timestamp_millis(),
        to = range.to.timestamp_millis(),
    )
}

/// Windows that start in `range`, read by the slice from `callbacks_by_slice` (its key is
/// written as the index has it, so that the planner uses it).
fn windows_within(range: &Range) -> String {
    let (from, to) = (range.from.timestamp_millis(), range.to.timestamp_millis());
    format!(
        "window_start / 600000 BETWEEN {} AND {} AND window_start >= {from} AND window_start < {to}",
        from.div_euclid(SLICE_MS),
        (to - 1).div_euclid(SLICE_MS),
    )
}

/// The day in the range's zone of the instant in the ms column `column`, as a number of days
/// since 1970-01-01 (`date(n * 86400, 'unixepoch')` writes it `YYYY-MM-DD`). SQLite knows no
/// IANA zones, so the zone's UTC offsets over the range are written into the expression: one
/// offset, or a CASE at each daylight-saving change in the range.
fn day_number(column: &str, range: &Range) -> String {
    let changes = offset_changes(range);
    let mut offset = format!("{}", i64::from(changes[0].1) * 1000);
    for (at, seconds) in changes.iter().skip(1) {
        let ms = i64::from(*seconds) * 1000;
        offset = format!("CASE WHEN {column} >= {at} THEN {ms} ELSE {offset} END");
    }
    format!("({column} + {offset}) / 86400000")
}

/// The zone's offset (seconds east of UTC) in force at the range's start, then each change
/// in the range as (instant in ms, new offset), in order.
fn offset_changes(range: &Range) -> Vec<(i64, i32)> {
    use chrono::{Offset, TimeZone};
    let offset_at = |ms: i64| {
        let at = DateTime::from_timestamp_millis(ms).unwrap_or_default();
        range
            .zone
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    };
    let (from, to) = (range.from.timestamp_millis(), range.to.timestamp_millis());
    let mut changes = vec![(from, offset_at(from))];
    // Zones change offset at most a few times a year, never twice within a day: look each
    // day, and find the instant of a change to the millisecond by halving.
    const DAY: i64 = 86_400_000;
    let mut at = from;
    while at < to {
        let next = (at + DAY).min(to);
        if offset_at(next) != offset_at(at) {
            let (mut lo, mut hi) = (at, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(mid) == offset_at(at) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            changes.push((hi, offset_at(hi)));
        }
        at = next;
    }
    changes
}

/// The range as text for a report's heading.
pub fn describe(range: &Range) -> String {
    format!(
        "{} to {} ({})",
        utc_rfc3339(range.from),
        utc_rfc3339(range.to),
        range.zone.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::day_start;
    use chrono::NaiveDate;

    #[test]
    fn a_day_is_read_in_the_zone_across_a_daylight_saving_change() {
        let conn = Connection::open_in_memory().unwrap();
        let zone: Tz = "America/New_York".parse().unwrap();
        let range = Range {
            from: day_start(zone, NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()),
            to: day_start(zone, NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()),
            zone,
        };
        let day = |utc: &str| -> String {
            let ms = DateTime::parse_from_rfc3339(utc)
                .unwrap()
                .timestamp_millis();
            let sql = format!(
                "SELECT date(({}) * 86400, 'unixepoch')",
                day_number("ts", &range)
            )
            .replace("ts", &ms.to_string());
            conn.query_row(&sql, [], |r| r.get(0)).unwrap()
        };
        assert_eq!(day("2026-03-08T04:59:00Z"), "2026-03-07", "23:59 EST");
        assert_eq!(day("2026-03-08T05:00:00Z"), "2026-03-08", "00:00 EST");
        assert_eq!(day("2026-03-09T03:59:00Z"), "2026-03-08", "23:59 EDT");
        assert_eq!(day("2026-03-09T04:00:00Z"), "2026-03-09", "00:00 EDT");
        let changes = offset_changes(&range);
        assert_eq!(changes.len(), 2, "one change in the range");
        assert_eq!(
            changes[1],
            (
                DateTime::parse_from_rfc3339("2026-03-08T07:00:00Z")
                    .unwrap()
                    .timestamp_millis(),
                -4 * 3600
            ),
            "02:00 EST"
        );
    }
}
