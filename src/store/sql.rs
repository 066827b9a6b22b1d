//! How redial's values cross the database boundary: states, reasons, identifiers and zones are
//! written by their one name and read back as typed values, never compared as strings. A
//! stored value that does not read back (a hand edit, say) is an error that names it.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::Row;

use crate::lcm::{AccountNumber, CallId, CallbackKind, Subtopic, TelephonyOutcome, UserId};
use crate::lifecycle::{AttemptResult, CallState, CallbackState, EndReason, EventKind};
use crate::policy::Fallback;
use crate::zone::{self, Adjustment, Zone};

fn text<'a>(value: ValueRef<'a>) -> FromSqlResult<&'a str> {
    value.as_str()
}

fn unreadable(what: &str, seen: &str, why: impl std::fmt::Display) -> FromSqlError {
    FromSqlError::Other(format!("stored {what} {seen:?} does not read back: {why}").into())
}

/// Written as the text `as_str` gives.
macro_rules! as_text {
    ($($type:ty),+) => {$(
        impl ToSql for $type {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
            }
        }
    )+};
}

as_text!(
    CallbackState,
    EndReason,
    EventKind,
    AttemptResult,
    CallState,
    Fallback,
    CallbackKind,
    CallId,
    AccountNumber,
    UserId
);

impl ToSql for Subtopic {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.name().as_bytes(),
        )))
    }
}

impl FromSql for Subtopic {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let name = text(value)?;
        Subtopic::parse(name).ok_or_else(|| unreadable("subtopic", name, "not a message served"))
    }
}

/// Stored by its id, as the vendor numbers telephony outcomes.
impl ToSql for TelephonyOutcome {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.id()))
    }
}

impl FromSql for TelephonyOutcome {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let id = value.as_i64()?;
        TelephonyOutcome::from_id(id)
            .ok_or_else(|| unreadable("telephony outcome", &id.to_string(), "not an id of one"))
    }
}

/// Read back by `parse`.
macro_rules! by_name {
    ($($type:ty),+) => {$(
        impl FromSql for $type {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let name = text(value)?;
                <$type>::parse(name).ok_or_else(|| {
                    unreadable(stringify!($type), name, "not one of its names")
                })
            }
        }
    )+};
}

by_name!(
    CallbackState,
    EndReason,
    EventKind,
    AttemptResult,
    CallState,
    Fallback,
    CallbackKind
);

/// Identifiers are checked by their own rule on the way back too.
macro_rules! identifier {
    ($($type:ty),+) => {$(
        impl FromSql for $type {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let stored = text(value)?;
                <$type>::parse(stored).map_err(|e| unreadable(<$type>::FIELD, stored, e.detail))
            }
        }
    )+};
}

identifier!(CallId, AccountNumber, UserId);

impl ToSql for Zone {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.name().as_bytes(),
        )))
    }
}

/// Never fails: a name this build does not know is kept as [`Zone::Unknown`].
impl FromSql for Zone {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Zone::from_name(text(value)?))
    }
}

/// `gap`, `overlap`, or NULL when the local time needed no adjustment.
impl ToSql for Adjustment {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.as_str() {
            Some(name) => ToSqlOutput::Borrowed(ValueRef::Text(name.as_bytes())),
            None => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// Column `index` of `row` as a local time written `DD/MM/YYYY HH:mm`.
pub fn local_time(row: &Row<'_>, index: usize) -> rusqlite::Result<chrono::NaiveDateTime> {
    let stored: String = row.get(index)?;
    zone::parse_local(&stored).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(unreadable(
                "local time",
                &stored,
                "expected DD/MM/YYYY HH:mm",
            )),
        )
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    #[test]
    fn values_read_back_as_written_and_bad_ones_are_named() {
        let conn = Connection::open_in_memory().unwrap();
        let back: CallbackState = conn
            .query_row("SELECT ?1", [CallbackState::Superseded], |r| r.get(0))
            .unwrap();
        assert_eq!(back, CallbackState::Superseded);
        let fallback: Fallback = conn
            .query_row("SELECT ?1", [Fallback::AnyAgent], |r| r.get(0))
            .unwrap();
        assert_eq!(fallback, Fallback::AnyAgent);
        let error = conn
            .query_row("SELECT 'sheduled'", [], |r| r.get::<_, CallbackState>(0))
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"sheduled\""), "{error}");
        let error = conn
            .query_row("SELECT 'a\u{1}b'", [], |r| r.get::<_, UserId>(0))
            .unwrap_err()
            .to_string();
        assert!(error.contains("UserID"), "{error}");
        let zone: Zone = conn
            .query_row("SELECT 'Mars/Olympus_Mons'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(zone, Zone::Unknown("Mars/Olympus_Mons".into()));
        let none: Option<String> = conn
            .query_row("SELECT ?1", [Adjustment::None], |r| r.get(0))
            .unwrap();
        assert_eq!(none, None);
    }
}
