//! Due lag: windows preloaded far ahead, then 10,000 windows opening at one instant (three
//! bursts; the one with the median p99 is reported) and 1,000 spread over a minute. The
//! service's scheduler and queue run in this process on the real clock, and four
//! long-polling consumers record when each redial reaches them: lag is that instant minus the
//! window's start.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use redial::clock::Clock;
use redial::lcm::UserId;
use redial::lifecycle::STAGE_AHEAD;
use redial::policy::Policy;
use redial::service::queue::{AckRequest, LeaseRequest};
use redial::service::Service;
use redial::store::bulk::{self, Windows};
use redial::store::{
    open_write_connection, schema, telephony, Store, StoreError, StoreOptions, Synchronous,
    WriterThread,
};
use tokio_util::sync::CancellationToken;

use crate::dispatch::dispatch;
use crate::{pct, Plan};

/// Lags in ms, sorted.
pub type Lags = Vec<f64>;

/// The agent every preloaded window belongs to.
fn agent() -> UserId {
    UserId::parse("agent").expect("an agent")
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("an instant")
}

/// Adds scheduled windows `from..to` a month ahead, with the store's bulk path, before the
/// service starts on the file; their agent is logged in.
pub fn preload_far(db: &Path, from: i64, to: i64) {
    let mut conn = open_write_connection(db, Synchronous::Normal).expect("database");
    schema::migrate(&mut conn, None).expect("schema");
    let now = Utc::now();
    let user = agent();
    telephony::set_agent_login(&conn, &user, true, now).expect("logged in");
    let windows = Windows {
        prefix: "far",
        from,
        to,
        start: now + Duration::days(30),
        step: Duration::zero(),
        length: Duration::hours(1),
        user: &user,
    };
    bulk::insert_windows(&conn, &windows, now).expect("windows");
    bulk::settle(&conn).expect("checkpointed");
}

/// The service, its scheduler running, on the real clock.
pub struct Live {
    pub service: Service,
    stop: CancellationToken,
    scheduler: tokio::task::JoinHandle<()>,
    writer: WriterThread,
}

impl Live {
    pub async fn start(db: &Path) -> Self {
        let (store, writer) = Store::open(&StoreOptions::new(db)).expect("store");
        let stop = CancellationToken::new();
        let service = Service::new(store, Clock::system(), Policy::default(), stop.clone());
        service.login(agent()).await.expect("logged in");
        let scheduler = tokio::spawn(service.scheduler().run(stop.clone()));
        Self {
            service,
            stop,
            scheduler,
            writer,
        }
    }

    /// Stores windows `<prefix>0..n`, the i-th opening at `start + i * step` ms, through the
    /// writer with the store's bulk path, and tells the scheduler, as a request would.
    pub async fn schedule(&self, prefix: String, n: i64, start: i64, step: i64) {
        self.service
            .store()
            .write(move |conn| {
                let user = agent();
                let windows = Windows {
                    prefix: &prefix,
                    from: 0,
                    to: n,
                    start: at(start),
                    step: Duration::milliseconds(step),
                    length: Duration::hours(1),
                    user: &user,
                };
                Ok::<_, StoreError>(bulk::insert_windows(conn, &windows, Utc::now())?)
            })
            .await
            .expect("windows stored");
        self.service
            .signals()
            .schedule(Some(start - STAGE_AHEAD.num_milliseconds()));
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.scheduler.await;
        drop(self.service);
        tokio::task::spawn_blocking(move || self.writer.stop())
            .await
            .expect("writer stopped");
    }
}

/// `consumers` dialers long-poll for `n` redials in batches of up to `max`, acking each batch
/// alongside the next lease; returns each redial's lag behind its window's start, ms. Window
/// `i` (account `<prefix>i`) starts at `start + i * step` ms: events carry whole seconds only.
async fn consume(
    service: &Service,
    consumers: usize,
    max: i64,
    n: usize,
    (start, step): (i64, i64),
) -> Lags {
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..consumers {
        let (service, done) = (service.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let (mut lags, mut acks) = (Vec::new(), Vec::new());
            let consumer = format!("lag-{c}");
            while done.load(Ordering::SeqCst) < n {
                let events = service
                    .lease(LeaseRequest {
                        consumer: consumer.clone(),
                        max,
                        lease_ms: 60_000,
                        wait_ms: 200,
                        user_id: None,
                    })
                    .await
                    .expect("lease");
                let now = Utc::now().timestamp_millis();
                for e in &events {
                    let (_, i) = e
                        .account_number
                        .as_str()
                        .rsplit_once('-')
                        .expect("<prefix>-<i>");
                    let i: i64 = i.parse().expect("a window index");
                    lags.push((now - (start + i * step)) as f64);
                }
                done.fetch_add(events.len(), Ordering::SeqCst);
                if !events.is_empty() {
                    let (service, ack) = (
                        service.clone(),
                        AckRequest {
                            consumer: consumer.clone(),
                            ids: events.iter().map(|e| e.id).collect(),
                        },
                    );
                    acks.push(tokio::spawn(async move { service.ack(ack).await }));
                }
            }
            for ack in acks {
                ack.await.expect("ack task").expect("ack");
            }
            lags
        }));
    }
    let mut lags = Vec::new();
    for t in tasks {
        lags.extend(t.await.expect("consumer"));
    }
    lags.sort_by(f64::total_cmp);
    lags
}

/// The burst: every window opens at the same instant, two seconds from now; staged at once.
/// `tag` keeps this burst's accounts apart from other bursts' on the same file.
pub async fn burst_lag(live: &Live, plan: &Plan, tag: i64) -> Lags {
    let instant = Utc::now().timestamp_millis() + 2_000;
    live.schedule(format!("burst{tag}-"), plan.burst, instant, 0)
        .await;
    consume(&live.service, 4, 1_000, plan.burst as usize, (instant, 0)).await
}

/// Bursts measured at each preload size.
const BURSTS: i64 = 3;

/// Burst lags, spread lags, and lease+ack events/s at this preload.
pub async fn due_lag(db: &Path, plan: &Plan, size: i64) -> (Lags, Lags, f64) {
    let live = Live::start(db).await;
    // Three bursts, the one with the median p99 kept: one burst is one sample of a noisy
    // machine, and the first on a fresh service also pays for warming its caches.
    let mut bursts = Vec::new();
    for run in 0..BURSTS {
        bursts.push(burst_lag(&live, plan, size * 10 + run).await);
    }
    bursts.sort_by(|a, b| pct(a, 0.99).total_cmp(&pct(b, 0.99)));
    let burst = bursts.swap_remove(BURSTS as usize / 2);
    // The spread: evenly over the next minute.
    let first = Utc::now().timestamp_millis() + 2_000;
    let step = plan.spread_over.as_millis() as i64 / plan.spread;
    live.schedule(format!("spread{size}-"), plan.spread, first, step)
        .await;
    let spread = consume(&live.service, 4, 100, plan.spread as usize, (first, step)).await;
    // Dispatch: 20,000 (quick: 2,000) redials all open, then leased and acked by 4 consumers;
    // three times (quick: once).
    let n = if plan.quick { 2_000 } else { 20_000 };
    let rate = dispatch(&live, plan, &format!("dispatch{size}-"), 4, 100, n).await;
    live.stop().await;
    (burst, spread, rate)
}
