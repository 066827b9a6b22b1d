//! Where "now" comes from. Logic never calls `Utc::now()` itself: it asks a [`Clock`], which
//! is the system clock in production and a hand-set one in tests. Workers that sleep until an
//! instant also listen to [`Clock::subscribe`], so a test that moves the clock wakes them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

/// The longest a worker sleeps in one go; it then looks at the clock again. A guard against a
/// wall clock that jumps, not a polling beat: work is found by its instant, not by this.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// A source of the current instant, cheap to clone.
#[derive(Clone, Debug)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
    moved: Arc<watch::Sender<()>>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self {
            manual: None,
            moved: Arc::new(watch::channel(()).0),
        }
    }

    /// A clock that stands still at `at` until [`Clock::set`] or [`Clock::advance`] moves it.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(at.timestamp_millis()))),
            moved: Arc::new(watch::channel(()).0),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now(),
            Some(ms) => DateTime::from_timestamp_millis(ms.load(Ordering::SeqCst))
                .expect("manual clock holds a representable instant"),
        }
    }

    /// Moves a manual clock to `at`. Panics on the system clock: moving real time is a bug.
    pub fn set(&self, at: DateTime<Utc>) {
        let ms = self
            .manual
            .as_ref()
            .expect("only a manual clock can be set");
        ms.store(at.timestamp_millis(), Ordering::SeqCst);
        self.moved.send_replace(());
    }

    /// Moves a manual clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by);
    }

    /// A receiver that changes whenever a manual clock is moved (never, for the system clock).
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.moved.subscribe()
    }

    /// Sleeps (in real time) until this clock reads `at_ms`, or an hour at most (`MAX_SLEEP`;
    /// the caller then looks again).
    pub async fn until(&self, at_ms: i64) {
        let wait = at_ms.saturating_sub(self.now().timestamp_millis()).max(0);
        let wait = std::time::Duration::from_millis(wait as u64).min(MAX_SLEEP);
        tokio::time::sleep(wait).await;
    }
}
