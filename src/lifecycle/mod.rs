//! The callback state machine: its states ([`states`]), its decisions ([`decide`], without
//! SQL) and, below, its table. `store::lifecycle` holds the statements that apply it.
//!
//! ```text
//!             open (window start, or retry time)
//!  scheduled ───────────────────────────────────▶ due ══ leased ══▶ completed
//!      ▲                                           │      (a dialer     (connected)
//!      │ busy / no_answer / failed, retry          │       holds its
//!      └──────────────── (inside the window) ──────┘       redial)
//!
//!  due ──▶ scheduled                calling hours closed: paused until the next opening
//!  any live state ──▶ expired     window ended, max attempts, owner absent (fallback `expire`)
//!  any live state ──▶ superseded  a newer callback for the same AccountNumber
//!  any live state ──▶ cancelled   POST /v1/callbacks/{id}/cancel
//! ```
//!
//! * `leased` is not stored: it is a live callback whose current redial event a dialer has
//!   taken (leased, or acked before reporting the attempt), read from the queue by the
//!   `callbacks_shown` view of `schema.sql`, the one statement of that rule. Leases, nacks and
//!   leases running out therefore write only the events table, and the two never disagree.
//! * Staging: a callback's `redial` event is written up to [`decide::STAGE_AHEAD`] before its
//!   window opens (or its retry is due), leasable from that instant. A lease never hands out
//!   an event early, so at the instant itself the event is leasable with no write at all: a
//!   burst of windows opening in the same second costs nothing at its start. Opening
//!   (scheduled → due, and the owner check) follows in the scheduler's tick.
//! * Ending a callback (expired, superseded, cancelled, completed) withdraws its open events;
//!   `expired` also writes an `expired` event, with the reason, so dialers and reports learn
//!   the customer was not reached.
//! * `next_at` is the one instant the scheduler must next look at a live callback: the staging
//!   time, then `open_at` (window start or retry time) while `scheduled`, `open_until` (or an
//!   earlier owner-absent deadline) while `due`, and NULL once finished.
//! * Parking: a `scheduled` callback whose staging time falls in a later hour
//!   ([`decide::PARK_BUCKET`]) than the next [`decide::UNPARK_AHEAD`] has no `next_at` yet;
//!   `parked_at` says when the scheduler moves it onto the agenda, ten minutes before that
//!   hour begins. The agenda index is ordered by instant, so each new far-off callback would
//!   write a page at a random place in it; parked ones sort by bucket and then id, so a stream
//!   of them appends to a few pages, and a bucket joins the agenda in bulk. A callback never
//!   has both `next_at` and `parked_at`, and a finished one has neither.
//! * Calling hours ([`crate::hours`]): `open_at` is always an instant when calling is allowed,
//!   and `open_until` is when that span of calling hours closes, or the window's end if that
//!   comes first; a redial is never handed out at or after `open_until`. At `open_until`
//!   before the window's end the callback pauses (due → scheduled): its unleased redial is
//!   withdrawn and the next one staged for the next opening. Retries move to the next opening
//!   the same way. Without calling hours, `open_until` is the window's end.
//! * Owner absent: a personal callback whose owner is neither logged in nor on a call when its
//!   window opens, or who leaves while it is open, gets a deadline `--pcb-fallback-after`
//!   later. These two checks are asked of many callbacks at once, so they are written in SQL
//!   (`store::lifecycle::open` and `owner_left`). If the owner is still away at the deadline,
//!   [`decide::owner_deadline`] applies the fallback: `any-agent` re-issues the redial with
//!   `personal: false`; `next-day` moves the window to the same local hours the next day,
//!   once; `expire` ends the callback. The choice and its time are recorded.
//! * A zone this build does not know ([`crate::zone::Zone`]): the callback keeps its stored
//!   instants. Where a decision needs to read local time (the next opening of calling hours,
//!   the next day's window), it ends as `expired` with reason `unknown-zone` instead, and says
//!   so in the log; it is never read as another zone.

pub mod decide;
pub mod states;

pub use decide::{Live, Span, STAGE_AHEAD};
pub use states::{AttemptResult, CallState, CallbackState, EndReason, EventKind};
