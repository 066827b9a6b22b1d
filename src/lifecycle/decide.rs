//! The state machine's decisions: given a live callback, `now` and the policy, which
//! transition. No SQL here: these are functions of their arguments, tested without a
//! database, and `store::lifecycle` applies what they decide. Instants are milliseconds since
//! the epoch, as stored.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::states::{AttemptResult, CallbackState, EndReason};
use crate::hours::CallingHours;
use crate::lcm::UserId;
use crate::policy::{Fallback, Policy};
use crate::zone::{format_local, local_rfc3339, to_utc, Zone};

/// How long before a window opens (or a retry is due) its redial event is written.
pub const STAGE_AHEAD: Duration = Duration::seconds(60);

/// Far-off callbacks wait for the scheduler in buckets of this length (module doc: Parking).
pub const PARK_BUCKET: Duration = Duration::hours(1);

/// A bucket joins the agenda this long before it begins: ample time to move even a crowded
/// bucket, a batch per tick, before its first staging time.
pub const UNPARK_AHEAD: Duration = Duration::minutes(10);

/// Where a live callback waits for the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// On the agenda (`next_at`) at this instant.
    Agenda(i64),
    /// In an hour's bucket (`parked_at`) that joins the agenda at this instant.
    Parked(i64),
}

impl Slot {
    pub fn next_at(self) -> Option<i64> {
        match self {
            Slot::Agenda(at) => Some(at),
            Slot::Parked(_) => None,
        }
    }

    pub fn parked_at(self) -> Option<i64> {
        match self {
            Slot::Agenda(_) => None,
            Slot::Parked(at) => Some(at),
        }
    }

    /// When the scheduler must next look at the callback.
    pub fn wake_at(self) -> i64 {
        match self {
            Slot::Agenda(at) | Slot::Parked(at) => at,
        }
    }
}

/// Where a callback the scheduler first needs at `stage_at`, seen at `now`, waits: parked if
/// that instant's bucket unparks later than now, else on the agenda.
pub fn agenda_slot(stage_at: i64, now: i64) -> Slot {
    let bucket = PARK_BUCKET.num_milliseconds();
    let unpark_at = stage_at.div_euclid(bucket) * bucket - UNPARK_AHEAD.num_milliseconds();
    if unpark_at > now {
        Slot::Parked(unpark_at)
    } else {
        Slot::Agenda(stage_at)
    }
}

/// The slot of a callback leasable again from `open`: staged a little before, never in the
/// past.
pub fn restage(open: i64, now: i64) -> Slot {
    agenda_slot((open - STAGE_AHEAD.num_milliseconds()).max(now), now)
}

/// What the state machine reads of a live callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub id: i64,
    /// The stored state (never `Leased`).
    pub state: CallbackState,
    pub user_id: UserId,
    /// Only its owner may take it (until an `any-agent` fallback).
    pub personal: bool,
    pub window_start: i64,
    pub window_end: i64,
    /// The window's ends as the request gave them, in `zone`.
    pub local_start: NaiveDateTime,
    pub local_end: NaiveDateTime,
    pub zone: Zone,
    pub attempts: i64,
    /// The owner-absent fallback applied already, if any.
    pub fallback: Option<Fallback>,
    /// When its next redial becomes leasable.
    pub open_at: i64,
    /// When that chance closes: the end of its span of calling hours, or the window's end.
    pub open_until: i64,
    /// Its next redial is written, waiting for `open_at`.
    pub staged: bool,
}

/// A chance to dial: leasable from `open`, handed out no later than `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub open: i64,
    pub until: i64,
}

/// The first chance at or after `at` to dial a contact in `zone` whose window ends at
/// `window_end`: from then until calling hours close or the window ends, whichever comes
/// first. `None` if calling is not allowed again before the window ends.
pub fn chance(policy: &Policy, zone: Tz, at: i64, window_end: i64) -> Option<Span> {
    let span = match &policy.calling_hours {
        None => Span {
            open: at,
            until: window_end,
        },
        Some(hours) => within(hours, zone, at, window_end),
    };
    (span.open < window_end).then_some(span)
}

/// The span of calling hours in `zone` that contains `at` or comes next, cut at the window's
/// end.
fn within(hours: &CallingHours, zone: Tz, at: i64, window_end: i64) -> Span {
    let allowed = hours.span_from(zone, utc(at));
    Span {
        open: allowed.start.timestamp_millis(),
        until: allowed.end.timestamp_millis().min(window_end),
    }
}

/// What [`chance_for`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chance {
    At(Span),
    /// None before the window ends.
    Closed,
    /// Calling hours cannot be read in a zone this build does not know, and the span stored
    /// for the callback is over.
    ZoneUnknown,
}

impl Chance {
    /// The span, or the reason the callback ends for want of one.
    fn or_end(self) -> Result<Span, EndReason> {
        match self {
            Chance::At(span) => Ok(span),
            Chance::Closed => Err(EndReason::WindowEnded),
            Chance::ZoneUnknown => Err(EndReason::UnknownZone),
        }
    }
}

/// The first chance at or after `at` to dial `cb`. Calling hours are read in the callback's
/// own zone; in a zone this build does not know, only the span stored for it (until
/// `open_until`) may be used: its instants are never read in another zone.
fn chance_for(cb: &Live, at: i64, policy: &Policy) -> Chance {
    let span = match (&policy.calling_hours, &cb.zone) {
        (None, _) => Span {
            open: at,
            until: cb.window_end,
        },
        (Some(hours), Zone::Known(zone)) => within(hours, *zone, at, cb.window_end),
        (Some(_), Zone::Unknown(name)) if at >= cb.open_until => {
            tracing::error!(
                callback = cb.id,
                zone = %name,
                "the callback's zone is not one this build knows: its stored span of calling \
                 hours is over and no other can be read, so it ends"
            );
            return Chance::ZoneUnknown;
        }
        (Some(_), Zone::Unknown(_)) => Span {
            open: at,
            until: cb.open_until,
        },
    };
    if span.open < cb.window_end {
        Chance::At(span)
    } else {
        Chance::Closed
    }
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Where a new callback's first chance lies: its window's start, or now if that has passed,
/// moved to the next opening of calling hours if they are closed then.
pub fn first_chance(policy: &Policy, zone: Tz, start: i64, end: i64, now: i64) -> Span {
    chance(policy, zone, start.max(now), end).unwrap_or(Span {
        open: start,
        until: end,
    })
}

/// The scheduler's step for a live callback whose `next_at` has come.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// It ends now, as expired.
    Expire(EndReason),
    /// Write its next redial, leasable from `open_at`; `open`: and that has come.
    Stage { open: bool },
    /// Its staged redial is leasable now: scheduled → due.
    Open,
    /// Staged and not yet open: nothing to do until `open_at`.
    Wait,
    /// Calling hours closed before the window's end: back to scheduled, its unleased redial
    /// withdrawn, leasable again in the span given.
    Pause(Span),
    /// Due, before `open_until`: an owner-absent deadline has come ([`owner_deadline`]).
    OwnerDeadline,
}

pub fn advance(cb: &Live, now: i64, policy: &Policy) -> Step {
    if now >= cb.window_end {
        return Step::Expire(EndReason::WindowEnded);
    }
    if cb.state == CallbackState::Scheduled || cb.staged {
        if cb.open_at <= now && now >= cb.open_until {
            // Its span of calling hours passed before it was opened (the scheduler was
            // stopped, say): wait for the next one.
            return pause(cb, now, policy);
        }
        if !cb.staged {
            return Step::Stage {
                open: cb.open_at <= now,
            };
        }
        return if cb.open_at <= now {
            Step::Open
        } else {
            Step::Wait
        };
    }
    if now >= cb.open_until {
        return pause(cb, now, policy);
    }
    Step::OwnerDeadline
}

fn pause(cb: &Live, now: i64, policy: &Policy) -> Step {
    match chance_for(cb, now, policy).or_end() {
        Ok(span) => Step::Pause(span),
        Err(reason) => Step::Expire(reason),
    }
}

/// What happens to a due personal callback at its owner-absent deadline.
#[derive(Debug, Clone, PartialEq)]
pub enum Absence {
    /// The owner came back: nothing to do until `open_until`.
    OwnerBack,
    /// It ends; `record` is the fallback recorded as the cause, if the policy's is.
    Expire {
        reason: EndReason,
        record: Option<Fallback>,
    },
    /// Any agent may take it now: `personal: false`, a new redial at once.
    AnyAgent,
    /// The same local hours the next day.
    NextDay(Moved),
}

pub fn owner_deadline(cb: &Live, owner_present: bool, policy: &Policy) -> Absence {
    if owner_present {
        return Absence::OwnerBack;
    }
    let absent = |record| Absence::Expire {
        reason: EndReason::OwnerAbsent,
        record,
    };
    match policy.fallback {
        Fallback::Expire => absent(Some(Fallback::Expire)),
        Fallback::AnyAgent => Absence::AnyAgent,
        // Moved once already: the owner missed the second day too.
        Fallback::NextDay if cb.fallback == Some(Fallback::NextDay) => absent(None),
        Fallback::NextDay => {
            let Some(zone) = cb.zone.known() else {
                tracing::error!(
                    callback = cb.id,
                    zone = %cb.zone,
                    "the callback's zone is not one this build knows: its window cannot be \
                     moved to the same local hours tomorrow, so it ends"
                );
                return Absence::Expire {
                    reason: EndReason::UnknownZone,
                    record: None,
                };
            };
            match next_day(cb, zone, policy) {
                Some(moved) => Absence::NextDay(moved),
                None => absent(None),
            }
        }
    }
}

/// A window moved to the next day, with what the store writes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub start: i64,
    pub end: i64,
    pub open_until: i64,
    /// `DD/MM/YYYY HH:mm`, as a request would give them.
    pub local_start: String,
    pub local_end: String,
    /// RFC 3339 with the zone's offset, for reports.
    pub start_rfc3339: String,
    pub end_rfc3339: String,
}

/// The same local hours one day later, read in the callback's zone and clipped to calling
/// hours; `None` if no minute of it may be called. A point window keeps its length.
fn next_day(cb: &Live, zone: Tz, policy: &Policy) -> Option<Moved> {
    let start = cb.local_start + Duration::days(1);
    let end = cb.local_end + Duration::days(1);
    let length = cb.window_end - cb.window_start;
    let start_ms = to_utc(zone, start).0.timestamp_millis();
    let end_ms = to_utc(zone, end).0.timestamp_millis();
    let end_ms = if end_ms > start_ms {
        end_ms
    } else {
        start_ms + length
    };
    let (start_ms, end_ms) = match &policy.calling_hours {
        None => (start_ms, end_ms),
        Some(hours) => {
            let (s, e) = hours.clip(zone, utc(start_ms), utc(end_ms))?;
            (s.timestamp_millis(), e.timestamp_millis())
        }
    };
    let first = chance(policy, zone, start_ms, end_ms)?;
    Some(Moved {
        start: start_ms,
        end: end_ms,
        open_until: first.until,
        local_start: format_local(start),
        local_end: format_local(end),
        start_rfc3339: local_rfc3339(zone, utc(start_ms)),
        end_rfc3339: local_rfc3339(zone, utc(end_ms)),
    })
}

/// An attempt or a cancel on a callback that cannot take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub id: i64,
    pub state: CallbackState,
}

/// What an attempt report does to its callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    /// `connected`: completed.
    Complete,
    Expire(EndReason),
    /// Dial again in this span.
    Retry(Span),
}

/// A dialer's report on `cb`, which shows as `shown`. A due callback takes any result; so
/// does one paused at the close of calling hours while a dialer held its redial; and
/// `connected` still completes a callback that expired while the dial was under way (it
/// began inside the window). The other results retry inside the window after the policy's
/// delay, up to `max_attempts`.
pub fn attempt(
    cb: &Live,
    shown: CallbackState,
    result: AttemptResult,
    now: i64,
    policy: &Policy,
) -> Result<AfterAttempt, Finished> {
    let late_connect = cb.state == CallbackState::Expired && result == AttemptResult::Connected;
    let paused_in_hand = cb.state == CallbackState::Scheduled && shown == CallbackState::Leased;
    if cb.state != CallbackState::Due && !late_connect && !paused_in_hand {
        return Err(Finished {
            id: cb.id,
            state: cb.state,
        });
    }
    let delay = match result {
        AttemptResult::Connected => return Ok(AfterAttempt::Complete),
        AttemptResult::Busy => policy.retry_busy,
        AttemptResult::NoAnswer => policy.retry_no_answer,
        AttemptResult::Failed => policy.retry_failed,
    };
    if cb.attempts + 1 >= policy.max_attempts {
        return Ok(AfterAttempt::Expire(EndReason::MaxAttempts));
    }
    Ok(
        match chance_for(cb, now + delay.num_milliseconds(), policy).or_end() {
            Ok(span) => AfterAttempt::Retry(span),
            Err(reason) => AfterAttempt::Expire(reason),
        },
    )
}

/// Only a live callback can be cancelled.
pub fn cancel(cb: &Live) -> Result<(), Finished> {
    match cb.state {
        CallbackState::Scheduled | CallbackState::Due => Ok(()),
        state => Err(Finished { id: cb.id, state }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// 2026-01-13 at `h:m` UTC, in ms.
    fn at(h: u32, m: u32) -> i64 {
        Utc.with_ymd_and_hms(2026, 1, 13, h, m, 0)
            .unwrap()
            .timestamp_millis()
    }

    /// A callback for 13:00-15:00 UTC, scheduled to open at 13:00.
    fn live() -> Live {
        Live {
            id: 7,
            state: CallbackState::Scheduled,
            user_id: UserId::parse("agent").unwrap(),
            personal: true,
            window_start: at(13, 0),
            window_end: at(15, 0),
            local_start: utc(at(13, 0)).naive_utc(),
            local_end: utc(at(15, 0)).naive_utc(),
            zone: Zone::Known(Tz::UTC),
            attempts: 0,
            fallback: None,
            open_at: at(13, 0),
            open_until: at(15, 0),
            staged: false,
        }
    }

    fn due() -> Live {
        Live {
            state: CallbackState::Due,
            ..live()
        }
    }

    /// Calling allowed 09:00-14:00 every day.
    fn until_two() -> Policy {
        Policy {
            calling_hours: CallingHours::new(Some((9 * 60, 14 * 60)), None),
            ..Policy::default()
        }
    }

    #[test]
    fn far_callbacks_park_and_near_ones_join_the_agenda() {
        let now = at(9, 0);
        assert_eq!(agenda_slot(at(9, 30), now), Slot::Agenda(at(9, 30)));
        assert_eq!(agenda_slot(at(10, 5), now), Slot::Parked(at(9, 50)));
        assert_eq!(agenda_slot(at(10, 5), at(9, 50)), Slot::Agenda(at(10, 5)));
        assert_eq!(agenda_slot(at(11, 5), now), Slot::Parked(at(10, 50)));
        assert_eq!(restage(at(9, 0), at(9, 0) + 1), Slot::Agenda(at(9, 0) + 1));
    }

    #[test]
    fn a_scheduled_callback_is_staged_then_opened_and_expires_at_its_end() {
        let policy = Policy::default();
        let cb = live();
        assert_eq!(
            advance(&cb, at(12, 59), &policy),
            Step::Stage { open: false }
        );
        assert_eq!(advance(&cb, at(13, 0), &policy), Step::Stage { open: true });
        let staged = Live {
            staged: true,
            ..live()
        };
        assert_eq!(advance(&staged, at(12, 59), &policy), Step::Wait);
        assert_eq!(advance(&staged, at(13, 0), &policy), Step::Open);
        for cb in [live(), staged, due()] {
            assert_eq!(
                advance(&cb, at(15, 0), &policy),
                Step::Expire(EndReason::WindowEnded)
            );
        }
        assert_eq!(advance(&due(), at(14, 0), &policy), Step::OwnerDeadline);
    }

    #[test]
    fn at_the_close_of_calling_hours_it_pauses_until_they_open_or_expires() {
        let policy = until_two();
        let cb = Live {
            window_end: at(13, 0) + 86_400_000,
            open_until: at(14, 0),
            ..due()
        };
        assert_eq!(
            advance(&cb, at(14, 0), &policy),
            Step::Pause(Span {
                open: at(9, 0) + 86_400_000,
                until: at(13, 0) + 86_400_000
            })
        );
        let ends_tonight = Live {
            open_until: at(14, 0),
            ..due()
        };
        assert_eq!(
            advance(&ends_tonight, at(14, 0), &policy),
            Step::Expire(EndReason::WindowEnded)
        );
    }

    #[test]
    fn attempts_retry_inside_the_window_until_the_last_one() {
        let policy = Policy::default();
        let cb = due();
        assert_eq!(
            attempt(
                &cb,
                CallbackState::Leased,
                AttemptResult::Busy,
                at(13, 2),
                &policy
            ),
            Ok(AfterAttempt::Retry(Span {
                open: at(13, 3),
                until: at(15, 0)
            }))
        );
        assert_eq!(
            attempt(
                &cb,
                CallbackState::Due,
                AttemptResult::NoAnswer,
                at(14, 45),
                &policy
            ),
            Ok(AfterAttempt::Expire(EndReason::WindowEnded)),
            "a retry after the window's end"
        );
        let last = Live {
            attempts: policy.max_attempts - 1,
            ..due()
        };
        assert_eq!(
            attempt(
                &last,
                CallbackState::Due,
                AttemptResult::Failed,
                at(13, 2),
                &policy
            ),
            Ok(AfterAttempt::Expire(EndReason::MaxAttempts))
        );
        assert_eq!(
            attempt(
                &cb,
                CallbackState::Due,
                AttemptResult::Connected,
                at(13, 2),
                &policy
            ),
            Ok(AfterAttempt::Complete)
        );
    }

    #[test]
    fn only_a_callback_a_dialer_may_be_dialing_takes_an_attempt() {
        let policy = Policy::default();
        let result = |state, shown, result| {
            let cb = Live { state, ..live() };
            attempt(&cb, shown, result, at(13, 2), &policy)
        };
        use AttemptResult::{Busy, Connected};
        use CallbackState::{Completed, Expired, Leased, Scheduled};
        assert_eq!(
            result(Scheduled, Scheduled, Busy),
            Err(Finished {
                id: 7,
                state: Scheduled
            })
        );
        assert!(
            result(Scheduled, Leased, Busy).is_ok(),
            "paused while a dialer held it"
        );
        assert_eq!(
            result(Expired, Expired, Connected),
            Ok(AfterAttempt::Complete),
            "a dial that began inside the window"
        );
        assert!(result(Expired, Expired, Busy).is_err());
        assert!(result(Completed, Completed, Connected).is_err());
        assert!(cancel(&live()).is_ok() && cancel(&due()).is_ok());
        assert_eq!(
            cancel(&Live {
                state: Completed,
                ..live()
            }),
            Err(Finished {
                id: 7,
                state: Completed
            })
        );
    }

    #[test]
    fn an_absent_owner_meets_the_fallback() {
        let cb = due();
        let with = |fallback| Policy {
            fallback,
            ..Policy::default()
        };
        assert_eq!(
            owner_deadline(&cb, true, &with(Fallback::Expire)),
            Absence::OwnerBack
        );
        assert_eq!(
            owner_deadline(&cb, false, &with(Fallback::Expire)),
            Absence::Expire {
                reason: EndReason::OwnerAbsent,
                record: Some(Fallback::Expire)
            }
        );
        assert_eq!(
            owner_deadline(&cb, false, &with(Fallback::AnyAgent)),
            Absence::AnyAgent
        );
        let Absence::NextDay(moved) = owner_deadline(&cb, false, &with(Fallback::NextDay)) else {
            panic!("moved to the next day")
        };
        assert_eq!(
            (moved.start, moved.end),
            (at(13, 0) + 86_400_000, at(15, 0) + 86_400_000)
        );
        assert_eq!(moved.local_start, "14/01/2026 13:00");
        assert_eq!(moved.start_rfc3339, "2026-01-14T13:00:00Z");
        let moved_once = Live {
            fallback: Some(Fallback::NextDay),
            ..due()
        };
        assert_eq!(
            owner_deadline(&moved_once, false, &with(Fallback::NextDay)),
            Absence::Expire {
                reason: EndReason::OwnerAbsent,
                record: None
            }
        );
    }

    #[test]
    fn a_zone_this_build_does_not_know_keeps_the_stored_span_and_is_never_read_as_utc() {
        let policy = until_two();
        // Stored for a two-day window; its span of calling hours closes at 14:00.
        let cb = Live {
            zone: Zone::Unknown("Mars/Olympus_Mons".into()),
            window_end: at(15, 0) + 86_400_000,
            open_until: at(14, 0),
            ..due()
        };
        assert_eq!(
            advance(&cb, at(14, 0), &policy),
            Step::Expire(EndReason::UnknownZone),
            "no next opening is read in UTC"
        );
        assert_eq!(
            attempt(
                &cb,
                CallbackState::Due,
                AttemptResult::Busy,
                at(13, 0),
                &policy
            ),
            Ok(AfterAttempt::Retry(Span {
                open: at(13, 1),
                until: at(14, 0)
            })),
            "a retry inside the stored span keeps its close"
        );
        assert_eq!(
            attempt(
                &cb,
                CallbackState::Due,
                AttemptResult::NoAnswer,
                at(13, 50),
                &policy
            ),
            Ok(AfterAttempt::Expire(EndReason::UnknownZone))
        );
        let next_day = Policy {
            fallback: Fallback::NextDay,
            ..Policy::default()
        };
        assert_eq!(
            owner_deadline(&cb, false, &next_day),
            Absence::Expire {
                reason: EndReason::UnknownZone,
                record: None
            }
        );
        // Without calling hours the zone is never needed.
        assert_eq!(
            attempt(
                &cb,
                CallbackState::Due,
                AttemptResult::Busy,
                at(14, 30),
                &Policy::default()
            ),
            Ok(AfterAttempt::Retry(Span {
                open: at(14, 31),
                until: cb.window_end
            }))
        );
    }
}
