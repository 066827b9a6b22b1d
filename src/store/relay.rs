//! The relay's state in the database: each stream's mark (every push up to it has been
//! acknowledged by the stream) and the instance's name, made once with the file.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

/// This database's instance name: random, made when the schema step ran.
pub fn instance(conn: &Connection) -> Result<String, rusqlite::Error> {
    conn.prepare_cached("SELECT name FROM instance")?
        .query_row([], |r| r.get(0))
}

/// The stream's mark, 0 before its first publish.
pub fn mark(conn: &Connection, stream: &str) -> Result<i64, rusqlite::Error> {
    Ok(conn
        .prepare_cached("SELECT mark FROM relay_marks WHERE stream = ?1")?
        .query_row([stream], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Moves the stream's mark forward to `mark` (never back).
pub fn advance(
    conn: &Connection,
    stream: &str,
    mark: i64,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO relay_marks (stream, mark, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (stream) DO UPDATE SET mark = max(mark, ?2), updated_at = ?3",
    )?
    .execute(params![stream, mark, now.timestamp_millis()])?;
    Ok(())
}

/// The pushes visible at `now` that the stream has not acknowledged (after `mark`): how
/// many, and since when (ms) the oldest of them has been visible.
pub fn backlog(
    conn: &Connection,
    mark: i64,
    now: DateTime<Utc>,
) -> Result<(i64, Option<i64>), rusqlite::Error> {
    let upto = super::bus::last_id_at(now.timestamp_millis());
    conn.prepare_cached("SELECT count(*), min(id) FROM bus_events WHERE id > ?1 AND id <= ?2")?
        .query_row(params![mark, upto], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<i64>>(1)?.map(super::bus::visible_at),
            ))
        })
}
