//! What the telephony side says of a contact when it registers a call: its campaign and
//! contact ids, and its modes, the numbers a callback may dial.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::lcm::AccountNumber;

/// A contact's ids, as the telephony side gives them (text, whatever their form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub campaign_id: Option<String>,
    pub contact_id: Option<String>,
}

/// One of a contact's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mode {
    pub mode_id: i64,
    pub description: String,
    pub cvalue: String,
}

/// Stores what a call's registration says of its contact: the ids it gives (an id not given
/// keeps its value), and, when `modes` is given, those modes in place of the contact's.
pub fn register(
    conn: &Connection,
    account: &AccountNumber,
    contact: &Contact,
    modes: Option<&[Mode]>,
    now: DateTime<Utc>,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO contacts (account_number, campaign_id, contact_id, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account_number) DO UPDATE SET
             campaign_id = coalesce(excluded.campaign_id, campaign_id),
             contact_id = coalesce(excluded.contact_id, contact_id),
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        account,
        contact.campaign_id,
        contact.contact_id,
        now.timestamp_millis()
    ])?;
    let Some(modes) = modes else {
        return Ok(());
    };
    conn.prepare_cached("DELETE FROM contact_modes WHERE account_number = ?1")?
        .execute([account])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO contact_modes (account_number, mode_id, description, cvalue)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for mode in modes {
        insert.execute(params![
            account,
            mode.mode_id,
            mode.description,
            mode.cvalue
        ])?;
    }
    Ok(())
}

pub fn contact(
    conn: &Connection,
    account: &AccountNumber,
) -> Result<Option<Contact>, rusqlite::Error> {
    conn.prepare_cached("SELECT campaign_id, contact_id FROM contacts WHERE account_number = ?1")?
        .query_row([account], |r| {
            Ok(Contact {
                campaign_id: r.get(0)?,
                contact_id: r.get(1)?,
            })
        })
        .optional()
}

/// The contact's modes, by id.
pub fn modes(conn: &Connection, account: &AccountNumber) -> Result<Vec<Mode>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT mode_id, description, cvalue FROM contact_modes WHERE account_number = ?1
         ORDER BY mode_id",
    )?
    .query_map([account], |r| {
        Ok(Mode {
            mode_id: r.get(0)?,
            description: r.get(1)?,
            cvalue: r.get(2)?,
        })
    })?
    .collect()
}
