//! A scheduler and queue rig without HTTP: the store, a clock the test sets, and the queue,
//! so a test calls `tick(now)` itself and chooses every instant. No sleeps.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use redial::clock::Clock;
use redial::lcm::{AccountNumber, CallId, LcmError, UserId};
use redial::lcm::{LocalWindow, PersonalCallback};
use redial::queue::{AckRequest, LeaseRequest, Queue};
use redial::scheduler::{self, Outcome, Signals};
use redial::store::events::Event;
use redial::store::lifecycle::{self, AttemptResult, Policy};
use redial::store::outcomes::{self, NewOutcome};
use redial::store::{callbacks, telephony, Store, StoreError, StoreOptions, WriterThread};
use tokio_util::sync::CancellationToken;

pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 13, h, m, 0).unwrap()
}

pub struct Rig {
    pub store: Store,
    writer: Option<WriterThread>,
    pub clock: Clock,
    pub policy: Arc<Policy>,
    pub queue: Queue,
    _dir: tempfile::TempDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            // `stop` blocks, which is not allowed on the test's runtime thread.
            std::thread::spawn(move || writer.stop()).join().unwrap();
        }
    }
}

impl Rig {
    pub fn new(policy: Policy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (store, writer) =
            Store::open(&StoreOptions::new(dir.path().join("redial.db"))).unwrap();
        let clock = Clock::manual(at(9, 0));
        let policy = Arc::new(policy);
        let queue = Queue {
            store: store.clone(),
            clock: clock.clone(),
            signals: Arc::new(Signals::default()),
            stop: CancellationToken::new(),
            long_polls: Arc::new(tokio::sync::Semaphore::new(512)),
        };
        Self {
            store,
            writer: Some(writer),
            clock,
            policy,
            queue,
            _dir: dir,
        }
    }

    pub async fn login(&self, user: &str, on: bool) {
        let (user, now) = (UserId::parse(user).unwrap(), self.clock.now());
        let policy = self.policy.clone();
        self.store
            .write(move |c| {
                telephony::set_agent_login(c, &user, on, now)?;
                if !on {
                    lifecycle::owner_left(c, &user, now, &policy)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
    }

    /// Registers a call for `account` and stores a callback window `start`..`end` (UTC) owned
    /// by `user`; returns the callback id.
    pub async fn callback(
        &self,
        account: &str,
        user: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> i64 {
        self.try_callback(account, user, start, end).await.unwrap()
    }

    pub async fn try_callback(
        &self,
        account: &str,
        user: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<i64, LcmError> {
        self.callback_local(account, user, Tz::UTC, start.naive_utc(), end.naive_utc())
            .await
    }

    /// Stores a callback window given as local times in `zone`, resolved and clipped to the
    /// policy's calling hours as a request over HTTP would be.
    pub async fn callback_local(
        &self,
        account: &str,
        user: &str,
        zone: Tz,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<i64, LcmError> {
        let callid = format!("call-{account}-{}", start.and_utc().timestamp());
        let request = PersonalCallback {
            callid: CallId::parse(callid.as_str()).unwrap(),
            account_number: AccountNumber::parse(account).unwrap(),
            outcome_id: 4,
            business_outcome: 101,
            window: LocalWindow { start, end },
            callback_mode_id: 1,
            user_id: UserId::parse(user).unwrap(),
            agent_comments: String::new(),
            lead_score: 0.0,
            target_amount: 0.0,
            timezone: Some(zone),
        };
        let window = request
            .window
            .resolve(zone, Duration::minutes(15))
            .unwrap()
            .clip(self.policy.calling_hours.as_ref())
            .map_err(LcmError::OutsideCallingHours)?;
        let new = NewOutcome {
            request,
            window,
            source: None,
        };
        let (now, policy) = (self.clock.now(), self.policy.clone());
        self.store
            .write(move |c| {
                let r = &new.request;
                telephony::register_call(c, &r.callid, &r.account_number, &r.user_id, now)
                    .map_err(|e| LcmError::UnknownCall(e.to_string()))?;
                let stored = outcomes::set_outcome(c, &new, now, &policy)?;
                // The agent wraps up: the call ends, the callback stays.
                telephony::end_call(c, r.callid.as_str(), now)
                    .map_err(|e| LcmError::UnknownCall(e.to_string()))?;
                Ok(stored)
            })
            .await
            .map(|s| s.callback_id)
    }

    pub async fn tick_at(&self, now: DateTime<Utc>) -> Outcome {
        self.clock.set(now);
        let policy = self.policy.clone();
        self.store
            .write(move |c| scheduler::tick(c, now, &policy))
            .await
            .unwrap()
    }

    pub async fn lease(&self, consumer: &str, user: Option<&str>) -> Vec<Event> {
        self.queue
            .lease(LeaseRequest {
                consumer: consumer.into(),
                max: 100,
                lease_ms: 30_000,
                wait_ms: 0,
                user_id: user.map(|u| UserId::parse(u).unwrap()),
            })
            .await
            .unwrap()
    }

    pub async fn ack(&self, consumer: &str, ids: &[i64]) -> Vec<i64> {
        self.queue
            .ack(AckRequest {
                consumer: consumer.into(),
                ids: ids.to_vec(),
            })
            .await
            .unwrap()
    }

    pub async fn attempt(&self, id: i64, result: AttemptResult) -> Option<i64> {
        let (now, policy) = (self.clock.now(), self.policy.clone());
        self.store
            .write(move |c| lifecycle::record_attempt(c, id, result, now, &policy))
            .await
            .unwrap()
    }

    pub async fn state(&self, id: i64) -> (String, i64) {
        let cb = self
            .store
            .read(move |c| Ok(callbacks::find(c, id)?))
            .await
            .unwrap()
            .unwrap();
        (cb.state, cb.attempts)
    }

    pub async fn sql<T>(&self, sql: &'static str, id: i64) -> T
    where
        T: rusqlite::types::FromSql + Send + 'static,
    {
        self.store
            .read(move |c| Ok(c.query_row(sql, [id], |r| r.get(0))?))
            .await
            .unwrap()
    }
}
