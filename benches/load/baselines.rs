//! The baselines of ingest, in the same run: the callback and outcome rows of each request
//! written by the store's own inserts (`lifecycle::insert`, `outcomes::save`), with nothing
//! looked up or checked first, in one process: 1,000 requests a transaction (the raw
//! ceiling: no HTTP, no prerequisites, one fsync per thousand) and one a transaction (the
//! naive design: a commit per request). Each sample is a
//! fraction of a second, so both are sampled at several moments of a run and the medians kept.

use std::path::Path;
use std::time::Instant;

use chrono::{Duration, Utc};
use redial::lcm::{Disposition, Envelope, Message, UtcWindow};
use redial::policy::Policy;
use redial::store::{lifecycle, open_write_connection, outcomes, Synchronous};
use rusqlite::TransactionBehavior;

use crate::ingest::{lcm_body, register_calls};
use crate::{tomorrow, Plan};

/// Request `i` as the service receives it: the ingest body parsed, its window resolved.
fn request(i: usize, day: &str) -> (Disposition, UtcWindow) {
    let (_, parsed) = Envelope::parse(&lcm_body(i, day));
    let Message::Disposition(request) = parsed.expect("a valid request").message else {
        panic!("the ingest body is a disposition");
    };
    let asked = request.callback.as_ref().expect("a callback asked");
    let window = asked
        .window
        .resolve(chrono_tz::Tz::UTC, Duration::minutes(15))
        .expect("a window")
        .clip(None)
        .expect("no calling hours");
    (request, window)
}

/// Rows a second, `per_tx` requests a transaction.
fn baseline(scratch: &Path, name: &str, rows: usize, per_tx: usize) -> f64 {
    let db = scratch.join(format!("{name}.db"));
    register_calls(&db, rows);
    let mut conn = open_write_connection(&db, Synchronous::Full).expect("database");
    let policy = Policy::default();
    let day = tomorrow();
    let requests: Vec<_> = (0..rows).map(|i| request(i, &day)).collect();
    let now = Utc::now();
    let started = Instant::now();
    for chunk in requests.chunks(per_tx) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        for (request, window) in chunk {
            let asked = request.callback.as_ref().expect("a callback asked");
            let created = lifecycle::insert(&tx, request, asked, window, None, now, &policy)
                .expect("callback");
            outcomes::save(&tx, request, None, Some(created.id), None, now).expect("outcome");
        }
        tx.commit().expect("commit");
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

/// The baselines' samples, taken at the same moments of a run.
#[derive(Default)]
pub struct Baselines {
    pub raw: Vec<f64>,
    pub naive: Vec<f64>,
}

impl Baselines {
    pub fn sample(&mut self, scratch: &Path, plan: &Plan) {
        let n = self.raw.len() + 1;
        self.raw
            .push(baseline(scratch, &format!("raw-{n}"), plan.raw_rows, 1_000));
        self.naive
            .push(baseline(scratch, &format!("naive-{n}"), plan.naive_rows, 1));
    }
}
