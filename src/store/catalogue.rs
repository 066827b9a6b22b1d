//! The outcome catalogue's table: replaced whole when a file is loaded, read at start and by
//! the reads of the LCM family.

use rusqlite::{params, Connection};

use crate::catalogue::Entry;

/// The catalogue's outcomes in place of those stored.
pub fn replace(conn: &Connection, entries: &[Entry]) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("DELETE FROM outcome_catalogue")?
        .execute([])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO outcome_catalogue (outcome_id, description, campaign_id, parent_id, closes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for e in entries {
        insert.execute(params![
            e.outcome_id,
            e.description,
            e.campaign_id,
            e.parent_id,
            e.closes
        ])?;
    }
    Ok(())
}

/// Outcomes under `parent` (`None`: the primary ones, which have no parent) for a contact of
/// `campaign`: the campaign's and those of no campaign (every outcome when the contact's
/// campaign is not known), by id.
pub fn under(
    conn: &Connection,
    parent: Option<i64>,
    campaign: Option<&str>,
) -> Result<Vec<Entry>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT outcome_id, description, campaign_id, parent_id, closes FROM outcome_catalogue
         WHERE parent_id IS ?1 AND (?2 IS NULL OR campaign_id IS NULL OR campaign_id = ?2)
         ORDER BY outcome_id",
    )?
    .query_map(params![parent, campaign], from_row)?
    .collect()
}

/// Every outcome, by id.
pub fn all(conn: &Connection) -> Result<Vec<Entry>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT outcome_id, description, campaign_id, parent_id, closes FROM outcome_catalogue
         ORDER BY outcome_id",
    )?
    .query_map([], from_row)?
    .collect()
}

fn from_row(r: &rusqlite::Row<'_>) -> Result<Entry, rusqlite::Error> {
    Ok(Entry {
        outcome_id: r.get(0)?,
        description: r.get(1)?,
        campaign_id: r.get(2)?,
        parent_id: r.get(3)?,
        closes: r.get(4)?,
    })
}
