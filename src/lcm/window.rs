//! Callback windows: the local dates and times a desktop sends, and the UTC instants they mean.
//!
//! Rules (documented in the README):
//! * local times are read in the request's `TimeZone` if it has one, else the service's
//!   `--timezone`;
//! * a local time that falls in a daylight-saving gap moves forward to the first instant after
//!   the gap; one that occurs twice (the fall-back overlap) means the earlier instant; either
//!   adjustment is recorded on the callback;
//! * an end before the start is refused; an end equal to the start is a point window that lasts
//!   `--min-window`.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

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
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
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
            zone,
            local_start,
            local_end,
            start_adjusted,
            end_adjusted,
        })
    }
}

/// `DD/MM/YYYY HH:mm`, the form the LCM request uses.
pub fn format_local(at: NaiveDateTime) -> String {
    at.format("%d/%m/%Y %H:%M").to_string()
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
