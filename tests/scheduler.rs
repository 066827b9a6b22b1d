//! The scheduler and the queue, driven step by step: `tick(now)` with a clock the test sets,
//! on a real SQLite file. No sleeps: every instant is chosen.

mod common;

use chrono::Duration;
use common::rig::{at, Rig};
use redial::lcm::UserId;
use redial::lifecycle::{AttemptResult, EndReason, EventKind, STAGE_AHEAD};
use redial::policy::{Fallback, Policy};
use redial::scheduler;
use redial::service::queue::{AckRequest, LeaseRequest};
use redial::store::bulk::{self, Windows};
use redial::store::StoreError;

#[tokio::test]
async fn the_event_comes_at_window_start_and_not_a_millisecond_before() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 45), at(14, 30)).await;

    let early = rig.tick_at(at(13, 45) - Duration::milliseconds(1)).await;
    assert_eq!(early.opened, 0);
    assert_eq!(
        early.next_wake,
        Some(at(13, 45)),
        "the scheduler sleeps until the window opens"
    );
    assert!(rig.lease("d", None).await.is_empty());
    assert_eq!(rig.state(id).await.0, "scheduled");

    let on_time = rig.tick_at(at(13, 45)).await;
    assert_eq!(on_time.opened, 1);
    assert_eq!(
        on_time.next_wake,
        Some(at(14, 30)),
        "next: the window's end"
    );
    let events = rig.lease("d", None).await;
    assert_eq!(events.len(), 1);
    let event = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(
        event,
        serde_json::json!({
            "id": events[0].id, "type": "redial", "callback_id": id, "callid": format!("call-ACC-{}", at(13, 45).timestamp()),
            "AccountNumber": "ACC", "CallbackModeID": 1, "UserID": "agent", "personal": true,
            "OutcomeId": 4, "BusinessOutcome": 101, "window_start": "2026-01-13T13:45:00Z",
            "window_end": "2026-01-13T14:30:00Z", "timezone": "UTC", "attempt": 1
        })
    );
    assert_eq!(rig.state(id).await.0, "leased");
    let stored: String = rig
        .sql("SELECT state FROM callbacks WHERE id = ?1", id)
        .await;
    let reported: String = rig
        .sql("SELECT state FROM v_callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(
        (stored.as_str(), reported.as_str()),
        ("due", "leased"),
        "leased is read from the queue"
    );
    assert_eq!(
        rig.sql::<i64>("SELECT count(*) FROM events WHERE callback_id = ?1", id)
            .await,
        1
    );
}

#[tokio::test]
async fn a_staged_redial_is_leasable_at_its_instant_with_nothing_written_then() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 45), at(14, 30)).await;

    let staged = rig.tick_at(at(13, 45) - STAGE_AHEAD).await;
    assert_eq!((staged.staged, staged.opened), (1, 0));
    assert_eq!(staged.next_wake, Some(at(13, 45)));
    assert!(
        rig.lease("d", None).await.is_empty(),
        "not before its instant"
    );
    assert_eq!(rig.state(id).await.0, "scheduled");

    // At 13:45 a dialer leases before any tick has run: the event is there already, and the
    // callback shows as leased at once. The lease wrote only the events table.
    rig.clock.set(at(13, 45));
    let events = rig.lease("d", None).await;
    assert_eq!(events.len(), 1);
    assert_eq!(rig.state(id).await.0, "leased");
    let stored: String = rig
        .sql("SELECT state FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(stored, "scheduled");
    // The tick at 13:45 makes it due: the next instant is the window's end.
    let opened = rig.tick_at(at(13, 45)).await;
    assert_eq!(opened.opened, 1);
    let next_at: i64 = rig
        .sql("SELECT next_at FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(next_at, at(14, 30).timestamp_millis());
    assert_eq!(rig.state(id).await.0, "leased");
    assert_eq!(
        rig.sql::<i64>("SELECT count(*) FROM events WHERE callback_id = ?1", id)
            .await,
        1,
        "one event, not a second one at opening"
    );
}

#[tokio::test]
async fn a_point_window_lasts_min_window() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 45), at(13, 45)).await;
    rig.tick_at(at(13, 45)).await;
    let events = rig.lease("d", None).await;
    assert_eq!(
        serde_json::to_value(&events[0]).unwrap()["window_end"],
        "2026-01-13T14:00:00Z"
    );
    let done = rig.tick_at(at(14, 0)).await;
    assert_eq!(done.expired, 1);
    assert_eq!(rig.state(id).await.0, "expired");
}

#[tokio::test]
async fn each_result_retries_after_its_own_delay() {
    for (result, delay) in [
        (AttemptResult::Busy, Duration::minutes(1)),
        (AttemptResult::NoAnswer, Duration::minutes(20)),
        (AttemptResult::Failed, Duration::minutes(5)),
    ] {
        let rig = Rig::new(Policy::default());
        rig.login("agent", true).await;
        let id = rig.callback("ACC", "agent", at(13, 0), at(15, 0)).await;
        rig.tick_at(at(13, 0)).await;
        let first = rig.lease("d", None).await;
        rig.clock.set(at(13, 2));
        let wake = rig.attempt(id, result).await.expect("a retry is scheduled");
        let retry_at = at(13, 2) + delay;
        let open_at: i64 = rig
            .sql("SELECT open_at FROM callbacks WHERE id = ?1", id)
            .await;
        assert_eq!(open_at, retry_at.timestamp_millis(), "{result:?}");
        let stage_at = (retry_at - STAGE_AHEAD).max(at(13, 2));
        assert_eq!(
            wake,
            stage_at.timestamp_millis(),
            "the scheduler stages the retry ahead"
        );
        assert_eq!(rig.state(id).await, ("scheduled".into(), 1));
        assert_eq!(
            rig.ack("d", &[first[0].id]).await,
            vec![first[0].id],
            "an ack after the report is still an ack"
        );

        assert_eq!(
            rig.tick_at(at(13, 2) + delay - Duration::milliseconds(1))
                .await
                .opened,
            0
        );
        assert_eq!(rig.tick_at(at(13, 2) + delay).await.opened, 1);
        assert_eq!(
            rig.state(id).await.0,
            "due",
            "the first attempt's acked event does not make the retry look leased"
        );
        let second = rig.lease("d", None).await;
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].attempt, 2);
        assert_ne!(second[0].id, first[0].id);

        rig.attempt(id, AttemptResult::Connected).await;
        assert_eq!(rig.state(id).await, ("completed".into(), 2));
        let end_reason: String = rig
            .sql("SELECT end_reason FROM callbacks WHERE id = ?1", id)
            .await;
        assert_eq!(end_reason, "connected");
        assert_eq!(
            rig.sql::<i64>("SELECT count(*) FROM attempts WHERE callback_id = ?1", id)
                .await,
            2
        );
    }
}

#[tokio::test]
async fn max_attempts_and_a_retry_past_the_window_expire_the_callback() {
    let rig = Rig::new(Policy {
        max_attempts: 2,
        ..Policy::default()
    });
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 0), at(15, 0)).await;
    rig.tick_at(at(13, 0)).await;
    rig.attempt(id, AttemptResult::Busy).await;
    rig.tick_at(at(13, 1)).await;
    assert_eq!(rig.attempt(id, AttemptResult::Busy).await, None);
    assert_eq!(rig.state(id).await, ("expired".into(), 2));
    let events = rig.lease("d", None).await;
    let expired: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Expired)
        .collect();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].reason, Some(EndReason::MaxAttempts));

    // No answer at 14:45 would retry at 15:05, after the window: the callback ends instead.
    let id = rig.callback("ACC2", "agent", at(14, 0), at(15, 0)).await;
    rig.tick_at(at(14, 0)).await;
    rig.clock.set(at(14, 45));
    assert_eq!(rig.attempt(id, AttemptResult::NoAnswer).await, None);
    let reason: String = rig
        .sql("SELECT end_reason FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(reason, "window-ended");
}

#[tokio::test]
async fn expiry_without_a_lease() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 0), at(13, 30)).await;
    rig.tick_at(at(13, 0)).await;
    // Nobody leased it. At the window's end it expires and says so on the queue.
    let outcome = rig.tick_at(at(13, 30)).await;
    assert_eq!(outcome.expired, 1);
    assert_eq!(rig.state(id).await.0, "expired");
    let events = rig.lease("d", None).await;
    assert_eq!(
        events.len(),
        1,
        "the redial is withdrawn, only the expired event is left"
    );
    assert_eq!(events[0].kind, EventKind::Expired);
    assert_eq!(events[0].reason, Some(EndReason::WindowEnded));
}

#[tokio::test]
async fn expiry_with_a_lease_held() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 0), at(13, 30)).await;
    rig.tick_at(at(13, 0)).await;
    let held = rig.lease("d", None).await;
    assert_eq!(held.len(), 1);
    rig.tick_at(at(13, 30)).await;
    assert_eq!(rig.state(id).await.0, "expired");
    let state: String = rig
        .sql("SELECT state FROM events WHERE id = ?1", held[0].id)
        .await;
    assert_eq!(state, "withdrawn");
    assert!(
        rig.ack("d", &[held[0].id]).await.is_empty(),
        "a withdrawn event cannot be acked"
    );
    // A dial that began inside the window and connected after it still counts.
    rig.attempt(id, AttemptResult::Connected).await;
    assert_eq!(rig.state(id).await.0, "completed");
}

#[tokio::test]
async fn no_redial_is_handed_out_after_the_window_even_before_the_scheduler_runs() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    rig.callback("ACC", "agent", at(13, 0), at(13, 30)).await;
    rig.tick_at(at(13, 0)).await;
    rig.clock.set(at(13, 30));
    assert!(rig.lease("d", None).await.is_empty());
}

#[tokio::test]
async fn an_unacked_lease_is_redelivered_with_the_same_id_until_dead() {
    let rig = Rig::new(Policy {
        max_deliveries: 3,
        ..Policy::default()
    });
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 0), at(15, 0)).await;
    rig.tick_at(at(13, 0)).await;
    let first = rig.lease("d1", None).await;
    let event_id = first[0].id;
    let mut now = at(13, 0);
    for delivery in 2..=3 {
        now += Duration::seconds(30);
        let outcome = rig.tick_at(now).await;
        assert_eq!(outcome.leases_returned, 1);
        assert_eq!(rig.state(id).await.0, "due");
        let again = rig.lease("d2", None).await;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, event_id, "the same id on redelivery");
        let deliveries: i64 = rig
            .sql("SELECT deliveries FROM events WHERE id = ?1", event_id)
            .await;
        assert_eq!(deliveries, delivery);
    }
    // The first consumer's lease is long gone; its late ack does not touch d2's lease.
    assert!(rig.ack("d1", &[event_id]).await.is_empty());
    now += Duration::seconds(30);
    let outcome = rig.tick_at(now).await;
    assert_eq!(outcome.dead_lettered, 1);
    let state: String = rig
        .sql("SELECT state FROM events WHERE id = ?1", event_id)
        .await;
    assert_eq!(state, "dead");
    assert!(rig.lease("d3", None).await.is_empty());
}

#[tokio::test]
async fn ack_is_final_and_nack_releases_at_once() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let a = rig.callback("A", "agent", at(13, 0), at(15, 0)).await;
    let b = rig.callback("B", "agent", at(13, 0), at(15, 0)).await;
    rig.tick_at(at(13, 0)).await;
    let events = rig.lease("d", None).await;
    assert_eq!(events.len(), 2);
    let (ea, eb) = (events[0].id, events[1].id);
    assert_eq!(rig.ack("d", &[ea]).await, vec![ea]);
    let released = rig
        .service
        .nack(AckRequest {
            consumer: "d".into(),
            ids: vec![eb],
        })
        .await
        .unwrap();
    assert_eq!(released.done, vec![eb]);
    assert_eq!(rig.state(b).await.0, "due");
    let again = rig.lease("d", None).await;
    assert_eq!(
        again.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![eb],
        "nacked at once, acked never"
    );
    rig.ack("d", &[eb]).await;
    rig.tick_at(at(13, 5)).await;
    assert!(
        rig.lease("d", None).await.is_empty(),
        "the acked one never comes back"
    );
    assert_eq!(rig.state(a).await.0, "leased");
}

#[tokio::test]
async fn a_lease_takes_the_longest_waiting_events_first() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    for (account, minute) in [("A", 40), ("B", 45), ("C", 50)] {
        rig.callback(account, "agent", at(13, minute), at(15, 0))
            .await;
        rig.tick_at(at(13, minute)).await;
    }
    let lease = |max| {
        rig.service.lease(LeaseRequest {
            consumer: "d".into(),
            max,
            lease_ms: 30_000,
            wait_ms: 0,
            user_id: None,
        })
    };
    let first = lease(1).await.unwrap();
    assert_eq!(first[0].account_number.as_str(), "A");
    // Handed back at 13:52, A has waited least: the oldest id, but the latest to be ready.
    rig.clock.set(at(13, 52));
    rig.service
        .nack(AckRequest {
            consumer: "d".into(),
            ids: vec![first[0].id],
        })
        .await
        .unwrap();
    let next: Vec<String> = lease(2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.account_number.to_string())
        .collect();
    assert_eq!(next, ["B", "C"]);
}

#[tokio::test]
async fn the_user_filter_narrows_to_one_agents_personal_callbacks() {
    let rig = Rig::new(Policy::default());
    rig.login("anna", true).await;
    rig.login("bob", true).await;
    rig.callback("A", "anna", at(13, 0), at(15, 0)).await;
    rig.callback("B", "bob", at(13, 0), at(15, 0)).await;
    rig.tick_at(at(13, 0)).await;
    let bobs = rig.lease("bob-dialer", Some("bob")).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].user_id.as_str(), "bob");
    assert!(rig.lease("bob-dialer", Some("bob")).await.is_empty());
    let rest = rig.lease("any", None).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].user_id.as_str(), "anna");
}

/// A normal callback is the campaign's: any agent's dialer takes it, with its own agent's
/// personal callbacks, and an unfiltered lease takes it too.
#[tokio::test]
async fn a_normal_callback_goes_to_any_agent() {
    let rig = Rig::new(Policy::default());
    rig.login("anna", true).await;
    rig.login("bob", true).await;
    let ncb = rig.normal_callback("N", "anna", at(13, 0), at(15, 0)).await;
    rig.callback("A", "anna", at(13, 0), at(15, 0)).await;
    rig.tick_at(at(13, 0)).await;
    let bobs = rig.lease("bob-dialer", Some("bob")).await;
    assert_eq!(
        bobs.len(),
        1,
        "bob takes the normal callback, not anna's own"
    );
    assert_eq!(bobs[0].callback_id, ncb);
    assert!(!bobs[0].personal);
    assert_eq!(bobs[0].user_id.as_str(), "anna", "the agent who set it");
    let annas = rig.lease("anna-dialer", Some("anna")).await;
    assert_eq!(annas.len(), 1);
    assert!(annas[0].personal);
    let kind: String = rig
        .sql("SELECT kind FROM callbacks WHERE id = ?1", ncb)
        .await;
    assert_eq!(kind, "normal");
}

/// The owner-absent rule is about a personal callback's owner: a normal one has none, so the
/// agent who set it leaving changes nothing.
#[tokio::test]
async fn a_normal_callback_has_no_owner_absent_deadline() {
    let rig = Rig::new(Policy::default());
    rig.login("anna", true).await;
    let ncb = rig.normal_callback("N", "anna", at(13, 0), at(15, 0)).await;
    rig.login("anna", false).await;
    let opened = rig.tick_at(at(13, 0)).await;
    assert_eq!(opened.next_wake, Some(at(15, 0)), "no deadline 15m on");
    let later = rig.tick_at(at(13, 30)).await;
    assert_eq!(later.fallbacks, 0);
    assert_eq!(rig.state(ncb).await.0, "due");
    assert_eq!(rig.lease("campaign", None).await.len(), 1);
}

#[tokio::test]
async fn owner_absent_expire() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 0), at(15, 0)).await;
    rig.login("agent", false).await;
    let opened = rig.tick_at(at(13, 0)).await;
    assert_eq!(
        opened.next_wake,
        Some(at(13, 15)),
        "the owner is away: a deadline 15m on"
    );
    rig.tick_at(at(13, 15)).await;
    assert_eq!(rig.state(id).await.0, "expired");
    let fallback: String = rig
        .sql("SELECT fallback FROM callbacks WHERE id = ?1", id)
        .await;
    let reason: String = rig
        .sql("SELECT end_reason FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(
        (fallback.as_str(), reason.as_str()),
        ("expire", "owner-absent")
    );
}

#[tokio::test]
async fn an_owner_on_a_call_is_present_though_logged_out() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 0), at(15, 0)).await;
    rig.login("agent", false).await;
    rig.on_call("inbound-1", "OTHER", "agent").await;
    let opened = rig.tick_at(at(13, 0)).await;
    assert_eq!(opened.opened, 1);
    assert_eq!(
        opened.next_wake,
        Some(at(15, 0)),
        "no owner-absent deadline: the owner is on a call"
    );
    assert_eq!(rig.state(id).await.0, "due");
}

#[tokio::test]
async fn owner_back_before_the_deadline_keeps_the_callback_personal() {
    let rig = Rig::new(Policy {
        fallback: Fallback::AnyAgent,
        ..Policy::default()
    });
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 0), at(15, 0)).await;
    rig.login("agent", false).await;
    rig.tick_at(at(13, 0)).await;
    rig.clock.set(at(13, 10));
    rig.login("agent", true).await;
    let outcome = rig.tick_at(at(13, 15)).await;
    assert_eq!(outcome.fallbacks, 0);
    assert_eq!(outcome.next_wake, Some(at(15, 0)));
    let personal: bool = rig
        .sql("SELECT personal FROM callbacks WHERE id = ?1", id)
        .await;
    assert!(personal);
}

#[tokio::test]
async fn owner_absent_any_agent() {
    let rig = Rig::new(Policy {
        fallback: Fallback::AnyAgent,
        ..Policy::default()
    });
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 0), at(15, 0)).await;
    rig.tick_at(at(13, 0)).await;
    let personal = rig.lease("agent-dialer", Some("agent")).await;
    assert!(personal[0].personal);
    // The owner logs out while the callback is open and stays away.
    rig.clock.set(at(13, 5));
    rig.login("agent", false).await;
    let outcome = rig.tick_at(at(13, 20)).await;
    assert_eq!(outcome.fallbacks, 1);
    let state: String = rig
        .sql("SELECT state FROM events WHERE id = ?1", personal[0].id)
        .await;
    assert_eq!(state, "withdrawn");
    // Now any agent may take it, as a normal callback: another agent's dialer leases it.
    let anyone = rig.lease("campaign", Some("another-agent")).await;
    assert_eq!(anyone.len(), 1);
    assert!(!anyone[0].personal);
    let fallback: String = rig
        .sql("SELECT fallback FROM callbacks WHERE id = ?1", id)
        .await;
    let at_ms: i64 = rig
        .sql("SELECT fallback_at FROM callbacks WHERE id = ?1", id)
        .await;
    assert_eq!(
        (fallback.as_str(), at_ms),
        ("any-agent", at(13, 20).timestamp_millis())
    );
}

#[tokio::test]
async fn owner_absent_next_day_moves_once() {
    let rig = Rig::new(Policy {
        fallback: Fallback::NextDay,
        ..Policy::default()
    });
    rig.login("agent", true).await;
    let id = rig.callback("ACC", "agent", at(13, 0), at(15, 0)).await;
    rig.login("agent", false).await;
    rig.tick_at(at(13, 0)).await;
    let outcome = rig.tick_at(at(13, 15)).await;
    assert_eq!(outcome.fallbacks, 1);
    assert_eq!(
        outcome.next_wake,
        Some(at(11, 50) + Duration::days(1)),
        "the moved window waits parked until ten minutes before the hour of its staging"
    );
    let unparked = rig.tick_at(at(11, 50) + Duration::days(1)).await;
    assert_eq!(
        (unparked.unparked, unparked.next_wake),
        (1, Some(at(13, 0) + Duration::days(1) - STAGE_AHEAD)),
        "then it is staged ahead of its new start"
    );
    let cb = rig.get(id).await;
    assert_eq!(
        (cb.state.as_str(), cb.window_start),
        ("scheduled", at(13, 0) + Duration::days(1))
    );
    assert_eq!(cb.local_end, "14/01/2026 15:00");
    // Away the next day too: the callback ends.
    rig.tick_at(at(13, 0) + Duration::days(1)).await;
    rig.tick_at(at(13, 15) + Duration::days(1)).await;
    assert_eq!(rig.state(id).await.0, "expired");
}

#[tokio::test]
async fn supersede_and_cancel_withdraw_events() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let old = rig.callback("ACC", "agent", at(13, 0), at(15, 0)).await;
    rig.tick_at(at(13, 0)).await;
    let new = rig.callback("ACC", "agent", at(16, 0), at(17, 0)).await;
    assert_eq!(rig.state(old).await.0, "superseded");
    assert!(
        rig.lease("d", None).await.is_empty(),
        "the superseded callback's redial is withdrawn"
    );

    rig.tick_at(at(16, 0)).await;
    rig.cancel(new).await;
    assert_eq!(rig.state(new).await.0, "cancelled");
    assert!(rig.lease("d", None).await.is_empty());
}

#[tokio::test]
async fn a_burst_is_handled_in_bounded_ticks() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let n = scheduler::TICK_BATCH as usize + 10;
    for i in 0..n {
        rig.callback(&format!("A{i}"), "agent", at(13, 0), at(15, 0))
            .await;
    }
    let first = rig.tick_at(at(13, 0)).await;
    assert_eq!(first.opened, scheduler::TICK_BATCH as usize);
    assert_eq!(
        first.next_wake,
        Some(at(13, 0)),
        "more to do: tick again at once"
    );
    let second = rig.tick_at(at(13, 0)).await;
    assert_eq!(second.opened, 10);
}

#[tokio::test]
async fn retention_purges_finished_rows_only() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let done = rig.callback("A", "agent", at(13, 0), at(15, 0)).await;
    let live = rig.callback("B", "agent", at(13, 0), at(15, 0)).await;
    rig.tick_at(at(13, 0)).await;
    let events = rig.lease("d", None).await;
    rig.attempt(done, AttemptResult::Connected).await;
    rig.ack("d", &events.iter().map(|e| e.id).collect::<Vec<_>>())
        .await;
    let cutoff = at(13, 0) + Duration::days(31);
    let deleted = rig.purge_before(cutoff).await;
    assert_eq!(deleted, 1);
    assert_eq!(
        rig.sql::<i64>("SELECT count(*) FROM callbacks WHERE id = ?1", done)
            .await,
        0
    );
    assert_eq!(
        rig.sql::<i64>("SELECT count(*) FROM events WHERE callback_id = ?1", done)
            .await,
        0,
        "its events went with it"
    );
    assert_eq!(
        rig.sql::<i64>("SELECT count(*) FROM events WHERE callback_id = ?1", live)
            .await,
        1,
        "a live callback keeps its acked event until it finishes"
    );
    assert_eq!(
        rig.sql::<i64>("SELECT count(*) FROM callbacks WHERE id = ?1", live)
            .await,
        1
    );
    assert_eq!(
        rig.sql::<i64>(
            "SELECT count(*) FROM outcomes WHERE callback_id IS NULL AND ?1 > 0",
            1
        )
        .await,
        1,
        "the outcome stays for reporting"
    );
    // Nothing finished is younger than the cutoff now.
    let again = rig.purge_before(cutoff).await;
    assert_eq!(again, 0);
}

/// `(next_at, parked_at)` of a callback.
async fn slot(rig: &Rig, id: i64) -> (Option<i64>, Option<i64>) {
    (
        rig.sql("SELECT next_at FROM callbacks WHERE id = ?1", id)
            .await,
        rig.sql("SELECT parked_at FROM callbacks WHERE id = ?1", id)
            .await,
    )
}

#[tokio::test]
async fn a_far_window_waits_parked_until_ten_minutes_before_its_hour() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    // Created at 09:00; staged at 13:44, in the 13:00 bucket, which unparks at 12:50.
    let id = rig.callback("ACC", "agent", at(13, 45), at(14, 30)).await;
    assert_eq!(
        slot(&rig, id).await,
        (None, Some(at(12, 50).timestamp_millis()))
    );

    let early = rig.tick_at(at(9, 0)).await;
    assert_eq!((early.unparked, early.next_wake), (0, Some(at(12, 50))));
    let still = rig.tick_at(at(12, 50) - Duration::milliseconds(1)).await;
    assert_eq!(still.unparked, 0);

    let moved = rig.tick_at(at(12, 50)).await;
    assert_eq!(
        (moved.unparked, moved.next_wake),
        (1, Some(at(13, 45) - STAGE_AHEAD)),
        "on the agenda at its staging time"
    );
    assert_eq!(
        slot(&rig, id).await,
        (Some((at(13, 45) - STAGE_AHEAD).timestamp_millis()), None)
    );
    assert_eq!(rig.tick_at(at(13, 45)).await.opened, 1);
    assert_eq!(rig.lease("d", None).await.len(), 1);
}

#[tokio::test]
async fn a_window_whose_hour_unparks_within_ten_minutes_goes_straight_on_the_agenda() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    // Staged at 10:29, in the 10:00 bucket, which unparks at 09:50.
    rig.clock.set(at(9, 50) - Duration::milliseconds(1));
    let parked = rig.callback("A", "agent", at(10, 30), at(11, 0)).await;
    assert_eq!(
        slot(&rig, parked).await,
        (None, Some(at(9, 50).timestamp_millis()))
    );
    rig.clock.set(at(9, 50));
    let near = rig.callback("B", "agent", at(10, 30), at(11, 0)).await;
    assert_eq!(
        slot(&rig, near).await,
        (Some(at(10, 29).timestamp_millis()), None)
    );
}

#[tokio::test]
async fn a_crowded_bucket_moves_onto_the_agenda_a_batch_per_tick() {
    let rig = Rig::new(Policy::default());
    let n = scheduler::UNPARK_BATCH + 5;
    // All opening at 13:30, seen at 09:00: parked until 12:50.
    let now = rig.clock.now();
    rig.store()
        .write(move |c| {
            let user = UserId::parse("agent").unwrap();
            let windows = Windows {
                prefix: "acc",
                from: 0,
                to: n,
                start: at(13, 30),
                step: Duration::zero(),
                length: Duration::hours(1),
                user: &user,
            };
            Ok::<_, StoreError>(bulk::insert_windows(c, &windows, now)?)
        })
        .await
        .unwrap();
    let first = rig.tick_at(at(12, 50)).await;
    assert_eq!(
        (first.unparked as i64, first.next_wake),
        (scheduler::UNPARK_BATCH, Some(at(12, 50))),
        "a full batch: the next tick follows at once"
    );
    let rest = rig.tick_at(at(12, 50)).await;
    assert_eq!(
        (rest.unparked, rest.next_wake),
        (5, Some(at(13, 30) - STAGE_AHEAD))
    );
}

#[tokio::test]
async fn a_parked_callback_superseded_or_cancelled_never_comes_back() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let old = rig.callback("ACC", "agent", at(13, 45), at(14, 30)).await;
    let new = rig.callback("ACC", "agent", at(15, 0), at(16, 0)).await;
    assert_eq!(rig.state(old).await.0, "superseded");
    assert_eq!(slot(&rig, old).await, (None, None));
    rig.cancel(new).await;
    assert_eq!(slot(&rig, new).await, (None, None));
    let later = rig.tick_at(at(16, 0)).await;
    assert_eq!((later.unparked, later.next_wake), (0, None));
    assert!(rig.lease("d", None).await.is_empty());
}

/// Shutdown stops the purge between two batches instead of waiting for it to finish; the next
/// run takes up what is left.
#[tokio::test]
async fn the_purge_stops_when_the_service_stops() {
    let rig = Rig::new(Policy::default());
    rig.login("agent", true).await;
    let id = rig.callback("A", "agent", at(13, 0), at(15, 0)).await;
    rig.cancel(id).await;
    let cutoff = at(13, 0) + Duration::days(31);
    rig.stop.cancel();
    assert_eq!(
        rig.purge_before(cutoff).await,
        0,
        "stopped: no batch begins"
    );
    assert_eq!(
        rig.sql::<i64>("SELECT count(*) FROM callbacks WHERE id = ?1", id)
            .await,
        1
    );
}
