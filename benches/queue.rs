//! Queue and scheduler micro-benchmarks on a real SQLite file (FULL sync):
//! lease+ack in batches of 100, and the scheduler's tick with many windows scheduled.
//! Run: `cargo bench --bench queue` (add `-- --quick` for a small run, `-- --normal` for
//! `synchronous=NORMAL`).

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use redial::clock::Clock;
use redial::queue::{AckRequest, LeaseRequest, Queue};
use redial::scheduler::{self, Signals};
use redial::store::lifecycle::Policy;
use redial::store::{Store, StoreError, StoreOptions};
use tokio_util::sync::CancellationToken;

/// Inserts `n` callbacks for distinct accounts, windows `start..start+1h` (ms), in one go.
fn preload(store_path: &std::path::Path, n: i64, start_ms: i64, first: i64) {
    let conn = rusqlite::Connection::open(store_path).unwrap();
    conn.execute_batch(
        "INSERT OR IGNORE INTO calls (callid, account_number, user_id, state, started_at)
         VALUES ('bench', 'bench', 'agent', 'active', 0);",
    )
    .unwrap();
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 + ?2 - 1)
         INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
             window_end, local_start, local_end, timezone, state, next_at, created_at, updated_at)
         SELECT 'bench', 'ACC-' || i, 1, 'agent', ?3, ?3 + 3600000, '', '', 'UTC', 'scheduled',
             ?3, 0, 0 FROM n",
        rusqlite::params![first, n, start_ms],
    )
    .unwrap();
    // Start the measurement from a checkpointed file, as a running service would be.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let mut options = StoreOptions::new(&path);
    if std::env::args().any(|a| a == "--normal") {
        options.synchronous = redial::store::Synchronous::Normal;
    }
    println!("synchronous = {:?}", options.synchronous);
    let (store, writer) = Store::open(&options).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 1, 13, 9, 0, 0).unwrap();
    let clock = Clock::manual(t0);
    let policy = Arc::new(Policy::default());

    // Scheduler: many windows far ahead, then a burst opening in the same second.
    let far = if quick { 10_000 } else { 1_000_000 };
    let burst = if quick { 1_000 } else { 10_000 };
    let start = Instant::now();
    preload(&path, far, (t0 + Duration::days(30)).timestamp_millis(), 0);
    preload(
        &path,
        burst,
        (t0 + Duration::hours(1)).timestamp_millis(),
        far,
    );
    println!(
        "preloaded {far} far windows + {burst} in one second in {:?}",
        start.elapsed()
    );

    let open_at = t0 + Duration::hours(1);
    let started = Instant::now();
    let mut ticks = 0;
    let mut opened = 0;
    loop {
        let p = Arc::clone(&policy);
        let outcome = store
            .write(move |c| scheduler::tick(c, open_at, &p))
            .await
            .unwrap();
        ticks += 1;
        opened += outcome.opened;
        if outcome.next_wake != Some(open_at) {
            break;
        }
    }
    let took = started.elapsed();
    println!(
        "tick: opened {opened} windows in {ticks} ticks, {:?} ({:.1} µs per window) with {far} scheduled",
        took,
        took.as_micros() as f64 / opened as f64
    );

    // Lease + ack in batches of 100.
    clock.set(open_at);
    let queue = Queue {
        store: store.clone(),
        clock: clock.clone(),
        signals: Arc::new(Signals::default()),
        stop: CancellationToken::new(),
    };
    let started = Instant::now();
    let mut handled = 0;
    loop {
        let events = queue
            .lease(LeaseRequest {
                consumer: "bench".into(),
                max: 100,
                lease_ms: 30_000,
                wait_ms: 0,
                user_id: None,
            })
            .await
            .unwrap();
        if events.is_empty() {
            break;
        }
        handled += events.len();
        let ids = events.iter().map(|e| e.id).collect();
        queue
            .ack(AckRequest {
                consumer: "bench".into(),
                ids,
            })
            .await
            .unwrap();
    }
    let took = started.elapsed();
    println!(
        "lease+ack, batches of 100, one consumer: {handled} events in {took:?} = {:.0} events/s",
        handled as f64 / took.as_secs_f64()
    );
    let _ = store.write(|_| Ok::<_, StoreError>(())).await;
    drop(queue);
    drop(store);
    tokio::task::spawn_blocking(move || writer.stop())
        .await
        .unwrap();
}
