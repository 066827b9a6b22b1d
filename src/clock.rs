//! Where "now" comes from. Logic never calls `Utc::now()` itself: it asks a [`Clock`], which
//! is the system clock in production and a hand-set one in tests.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// A source of the current instant, cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `at` until [`Clock::set`] or [`Clock::advance`] moves it.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(at.timestamp_millis()))),
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
    }

    /// Moves a manual clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by);
    }
}
