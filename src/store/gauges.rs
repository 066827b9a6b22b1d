//! What `/metrics` reads from the database when scraped. Every count here is of a bounded
//! set read through a partial index: live callbacks (on the agenda or parked), ready, leased
//! and dead events. Finished callbacks are not counted here: a million of them would take a
//! second per scrape; counters count them as they finish instead.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

/// The database's side of one scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Live callbacks by the state they show (`scheduled`, `due`, `leased`).
    pub callbacks: Vec<(String, i64)>,
    /// Events by state: `ready`, `leased`, `dead`.
    pub events: Vec<(String, i64)>,
    /// Live callbacks whose next step is more than `late_ms` overdue.
    pub overdue: i64,
    /// Live personal callbacks by agent and shown state, when asked for.
    pub by_agent: Vec<(String, String, i64)>,
}

/// Reads [`Counts`] at `now`.
pub fn counts(
    conn: &Connection,
    now: DateTime<Utc>,
    late_ms: i64,
    per_agent: bool,
) -> Result<Counts, rusqlite::Error> {
    let live = "(next_at IS NOT NULL OR parked_at IS NOT NULL)";
    let mut callbacks: Vec<(String, i64)> = ["scheduled", "due", "leased"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    // The agenda's rows through its index, the parked ones through theirs (all scheduled).
    let rows = conn
        .prepare_cached(
            "SELECT shown_state, count(*) FROM callbacks_shown
             WHERE next_at IS NOT NULL GROUP BY shown_state",
        )?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let parked: i64 = conn
        .prepare_cached("SELECT count(*) FROM callbacks WHERE parked_at IS NOT NULL")?
        .query_row([], |r| r.get(0))?;
    for (state, n) in rows.into_iter().chain([("scheduled".to_owned(), parked)]) {
        if let Some(slot) = callbacks.iter_mut().find(|(s, _)| *s == state) {
            slot.1 += n;
        }
    }
    let mut events = Vec::new();
    for state in ["ready", "leased", "dead"] {
        let n: i64 = conn
            .prepare_cached("SELECT count(*) FROM events WHERE state = ?1")?
            .query_row([state], |r| r.get(0))?;
        events.push((state.to_owned(), n));
    }
    let overdue = conn
        .prepare_cached("SELECT count(*) FROM callbacks WHERE next_at <= ?1")?
        .query_row([now.timestamp_millis() - late_ms], |r| r.get(0))?;
    let by_agent = if per_agent {
        conn.prepare_cached(&format!(
            "SELECT user_id, shown_state, count(*) FROM callbacks_shown
             WHERE {live} AND kind = 'personal' GROUP BY user_id, shown_state"
        ))?
        .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    Ok(Counts {
        callbacks,
        events,
        overdue,
        by_agent,
    })
}
