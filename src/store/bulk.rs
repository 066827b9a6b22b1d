//! The one bulk path, for benchmarks and tests that need many callbacks at once: scheduled
//! windows for distinct contacts, written in one statement each way `lifecycle::create` would
//! store them one by one (on the agenda at their staging time, or parked in their hour's
//! bucket: [`crate::lifecycle::decide::agenda_slot`], written here in SQL), without outcomes.
//! Nothing in the service calls it.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection};

use super::telephony;
use crate::lcm::{AccountNumber, CallId, UserId};
use crate::lifecycle::decide::{PARK_BUCKET, STAGE_AHEAD, UNPARK_AHEAD};

/// Windows `from..to` of one agent's, for the contacts `<prefix><i>`.
#[derive(Debug, Clone)]
pub struct Windows<'a> {
    pub prefix: &'a str,
    pub from: i64,
    pub to: i64,
    /// The start of window `from`; window `i` starts `(i - from) * step` later.
    pub start: DateTime<Utc>,
    pub step: Duration,
    pub length: Duration,
    pub user: &'a UserId,
}

/// The call every bulk window belongs to, an ended one of the windows' agent.
pub const BULK_CALL: &str = "bulk";

/// Writes `windows` as scheduled callbacks in UTC, seen at `now`. Returns how many.
pub fn insert_windows(
    conn: &Connection,
    windows: &Windows<'_>,
    now: DateTime<Utc>,
) -> Result<usize, rusqlite::Error> {
    let call = CallId::parse(BULK_CALL).expect("a valid callid");
    if telephony::find_call(conn, &call)?.is_none() {
        let account = AccountNumber::parse(BULK_CALL).expect("a valid AccountNumber");
        telephony::insert_call(conn, &call, &account, windows.user, now)?;
        telephony::end_call(conn, &call, now)?;
    }
    conn.prepare_cached(
        "WITH RECURSIVE n(i) AS (SELECT ?2 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?3),
             w(i, open, stage) AS (SELECT i, ?4 + (i - ?2) * ?5, ?4 + (i - ?2) * ?5 - ?6 FROM n),
             s(i, open, stage, unpark) AS (SELECT i, open, stage, stage / ?7 * ?7 - ?8 FROM w)
         INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
             window_end, local_start, local_end, timezone, state, open_at, next_at, parked_at,
             open_until, requested_start, requested_end, window_start_local, window_end_local,
             created_at, updated_at)
         SELECT ?11, ?1 || i, 1, ?10, open, open + ?12,
             strftime('%d/%m/%Y %H:%M', open / 1000, 'unixepoch'),
             strftime('%d/%m/%Y %H:%M', (open + ?12) / 1000, 'unixepoch'), 'UTC', 'scheduled',
             open, CASE WHEN unpark > ?9 THEN NULL ELSE stage END,
             CASE WHEN unpark > ?9 THEN unpark END, open + ?12, open, open + ?12,
             strftime('%Y-%m-%dT%H:%M:%SZ', open / 1000, 'unixepoch'),
             strftime('%Y-%m-%dT%H:%M:%SZ', (open + ?12) / 1000, 'unixepoch'), ?9, ?9
         FROM s",
    )?
    .execute(params![
        windows.prefix,
        windows.from,
        windows.to,
        windows.start.timestamp_millis(),
        windows.step.num_milliseconds(),
        STAGE_AHEAD.num_milliseconds(),
        PARK_BUCKET.num_milliseconds(),
        UNPARK_AHEAD.num_milliseconds(),
        now.timestamp_millis(),
        windows.user,
        BULK_CALL,
        windows.length.num_milliseconds(),
    ])
}

/// Ends every bulk window whose window ended before `now` as a day's work leaves them, for
/// reports to read: by id, 70% completed (`connected`, one attempt), 15% expired
/// `window-ended` and 10% `max-attempts`, 5% cancelled. All but the window-ended and
/// cancelled ones have a redial a dialer took, acked, first leased 0 to 599 s after the
/// window opened, which the callback keeps as a finished one does. Returns how many ended.
pub fn finish_before(conn: &Connection, now: DateTime<Utc>) -> Result<usize, rusqlite::Error> {
    let now_ms = now.timestamp_millis();
    let ended = conn
        .prepare(
            "UPDATE callbacks SET
                 state = CASE WHEN id % 20 < 14 THEN 'completed' WHEN id % 20 < 19 THEN 'expired'
                              ELSE 'cancelled' END,
                 end_reason = CASE WHEN id % 20 < 14 THEN 'connected'
                                   WHEN id % 20 < 17 THEN 'window-ended'
                                   WHEN id % 20 < 19 THEN 'max-attempts' ELSE 'cancelled' END,
                 attempts = CASE WHEN id % 20 < 14 THEN 1 WHEN id % 20 < 17 THEN 0
                                 WHEN id % 20 < 19 THEN 5 ELSE 0 END,
                 next_at = NULL, parked_at = NULL, staged = 0, opened_at = window_start,
                 updated_at = window_end
             WHERE window_end <= ?1 AND state IN ('scheduled', 'due')",
        )?
        .execute([now_ms])?;
    conn.prepare(
        "INSERT INTO events (type, callback_id, user_id, personal, attempt, state, available_at,
             created_at, updated_at, deliveries, consumer, first_leased_at)
         SELECT 'redial', id, user_id, 1, 1, 'acked', window_start, window_start - 60000,
             window_start + id % 600 * 1000, 1, 'bulk', window_start + id % 600 * 1000
         FROM callbacks
         WHERE window_end <= ?1 AND (end_reason = 'connected' OR end_reason = 'max-attempts')",
    )?
    .execute([now_ms])?;
    conn.prepare(
        "UPDATE callbacks SET first_leased_at = window_start + id % 600 * 1000
         WHERE window_end <= ?1 AND (end_reason = 'connected' OR end_reason = 'max-attempts')",
    )?
    .execute([now_ms])?;
    Ok(ended)
}

/// Copies the WAL into the database file and empties it, so that what is measured next starts
/// from a settled file.
pub fn settle(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::lifecycle::decide::agenda_slot;
    use crate::store::schema;

    /// The database itself keeps a contact to one live callback (`callbacks_by_account`),
    /// and any number of finished ones.
    #[test]
    fn a_contact_has_one_live_callback_at_most_and_any_number_finished() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn, None).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 13, 9, 0, 0).unwrap();
        let user = UserId::parse("agent").unwrap();
        let windows = Windows {
            prefix: "w",
            from: 0,
            to: 3,
            start: now,
            step: Duration::minutes(7),
            length: Duration::hours(1),
            user: &user,
        };
        insert_windows(&conn, &windows, now).unwrap();
        let second = insert_windows(&conn, &windows, now).unwrap_err();
        assert!(second.to_string().contains("UNIQUE"), "{second}");
        for _ in 0..2 {
            conn.execute("UPDATE callbacks SET state = 'cancelled'", [])
                .unwrap();
            assert_eq!(insert_windows(&conn, &windows, now).unwrap(), 3);
        }
        let per_contact: i64 = conn
            .query_row(
                "SELECT count(*) FROM callbacks WHERE account_number = 'w0'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(per_contact, 3, "two finished, one live");
    }

    /// Bulk windows wait where `agenda_slot` says one created alone would.
    #[test]
    fn bulk_windows_wait_where_one_created_alone_would() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn, None).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 13, 9, 0, 0).unwrap();
        let user = UserId::parse("agent").unwrap();
        let windows = Windows {
            prefix: "w",
            from: 0,
            to: 40,
            start: now,
            step: Duration::minutes(7),
            length: Duration::hours(1),
            user: &user,
        };
        assert_eq!(insert_windows(&conn, &windows, now).unwrap(), 40);
        let mut rows = conn
            .prepare("SELECT open_at, next_at, parked_at, local_start FROM callbacks ORDER BY id")
            .unwrap();
        let rows: Vec<(i64, Option<i64>, Option<i64>, String)> = rows
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 40);
        for (open, next_at, parked_at, local_start) in rows {
            let slot = agenda_slot(
                open - STAGE_AHEAD.num_milliseconds(),
                now.timestamp_millis(),
            );
            assert_eq!((next_at, parked_at), (slot.next_at(), slot.parked_at()));
            let open = DateTime::from_timestamp_millis(open).unwrap();
            assert_eq!(local_start, open.format("%d/%m/%Y %H:%M").to_string());
        }
    }
}
