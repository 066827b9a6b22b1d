//! Time: windows read in real zones around their daylight-saving changes, the calendar's
//! edges, the horizon, and calling hours (clipping, pausing at the close, retries), with the
//! scheduler driven by a clock the test sets.

mod common;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use common::rig::Rig;
use common::{lcm_error, response, seed_with, spawn_app_with};
use proptest::prelude::*;
use redial::hours::CallingHours;
use redial::lcm::LocalWindow;
use redial::lifecycle::AttemptResult;
use redial::policy::{Fallback, Policy};
use redial::service::Error;
use redial::zone::Adjustment;
use serde_json::json;

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn zone(name: &str) -> Tz {
    name.parse().unwrap()
}

/// Zone, local start and end as sent, the UTC instants they must mean, and the daylight-saving
/// adjustment of each end. Instants checked against the IANA database (Python's `zoneinfo`)
/// and by hand for gaps (moved to the transition) and overlaps (the earlier instant).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

#[rustfmt::skip]
const WINDOWS: &[Case] = &[
    // London, 2026: clocks go forward on 29 March at 01:00 GMT, back on 25 October at 02:00 BST.
    ("Europe/London", "2026-03-28 09:00", "2026-03-28 17:00", "2026-03-28T09:00:00Z", "2026-03-28T17:00:00Z", None, None),
    // The day of the change: still 8 local hours, an hour earlier in UTC.
    ("Europe/London", "2026-03-29 09:00", "2026-03-29 17:00", "2026-03-29T08:00:00Z", "2026-03-29T16:00:00Z", None, None),
    ("Europe/London", "2026-03-29 00:30", "2026-03-29 01:30", "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", None, Some("gap")),
    ("Europe/London", "2026-03-29 01:30", "2026-03-29 03:00", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", Some("gap"), None),
    ("Europe/London", "2026-10-25 01:30", "2026-10-25 02:30", "2026-10-25T00:30:00Z", "2026-10-25T02:30:00Z", Some("overlap"), None),
    ("Europe/London", "2026-10-26 09:00", "2026-10-26 17:00", "2026-10-26T09:00:00Z", "2026-10-26T17:00:00Z", None, None),
    // London, 2027: 28 March and 31 October.
    ("Europe/London", "2027-03-28 01:15", "2027-03-28 02:15", "2027-03-28T01:00:00Z", "2027-03-28T01:15:00Z", Some("gap"), None),
    ("Europe/London", "2027-10-31 00:45", "2027-10-31 01:45", "2027-10-30T23:45:00Z", "2027-10-31T00:45:00Z", None, Some("overlap")),
    // New York, 2026: 8 March at 02:00 EST, 1 November at 02:00 EDT.
    ("America/New_York", "2026-03-07 09:00", "2026-03-07 17:00", "2026-03-07T14:00:00Z", "2026-03-07T22:00:00Z", None, None),
    ("America/New_York", "2026-03-09 09:00", "2026-03-09 17:00", "2026-03-09T13:00:00Z", "2026-03-09T21:00:00Z", None, None),
    ("America/New_York", "2026-03-08 02:30", "2026-03-08 04:00", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", Some("gap"), None),
    ("America/New_York", "2026-11-01 01:30", "2026-11-01 03:00", "2026-11-01T05:30:00Z", "2026-11-01T08:00:00Z", Some("overlap"), None),
    // A whole local day that has 25 hours.
    ("America/New_York", "2026-11-01 00:00", "2026-11-02 00:00", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", None, None),
    // New York, 2027: 14 March and 7 November. A window inside the gap is squeezed to a point
    // and lasts --min-window (15 minutes) from the transition.
    ("America/New_York", "2027-03-14 02:00", "2027-03-14 02:59", "2027-03-14T07:00:00Z", "2027-03-14T07:15:00Z", Some("gap"), Some("gap")),
    ("America/New_York", "2027-11-07 01:00", "2027-11-07 01:59", "2027-11-07T05:00:00Z", "2027-11-07T05:59:00Z", Some("overlap"), Some("overlap")),
    // Lord Howe shifts by 30 minutes: back 02:00 → 01:30 on 5 April, forward 02:00 → 02:30 on
    // 4 October 2026.
    ("Australia/Lord_Howe", "2026-04-05 01:45", "2026-04-05 02:15", "2026-04-04T14:45:00Z", "2026-04-04T15:45:00Z", Some("overlap"), None),
    ("Australia/Lord_Howe", "2026-10-04 02:00", "2026-10-04 03:00", "2026-10-03T15:30:00Z", "2026-10-03T16:00:00Z", Some("gap"), None),
    ("Australia/Lord_Howe", "2026-07-01 09:00", "2026-07-01 17:00", "2026-06-30T22:30:00Z", "2026-07-01T06:30:00Z", None, None),
    // Chatham (+12:45 / +13:45), back on 5 April 2026 at 03:45.
    ("Pacific/Chatham", "2026-04-05 02:45", "2026-04-05 03:45", "2026-04-04T13:00:00Z", "2026-04-04T15:00:00Z", Some("overlap"), None),
    // Half- and quarter-hour offsets.
    ("Asia/Kolkata", "2026-01-13 09:00", "2026-01-13 17:30", "2026-01-13T03:30:00Z", "2026-01-13T12:00:00Z", None, None),
    ("Asia/Kathmandu", "2026-01-13 13:45", "2026-01-13 14:30", "2026-01-13T08:00:00Z", "2026-01-13T08:45:00Z", None, None),
    // UTC+14 and UTC-11 across the new year; UTC-12 across a month.
    ("Pacific/Kiritimati", "2026-12-31 23:30", "2027-01-01 00:30", "2026-12-31T09:30:00Z", "2026-12-31T10:30:00Z", None, None),
    ("Pacific/Pago_Pago", "2026-12-31 20:00", "2027-01-01 02:00", "2027-01-01T07:00:00Z", "2027-01-01T13:00:00Z", None, None),
    ("Etc/GMT+12", "2026-06-30 23:00", "2026-07-01 01:00", "2026-07-01T11:00:00Z", "2026-07-01T13:00:00Z", None, None),
    // Phoenix keeps MST all year: New York's change days are ordinary there.
    ("America/Phoenix", "2026-03-08 02:30", "2026-03-08 03:30", "2026-03-08T09:30:00Z", "2026-03-08T10:30:00Z", None, None),
    ("America/Phoenix", "2026-11-01 01:30", "2026-11-01 02:30", "2026-11-01T08:30:00Z", "2026-11-01T09:30:00Z", None, None),
    // Indiana: Indianapolis and Petersburg on Eastern time, Knox on Central, all with DST.
    ("America/Indiana/Indianapolis", "2026-03-08 02:15", "2026-03-08 09:00", "2026-03-08T07:00:00Z", "2026-03-08T13:00:00Z", Some("gap"), None),
    ("America/Indiana/Knox", "2026-11-01 01:30", "2026-11-01 08:00", "2026-11-01T06:30:00Z", "2026-11-01T14:00:00Z", Some("overlap"), None),
    ("America/Indiana/Petersburg", "2026-07-04 10:00", "2026-07-04 12:00", "2026-07-04T14:00:00Z", "2026-07-04T16:00:00Z", None, None),
    // A leap day, and the month that follows it, across midnight.
    ("America/Chicago", "2028-02-28 22:00", "2028-02-29 10:00", "2028-02-29T04:00:00Z", "2028-02-29T16:00:00Z", None, None),
    ("America/Chicago", "2028-02-29 23:00", "2028-03-01 01:00", "2028-03-01T05:00:00Z", "2028-03-01T07:00:00Z", None, None),
    // Several days, across a month's end.
    ("Europe/Berlin", "2026-01-31 23:00", "2026-02-02 09:00", "2026-01-31T22:00:00Z", "2026-02-02T08:00:00Z", None, None),
    // The vendor's point window.
    ("UTC", "2026-01-13 13:45", "2026-01-13 13:45", "2026-01-13T13:45:00Z", "2026-01-13T14:00:00Z", None, None),
];

#[test]
fn windows_in_real_zones_mean_the_right_instants() {
    assert!(WINDOWS.len() >= 30);
    for &(name, start, end, utc_start, utc_end, start_dst, end_dst) in WINDOWS {
        let case = format!("{name} {start} to {end}");
        let w = LocalWindow {
            start: local(start),
            end: local(end),
        }
        .resolve(zone(name), Duration::minutes(15))
        .unwrap_or_else(|_| panic!("{case}: refused"));
        assert_eq!((w.start, w.end), (utc(utc_start), utc(utc_end)), "{case}");
        assert_eq!(w.start_adjusted.as_str(), start_dst, "{case}: start");
        assert_eq!(w.end_adjusted.as_str(), end_dst, "{case}: end");
        assert_eq!(w.zone.name(), name);
    }
}

#[test]
fn an_adjusted_time_is_named_in_the_local_rendering() {
    let w = LocalWindow {
        start: local("2026-03-29 01:30"),
        end: local("2026-03-29 03:00"),
    }
    .resolve(zone("Europe/London"), Duration::minutes(15))
    .unwrap();
    assert_eq!(w.start_adjusted, Adjustment::Gap);
    assert_eq!(w.local_rfc3339(w.start), "2026-03-29T02:00:00+01:00");
    assert_eq!(
        w.local_start, "29/03/2026 01:30",
        "the local time as sent is kept"
    );
}

fn hours(h: &str, days: &str) -> CallingHours {
    CallingHours::new(
        Some(CallingHours::parse_hours(h).unwrap()),
        Some(CallingHours::parse_days(days).unwrap()),
    )
    .unwrap()
}

const ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Chatham",
    "America/Phoenix",
];

prop_compose! {
    fn any_rules()(open in 0u32..1439, len in 1u32..1440, days in 1u8..128) -> CallingHours {
        let close = (open + len).min(1440);
        CallingHours::new(Some((open, close)), Some(days))
            .unwrap_or_else(|| CallingHours::new(Some((0, 1439)), None).unwrap())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        // A failing case is kept beside this file and replayed first on every later run.
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource(
            "regressions",
        ))),
        ..ProptestConfig::default()
    })]

    /// Whatever the rules and the zone, a clipped window starts and ends inside calling hours
    /// and inside the window; and a window refused has no allowed minute at all.
    #[test]
    fn clipping_never_leaves_calling_hours(
        rules in any_rules(),
        z in 0..ZONES.len(),
        // Minutes from 2026-01-01 over two years: every change of 2026 and 2027.
        start in 0i64..(2 * 366 * 1440),
        length in 1i64..(3 * 1440),
    ) {
        let zone = zone(ZONES[z]);
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(start);
        let end = start + Duration::minutes(length);
        match rules.clip(zone, start, end) {
            Some((s, e)) => {
                prop_assert!(start <= s && s < e && e <= end, "{s}..{e} outside {start}..{end}");
                prop_assert!(rules.allows(zone, s), "start {s} not allowed by {rules}");
                prop_assert!(rules.allows(zone, e - Duration::minutes(1)), "end {e} not allowed by {rules}");
            }
            None => {
                let mut t = start;
                while t < end {
                    prop_assert!(!rules.allows(zone, t), "{t} allowed, yet {start}..{end} refused");
                    t += Duration::minutes(1);
                }
            }
        }
    }

    /// The span found for any instant starts at or after it, inside calling hours, and every
    /// minute of it is allowed.
    #[test]
    fn spans_hold_only_allowed_minutes(
        rules in any_rules(),
        z in 0..ZONES.len(),
        at in 0i64..(2 * 366 * 1440),
    ) {
        let zone = zone(ZONES[z]);
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(at);
        let span = rules.span_from(zone, at);
        prop_assert!(span.start >= at && span.start < span.end);
        prop_assert!(span.end - span.start <= Duration::days(8));
        let mut t = span.start;
        while t < span.end {
            prop_assert!(rules.allows(zone, t), "{t} in {}..{} not allowed by {rules}", span.start, span.end);
            t += Duration::minutes(7);
        }
    }
}

// ---- Through the HTTP API ----

#[tokio::test]
async fn a_window_beyond_the_horizon_is_refused() {
    let app = spawn_app_with(&["--horizon", "30d"]).await;
    app.seed_prerequisites().await;
    // t0 is 12/01/2026 09:00 UTC: 11/02 09:00 is 30 days ahead, 11/02 09:01 is not allowed.
    let late = seed_with(json!({"StartDate": "11/02/2026", "EndDate": "11/02/2026",
        "StartTime": "09:01", "EndTime": "10:00"}));
    let (status, reply) = app.post_lcm(&late).await;
    assert_eq!(status, 400);
    let e = lcm_error(&reply);
    assert_eq!(e["message"], "Invalid callback window.");
    assert_eq!(e["field"], "StartDate");
    let detail = e["detail"].as_str().unwrap();
    assert!(detail.contains("2026-02-11T09:01:00Z"), "{detail}");
    assert!(detail.contains("more than 30d"), "{detail}");
    assert!(
        detail.contains("2026-02-11T09:00:00Z"),
        "names the furthest start: {detail}"
    );

    let edge = seed_with(json!({"StartDate": "11/02/2026", "EndDate": "11/02/2026",
        "StartTime": "09:00", "EndTime": "10:00"}));
    let (status, reply) = app.post_lcm(&edge).await;
    assert_eq!((status, &response(&reply)["success"]), (200, &json!(true)));
}

#[tokio::test]
async fn calling_hours_clip_a_window_and_refuse_one_without_an_allowed_minute() {
    let app = spawn_app_with(&[
        "--calling-hours",
        "08:00-21:00",
        "--calling-days",
        "Mon-Sat",
    ])
    .await;
    app.seed_prerequisites().await;
    // Tuesday 13/01/2026 in Chicago (UTC-6): 07:00-09:30 is clipped to 08:00-09:30.
    let (status, reply) = app
        .post_lcm(&seed_with(json!({"StartTime": "07:00", "EndTime": "09:30",
            "TimeZone": "America/Chicago"})))
        .await;
    assert_eq!(status, 200, "{reply}");
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let (_, cb) = app.get(&format!("/v1/callbacks/{id}")).await;
    assert_eq!(cb["window_start"], "2026-01-13T14:00:00Z");
    assert_eq!(cb["window_end"], "2026-01-13T15:30:00Z");
    assert_eq!(cb["timezone"], "America/Chicago");
    assert_eq!(
        cb["local_start"], "13/01/2026 07:00",
        "the local window as sent"
    );
    let row: (String, String, String, String, String, String, bool) = app
        .sql()
        .query_row(
            "SELECT window_start_utc, window_start_local, window_end_local, requested_start_utc,
                 requested_end_utc, calling_hours, clipped
             FROM v_callbacks WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "2026-01-13T14:00:00Z".into(),
            "2026-01-13T08:00:00-06:00".into(),
            "2026-01-13T09:30:00-06:00".into(),
            "2026-01-13T13:00:00Z".into(),
            "2026-01-13T15:30:00Z".into(),
            "Mon-Sat 08:00-21:00".into(),
            true
        )
    );

    // Sunday 18/01/2026: no calling that day at all.
    let (status, reply) = app
        .post_lcm(&seed_with(
            json!({"callid": "12345", "StartDate": "18/01/2026",
            "EndDate": "18/01/2026", "StartTime": "10:00", "EndTime": "12:00",
            "TimeZone": "America/Chicago"}),
        ))
        .await;
    assert_eq!(status, 400);
    let e = lcm_error(&reply);
    assert_eq!(e["message"], "Invalid callback window.");
    assert_eq!(e["field"], "StartTime");
    assert_eq!(
        e["detail"],
        "the window 18/01/2026 10:00 to 18/01/2026 12:00 (America/Chicago) has no minute inside \
         calling hours; calling is allowed Mon-Sat 08:00-21:00 in America/Chicago"
    );
    // A late evening window on a weekday is refused the same way.
    let (status, _) = app
        .post_lcm(&seed_with(json!({"StartTime": "21:00", "EndTime": "23:00",
            "TimeZone": "America/Chicago"})))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn without_calling_hours_nothing_is_clipped_and_reports_show_local_times() {
    let app = spawn_app_with(&["--timezone", "Asia/Kathmandu"]).await;
    app.seed_prerequisites().await;
    let (status, reply) = app
        .post_lcm(&seed_with(
            json!({"StartTime": "22:00", "EndTime": "23:45"}),
        ))
        .await;
    assert_eq!(status, 200, "{reply}");
    let id = response(&reply)["callback_id"].as_i64().unwrap();
    let row: (String, String, String, Option<String>, bool) = app
        .sql()
        .query_row(
            "SELECT window_start_utc, window_start_local, timezone, calling_hours, clipped
             FROM v_callbacks WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "2026-01-13T16:15:00Z".into(),
            "2026-01-13T22:00:00+05:45".into(),
            "Asia/Kathmandu".into(),
            None,
            false
        )
    );
}

// ---- The scheduler, with calling hours ----

fn new_york() -> Tz {
    zone("America/New_York")
}

fn evening_policy(fallback: Fallback) -> Policy {
    Policy {
        calling_hours: Some(hours("08:00-21:00", "Mon-Sat")),
        fallback,
        ..Policy::default()
    }
}

/// A rig with calling hours 08:00-21:00 Mon-Sat, its clock at `now`, and a callback from
/// Tuesday 20:00 to Wednesday 10:00 in New York (EST, UTC-5): one hour, a night, two hours.
async fn overnight(now: DateTime<Utc>) -> (Rig, i64) {
    let rig = Rig::new(evening_policy(Fallback::Expire));
    rig.clock.set(now);
    rig.login("agent", true).await;
    let id = rig
        .callback_local(
            "ACC",
            "agent",
            new_york(),
            local("2026-01-13 20:00"),
            local("2026-01-14 10:00"),
        )
        .await
        .unwrap();
    (rig, id)
}

/// Leases at `at` and checks that whatever comes out is inside calling hours.
async fn lease_at(rig: &Rig, at: DateTime<Utc>) -> Vec<i64> {
    rig.clock.set(at);
    let events = rig.lease("dialer", None).await;
    let rules = rig.service.policy().calling_hours.unwrap();
    for e in &events {
        assert!(
            rules.allows(e.timezone.known().unwrap(), at),
            "redial {} handed out at {at}, outside {rules}",
            e.id
        );
    }
    events.iter().map(|e| e.callback_id).collect()
}

#[tokio::test]
async fn a_window_across_the_night_pauses_at_the_close_and_resumes_at_the_opening() {
    // Tuesday 20:00 to Wednesday 10:00 in New York (EST, UTC-5).
    let (rig, id) = overnight(utc("2026-01-13T12:00:00Z")).await;
    rig.tick_at(utc("2026-01-14T00:59:00Z")).await;
    rig.tick_at(utc("2026-01-14T01:00:00Z")).await;
    assert_eq!(rig.state(id).await.0, "due");
    // Nobody takes it before 21:00 local; at 21:00 it is no longer handed out, tick or not.
    assert!(lease_at(&rig, utc("2026-01-14T02:00:00Z")).await.is_empty());
    let closed = rig.tick_at(utc("2026-01-14T02:00:00Z")).await;
    assert_eq!(closed.paused, 1);
    assert_eq!(
        closed.next_wake,
        Some(utc("2026-01-14T11:50:00Z")),
        "parked until ten minutes before the hour of its staging"
    );
    let unparked = rig.tick_at(utc("2026-01-14T11:50:00Z")).await;
    assert_eq!(
        unparked.next_wake,
        Some(utc("2026-01-14T12:59:00Z")),
        "staged for 08:00"
    );
    assert_eq!(rig.state(id).await.0, "scheduled");
    assert!(lease_at(&rig, utc("2026-01-14T12:59:59Z")).await.is_empty());
    rig.tick_at(utc("2026-01-14T12:59:00Z")).await;
    assert!(lease_at(&rig, utc("2026-01-14T12:59:59.999Z"))
        .await
        .is_empty());
    assert_eq!(lease_at(&rig, utc("2026-01-14T13:00:00Z")).await, vec![id]);
    let withdrawn: i64 = rig
        .sql(
            "SELECT count(*) FROM events WHERE callback_id = ?1 AND state = 'withdrawn'",
            id,
        )
        .await;
    assert_eq!(
        withdrawn, 1,
        "the evening's redial nobody took was withdrawn"
    );
    let attempt: i64 = rig
        .sql("SELECT max(attempt) FROM events WHERE callback_id = ?1", id)
        .await;
    assert_eq!(attempt, 1, "a pause is not an attempt");
}

#[tokio::test]
async fn a_retry_that_would_fall_after_the_close_waits_for_the_opening() {
    let (rig, id) = overnight(utc("2026-01-13T12:00:00Z")).await;
    rig.tick_at(utc("2026-01-14T00:59:00Z")).await;
    // 20:59:30 local: a dialer takes it and finds the line busy; retry-busy is 1m, which
    // would be 21:00:30, after the close.
    assert_eq!(lease_at(&rig, utc("2026-01-14T01:59:30Z")).await, vec![id]);
    let next = rig.attempt(id, AttemptResult::Busy).await;
    assert_eq!(
        next,
        Some(utc("2026-01-14T11:50:00Z").timestamp_millis()),
        "parked until the hour of its staging for 08:00 is near"
    );
    let open_at: i64 = rig
        .sql("SELECT open_at FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(open_at, utc("2026-01-14T13:00:00Z").timestamp_millis());
    rig.tick_at(utc("2026-01-14T12:59:00Z")).await;
    assert!(lease_at(&rig, utc("2026-01-14T12:59:59Z")).await.is_empty());
    assert_eq!(lease_at(&rig, utc("2026-01-14T13:00:00Z")).await, vec![id]);
}

#[tokio::test]
async fn a_dialer_holding_the_redial_at_the_close_may_still_report_its_attempt() {
    let (rig, id) = overnight(utc("2026-01-13T12:00:00Z")).await;
    rig.tick_at(utc("2026-01-14T00:59:00Z")).await;
    assert_eq!(lease_at(&rig, utc("2026-01-14T01:59:50Z")).await, vec![id]);
    let closed = rig.tick_at(utc("2026-01-14T02:00:00Z")).await;
    assert_eq!(closed.paused, 1);
    // The dial began at 20:59:50 and connected just after the close.
    rig.clock.set(utc("2026-01-14T02:00:20Z"));
    assert_eq!(rig.attempt(id, AttemptResult::Connected).await, None);
    assert_eq!(rig.state(id).await, ("completed".to_owned(), 1));
    // Paused overnight, it was parked until the morning: finished, it waits for nothing.
    let waits: (Option<i64>, Option<i64>) = rig
        .store()
        .read(move |c| {
            Ok(c.query_row(
                "SELECT next_at, parked_at FROM callbacks WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(waits, (None, None));
    let morning = rig.tick_at(utc("2026-01-14T12:50:00Z")).await;
    assert_eq!((morning.unparked, morning.next_wake), (0, None));
}

#[tokio::test]
async fn the_next_day_fallback_keeps_local_hours_across_a_dst_change() {
    let rig = Rig::new(Policy {
        fallback: Fallback::NextDay,
        ..Policy::default()
    });
    rig.clock.set(utc("2026-03-07T12:00:00Z"));
    rig.login("owner", true).await;
    // Saturday 7 March 09:00-10:00 EST; the clocks change that night.
    let id = rig
        .callback_local(
            "ACC",
            "owner",
            new_york(),
            local("2026-03-07 09:00"),
            local("2026-03-07 10:00"),
        )
        .await
        .unwrap();
    rig.login("owner", false).await;
    rig.tick_at(utc("2026-03-07T13:59:00Z")).await;
    rig.tick_at(utc("2026-03-07T14:00:00Z")).await;
    let moved = rig.tick_at(utc("2026-03-07T14:15:00Z")).await;
    assert_eq!(moved.fallbacks, 1);
    let window: (i64, i64, String) = rig
        .store()
        .read(move |c| {
            Ok(c.query_row(
                "SELECT window_start, window_end, window_start_local FROM callbacks WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .await
        .unwrap();
    // Sunday 09:00 EDT is 13:00 UTC, an hour earlier in UTC than Saturday's 14:00.
    assert_eq!(
        window,
        (
            utc("2026-03-08T13:00:00Z").timestamp_millis(),
            utc("2026-03-08T14:00:00Z").timestamp_millis(),
            "2026-03-08T09:00:00-04:00".to_owned()
        )
    );
}

#[tokio::test]
async fn a_pause_across_the_spring_forward_night_resumes_at_local_eight() {
    let rig = Rig::new(Policy {
        calling_hours: Some(hours("08:00-21:00", "Mon-Sun")),
        ..Policy::default()
    });
    rig.clock.set(utc("2026-03-07T12:00:00Z"));
    rig.login("agent", true).await;
    let id = rig
        .callback_local(
            "ACC",
            "agent",
            new_york(),
            local("2026-03-07 20:00"),
            local("2026-03-08 12:00"),
        )
        .await
        .unwrap();
    rig.tick_at(utc("2026-03-08T00:59:00Z")).await;
    rig.tick_at(utc("2026-03-08T01:00:00Z")).await;
    // 21:00 EST is 02:00 UTC; 08:00 the next morning is EDT, 12:00 UTC.
    let closed = rig.tick_at(utc("2026-03-08T02:00:00Z")).await;
    assert_eq!(closed.paused, 1);
    assert_eq!(closed.next_wake, Some(utc("2026-03-08T10:50:00Z")));
    let unparked = rig.tick_at(utc("2026-03-08T10:50:00Z")).await;
    assert_eq!(unparked.next_wake, Some(utc("2026-03-08T11:59:00Z")));
    rig.tick_at(utc("2026-03-08T11:59:00Z")).await;
    assert!(lease_at(&rig, utc("2026-03-08T11:59:59Z")).await.is_empty());
    assert_eq!(lease_at(&rig, utc("2026-03-08T12:00:00Z")).await, vec![id]);
}

#[tokio::test]
async fn a_window_with_no_allowed_minute_is_refused_by_the_rig_too() {
    let rig = Rig::new(evening_policy(Fallback::Expire));
    rig.clock.set(utc("2026-01-13T12:00:00Z"));
    rig.login("agent", true).await;
    // Sunday 18 January.
    let refused = rig
        .callback_local(
            "ACC",
            "agent",
            new_york(),
            local("2026-01-18 10:00"),
            local("2026-01-18 11:00"),
        )
        .await;
    assert!(
        matches!(refused, Err(Error::OutsideCallingHours(_))),
        "{refused:?}"
    );
    let day = NaiveDate::from_ymd_opt(2026, 1, 19).unwrap();
    let monday = day.and_hms_opt(7, 0, 0).unwrap();
    let id = rig
        .callback_local(
            "ACC",
            "agent",
            new_york(),
            monday,
            monday + Duration::hours(2),
        )
        .await
        .unwrap();
    let start: i64 = rig
        .sql("SELECT window_start FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(
        start,
        utc("2026-01-19T13:00:00Z").timestamp_millis(),
        "clipped to 08:00 EST"
    );
}

#[tokio::test]
async fn a_window_stored_after_the_close_waits_for_the_next_opening() {
    // 22:00 in New York on Tuesday; the window began at 20:00 and runs to 10:00 tomorrow.
    let (rig, id) = overnight(utc("2026-01-14T03:00:00Z")).await;
    assert_eq!(rig.state(id).await.0, "scheduled");
    let open_at: i64 = rig
        .sql("SELECT open_at FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(open_at, utc("2026-01-14T13:00:00Z").timestamp_millis());
    assert!(lease_at(&rig, utc("2026-01-14T03:00:00Z")).await.is_empty());
    rig.tick_at(utc("2026-01-14T12:59:00Z")).await;
    assert_eq!(lease_at(&rig, utc("2026-01-14T13:00:00Z")).await, vec![id]);
}

/// A callback whose stored zone this build does not know (a hand edit here) keeps its stored
/// instants: at the close of its span of calling hours it ends, saying why, rather than
/// having its next opening read in UTC (08:00 UTC, 03:00 in New York).
#[tokio::test]
async fn a_zone_this_build_does_not_know_is_never_read_as_utc() {
    let (rig, id) = overnight(utc("2026-01-13T12:00:00Z")).await;
    rig.tick_at(utc("2026-01-14T00:59:00Z")).await;
    rig.tick_at(utc("2026-01-14T01:00:00Z")).await;
    rig.store()
        .write(move |c| {
            c.execute(
                "UPDATE callbacks SET timezone = 'Mars/Olympus_Mons' WHERE id = ?1",
                [id],
            )
            .map_err(redial::store::StoreError::from)
        })
        .await
        .unwrap();
    let cb = rig.get(id).await;
    assert_eq!(
        cb.timezone.name(),
        "Mars/Olympus_Mons",
        "still read, by name"
    );
    let window = (cb.window_start, cb.window_end);
    let closed = rig.tick_at(utc("2026-01-14T02:00:00Z")).await;
    assert_eq!((closed.paused, closed.expired), (0, 1));
    let after = rig.get(id).await;
    assert_eq!(after.state.as_str(), "expired");
    assert_eq!((after.window_start, after.window_end), window);
    let reason: String = rig
        .sql("SELECT end_reason FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(reason, "unknown-zone");
    let open_at: i64 = rig
        .sql("SELECT open_at FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(
        open_at,
        utc("2026-01-14T01:00:00Z").timestamp_millis(),
        "no opening was read in another zone"
    );
}
