//! A callback read back, and a dial attempt recorded against it. The
//! decisions are [`crate::lifecycle::decide`]'s; the operation loads, decides, then writes.

use std::sync::Arc;

use super::{Error, Service};
use crate::lifecycle::{decide, AttemptResult};
use crate::store::callbacks::{self, Callback};
use crate::store::lifecycle;
use crate::telemetry;

/// An attempt recorded: the callback as it is now, and when the scheduler must next look at
/// it (`None` once it is finished).
#[derive(Debug, Clone, PartialEq)]
pub struct Attempted {
    pub callback: Callback,
    pub next_at: Option<i64>,
}

impl Service {
    pub async fn callback(&self, id: i64) -> Result<Callback, Error> {
        self.store
            .read(move |conn| Ok(callbacks::find(conn, id)?))
            .await?
            .ok_or(Error::UnknownCallback(id))
    }

    /// A dialer's report: `connected` completes the callback; the other results retry inside
    /// the window. Reporting also closes the event that led to it.
    pub async fn record_attempt(&self, id: i64, result: AttemptResult) -> Result<Attempted, Error> {
        let (clock, policy) = (self.clock.clone(), Arc::clone(&self.policy));
        let next_at = self
            .store
            .write(move |conn| {
                let now = clock.now();
                let (cb, shown) = lifecycle::load(conn, id)?.ok_or(Error::UnknownCallback(id))?;
                let after = decide::attempt(&cb, shown, result, now.timestamp_millis(), &policy)?;
                Ok::<_, Error>(lifecycle::record_attempt(conn, &cb, result, after, now)?)
            })
            .await?;
        self.signals.schedule(next_at);
        // An attempt that expired the callback put an `expired` event on the queue.
        self.signals.events_ready();
        let callback = self.callback(id).await?;
        telemetry::attempt(result, &callback.user_id);
        Ok(Attempted { callback, next_at })
    }
}
