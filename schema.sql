-- redial's SQLite schema: the one source of tables, indexes and views.
--
-- The file is a list of numbered steps. A step starts at a line `-- step N: what it adds`
-- and runs, whole, in one transaction that also sets `PRAGMA user_version = N`, so a newer
-- binary brings an older database file up to date step by step. Never edit a step that has
-- shipped: add a new one below.
--
-- Conventions:
--   * every instant is stored in UTC as INTEGER milliseconds since the Unix epoch
--     (columns named `*_at`, `window_start`, `window_end`); the `v_*` views render them as
--     RFC 3339 text for reporting;
--   * local times are kept as the client sent them (`DD/MM/YYYY HH:mm`) together with the
--     IANA zone they were read in.

-- step 1: agents, calls, business outcomes and callback windows
CREATE TABLE agents (
    user_id     TEXT PRIMARY KEY,
    logged_in   INTEGER NOT NULL CHECK (logged_in IN (0, 1)),
    login_at    INTEGER,
    logout_at   INTEGER,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE calls (
    callid          TEXT PRIMARY KEY,
    account_number  TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('active', 'ended')),
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER
) WITHOUT ROWID;

-- "Is this agent on an active call?" is asked for every LCM request.
CREATE INDEX calls_active_by_agent ON calls (user_id) WHERE state = 'active';

CREATE TABLE callbacks (
    id                INTEGER PRIMARY KEY,
    callid            TEXT NOT NULL REFERENCES calls (callid),
    account_number    TEXT NOT NULL,
    callback_mode_id  INTEGER NOT NULL,
    user_id           TEXT NOT NULL,
    window_start      INTEGER NOT NULL,
    window_end        INTEGER NOT NULL,
    local_start       TEXT NOT NULL,
    local_end         TEXT NOT NULL,
    timezone          TEXT NOT NULL,
    -- 'gap' or 'overlap' when the local time fell in a daylight-saving change (README: Time).
    start_dst         TEXT CHECK (start_dst IN ('gap', 'overlap')),
    end_dst           TEXT CHECK (end_dst IN ('gap', 'overlap')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    -- 1 while only UserID may take the callback; 0 once it fell back to any agent.
    personal          INTEGER NOT NULL DEFAULT 1 CHECK (personal IN (0, 1)),
    -- The next instant the scheduler must look at this callback (staging, opening, window end,
    -- owner-absent deadline); NULL once the callback is finished.
    next_at           INTEGER,
    -- When the next redial becomes leasable: the window start, a retry time.
    open_at           INTEGER,
    -- 1 while a redial event is written ahead of open_at and the callback not yet opened.
    staged            INTEGER NOT NULL DEFAULT 0 CHECK (staged IN (0, 1)),
    opened_at         INTEGER,
    -- Why a callback ended as it did ('window-ended', 'max-attempts', 'owner-absent', ...).
    end_reason        TEXT,
    -- The owner-absent fallback applied ('any-agent', 'next-day', 'expire') and when.
    fallback          TEXT,
    fallback_at       INTEGER,
    state             TEXT NOT NULL CHECK (state IN
                        ('scheduled', 'due', 'completed', 'expired', 'cancelled', 'superseded')),
    supersedes        INTEGER REFERENCES callbacks (id) ON DELETE SET NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK (window_end > window_start)
);

-- At most one live callback per contact: the database itself refuses a second one.
CREATE UNIQUE INDEX callbacks_one_live_per_account
    ON callbacks (account_number) WHERE state IN ('scheduled', 'due');
CREATE INDEX callbacks_by_callid ON callbacks (callid);
CREATE INDEX callbacks_by_supersedes ON callbacks (supersedes) WHERE supersedes IS NOT NULL;
-- The scheduler's agenda: the earliest next_at is the instant it sleeps until.
CREATE INDEX callbacks_agenda ON callbacks (next_at) WHERE next_at IS NOT NULL;
-- An agent's open personal callbacks, looked up when the agent logs out.
CREATE INDEX callbacks_open_by_agent ON callbacks (user_id) WHERE state = 'due';
-- Finished callbacks by age, for the retention purge.
CREATE INDEX callbacks_finished ON callbacks (updated_at)
    WHERE state IN ('completed', 'expired', 'cancelled', 'superseded');

-- The current business outcome of each call; replaced outcomes move to outcome_history.
CREATE TABLE outcomes (
    id                INTEGER PRIMARY KEY,
    callid            TEXT NOT NULL UNIQUE REFERENCES calls (callid),
    account_number    TEXT NOT NULL,
    outcome_id        INTEGER NOT NULL,
    business_outcome  INTEGER NOT NULL,
    user_id           TEXT NOT NULL,
    agent_comments    TEXT NOT NULL,
    lead_score        REAL NOT NULL,
    target_amount     REAL NOT NULL,
    source            TEXT,
    callback_id       INTEGER REFERENCES callbacks (id) ON DELETE SET NULL,
    received_at       INTEGER NOT NULL
);

CREATE TABLE outcome_history (
    id                INTEGER PRIMARY KEY,
    outcome           INTEGER NOT NULL REFERENCES outcomes (id),
    callid            TEXT NOT NULL,
    account_number    TEXT NOT NULL,
    outcome_id        INTEGER NOT NULL,
    business_outcome  INTEGER NOT NULL,
    user_id           TEXT NOT NULL,
    agent_comments    TEXT NOT NULL,
    lead_score        REAL NOT NULL,
    target_amount     REAL NOT NULL,
    source            TEXT,
    callback_id       INTEGER REFERENCES callbacks (id) ON DELETE SET NULL,
    received_at       INTEGER NOT NULL,
    replaced_at       INTEGER NOT NULL
);
CREATE INDEX outcome_history_by_outcome ON outcome_history (outcome);
CREATE INDEX outcome_history_by_callback ON outcome_history (callback_id);
CREATE INDEX outcomes_by_callback ON outcomes (callback_id);

-- step 2: reporting view of outcomes, with instants as RFC 3339 UTC text
-- Every outcome ever set, current and replaced, one row each.
CREATE VIEW v_outcomes AS
SELECT o.id AS outcome, 'current' AS status, o.callid, o.account_number, o.outcome_id,
       o.business_outcome, o.user_id, o.agent_comments, o.lead_score, o.target_amount,
       o.source, o.callback_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', o.received_at / 1000.0, 'unixepoch') AS received_at_utc,
       NULL AS replaced_at_utc
FROM outcomes o
UNION ALL
SELECT h.outcome, 'replaced', h.callid, h.account_number, h.outcome_id,
       h.business_outcome, h.user_id, h.agent_comments, h.lead_score, h.target_amount,
       h.source, h.callback_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', h.received_at / 1000.0, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', h.replaced_at / 1000.0, 'unixepoch')
FROM outcome_history h;

-- step 3: the redial queue and the attempts dialers report
-- One row per event handed to dialers. An event is a snapshot of its callback at the time it
-- was issued, so a dialer needs nothing else. States: 'ready' (leasable), 'leased' (held by
-- `consumer` until `available_at`), 'acked' (done), 'withdrawn' (its callback was superseded,
-- cancelled, expired or answered), 'dead' (delivered too often without an ack).
CREATE TABLE events (
    id                INTEGER PRIMARY KEY,
    type              TEXT NOT NULL CHECK (type IN ('redial', 'expired')),
    callback_id       INTEGER NOT NULL REFERENCES callbacks (id) ON DELETE CASCADE,
    callid            TEXT NOT NULL,
    account_number    TEXT NOT NULL,
    callback_mode_id  INTEGER NOT NULL,
    user_id           TEXT NOT NULL,
    personal          INTEGER NOT NULL CHECK (personal IN (0, 1)),
    outcome_id        INTEGER,
    business_outcome  INTEGER,
    window_start      INTEGER NOT NULL,
    window_end        INTEGER NOT NULL,
    timezone          TEXT NOT NULL,
    attempt           INTEGER NOT NULL,
    reason            TEXT,
    state             TEXT NOT NULL CHECK (state IN ('ready', 'leased', 'acked', 'withdrawn', 'dead')),
    -- ready: when it became leasable; leased: when the lease runs out.
    available_at      INTEGER NOT NULL,
    -- A redial is never handed out at or after this instant (its window's end).
    expires_at        INTEGER,
    consumer          TEXT,
    deliveries        INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX events_ready ON events (available_at) WHERE state = 'ready';
CREATE INDEX events_ready_by_agent ON events (user_id, available_at) WHERE state = 'ready' AND personal = 1;
CREATE INDEX events_leases ON events (available_at) WHERE state = 'leased';
CREATE INDEX events_by_callback ON events (callback_id);
CREATE INDEX events_finished ON events (updated_at) WHERE state IN ('acked', 'withdrawn');

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    callback_id  INTEGER NOT NULL REFERENCES callbacks (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    result       TEXT NOT NULL CHECK (result IN ('connected', 'busy', 'no_answer', 'failed')),
    at           INTEGER NOT NULL
);
CREATE INDEX attempts_by_callback ON attempts (callback_id);

-- Callbacks for reporting, instants as RFC 3339 UTC text. A due callback whose redial a dialer
-- has taken (leased, or acked before it reported the attempt) is reported as 'leased': not
-- stored, the queue knows it.
CREATE VIEW v_callbacks AS
SELECT c.id,
       CASE WHEN c.state = 'due' AND EXISTS (SELECT 1 FROM events e WHERE e.callback_id = c.id
                AND e.state IN ('leased', 'acked') AND e.type = 'redial'
                AND e.attempt = c.attempts + 1)
            THEN 'leased' ELSE c.state END AS state,
       c.callid,
       c.account_number,
       c.callback_mode_id,
       c.user_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.window_start / 1000, 'unixepoch') AS window_start_utc,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.window_end / 1000, 'unixepoch')   AS window_end_utc,
       c.local_start,
       c.local_end,
       c.timezone,
       c.attempts,
       c.personal,
       c.end_reason,
       c.fallback,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.fallback_at / 1000.0, 'unixepoch') AS fallback_at_utc,
       c.start_dst,
       c.end_dst,
       c.supersedes,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.created_at / 1000.0, 'unixepoch') AS created_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.updated_at / 1000.0, 'unixepoch') AS updated_at_utc
FROM callbacks c;

CREATE VIEW v_events AS
SELECT e.id, e.type, e.state, e.callback_id, e.callid, e.account_number, e.user_id, e.personal,
       e.attempt, e.reason, e.deliveries, e.consumer,
       strftime('%Y-%m-%dT%H:%M:%fZ', e.created_at / 1000.0, 'unixepoch') AS created_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', e.updated_at / 1000.0, 'unixepoch') AS updated_at_utc
FROM events e;

-- step 4: calling hours, and windows in the contact's local time for reports
-- When the current span of calling hours closes (or the window ends, if sooner): a redial is
-- not handed out from then on. NULL on rows from before this step: the window's end.
ALTER TABLE callbacks ADD COLUMN open_until INTEGER;
-- The window as requested, before it was clipped to calling hours (window_start/window_end).
ALTER TABLE callbacks ADD COLUMN requested_start INTEGER;
ALTER TABLE callbacks ADD COLUMN requested_end INTEGER;
-- The calling-hours rules the window was clipped to (e.g. 'Mon-Sat 08:00-21:00'); NULL: none.
ALTER TABLE callbacks ADD COLUMN calling_hours TEXT;
-- window_start/window_end as local time in the callback's zone, RFC 3339 with the offset then
-- in force: SQLite cannot convert to an IANA zone itself.
ALTER TABLE callbacks ADD COLUMN window_start_local TEXT;
ALTER TABLE callbacks ADD COLUMN window_end_local TEXT;

-- Callbacks for reporting, each window in UTC and in the contact's local time. 'leased' is
-- derived as in step 3, now also for a callback a dialer took before the scheduler made it
-- 'due' (a lease writes only the events table), or that paused while a dialer held it.
DROP VIEW v_callbacks;
CREATE VIEW v_callbacks AS
SELECT c.id,
       CASE WHEN c.state IN ('scheduled', 'due') AND EXISTS (SELECT 1 FROM events e WHERE e.callback_id = c.id
                AND e.state IN ('leased', 'acked') AND e.type = 'redial'
                AND e.attempt = c.attempts + 1)
            THEN 'leased' ELSE c.state END AS state,
       c.callid,
       c.account_number,
       c.callback_mode_id,
       c.user_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.window_start / 1000, 'unixepoch') AS window_start_utc,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.window_end / 1000, 'unixepoch')   AS window_end_utc,
       c.window_start_local,
       c.window_end_local,
       c.local_start,
       c.local_end,
       c.timezone,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.requested_start / 1000, 'unixepoch') AS requested_start_utc,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.requested_end / 1000, 'unixepoch')   AS requested_end_utc,
       c.calling_hours,
       c.requested_start IS NOT NULL
           AND (c.requested_start <> c.window_start OR c.requested_end <> c.window_end) AS clipped,
       c.attempts,
       c.personal,
       c.end_reason,
       c.fallback,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.fallback_at / 1000.0, 'unixepoch') AS fallback_at_utc,
       c.start_dst,
       c.end_dst,
       c.supersedes,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.created_at / 1000.0, 'unixepoch') AS created_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.updated_at / 1000.0, 'unixepoch') AS updated_at_utc
FROM callbacks c;

-- step 5: finished events are purged with their callback
-- Acked and withdrawn events go when their callback is purged (ON DELETE CASCADE, through
-- events_by_callback), so the purge needs no index of its own on events, and an ack no longer
-- pays for one.
DROP INDEX events_finished;

-- step 6: far-off callbacks wait in hourly buckets
-- A callback first needed by the scheduler in a later hour is parked: next_at stays NULL and
-- parked_at holds when the scheduler moves it onto the agenda (ten minutes before that hour).
-- Entries of one bucket sort by id, so a stream of new callbacks appends to a few pages of
-- callbacks_parked, where each one used to rewrite a page at a random place in the agenda.
ALTER TABLE callbacks ADD COLUMN parked_at INTEGER;
CREATE INDEX callbacks_parked ON callbacks (parked_at) WHERE parked_at IS NOT NULL;

-- step 7: what an event says apart from where it is in the queue
-- A lease, an ack and a returned lease rewrite the event's row. The snapshot of the callback
-- a dialer receives never changes after the event is issued, so it moves to event_details,
-- and those rewrites touch a row a third of the size: a lease costs the writer a third less.
-- The columns the queue filters on (type, callback_id, user_id, personal, attempt) stay.
-- Dropping a column rewrites the table; on a large file this step takes a while, once.
CREATE TABLE event_details (
    event_id          INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    callid            TEXT NOT NULL,
    account_number    TEXT NOT NULL,
    callback_mode_id  INTEGER NOT NULL,
    outcome_id        INTEGER,
    business_outcome  INTEGER,
    window_start      INTEGER NOT NULL,
    window_end        INTEGER NOT NULL,
    timezone          TEXT NOT NULL,
    -- Why the callback ended, on 'expired' events.
    reason            TEXT
);
INSERT INTO event_details (event_id, callid, account_number, callback_mode_id, outcome_id,
    business_outcome, window_start, window_end, timezone, reason)
SELECT id, callid, account_number, callback_mode_id, outcome_id, business_outcome, window_start,
       window_end, timezone, reason
FROM events;
DROP VIEW v_events;
ALTER TABLE events DROP COLUMN callid;
ALTER TABLE events DROP COLUMN account_number;
ALTER TABLE events DROP COLUMN callback_mode_id;
ALTER TABLE events DROP COLUMN outcome_id;
ALTER TABLE events DROP COLUMN business_outcome;
ALTER TABLE events DROP COLUMN window_start;
ALTER TABLE events DROP COLUMN window_end;
ALTER TABLE events DROP COLUMN timezone;
ALTER TABLE events DROP COLUMN reason;
CREATE VIEW v_events AS
SELECT e.id, e.type, e.state, e.callback_id, d.callid, d.account_number, e.user_id, e.personal,
       e.attempt, d.reason, e.deliveries, e.consumer,
       strftime('%Y-%m-%dT%H:%M:%fZ', e.created_at / 1000.0, 'unixepoch') AS created_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', e.updated_at / 1000.0, 'unixepoch') AS updated_at_utc
FROM events e JOIN event_details d ON d.event_id = e.id;

-- step 8: state checks written as comparisons
-- SQLite checks `x IN (a, b, c, ...)` with three or more constants, in a CHECK or in a partial
-- index's WHERE, by filling a temporary b-tree with the list for every row it writes: 1.6 µs
-- a row, more than all the rest of a lease's UPDATE. The same rules written as comparisons
-- cost nothing measurable (BENCHMARKS.md, 2026-11-25).
-- A CHECK cannot be altered, and every stored row already satisfies the new text, so the
-- three table definitions are rewritten in place. That is the procedure SQLite documents for
-- schema changes that leave the stored rows as they are
-- (https://sqlite.org/lang_altertable.html#otheralter). RESET reloads the rewritten schema,
-- and the index rebuilt after it changes the schema cookie, so every other connection
-- reloads it too.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (state IN
                        (''scheduled'', ''due'', ''completed'', ''expired'', ''cancelled'', ''superseded''))',
    'CHECK (state = ''scheduled'' OR state = ''due'' OR state = ''completed''
                        OR state = ''expired'' OR state = ''cancelled'' OR state = ''superseded'')')
WHERE type = 'table' AND name = 'callbacks';
UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (state IN (''ready'', ''leased'', ''acked'', ''withdrawn'', ''dead''))',
    'CHECK (state = ''ready'' OR state = ''leased'' OR state = ''acked''
                        OR state = ''withdrawn'' OR state = ''dead'')')
WHERE type = 'table' AND name = 'events';
UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (result IN (''connected'', ''busy'', ''no_answer'', ''failed''))',
    'CHECK (result = ''connected'' OR result = ''busy'' OR result = ''no_answer''
                        OR result = ''failed'')')
WHERE type = 'table' AND name = 'attempts';
PRAGMA writable_schema = RESET;
-- Finished is every state but the two live ones: a list of two compiles to two comparisons.
DROP INDEX callbacks_finished;
CREATE INDEX callbacks_finished ON callbacks (updated_at) WHERE state NOT IN ('scheduled', 'due');

-- step 9: the 'leased' rule in one place
-- A live callback whose current redial a dialer holds (leased, or acked before it reported the
-- attempt) shows as 'leased': not stored, the queue knows it. callbacks_shown is every column of
-- callbacks and the state as shown; the API, the state machine and v_callbacks all read the
-- rule from here.
CREATE VIEW callbacks_shown AS
SELECT c.*,
       CASE WHEN c.state IN ('scheduled', 'due') AND EXISTS (SELECT 1 FROM events e
                WHERE e.callback_id = c.id AND e.type = 'redial'
                  AND e.state IN ('leased', 'acked') AND e.attempt = c.attempts + 1)
            THEN 'leased' ELSE c.state END AS shown_state
FROM callbacks c;
DROP VIEW v_callbacks;
CREATE VIEW v_callbacks AS
SELECT c.id,
       c.shown_state AS state,
       c.callid,
       c.account_number,
       c.callback_mode_id,
       c.user_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.window_start / 1000, 'unixepoch') AS window_start_utc,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.window_end / 1000, 'unixepoch')   AS window_end_utc,
       c.window_start_local,
       c.window_end_local,
       c.local_start,
       c.local_end,
       c.timezone,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.requested_start / 1000, 'unixepoch') AS requested_start_utc,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.requested_end / 1000, 'unixepoch')   AS requested_end_utc,
       c.calling_hours,
       c.requested_start IS NOT NULL
           AND (c.requested_start <> c.window_start OR c.requested_end <> c.window_end) AS clipped,
       c.attempts,
       c.personal,
       c.end_reason,
       c.fallback,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.fallback_at / 1000.0, 'unixepoch') AS fallback_at_utc,
       c.start_dst,
       c.end_dst,
       c.supersedes,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.created_at / 1000.0, 'unixepoch') AS created_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.updated_at / 1000.0, 'unixepoch') AS updated_at_utc
FROM callbacks_shown c;

-- step 10: the rest of the LCM family
-- Every write message sets an outcome row but one (SetPersonalCallbackWithComments), and not
-- every message carries OutcomeId and BusinessOutcome: both may be NULL now. Removing a NOT NULL
-- leaves every stored row as it is, so the table definitions are rewritten in place, as step 8
-- did. `message` names the subtopic that set the row, `call_outcome` the telephony outcome
-- (SetBusinessOutcomeWithCallOutcome, SetCallOutcomeWithComments: 5 DNC, 9 Reject, ...).
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(replace(sql,
    'outcome_id        INTEGER NOT NULL,', 'outcome_id        INTEGER,'),
    'business_outcome  INTEGER NOT NULL,', 'business_outcome  INTEGER,')
WHERE type = 'table' AND name IN ('outcomes', 'outcome_history');
PRAGMA writable_schema = RESET;
ALTER TABLE outcomes ADD COLUMN message TEXT NOT NULL
    DEFAULT 'SetBusinessOutcomeWithPersonalCallback';
ALTER TABLE outcomes ADD COLUMN call_outcome INTEGER;
ALTER TABLE outcome_history ADD COLUMN message TEXT NOT NULL
    DEFAULT 'SetBusinessOutcomeWithPersonalCallback';
ALTER TABLE outcome_history ADD COLUMN call_outcome INTEGER;

-- A normal callback (SetBusinessOutcomeWithCallback) belongs to no agent: any may take it,
-- and user_id is who set it. `message` names the subtopic that asked for the callback; the
-- comments are those of SetPersonalCallbackWithComments, which sets no outcome row.
ALTER TABLE callbacks ADD COLUMN kind TEXT NOT NULL DEFAULT 'personal'
    CHECK (kind = 'personal' OR kind = 'normal');
ALTER TABLE callbacks ADD COLUMN message TEXT NOT NULL
    DEFAULT 'SetBusinessOutcomeWithPersonalCallback';
ALTER TABLE callbacks ADD COLUMN agent_comments TEXT;
ALTER TABLE callbacks ADD COLUMN lead_score REAL;
ALTER TABLE callbacks ADD COLUMN target_amount REAL;

-- An agent's live personal callbacks, in window order: GetPersonalCallbackList, and the
-- owner-absent deadlines when the agent leaves (which used callbacks_open_by_agent).
CREATE INDEX callbacks_live_by_agent ON callbacks (user_id, window_start)
    WHERE state IN ('scheduled', 'due') AND kind = 'personal';
DROP INDEX callbacks_open_by_agent;

-- Ready events any agent may take (normal callbacks, and personal ones fallen back to any
-- agent), for a lease that names an agent: theirs and these.
CREATE INDEX events_ready_normal ON events (available_at) WHERE state = 'ready' AND personal = 0;

-- Contacts on the do-not-call list: set by a DNC telephony outcome, with who and when.
CREATE TABLE dnc (
    account_number  TEXT PRIMARY KEY,
    since           INTEGER NOT NULL,
    callid          TEXT,
    user_id         TEXT,
    message         TEXT,
    source          TEXT
) WITHOUT ROWID;

-- What the telephony side says of a contact when it registers a call (POST /v1/calls): its
-- campaign and contact ids, and its modes (the numbers a callback may dial).
CREATE TABLE contacts (
    account_number  TEXT PRIMARY KEY,
    campaign_id     TEXT,
    contact_id      TEXT,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE contact_modes (
    account_number  TEXT NOT NULL,
    mode_id         INTEGER NOT NULL,
    description     TEXT NOT NULL,
    cvalue          TEXT NOT NULL,
    PRIMARY KEY (account_number, mode_id)
) WITHOUT ROWID;
-- The number a redial is for, when the contact's modes name it.
ALTER TABLE event_details ADD COLUMN cvalue TEXT;

-- The outcome catalogue (--outcomes FILE): what OutcomeId and BusinessOutcome values mean.
-- `closes`: the outcome is final for the contact; its live callback ends.
CREATE TABLE outcome_catalogue (
    outcome_id   INTEGER PRIMARY KEY,
    description  TEXT NOT NULL,
    campaign_id  TEXT,
    parent_id    INTEGER,
    closes       INTEGER NOT NULL DEFAULT 0 CHECK (closes = 0 OR closes = 1)
);
CREATE INDEX outcome_catalogue_by_parent ON outcome_catalogue (parent_id);

-- Every outcome ever set, current and replaced, with the message that set it and the
-- catalogue's descriptions where it has them.
DROP VIEW v_outcomes;
CREATE VIEW v_outcomes AS
SELECT o.id AS outcome, 'current' AS status, o.message, o.callid, o.account_number,
       o.outcome_id, oc.description AS outcome_description, o.business_outcome,
       bc.description AS business_outcome_description, o.call_outcome, o.user_id,
       o.agent_comments, o.lead_score, o.target_amount, o.source, o.callback_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', o.received_at / 1000.0, 'unixepoch') AS received_at_utc,
       NULL AS replaced_at_utc
FROM outcomes o
LEFT JOIN outcome_catalogue oc ON oc.outcome_id = o.outcome_id
LEFT JOIN outcome_catalogue bc ON bc.outcome_id = o.business_outcome
UNION ALL
SELECT h.outcome, 'replaced', h.message, h.callid, h.account_number,
       h.outcome_id, oc.description, h.business_outcome, bc.description, h.call_outcome,
       h.user_id, h.agent_comments, h.lead_score, h.target_amount, h.source, h.callback_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', h.received_at / 1000.0, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', h.replaced_at / 1000.0, 'unixepoch')
FROM outcome_history h
LEFT JOIN outcome_catalogue oc ON oc.outcome_id = h.outcome_id
LEFT JOIN outcome_catalogue bc ON bc.outcome_id = h.business_outcome;

DROP VIEW v_callbacks;
CREATE VIEW v_callbacks AS
SELECT c.id,
       c.shown_state AS state,
       c.kind,
       c.message,
       c.callid,
       c.account_number,
       c.callback_mode_id,
       c.user_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.window_start / 1000, 'unixepoch') AS window_start_utc,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.window_end / 1000, 'unixepoch')   AS window_end_utc,
       c.window_start_local,
       c.window_end_local,
       c.local_start,
       c.local_end,
       c.timezone,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.requested_start / 1000, 'unixepoch') AS requested_start_utc,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.requested_end / 1000, 'unixepoch')   AS requested_end_utc,
       c.calling_hours,
       c.requested_start IS NOT NULL
           AND (c.requested_start <> c.window_start OR c.requested_end <> c.window_end) AS clipped,
       c.attempts,
       c.personal,
       c.end_reason,
       c.fallback,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.fallback_at / 1000.0, 'unixepoch') AS fallback_at_utc,
       c.start_dst,
       c.end_dst,
       c.supersedes,
       c.agent_comments,
       c.lead_score,
       c.target_amount,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.created_at / 1000.0, 'unixepoch') AS created_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', c.updated_at / 1000.0, 'unixepoch') AS updated_at_utc
FROM callbacks_shown c;

-- step 11: what the bus pushes to desktops and supervisor screens
-- One row per pushed event (README: The bus), written in the transaction that made it happen.
-- `id` orders pushes by the instant they become visible: milliseconds since 2000-01-01 UTC
-- times 4,096, plus a sequence within the millisecond. A callback's due push is written ahead
-- of its window with the id of the window's start, so `WHERE id <= <first id after now>` is
-- what a subscriber may have seen. `user_id` is the agent whose desktop hears it (NULL:
-- supervisors only); `data` is the pushed message, JSON.
CREATE TABLE bus_events (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    user_id      TEXT,
    callback_id  INTEGER,
    data         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
-- A callback's due pushes, taken back if its redial is withdrawn before the window opens.
CREATE INDEX bus_events_due ON bus_events (callback_id)
    WHERE kind IN ('PersonalCallbackDue', 'CallbackDue');
-- No index by agent: a desktop that reconnects with `after` reads the pushes since then in id
-- order and keeps its own; an index would cost every outcome a second insert in the writer.
-- The highest push id the retention purge deleted: a subscriber asking for older ones is told.
CREATE TABLE bus_purged (
    only     INTEGER PRIMARY KEY CHECK (only = 1),
    through  INTEGER NOT NULL
);

-- Pushes for reporting, with the instant each became visible.
CREATE VIEW v_bus_events AS
SELECT b.id, b.kind, b.user_id, b.callback_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', (b.id / 4096 + 946684800000) / 1000.0, 'unixepoch')
           AS visible_at_utc,
       strftime('%Y-%m-%dT%H:%M:%fZ', b.created_at / 1000.0, 'unixepoch') AS created_at_utc,
       b.data
FROM bus_events b;

-- step 12: supervisors: finding, moving and closing callbacks; the audit; the callback SLA
-- GET /v1/callbacks pages in window order (window start, then id) and reports choose windows
-- by range: both read callbacks by the ten minutes their window starts in. An index by the
-- instant itself takes each new callback to a page of its own, as windows are spread over
-- the day; by ten minutes, a commit's new callbacks append to the few slices they fall in
-- (the parked buckets' trick, step 6). A page sorts one slice at a time.
CREATE INDEX callbacks_by_slice ON callbacks (window_start / 600000);
-- An agent's callbacks, all of them: it also serves GetPersonalCallbackList (a date range of
-- one agent's) and an agent's leaving (its due ones), so the index of live ones only, made
-- for them by schema step 10, goes: one index fewer for every new callback, opening and end
-- to rewrite.
CREATE INDEX callbacks_by_agent ON callbacks (user_id, window_start);
DROP INDEX callbacks_live_by_agent;
-- A contact's callbacks, all of them, in the index that also keeps at most one of them live:
-- the key is 0 for a live callback and its id for a finished one, so the database still
-- refuses a second live callback for a contact, as the index it replaces did, and a new
-- callback writes one index by contact, not two.
DROP INDEX callbacks_one_live_per_account;
CREATE UNIQUE INDEX callbacks_by_account ON callbacks
    (account_number, (CASE WHEN state = 'scheduled' OR state = 'due' THEN 0 ELSE id END));

-- When a dialer first took the event (the lease's own UPDATE of the row writes it), and, on a
-- finished callback, the first of those in its current window: the callback SLA's "first
-- redial handed out". A callback keeps it as it finishes, on the row it writes then anyway,
-- so that a report over a million callbacks reads a column instead of the queue, and the
-- lease, the hot path, writes no second table (BENCHMARKS.md: supervisors).
ALTER TABLE events ADD COLUMN first_leased_at INTEGER;
ALTER TABLE callbacks ADD COLUMN first_leased_at INTEGER;

-- Who put a contact on the do-not-call list by hand (PUT /v1/dnc/{AccountNumber}): the token's
-- name. Listings by an LCM DNC outcome name the agent and call instead.
ALTER TABLE dnc ADD COLUMN added_by TEXT;

-- Every change a supervisor makes (reschedule, reassign, cancel, do-not-call by hand): who
-- (the token's name; 'local' when no tokens are configured), when, and the callback or
-- contact before and after, as JSON objects of the fields a supervisor can change.
CREATE TABLE audit (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    callback_id     INTEGER,
    account_number  TEXT,
    reason          TEXT,
    before          TEXT,
    after           TEXT
);
CREATE INDEX audit_by_callback ON audit (callback_id) WHERE callback_id IS NOT NULL;
CREATE INDEX audit_by_at ON audit (at);

-- `redial report audit` reads it by `at` (ms), indexed.
CREATE VIEW v_audit AS
SELECT a.id, strftime('%Y-%m-%dT%H:%M:%fZ', a.at / 1000.0, 'unixepoch') AS at_utc, a.actor,
       a.action, a.callback_id, a.account_number, a.reason, a.before, a.after, a.at
FROM audit a;

-- Every outcome ever set, as in step 10, with the instant it was received in ms
-- (`received_at`), which `redial report outcomes` chooses its range by.
DROP VIEW v_outcomes;
CREATE VIEW v_outcomes AS
SELECT o.id AS outcome, 'current' AS status, o.message, o.callid, o.account_number,
       o.outcome_id, oc.description AS outcome_description, o.business_outcome,
       bc.description AS business_outcome_description, o.call_outcome, o.user_id,
       o.agent_comments, o.lead_score, o.target_amount, o.source, o.callback_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', o.received_at / 1000.0, 'unixepoch') AS received_at_utc,
       NULL AS replaced_at_utc, o.received_at
FROM outcomes o
LEFT JOIN outcome_catalogue oc ON oc.outcome_id = o.outcome_id
LEFT JOIN outcome_catalogue bc ON bc.outcome_id = o.business_outcome
UNION ALL
SELECT h.outcome, 'replaced', h.message, h.callid, h.account_number,
       h.outcome_id, oc.description, h.business_outcome, bc.description, h.call_outcome,
       h.user_id, h.agent_comments, h.lead_score, h.target_amount, h.source, h.callback_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', h.received_at / 1000.0, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', h.replaced_at / 1000.0, 'unixepoch'), h.received_at
FROM outcome_history h
LEFT JOIN outcome_catalogue oc ON oc.outcome_id = h.outcome_id
LEFT JOIN outcome_catalogue bc ON bc.outcome_id = h.business_outcome;

-- The callback SLA, one row per callback: what a contact-center manager is judged on.
-- `lag_ms`: from the window's start to the first lease of one of its redials; `in_window`:
-- that first redial was handed out before the window ended; `connected`: a dial reached the
-- customer; `contacted`: the customer was reached on another call first
-- (--complete-on-contact). `redial report sla` groups these rows (by campaign: joined to
-- `contacts` by AccountNumber); `--sql` prints the grouping statement it runs, for sqlite3.
CREATE VIEW v_callback_sla AS
SELECT c.id, c.kind, c.user_id, c.account_number, c.window_start, c.window_end,
       strftime('%Y-%m-%dT%H:%M:%SZ', c.window_start / 1000, 'unixepoch') AS window_start_utc,
       c.state, c.end_reason, c.attempts,
       c.first_lease_at,
       c.first_lease_at - c.window_start AS lag_ms,
       coalesce(c.first_lease_at < c.window_end, 0) AS in_window,
       (c.state = 'completed' AND c.end_reason = 'connected') AS connected,
       (c.state = 'completed' AND c.end_reason = 'contacted') AS contacted
FROM (SELECT callbacks.*,
             -- A live callback has not kept it yet: the queue has it.
             coalesce(first_leased_at, CASE WHEN state IN ('scheduled', 'due') THEN
                 (SELECT min(e.first_leased_at) FROM events e
                  WHERE e.callback_id = callbacks.id AND e.type = 'redial'
                    AND e.first_leased_at >= callbacks.window_start) END) AS first_lease_at
      FROM callbacks) c;

-- step 13: dead letters counted for /metrics without reading the whole queue
CREATE INDEX events_dead ON events (updated_at) WHERE state = 'dead';

-- step 14: the relay to NATS JetStream: how far each stream has been published, and this
-- database's instance name, which makes the message ids of its pushes unique across instances
CREATE TABLE relay_marks (
    stream      TEXT PRIMARY KEY,
    -- Every push up to this bus_events id has been acknowledged by the stream.
    mark        INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE instance (
    only  INTEGER PRIMARY KEY CHECK (only = 1),
    name  TEXT NOT NULL
);
INSERT INTO instance (only, name) VALUES (1, lower(hex(randomblob(8))));
