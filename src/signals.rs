//! How the service tells its workers that a commit changed something: the scheduler that an
//! earlier instant now matters, long-polling dialers that events may have become leasable.

use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;

#[derive(Debug)]
pub struct Signals {
    /// The instant the scheduler is sleeping until (ms), or `i64::MAX`.
    planned: AtomicI64,
    /// When the scheduler's last tick began (ms, its clock), `i64::MIN` before the first;
    /// and whether it is in one now.
    tick_began: AtomicI64,
    ticking: std::sync::atomic::AtomicBool,
    wake: Notify,
    /// Woken when events may have become leasable.
    events_ready: Notify,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            planned: AtomicI64::new(i64::MAX),
            tick_began: AtomicI64::new(i64::MIN),
            ticking: std::sync::atomic::AtomicBool::new(false),
            wake: Notify::new(),
            events_ready: Notify::new(),
        }
    }
}

impl Signals {
    /// Tells the scheduler a commit made `at_ms` an instant of interest. It is woken only if
    /// that is earlier than what it sleeps until, so a stream of later windows costs nothing.
    pub fn schedule(&self, at_ms: Option<i64>) {
        if let Some(at_ms) = at_ms {
            if self.planned.fetch_min(at_ms, Ordering::SeqCst) > at_ms {
                self.wake.notify_one();
            }
        }
    }

    /// Tells waiting dialers to look at the queue again.
    pub fn events_ready(&self) {
        self.events_ready.notify_waiters();
    }

    /// Completes at the next [`Signals::events_ready`]. Register it (`enable`) before looking
    /// at the queue, so that a signal between the look and the wait is not lost.
    pub fn next_events(&self) -> tokio::sync::futures::Notified<'_> {
        self.events_ready.notified()
    }

    /// The scheduler's side: from now on, any instant brought by a commit wakes it.
    pub(crate) fn forget_plan(&self) {
        self.planned.store(i64::MAX, Ordering::SeqCst);
    }

    /// The scheduler's side: plans to sleep until `wake_ms` unless a commit asked for an
    /// earlier instant meanwhile; returns the instant to sleep until.
    pub(crate) fn plan(&self, wake_ms: i64) -> i64 {
        self.planned
            .fetch_min(wake_ms, Ordering::SeqCst)
            .min(wake_ms)
    }

    /// The scheduler's side: a tick begins at `now_ms`, or the one in hand is over.
    pub(crate) fn ticking(&self, now_ms: Option<i64>) {
        if let Some(now_ms) = now_ms {
            self.tick_began.store(now_ms, Ordering::SeqCst);
        }
        self.ticking.store(now_ms.is_some(), Ordering::SeqCst);
    }

    /// Whether the scheduler keeps its time at `now_ms` (`GET /readyz`): it has ticked, a
    /// tick in hand began less than `grace_ms` ago, and it is not asleep past the instant it
    /// planned to wake at by more than `grace_ms`. Otherwise, why not.
    pub fn scheduler_keeps_time(&self, now_ms: i64, grace_ms: i64) -> Result<(), String> {
        let began = self.tick_began.load(Ordering::SeqCst);
        if began == i64::MIN {
            return Err("the scheduler has not ticked yet".into());
        }
        if self.ticking.load(Ordering::SeqCst) {
            if now_ms - began > grace_ms {
                return Err(format!(
                    "the scheduler's tick has run for {} ms (more than {grace_ms})",
                    now_ms - began
                ));
            }
            return Ok(());
        }
        let planned = self.planned.load(Ordering::SeqCst);
        if planned != i64::MAX && now_ms - planned > grace_ms {
            return Err(format!(
                "the scheduler planned to wake {} ms ago and has not (more than {grace_ms})",
                now_ms - planned
            ));
        }
        Ok(())
    }

    /// Completes when a commit brings an instant earlier than the plan.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_keeps_time_unless_it_never_ticked_is_stuck_in_a_tick_or_oversleeps() {
        let s = Signals::default();
        assert!(s
            .scheduler_keeps_time(0, 10_000)
            .unwrap_err()
            .contains("not ticked"));
        s.ticking(Some(1_000));
        assert!(
            s.scheduler_keeps_time(5_000, 10_000).is_ok(),
            "a tick in hand"
        );
        let stuck = s.scheduler_keeps_time(20_000, 10_000).unwrap_err();
        assert!(stuck.contains("19000 ms"), "{stuck}");
        s.ticking(None);
        s.plan(30_000);
        assert!(
            s.scheduler_keeps_time(39_000, 10_000).is_ok(),
            "asleep until its time"
        );
        let late = s.scheduler_keeps_time(45_000, 10_000).unwrap_err();
        assert!(late.contains("15000 ms ago"), "{late}");
        s.forget_plan();
        assert!(
            s.scheduler_keeps_time(i64::MAX / 2, 10_000).is_ok(),
            "nothing planned"
        );
    }
}
