//! A scheduler and queue rig without HTTP: the service over a real store, a clock the test
//! sets, and the scheduler's step called by the test itself at every instant it chooses. No
//! sleeps. It calls the same service methods the HTTP handlers do.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use redial::clock::Clock;
use redial::lcm::{
    AccountNumber, CallId, CallbackAsked, CallbackKind, Disposition, LocalWindow, Subtopic, UserId,
};
use redial::lifecycle::AttemptResult;
use redial::policy::Policy;
use redial::scheduler::Outcome;
use redial::service::queue::{AckRequest, LeaseRequest};
use redial::service::telephony::NewCall;
use redial::service::{Error, Service};
use redial::store::callbacks::Callback;
use redial::store::events::Event;
use redial::store::{Store, StoreOptions, WriterThread};
use tokio_util::sync::CancellationToken;

pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 13, h, m, 0).unwrap()
}

pub struct Rig {
    pub service: Service,
    writer: Option<WriterThread>,
    pub clock: Clock,
    /// Cancelled: the service stops (long-polls return, the purge stops).
    pub stop: CancellationToken,
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
        let stop = CancellationToken::new();
        Self {
            service: Service::new(store, clock.clone(), policy, stop.clone()),
            writer: Some(writer),
            clock,
            stop,
            _dir: dir,
        }
    }

    pub fn store(&self) -> &Store {
        self.service.store()
    }

    /// The database file, for a reader of its own (`redial report`).
    pub fn db(&self) -> std::path::PathBuf {
        self._dir.path().join("redial.db")
    }

    pub async fn login(&self, user: &str, on: bool) {
        let user = UserId::parse(user).unwrap();
        if on {
            self.service.login(user).await.unwrap();
        } else {
            self.service.logout(user).await.unwrap();
        }
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
    ) -> Result<i64, Error> {
        self.callback_local(account, user, Tz::UTC, start.naive_utc(), end.naive_utc())
            .await
    }

    /// Stores a callback window given as local times in `zone`, as a desktop's request would:
    /// the call is registered, the outcome set, and the call ended (the agent wraps up; the
    /// callback stays).
    pub async fn callback_local(
        &self,
        account: &str,
        user: &str,
        zone: Tz,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<i64, Error> {
        self.callback_of(CallbackKind::Personal, account, user, zone, start, end)
            .await
    }

    /// A normal callback (any agent may take it) set by `user`, window in UTC.
    pub async fn normal_callback(
        &self,
        account: &str,
        user: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> i64 {
        let (start, end) = (start.naive_utc(), end.naive_utc());
        self.callback_of(CallbackKind::Normal, account, user, Tz::UTC, start, end)
            .await
            .unwrap()
    }

    async fn callback_of(
        &self,
        kind: CallbackKind,
        account: &str,
        user: &str,
        zone: Tz,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<i64, Error> {
        let subtopic = match kind {
            CallbackKind::Personal => Subtopic::PersonalCallback,
            CallbackKind::Normal => Subtopic::NormalCallback,
        };
        let callid =
            CallId::parse(format!("call-{account}-{}", start.and_utc().timestamp())).unwrap();
        let request = Disposition {
            subtopic,
            callid: callid.clone(),
            account_number: AccountNumber::parse(account).unwrap(),
            user_id: UserId::parse(user).unwrap(),
            outcome_id: Some(4),
            business_outcome: Some(101),
            call_outcome: None,
            agent_comments: String::new(),
            lead_score: 0.0,
            target_amount: 0.0,
            callback: Some(CallbackAsked {
                kind,
                window: LocalWindow { start, end },
                callback_mode_id: 1,
                timezone: Some(zone),
            }),
        };
        self.service
            .register_call(NewCall::new(
                callid.clone(),
                request.account_number.clone(),
                request.user_id.clone(),
            ))
            .await?;
        let stored = self.service.set_outcome(request, None).await;
        self.service.end_call(callid).await?;
        stored.map(|id| id.expect("a callback"))
    }

    /// Registers a call of `user`'s for `account`: the agent is on it.
    pub async fn on_call(&self, callid: &str, account: &str, user: &str) {
        self.service
            .register_call(NewCall::new(
                CallId::parse(callid).unwrap(),
                AccountNumber::parse(account).unwrap(),
                UserId::parse(user).unwrap(),
            ))
            .await
            .unwrap();
    }

    pub async fn tick_at(&self, now: DateTime<Utc>) -> Outcome {
        self.clock.set(now);
        self.service.scheduler().tick(now).await.unwrap()
    }

    pub async fn lease(&self, consumer: &str, user: Option<&str>) -> Vec<Event> {
        self.service
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
        self.service
            .ack(AckRequest {
                consumer: consumer.into(),
                ids: ids.to_vec(),
            })
            .await
            .unwrap()
            .done
    }

    /// Reports an attempt; returns when the scheduler must next look at the callback.
    pub async fn attempt(&self, id: i64, result: AttemptResult) -> Option<i64> {
        self.service
            .record_attempt(id, result)
            .await
            .unwrap()
            .next_at
    }

    pub async fn cancel(&self, id: i64) {
        self.service
            .cancel(
                id,
                redial::store::audit::Actor {
                    name: "rig".into(),
                    reason: None,
                },
            )
            .await
            .unwrap();
    }

    /// Deletes what finished before `cutoff`, as the retention purge does.
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> usize {
        self.service
            .housekeeping("0 0 3 * * *".parse().unwrap(), chrono::Duration::days(30))
            .purge_before(cutoff)
            .await
            .unwrap()
    }

    pub async fn get(&self, id: i64) -> Callback {
        self.service.callback(id).await.unwrap()
    }

    /// The callback's state as the API shows it, and its attempts.
    pub async fn state(&self, id: i64) -> (String, i64) {
        let cb = self.get(id).await;
        (cb.state.as_str().to_owned(), cb.attempts)
    }

    /// One value read with `sql` (whose one parameter is `id`) from what was committed.
    pub async fn sql<T>(&self, sql: &'static str, id: i64) -> T
    where
        T: rusqlite::types::FromSql + Send + 'static,
    {
        self.store()
            .read(move |c| Ok(c.query_row(sql, [id], |r| r.get(0))?))
            .await
            .unwrap()
    }
}
