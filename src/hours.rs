//! Calling hours: the local hours and weekdays in which a contact may be dialed
//! (`--calling-hours 08:00-21:00`, `--calling-days Mon-Sat`), always read in the contact's zone.

use std::fmt;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

use crate::zone::to_utc;

const MINUTES_PER_DAY: u32 = 24 * 60;
const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const EVERY_DAY: u8 = 0b111_1111;

/// When calling is allowed. `None` where a [`CallingHours`] is optional means: always.
/// Rules (README: Calling hours):
///
/// * the hours are one span per allowed day, `open` inclusive to `close` exclusive; `24:00`
///   closes at the next midnight, and spans of consecutive days that meet at midnight are one;
/// * open and close are local wall-clock times and follow the zone's daylight-saving rules like
///   window times do (a gap moves forward, an overlap takes the earlier instant);
/// * a window is clipped to the first allowed instant at or after its start and the last
///   allowed instant at or before its end; a window without an allowed minute is refused;
/// * inside a window, a redial is only leasable while calling is allowed: at a close the
///   callback pauses and its next redial is staged for the next opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallingHours {
    /// Minutes after local midnight, `open < close <= 1440`.
    open: u32,
    close: u32,
    /// Bit `n` set: weekday `n` (Monday = 0) is a calling day. Never empty.
    days: u8,
}

/// An allowed span in UTC: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl CallingHours {
    /// The rules from the two flags; `None` when they allow every minute of every day.
    pub fn new(hours: Option<(u32, u32)>, days: Option<u8>) -> Option<Self> {
        let (open, close) = hours.unwrap_or((0, MINUTES_PER_DAY));
        let days = days.unwrap_or(EVERY_DAY);
        if (open, close, days) == (0, MINUTES_PER_DAY, EVERY_DAY) {
            return None;
        }
        Some(Self { open, close, days })
    }

    /// Parses `HH:MM-HH:MM` (`--calling-hours`): open before close, `24:00` allowed as close.
    pub fn parse_hours(s: &str) -> Result<(u32, u32), String> {
        let expected = "expected HH:MM-HH:MM with the opening before the close, e.g. 08:00-21:00";
        let (open, close) = s
            .split_once('-')
            .ok_or_else(|| format!("calling hours {s:?}: {expected}"))?;
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        match (minutes(open), minutes(close)) {
            (Some(open), Some(close)) if open < close => Ok((open, close)),
            _ => Err(format!("calling hours {s:?}: {expected}")),
        }
    }

    /// Parses weekdays (`--calling-days`): names and ranges, comma-separated, e.g. `Mon-Sat`,
    /// `Mon-Fri,Sun`, `Fri-Mon` (a range may wrap past Sunday).
    pub fn parse_days(s: &str) -> Result<u8, String> {
        let expected = "expected weekdays such as Mon-Sat or Mon-Fri,Sun";
        let day = |name: &str| {
            DAY_NAMES
                .iter()
                .position(|d| d.eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| {
                    format!(
                        "calling days {s:?}: {:?} is not a day; {expected}",
                        name.trim()
                    )
                })
        };
        let mut days = 0u8;
        for part in s.split(',') {
            let (from, to) = match part.split_once('-') {
                Some((from, to)) => (day(from)?, day(to)?),
                None => (day(part)?, day(part)?),
            };
            let mut d = from;
            loop {
                days |= 1 << d;
                if d == to {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        Ok(days)
    }

    fn allows_day(&self, date: NaiveDate) -> bool {
        self.days & (1 << date.weekday().num_days_from_monday()) != 0
    }

    /// Whether a local wall-clock time is inside calling hours.
    pub fn allows_local(&self, local: NaiveDateTime) -> bool {
        let minute = local.hour() * 60 + local.minute();
        self.allows_day(local.date()) && (self.open..self.close).contains(&minute)
    }

    /// Whether the instant `at` is inside calling hours in `zone`.
    pub fn allows(&self, zone: Tz, at: DateTime<Utc>) -> bool {
        self.allows_local(at.with_timezone(&zone).naive_local())
    }

    /// The allowed spans of local day `date`, as instants: none if it is not a calling day, one
    /// as a rule, two on a fall-back day whose repeated hour turns the wall clock back to before
    /// the opening (the minutes until the opening comes round again are not callable).
    fn day_spans(&self, zone: Tz, date: NaiveDate) -> Vec<Span> {
        if !self.allows_day(date) {
            return Vec::new();
        }
        let local = |minutes: u32| {
            date.and_time(NaiveTime::MIN) + chrono::Duration::minutes(minutes.into())
        };
        let span = Span {
            start: to_utc(zone, local(self.open)).0,
            end: to_utc(zone, local(self.close)).0,
        };
        if span.start >= span.end {
            return Vec::new();
        }
        let Some(turn) = clock_turned_back(zone, span) else {
            return vec![span];
        };
        let wall = turn.with_timezone(&zone).naive_local();
        let open = local(self.open);
        if wall >= open {
            return vec![span];
        }
        let again = match zone.from_local_datetime(&open) {
            LocalResult::Ambiguous(_, later) => later.with_timezone(&Utc),
            LocalResult::Single(at) => at.with_timezone(&Utc),
            LocalResult::None => return vec![Span { end: turn, ..span }],
        };
        [
            Span {
                start: span.start,
                end: turn,
            },
            Span {
                start: again,
                end: span.end,
            },
        ]
        .into_iter()
        .filter(|s| s.start < s.end)
        .collect()
    }

    /// Every allowed span from local day `from` on, in order, for the next ten days.
    fn spans_from(&self, zone: Tz, from: NaiveDate) -> impl Iterator<Item = Span> + '_ {
        (0..10)
            .filter_map(move |n| from.checked_add_days(Days::new(n)))
            .flat_map(move |date| self.day_spans(zone, date))
    }

    /// The allowed span that contains `at` or comes first after it, with its start moved up
    /// to `at` when `at` is inside it. Spans that meet (whole days back to back) are joined.
    /// Calling days recur weekly, so there is always one within eight days.
    pub fn span_from(&self, zone: Tz, at: DateTime<Utc>) -> Span {
        let yesterday = at.with_timezone(&zone).date_naive().pred_opt();
        let mut spans = yesterday
            .into_iter()
            .flat_map(|d| self.spans_from(zone, d))
            .skip_while(|s| s.end <= at);
        // Unreachable with a non-empty set of days; an instant at the end of chrono's calendar
        // is treated as always allowed rather than never.
        let Some(mut span) = spans.next() else {
            return Span {
                start: at,
                end: DateTime::<Utc>::MAX_UTC,
            };
        };
        span.start = span.start.max(at);
        for next in spans {
            if next.start != span.end {
                break;
            }
            span.end = next.end;
        }
        span
    }

    /// The part of `[start, end)` that starts and ends inside calling hours: from the first
    /// allowed instant at or after `start` to the last allowed instant at or before `end`.
    /// `None` if no minute of the window is allowed.
    pub fn clip(
        &self,
        zone: Tz,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let first = self.span_from(zone, start);
        if first.start >= end {
            return None;
        }
        // The last span that begins before `end`, walking back a day at a time from `end`.
        let mut date = end.with_timezone(&zone).date_naive();
        loop {
            if let Some(span) = self
                .day_spans(zone, date)
                .into_iter()
                .rev()
                .find(|s| s.start < end)
            {
                return Some((first.start, span.end.min(end)));
            }
            date = date.pred_opt()?;
        }
    }
}

/// The instant inside `span` at which `zone`'s clocks go back, if they do.
fn clock_turned_back(zone: Tz, span: Span) -> Option<DateTime<Utc>> {
    let offset = |at: DateTime<Utc>| {
        zone.offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    };
    let (mut before, mut after) = (span.start, span.end - chrono::Duration::milliseconds(1));
    let (first, last) = (offset(before), offset(after));
    if last >= first {
        return None;
    }
    // Transitions fall on whole minutes: bisect to the minute.
    while after - before > chrono::Duration::minutes(1) {
        let middle = before + (after - before) / 2;
        if offset(middle) == first {
            before = middle;
        } else {
            after = middle;
        }
    }
    let minute = after.timestamp() / 60 * 60;
    let turn = DateTime::from_timestamp(minute, 0)?;
    Some(if offset(turn) == first {
        turn + chrono::Duration::minutes(1)
    } else {
        turn
    })
}

impl fmt::Display for CallingHours {
    /// `Mon-Sat 08:00-21:00`, the form the flags take.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ranges = Vec::new();
        let mut d = 0;
        while d < 7 {
            if self.days & (1 << d) == 0 {
                d += 1;
                continue;
            }
            let from = d;
            while d + 1 < 7 && self.days & (1 << (d + 1)) != 0 {
                d += 1;
            }
            ranges.push(if from == d {
                DAY_NAMES[from].to_owned()
            } else {
                format!("{}-{}", DAY_NAMES[from], DAY_NAMES[d])
            });
            d += 1;
        }
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        write!(
            f,
            "{} {}-{}",
            ranges.join(","),
            hm(self.open),
            hm(self.close)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rules(hours: &str, days: &str) -> CallingHours {
        CallingHours::new(
            Some(CallingHours::parse_hours(hours).unwrap()),
            Some(CallingHours::parse_days(days).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn flags_parse_and_print_back() {
        assert_eq!(
            rules("08:00-21:00", "Mon-Sat").to_string(),
            "Mon-Sat 08:00-21:00"
        );
        assert_eq!(
            rules("09:30-24:00", "sat,Mon-Wed").to_string(),
            "Mon-Wed,Sat 09:30-24:00"
        );
        assert_eq!(CallingHours::parse_days("Fri-Mon").unwrap(), 0b111_0001);
        assert!(CallingHours::parse_hours("21:00-08:00").is_err());
        assert!(CallingHours::parse_hours("8:00-21:00").is_err());
        assert!(CallingHours::parse_hours("08:00-24:01").is_err());
        assert!(CallingHours::parse_days("Mon-Xyz").is_err());
        assert_eq!(CallingHours::new(None, None), None);
        assert_eq!(CallingHours::new(Some((0, 1440)), Some(EVERY_DAY)), None);
    }

    /// Found by the property test: on the day New York's clocks go back, 02:00 EDT becomes
    /// 01:00 EST, so after the turn the wall clock reads 01:00-01:03 again, before the 01:04
    /// opening. Those minutes are not callable: the day has two spans.
    #[test]
    fn a_fall_back_before_the_opening_splits_the_day() {
        let r = rules("01:04-02:00", "Sun");
        let zone: Tz = "America/New_York".parse().unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let spans = r.day_spans(zone, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!(
            spans,
            vec![
                Span {
                    start: at("2026-11-01T05:04:00Z"),
                    end: at("2026-11-01T06:00:00Z")
                },
                Span {
                    start: at("2026-11-01T06:04:00Z"),
                    end: at("2026-11-01T07:00:00Z")
                },
            ]
        );
        let first = r.span_from(zone, at("2026-11-01T05:30:00Z"));
        assert_eq!(first.end, at("2026-11-01T06:00:00Z"));
        let later = r.span_from(zone, at("2026-11-01T06:01:00Z"));
        assert_eq!(later.start, at("2026-11-01T06:04:00Z"));
        assert!(!r.allows(zone, at("2026-11-01T06:01:00Z")));
    }

    #[test]
    fn whole_days_that_meet_at_midnight_are_one_span() {
        let r =
            CallingHours::new(None, Some(CallingHours::parse_days("Mon-Fri").unwrap())).unwrap();
        // Tuesday 2026-01-13 noon: allowed until Saturday 00:00.
        let at = Utc.with_ymd_and_hms(2026, 1, 13, 12, 0, 0).unwrap();
        let span = r.span_from(Tz::UTC, at);
        assert_eq!(span.start, at);
        assert_eq!(
            span.end,
            Utc.with_ymd_and_hms(2026, 1, 17, 0, 0, 0).unwrap()
        );
    }
}
