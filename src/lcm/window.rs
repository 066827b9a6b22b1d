//! Callback windows: the local dates and times a desktop sends, and the UTC instants they mean
//! in a zone (README: Time).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::hours::CallingHours;
use crate::zone::{self, format_local, to_utc, Adjustment};

/// The window as the desktop sent it: local calendar dates and wall-clock times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalWindow {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
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

    /// Reads the window in `zone` (the request's `TimeZone`, else `--timezone`), with the
    /// daylight-saving rules of [`crate::zone`]. An end before the start is refused; a point
    /// window (start equal to end) lasts `min_window`. Calling hours clip it afterwards
    /// ([`UtcWindow::clip`]), and the window as requested is kept beside the clipped one.
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
        zone::local_rfc3339(self.zone, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
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
