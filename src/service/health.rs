//! Readiness (`GET /readyz`): whether this instance can do its work now, for a load balancer
//! or an orchestrator to route by. `/healthz` stays liveness only: the process answers.

use std::time::Duration;

use super::Service;
use crate::store::{self, StoreError};

/// How long the writer may take to run a probe before the instance is not ready.
const WRITER_PROBE: Duration = Duration::from_secs(2);

/// How late the scheduler may be before the instance is not ready: a tick's work, or a
/// wake-up past its instant.
const SCHEDULER_GRACE_MS: i64 = 10_000;

impl Service {
    /// Ready when the writer runs a probe within [`WRITER_PROBE`] (it is draining its queue),
    /// the database has room to write (below `--max-db-mib`), and the scheduler keeps its
    /// time. Otherwise, every reason why not.
    pub async fn readiness(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        let probe = self
            .store
            .write(|conn| Ok::<_, StoreError>(store::has_room(conn)?));
        match tokio::time::timeout(WRITER_PROBE, probe).await {
            Err(_) => reasons.push(format!(
                "the writer did not run a probe within {} ms: it is not draining its queue",
                WRITER_PROBE.as_millis()
            )),
            Ok(Err(e)) => reasons.push(format!("the writer refused a probe: {e}")),
            Ok(Ok(false)) => reasons
                .push("the database is at its size limit (--max-db-mib): writes fail".to_owned()),
            Ok(Ok(true)) => {}
        }
        let now = self.clock.now().timestamp_millis();
        if let Err(why) = self.signals.scheduler_keeps_time(now, SCHEDULER_GRACE_MS) {
            reasons.push(why);
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }
}
