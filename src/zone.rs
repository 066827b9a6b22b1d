//! Time zones: a local wall-clock time read as a UTC instant under a zone's daylight-saving
//! rules, instants written back as text, and the zone a callback was stored with. Windows
//! ([`crate::lcm::window`]) and calling hours ([`crate::hours`]) both read time so.

use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDateTime, SecondsFormat, TimeZone, Timelike,
    Utc,
};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

/// How a local time had to be read because of a daylight-saving change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    /// The local time exists once: no adjustment.
    None,
    /// The local time fell in a spring-forward gap and was moved to the end of the gap.
    Gap,
    /// The local time occurred twice; the earlier instant was taken.
    Overlap,
}

impl Adjustment {
    /// The name stored in the database, or `None` when nothing was adjusted.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Adjustment::None => None,
            Adjustment::Gap => Some("gap"),
            Adjustment::Overlap => Some("overlap"),
        }
    }
}

/// The UTC instant of a local wall-clock time in `zone` (README: Time): a local time that falls
/// in a spring-forward gap moves forward to the first instant after the gap; one that occurs
/// twice (the fall-back overlap) means the earlier instant. The adjustment is recorded on the
/// callback.
pub fn to_utc(zone: Tz, local: NaiveDateTime) -> (DateTime<Utc>, Adjustment) {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => (at.with_timezone(&Utc), Adjustment::None),
        LocalResult::Ambiguous(earlier, _) => (earlier.with_timezone(&Utc), Adjustment::Overlap),
        LocalResult::None => (after_gap(zone, local), Adjustment::Gap),
    }
}

/// The first instant after the gap that swallowed `local`, which is the transition itself.
/// Gaps start and end on whole minutes and last at most a day (Samoa, 2011), so the first
/// valid local minute after `local` is the gap's end, and its instant is the transition.
fn after_gap(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..=(2 * 24 * 60) {
        probe += Duration::minutes(1);
        if let LocalResult::Single(at) | LocalResult::Ambiguous(at, _) =
            zone.from_local_datetime(&probe)
        {
            return at.with_timezone(&Utc);
        }
    }
    // No zone has ever had a gap of two days; read the time as UTC rather than fail.
    local.and_utc()
}

/// `at` as local time in `zone`, RFC 3339 with the offset then in force
/// (`2026-03-29T09:00:00+01:00`): how reports show a window to a person in that zone.
pub fn local_rfc3339(zone: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `DD/MM/YYYY HH:mm`, the form LCM requests use. Written digit by digit: every request
/// writes two, and `format!` with padded fields costs about ten times as much.
pub fn format_local(at: NaiveDateTime) -> String {
    let year = at.year();
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        // Not a year a request can carry (they have four digits); kept readable all the same.
        return format!(
            "{:02}/{:02}/{year} {:02}:{:02}",
            at.day(),
            at.month(),
            at.hour(),
            at.minute()
        );
    };
    let mut text = String::with_capacity(16);
    for (n, digits, then) in [
        (at.day(), 2, "/"),
        (at.month(), 2, "/"),
        (year, 4, " "),
        (at.hour(), 2, ":"),
        (at.minute(), 2, ""),
    ] {
        for place in (0..digits).rev() {
            let digit = n / 10u32.pow(place) % 10;
            text.push(char::from(b'0' + digit as u8));
        }
        text.push_str(then);
    }
    text
}

/// An instant as the wire carries it: RFC 3339 in UTC, to the second, with `Z`.
pub fn utc_rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Serializes an instant as [`utc_rfc3339`] writes it (`#[serde(serialize_with)]`).
pub fn serialize_utc<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&utc_rfc3339(*at))
}

/// Reads back what [`format_local`] wrote.
pub fn parse_local(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%d/%m/%Y %H:%M").ok()
}

/// The zone a callback's local times were read in, as stored. Every zone redial stores is one
/// it parsed, but a database can outlive the build that wrote it (a zone this build's tables
/// lack) or be edited by hand. Such a zone is kept by name and never read as another zone:
/// what a callback does without it is in `crate::lifecycle::decide` (README: Time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    Known(Tz),
    /// A name this build does not know.
    Unknown(String),
}

impl Zone {
    pub fn from_name(name: &str) -> Self {
        name.parse()
            .map_or_else(|_| Zone::Unknown(name.to_owned()), Zone::Known)
    }

    pub fn name(&self) -> &str {
        match self {
            Zone::Known(zone) => zone.name(),
            Zone::Unknown(name) => name,
        }
    }

    pub fn known(&self) -> Option<Tz> {
        match self {
            Zone::Known(zone) => Some(*zone),
            Zone::Unknown(_) => None,
        }
    }
}

impl From<Tz> for Zone {
    fn from(zone: Tz) -> Self {
        Zone::Known(zone)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// By name, as the API shows every zone.
/// An IANA zone name, as a string.
impl utoipa::PartialSchema for Zone {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .examples([serde_json::json!("Europe/London")])
            .into()
    }
}

impl utoipa::ToSchema for Zone {}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn local_times_are_written_as_the_request_writes_them() {
        assert_eq!(format_local(local("2026-01-03 09:05")), "03/01/2026 09:05");
        assert_eq!(format_local(local("2026-12-31 23:59")), "31/12/2026 23:59");
        assert_eq!(format_local(local("0999-10-20 00:00")), "20/10/0999 00:00");
        // Every seventh minute of a leap year, against chrono's own formatting, and back.
        let mut at = local("2028-01-01 00:00");
        while at.year() == 2028 {
            let text = format_local(at);
            assert_eq!(text, at.format("%d/%m/%Y %H:%M").to_string());
            assert_eq!(parse_local(&text), Some(at));
            at += Duration::minutes(7);
        }
        let far = NaiveDate::from_ymd_opt(12026, 2, 3)
            .unwrap()
            .and_hms_opt(4, 5, 0)
            .unwrap();
        assert_eq!(format_local(far), "03/02/12026 04:05");
        assert_eq!(parse_local("31/02/2026 10:00"), None);
    }

    #[test]
    fn gap_moves_to_the_transition() {
        let zone: Tz = "Europe/London".parse().unwrap();
        let (at, adj) = to_utc(zone, local("2026-03-29 01:30"));
        assert_eq!(at.to_rfc3339(), "2026-03-29T01:00:00+00:00");
        assert_eq!(adj, Adjustment::Gap);
    }

    #[test]
    fn overlap_takes_the_earlier_instant() {
        let zone: Tz = "Europe/London".parse().unwrap();
        let (at, adj) = to_utc(zone, local("2026-10-25 01:30"));
        assert_eq!(at.to_rfc3339(), "2026-10-25T00:30:00+00:00");
        assert_eq!(adj, Adjustment::Overlap);
    }

    #[test]
    fn a_zone_this_build_does_not_know_keeps_its_name() {
        assert_eq!(
            Zone::from_name("America/Chicago"),
            Zone::Known(chrono_tz::America::Chicago)
        );
        let unknown = Zone::from_name("Mars/Olympus_Mons");
        assert_eq!(unknown, Zone::Unknown("Mars/Olympus_Mons".into()));
        assert_eq!(unknown.known(), None);
        assert_eq!(
            serde_json::to_string(&unknown).unwrap(),
            "\"Mars/Olympus_Mons\""
        );
    }
}

/// Which end of a range a date names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The first instant of the day.
    From,
    /// The first instant of the next day: a `to` date is inclusive.
    To,
}

/// A range's end as an instant: RFC 3339 text is that instant; a date `YYYY-MM-DD` is a day in
/// `zone`, its start for [`Bound::From`] and the next day's start for [`Bound::To`]. `None`
/// when the text is neither.
pub fn range_end(text: &str, zone: Tz, bound: Bound) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let day = match bound {
        Bound::From => date,
        Bound::To => date.succ_opt()?,
    };
    Some(day_start(zone, day))
}

/// The first instant of `date` in `zone` (after a gap, where midnight itself does not exist).
pub fn day_start(zone: Tz, date: chrono::NaiveDate) -> DateTime<Utc> {
    to_utc(zone, date.and_time(chrono::NaiveTime::MIN)).0
}
