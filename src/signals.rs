//! How the service tells its workers that a commit changed something: the scheduler that an
//! earlier instant now matters, long-polling dialers that events may have become leasable.

use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;

#[derive(Debug)]
pub struct Signals {
    /// The instant the scheduler is sleeping until (ms), or `i64::MAX`.
    planned: AtomicI64,
    wake: Notify,
    /// Woken when events may have become leasable.
    events_ready: Notify,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            planned: AtomicI64::new(i64::MAX),
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

    /// Completes when a commit brings an instant earlier than the plan.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }
}
