//! What `/metrics` reads when it is scraped: the database's counts of live work, the
//! writer's queue, waiting dialers, file sizes and memory. Read on demand, so that nothing
//! is paid for them between scrapes.

use super::{Error, Service};
use crate::store::gauges;
use crate::telemetry;

/// How late the scheduler's work on a callback may be before it counts as overdue.
const OVERDUE_AFTER_MS: i64 = 1_000;

impl Service {
    /// Sets every gauge read at scrape time. `per_agent`: live personal callbacks by agent.
    pub async fn scrape(&self, per_agent: bool) -> Result<(), Error> {
        let now = self.clock.now();
        let counts = self
            .store
            .read(move |conn| Ok(gauges::counts(conn, now, OVERDUE_AFTER_MS, per_agent)?))
            .await?;
        let long_polls = self
            .policy
            .max_long_polls
            .max(1)
            .saturating_sub(self.long_polls.available_permits());
        let path = self.store.path();
        let size = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(name).map_or(0, |m| m.len())
        };
        telemetry::scraped(&telemetry::Scraped {
            counts,
            write_queue: self.store.write_queue_depth(),
            long_polls,
            database_bytes: size(""),
            wal_bytes: size("-wal"),
            resident_bytes: resident_bytes(),
        });
        Ok(())
    }
}

impl Service {
    /// How far behind the relay is, from its `mark`: pushes visible and not yet in the
    /// stream, and how long (ms) the oldest of them has waited.
    pub async fn relay_backlog(&self, mark: i64) -> Result<(i64, i64), Error> {
        let now = self.clock.now();
        let (behind, since) = self
            .store
            .read(move |conn| Ok(crate::store::relay::backlog(conn, mark, now)?))
            .await?;
        Ok((behind, since.map_or(0, |at| now.timestamp_millis() - at)))
    }
}

/// The process's resident memory, from `/proc/self/statm` (0 where there is none).
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}
