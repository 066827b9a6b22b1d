//! Dispatch: lease + ack of redials already open, in batches of 1, 10 and 100 by 1, 4 and 8
//! consumers, through the service in this process; each figure the median of three runs.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use redial::service::queue::{AckRequest, LeaseRequest};
use redial::service::Service;

use crate::lag::Live;
use crate::{median, Plan};

/// Lease + ack events/s: `n` redials opened at once, then leased and acked by `consumers` in
/// batches of `batch`. The median of three such runs (one in quick mode): one run is a
/// fraction of a second of a noisy machine.
pub async fn dispatch(
    live: &Live,
    plan: &Plan,
    tag: &str,
    consumers: usize,
    batch: i64,
    n: i64,
) -> f64 {
    let runs = if plan.quick { 1 } else { 3 };
    let mut rates = Vec::new();
    for run in 0..runs {
        let open = Utc::now().timestamp_millis() + 1_000;
        live.schedule(format!("{tag}{run}-"), n, open, 0).await;
        until(open + 500).await;
        rates.push(lease_and_ack(&live.service, consumers, batch, n as usize).await);
    }
    median(&rates)
}

/// Lease + ack of `n` ready redials in batches of `batch` by `consumers`, one after the other
/// per consumer: events/s, timed until the ack that completes the `n`th event.
async fn lease_and_ack(service: &Service, consumers: usize, batch: i64, n: usize) -> f64 {
    let (leased, acked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..consumers {
        let (service, leased, acked) = (service.clone(), Arc::clone(&leased), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let consumer = format!("dispatch-{c}");
            let mut finished = None;
            while leased.load(Ordering::SeqCst) < n {
                let events = service
                    .lease(LeaseRequest {
                        consumer: consumer.clone(),
                        max: batch,
                        lease_ms: 60_000,
                        wait_ms: 100,
                        user_id: None,
                    })
                    .await
                    .expect("lease");
                if events.is_empty() {
                    continue;
                }
                leased.fetch_add(events.len(), Ordering::SeqCst);
                let ids = events.iter().map(|e| e.id).collect();
                let ack = AckRequest {
                    consumer: consumer.clone(),
                    ids,
                };
                let done = service.ack(ack).await.expect("ack").done.len();
                if acked.fetch_add(done, Ordering::SeqCst) + done >= n {
                    finished = Some(started.elapsed());
                }
            }
            finished
        }));
    }
    let mut finished = None;
    for t in tasks {
        finished = finished.or(t.await.expect("consumer"));
    }
    n as f64 / finished.expect("every event acked").as_secs_f64()
}

/// Waits (on the real clock) until `at` ms: the windows open then.
async fn until(at: i64) {
    let wait = at - Utc::now().timestamp_millis();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

/// Lease + ack in batches of 1, 10 and 100 with 1, 4 and 8 consumers, on a fresh file.
pub async fn dispatch_matrix(scratch: &Path, plan: &Plan) -> Vec<(i64, usize, f64)> {
    let live = Live::start(&scratch.join("dispatch.db")).await;
    let mut rows = Vec::new();
    for batch in [1i64, 10, 100] {
        for consumers in [1usize, 4, 8] {
            let n = if plan.quick {
                100 * batch.min(10)
            } else {
                1_000 * batch.min(20)
            };
            let tag = format!("d{batch}-{consumers}-");
            let rate = dispatch(&live, plan, &tag, consumers, batch, n).await;
            rows.push((batch, consumers, rate));
        }
    }
    live.stop().await;
    rows
}
