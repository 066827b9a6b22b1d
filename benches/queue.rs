//! Queue and scheduler benchmarks on a real SQLite file, driven in process (no HTTP):
//!
//! * due lag: windows preloaded far ahead, plus a burst opening at the same instant; dialers
//!   lease (and ack) in batches of 100 while the scheduler does its bookkeeping; the lag of an
//!   event is the real time from the instant to the moment a dialer holds it;
//! * dispatch: lease + ack in batches of 100 with 1, 4 and 8 consumers.
//!
//! Run: `cargo bench --bench queue`; `-- --quick` for a small run, `-- --normal` for
//! `synchronous=NORMAL`.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use redial::clock::Clock;
use redial::queue::{AckRequest, LeaseRequest, Queue};
use redial::scheduler::{self, Signals};
use redial::store::lifecycle::{Policy, STAGE_AHEAD};
use redial::store::{Store, StoreOptions, Synchronous};
use tokio_util::sync::CancellationToken;

/// Inserts `n` scheduled callbacks for distinct accounts opening at `start`, in one go.
fn preload(path: &std::path::Path, prefix: &str, n: i64, start: DateTime<Utc>) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "INSERT OR IGNORE INTO calls (callid, account_number, user_id, state, started_at)
             VALUES ('bench', 'bench', 'agent', 'active', 0);
         INSERT OR IGNORE INTO agents (user_id, logged_in, updated_at) VALUES ('agent', 1, 0);",
    )
    .unwrap();
    let start = start.timestamp_millis();
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO callbacks (callid, account_number, callback_mode_id, user_id, window_start,
             window_end, local_start, local_end, timezone, state, open_at, next_at, created_at,
             updated_at)
         SELECT 'bench', ?1 || i, 1, 'agent', ?3, ?3 + 3600000, '', '', 'UTC', 'scheduled', ?3,
             ?3 - ?4, 0, 0 FROM n",
        rusqlite::params![prefix, n, start, STAGE_AHEAD.num_milliseconds()],
    )
    .unwrap();
    // Measure from a checkpointed file, as a running service would be.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

/// Ticks at `now` until the scheduler has nothing more to do at that instant.
async fn tick_until_idle(
    store: &Store,
    policy: &Arc<Policy>,
    now: DateTime<Utc>,
) -> scheduler::Outcome {
    let mut total = scheduler::Outcome::default();
    loop {
        let p = Arc::clone(policy);
        let o = store
            .write(move |c| scheduler::tick(c, now, &p))
            .await
            .unwrap();
        total.staged += o.staged;
        total.opened += o.opened;
        if o.next_wake.is_none_or(|w| w > now) {
            return total;
        }
    }
}

/// `consumers` dialers lease in batches of `batch` and ack each batch (before the next lease,
/// or, `pipelined`, alongside it) until `n` events are done; returns the real time at which
/// each event was held, from `t0`.
async fn consume(
    queue: &Queue,
    consumers: usize,
    batch: i64,
    pipelined: bool,
    n: usize,
    t0: Instant,
) -> Vec<f64> {
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..consumers {
        let queue = queue.clone();
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            let mut acks: Vec<tokio::task::JoinHandle<Vec<i64>>> = Vec::new();
            let consumer = format!("bench-{c}");
            while done.load(std::sync::atomic::Ordering::SeqCst) < n {
                let events = queue
                    .lease(LeaseRequest {
                        consumer: consumer.clone(),
                        max: batch,
                        lease_ms: 60_000,
                        wait_ms: 0,
                        user_id: None,
                    })
                    .await
                    .unwrap();
                let at = t0.elapsed().as_secs_f64() * 1000.0;
                if events.is_empty() {
                    tokio::task::yield_now().await;
                    continue;
                }
                held.extend(std::iter::repeat_n(at, events.len()));
                done.fetch_add(events.len(), std::sync::atomic::Ordering::SeqCst);
                let ack = AckRequest {
                    consumer: consumer.clone(),
                    ids: events.iter().map(|e| e.id).collect(),
                };
                if pipelined {
                    let queue = queue.clone();
                    acks.push(tokio::spawn(async move { queue.ack(ack).await.unwrap() }));
                } else {
                    queue.ack(ack).await.unwrap();
                }
            }
            for ack in acks {
                ack.await.unwrap();
            }
            held
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by(f64::total_cmp);
    all
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let mut options = StoreOptions::new(&path);
    if std::env::args().any(|a| a == "--normal") {
        options.synchronous = Synchronous::Normal;
    }
    println!("synchronous = {:?}", options.synchronous);
    let (store, writer) = Store::open(&options).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 1, 13, 9, 0, 0).unwrap();
    let clock = Clock::manual(t0);
    let policy = Arc::new(Policy::default());
    let queue = Queue {
        store: store.clone(),
        clock: clock.clone(),
        signals: Arc::new(Signals::default()),
        policy: Arc::clone(&policy),
        stop: CancellationToken::new(),
    };

    // Due lag: a burst opening at the same instant, with many windows scheduled far ahead.
    let far = if quick { 10_000 } else { 1_000_000 };
    let burst = if quick { 1_000 } else { 10_000 };
    let instant = t0 + Duration::hours(1);
    let started = Instant::now();
    preload(&path, "F", far, t0 + Duration::days(30));
    preload(&path, "B", burst, instant);
    println!(
        "preload: {far} windows far ahead + {burst} opening at one instant, {:?}",
        started.elapsed()
    );

    clock.set(instant - STAGE_AHEAD);
    let started = Instant::now();
    let staged = tick_until_idle(&store, &policy, instant - STAGE_AHEAD).await;
    println!(
        "staging {} redials a minute ahead: {:?}",
        staged.staged,
        started.elapsed()
    );

    clock.set(instant);
    let at_instant = Instant::now();
    let bookkeeping = {
        let (store, policy) = (store.clone(), Arc::clone(&policy));
        tokio::spawn(async move {
            let o = tick_until_idle(&store, &policy, instant).await;
            (o.opened, at_instant.elapsed())
        })
    };
    let lags = consume(&queue, 4, 1000, true, burst as usize, at_instant).await;
    let (opened, took) = bookkeeping.await.unwrap();
    println!(
        "due lag, {burst} windows at one instant, {far} scheduled, 4 dialers leasing up to 1000: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (opening bookkeeping for {opened}: {took:?})",
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        pct(&lags, 1.0)
    );

    // Dispatch: lease + ack in batches of 100.
    let n = if quick { 2_000 } else { 20_000 };
    for (round, consumers) in [1usize, 4, 8].into_iter().enumerate() {
        let at = instant + Duration::hours(round as i64 + 1);
        preload(&path, &format!("D{round}-"), n, at);
        clock.set(at);
        tick_until_idle(&store, &policy, at).await;
        let started = Instant::now();
        let held = consume(&queue, consumers, 100, false, n as usize, started).await;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "lease+ack, batches of 100, {consumers} consumer(s): {} events, {:.0} events/s",
            held.len(),
            held.len() as f64 / secs
        );
    }
    drop(queue);
    drop(store);
    tokio::task::spawn_blocking(move || writer.stop())
        .await
        .unwrap();
}
