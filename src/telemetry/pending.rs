//! Counts made inside the writer's transaction, published only once it commits: a group
//! rolled back leaves the counters as they were. The writer thread is the only one that
//! writes, so the tally is per thread.

use std::cell::RefCell;

use crate::lifecycle::{CallbackState, EndReason};

#[derive(Default)]
struct Tally {
    /// Callbacks finished, with their final state and reason.
    ended: Vec<(CallbackState, Option<EndReason>)>,
    /// For each redial the scheduler staged: ms from its window's opening to its being
    /// leasable (0 when written ahead).
    leasable: Vec<i64>,
}

thread_local! {
    static TALLY: RefCell<Tally> = RefCell::new(Tally::default());
}

/// A callback finished in the open transaction.
pub fn ended(state: CallbackState, reason: Option<EndReason>) {
    TALLY.with(|t| t.borrow_mut().ended.push((state, reason)));
}

/// A redial staged in the open transaction, leasable `lag_ms` after its window opened
/// (negative: written ahead, leasable at the opening itself).
pub fn leasable(lag_ms: i64) {
    TALLY.with(|t| t.borrow_mut().leasable.push(lag_ms.max(0)));
}

/// The transaction ended: publish what it counted if it committed, forget it otherwise.
pub fn settle(committed: bool) {
    TALLY.with(|t| {
        let mut tally = t.borrow_mut();
        if committed {
            for (state, reason) in &tally.ended {
                super::ended(*state, *reason);
            }
            if !tally.leasable.is_empty() {
                super::leasable(&tally.leasable);
            }
        }
        tally.ended.clear();
        tally.leasable.clear();
    });
}
