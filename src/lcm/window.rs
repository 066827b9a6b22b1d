//! Callback windows: the local dates and times a desktop sends, and the UTC instants they mean.
//!
//! Rules (documented in the README):
//! * local times are read in the request's `TimeZone` if it has one, else the service's
//!   `--timezone`;
//! * a local time that falls in a daylight-saving gap moves forward to the first instant after
//!   the gap; one that occurs twice (the fall-back overlap) means the earlier instant; either
//!   adjustment is recorded on the callback;
//! * an end before the start is refused; an end equal to the start is a point window that lasts
//!   `--min-window`;
//! * with calling hours ([`crate::hours`]), the window is clipped to them in the same zone; the
//!   window as requested is kept beside the clipped one.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

use crate::hours::CallingHours;

/// The window as the desktop sent it: local calendar dates and wall-clock times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalWindow {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

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

/// A window resolved to UTC instants in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtcWindow {
    /// When the callback may be dialed: the requested window, clipped to calling hours.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The window as requested, before clipping.
    pub requested_start: DateTime<Utc>,
    pub requested_end: DateTime<Utc>,
    /// The calling-hours rules the window was clipped to, as the flags name them.
    pub calling_hours: Option<String>,
    pub zone: Tz,
    /// The local ends as sent, `DD/MM/YYYY HH:mm`.
    pub local_start: String,
    pub local_end: String,
    pub start_adjusted: Adjustment,
    pub end_adjusted: Adjustment,
}

/// The window's end is before its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversed {
    pub start: String,
    pub end: String,
}

impl LocalWindow {
    pub fn new(
        start_date: NaiveDate,
        start_time: NaiveTime,
        end_date: NaiveDate,
        end_time: NaiveTime,
    ) -> Self {
        Self {
            start: start_date.and_time(start_time),
            end: end_date.and_time(end_time),
        }
    }

    /// Reads the window in `zone`. A point window (start equal to end) lasts `min_window`.
    pub fn resolve(&self, zone: Tz, min_window: Duration) -> Result<UtcWindow, Reversed> {
        let local_start = format_local(self.start);
        let local_end = format_local(self.end);
        if self.end < self.start {
            return Err(Reversed {
                start: local_start,
                end: local_end,
            });
        }
        let (start, start_adjusted) = to_utc(zone, self.start);
        let (mut end, end_adjusted) = to_utc(zone, self.end);
        // A point window, or one that a DST gap squeezed to nothing, still needs room to dial.
        if end <= start {
            end = start + min_window;
        }
        Ok(UtcWindow {
            start,
            end,
            requested_start: start,
            requested_end: end,
            calling_hours: None,
            zone,
            local_start,
            local_end,
            start_adjusted,
            end_adjusted,
        })
    }
}

/// The window has no minute inside calling hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoCallingMinute {
    /// The window as sent, e.g. `13/01/2026 22:00 to 13/01/2026 23:00 (America/Chicago)`.
    pub local: String,
    /// The rules, e.g. `Mon-Sat 08:00-21:00`.
    pub rules: String,
    pub zone: Tz,
}

impl UtcWindow {
    /// The window clipped to `hours` (if any) in its own zone.
    pub fn clip(mut self, hours: Option<&CallingHours>) -> Result<UtcWindow, NoCallingMinute> {
        let Some(hours) = hours else {
            return Ok(self);
        };
        let (start, end) =
            hours
                .clip(self.zone, self.start, self.end)
                .ok_or_else(|| NoCallingMinute {
                    local: self.describe(),
                    rules: hours.to_string(),
                    zone: self.zone,
                })?;
        self.start = start;
        self.end = end;
        self.calling_hours = Some(hours.to_string());
        Ok(self)
    }

    /// The window as sent, with its zone: `13/01/2026 13:45 to 13/01/2026 14:30 (UTC)`.
    pub fn describe(&self) -> String {
        format!(
            "{} to {} ({})",
            self.local_start,
            self.local_end,
            self.zone.name()
        )
    }

    /// An instant as local time in the window's zone, RFC 3339 with the offset then in force
    /// (`2026-03-29T09:00:00+01:00`): how reports show the window to a person in that zone.
    pub fn local_rfc3339(&self, at: DateTime<Utc>) -> String {
        local_rfc3339(self.zone, at)
    }
}

/// `at` as local time in `zone`, RFC 3339 with the offset then in force.
pub fn local_rfc3339(zone: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&zone)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `DD/MM/YYYY HH:mm`, the form the LCM request uses. Every request writes two, digit by
/// digit: `format!` with padded fields cost 1,900 instructions each, this about 150.
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

/// The UTC instant of a local wall-clock time in `zone`, with the DST rules of this module.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn local_times_are_written_as_the_request_writes_them() {
        assert_eq!(format_local(local("2026-01-03 09:05")), "03/01/2026 09:05");
        assert_eq!(format_local(local("2026-12-31 23:59")), "31/12/2026 23:59");
        assert_eq!(format_local(local("0999-10-20 00:00")), "20/10/0999 00:00");
        // Every seventh minute of a leap year, against chrono's own formatting.
        let mut at = local("2028-01-01 00:00");
        while at.year() == 2028 {
            assert_eq!(format_local(at), at.format("%d/%m/%Y %H:%M").to_string());
            at += Duration::minutes(7);
        }
        let far = NaiveDate::from_ymd_opt(12026, 2, 3)
            .unwrap()
            .and_hms_opt(4, 5, 0)
            .unwrap();
        assert_eq!(format_local(far), "03/02/12026 04:05");
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
    fn point_window_lasts_min_window() {
        let at = local("2026-01-13 13:45");
        let w = LocalWindow { start: at, end: at }
            .resolve(Tz::UTC, Duration::minutes(15))
            .unwrap();
        assert_eq!(w.end - w.start, Duration::minutes(15));
    }
}
