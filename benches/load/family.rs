//! The LCM family: a contact center's mix of messages against PCB-only ingest on the same
//! server in the same run, rounds alternating so both share the machine's phases; and
//! `GetPersonalCallbackList` for an agent with 1,000 live callbacks among a million.

use std::path::Path;

use chrono::{Duration, Utc};
use redial::lcm::{AccountNumber, UserId};
use redial::store::bulk::{self, Windows};
use redial::store::contacts::{self, Contact, Mode};
use redial::store::{lists, open_write_connection, schema, telephony, Synchronous};

use crate::ingest::{drive, lcm_body, measure, register_calls, Cost, Load};
use crate::{process, tomorrow, Plan};

/// The connections both workloads are driven over.
const CONNECTIONS: usize = 64;

/// Takes the callback window out of a request's `data`.
fn drop_window(data: &mut serde_json::Map<String, serde_json::Value>) {
    for field in [
        "StartDate",
        "EndDate",
        "StartTime",
        "EndTime",
        "CallbackModeID",
    ] {
        data.remove(field);
    }
}

/// Request `i` of the mixed workload: of every 20, 12 comments-only outcomes (60%), 5 personal
/// callbacks (25%), 2 normal callbacks (10%) and 1 do-not-call (5%), interleaved.
fn mixed_body(i: usize, day: &str) -> Vec<u8> {
    let pcb = lcm_body(i, day);
    let mut request: serde_json::Value = serde_json::from_slice(&pcb).expect("JSON");
    let data = request["data"].as_object_mut().expect("data");
    let subtopic = match i % 20 {
        0..12 => {
            drop_window(data);
            data.remove("BusinessOutcome");
            "SetBusinessOutcomeWithComments"
        }
        12..17 => return pcb,
        17..19 => "SetBusinessOutcomeWithCallback",
        _ => {
            drop_window(data);
            data.remove("OutcomeId");
            data.insert("CallOutcome".into(), "5".into());
            "SetBusinessOutcomeWithCallOutcome"
        }
    };
    request["subtopic"] = subtopic.into();
    serde_json::to_vec(&request).expect("JSON")
}

pub struct Mix {
    pub requests: usize,
    pub pcb: Vec<(Load, Cost)>,
    pub mixed: Vec<(Load, Cost)>,
}

/// Three rounds (quick: one) of PCB-only then mixed, each on calls of its own.
pub fn mixed_against_pcb(scratch: &Path, plan: &Plan) -> Mix {
    let rounds = if plan.quick { 1 } else { 3 };
    let requests = plan.ingest_requests;
    let db = scratch.join("family.db");
    register_calls(&db, 2 * rounds * requests);
    let server = process::spawn_server(&db, &[]);
    let url = server.url("/v1/lcm");
    let day = tomorrow();
    let mut mix = Mix {
        requests,
        pcb: Vec::new(),
        mixed: Vec::new(),
    };
    for round in 0..rounds {
        let first = 2 * round * requests;
        let pcb = (first..first + requests)
            .map(|i| lcm_body(i, &day))
            .collect();
        mix.pcb.push(measure(&server, &url, pcb, CONNECTIONS));
        let first = first + requests;
        let mixed = (first..first + requests)
            .map(|i| mixed_body(i, &day))
            .collect();
        mix.mixed.push(measure(&server, &url, mixed, CONNECTIONS));
    }
    server.terminate();
    mix
}

/// The agent whose callbacks are listed, and how many live callbacks they have.
const LISTED: &str = "listed-agent";
const LISTED_CALLBACKS: i64 = 1_000;
/// The other agents, who hold the rest of the preload.
const OTHER_AGENTS: i64 = 100;

pub struct ListFigures {
    pub total: i64,
    /// The statement's plan, one line a step.
    pub plan: Vec<String>,
    /// Each page asked for, and its sorted latencies.
    pub pages: Vec<(String, Load)>,
}

/// `total` scheduled callbacks, [`LISTED_CALLBACKS`] of them [`LISTED`]'s (over ten days from
/// tomorrow, each contact with its campaign and two modes), the rest spread over
/// [`OTHER_AGENTS`] agents in the same days; then pages of the list over HTTP, one request at
/// a time.
pub fn list(scratch: &Path, plan: &Plan) -> ListFigures {
    let total = if plan.quick { 10_000 } else { 1_000_000 };
    let db = scratch.join("list.db");
    let plan_lines = preload_list(&db, total);
    let server = process::spawn_server(&db, &[]);
    let url = server.url("/v1/lcm");
    let day = |d: i64| {
        (Utc::now() + Duration::days(d))
            .format("%d/%m/%Y")
            .to_string()
    };
    let body = |from: &str, to: &str, first: i64, rows: i64| {
        serde_json::to_vec(&serde_json::json!({
            "channel": "LCM", "topic": "WebService", "subtopic": "GetPersonalCallbackList",
            "data": {"UserID": LISTED, "FromDate": from, "ToDate": to,
                     "StartingNoOfRecord": first.to_string(), "NoofRecords": rows.to_string()}
        }))
        .expect("JSON")
    };
    let repeats = if plan.quick { 50 } else { 1_000 };
    let (first_day, last_day) = (day(1), day(11));
    let pages = [
        (
            "all 1,000 (ten days, one page of 1,000)",
            body(&first_day, &last_day, 1, 1_000),
        ),
        (
            "rows 991–1,000 (ten days, page of 10)",
            body(&first_day, &last_day, 991, 10),
        ),
        ("one day (100 rows)", body(&day(2), &day(2), 1, 1_000)),
    ];
    let rows = listed_rows(&url, &pages[0].1);
    assert_eq!(
        rows, LISTED_CALLBACKS as usize,
        "every live callback listed"
    );
    let pages = pages
        .into_iter()
        .map(|(name, body)| {
            let load = drive(&url, vec![body; repeats], 1);
            assert_eq!(load.ok, repeats, "{name}: every page answered 200");
            (name.to_owned(), load)
        })
        .collect();
    server.terminate();
    ListFigures {
        total,
        plan: plan_lines,
        pages,
    }
}

/// The rows of one list reply.
fn listed_rows(url: &str, body: &[u8]) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let reply: serde_json::Value = reqwest::Client::new()
            .post(url)
            .body(body.to_vec())
            .send()
            .await
            .expect("an answer")
            .json()
            .await
            .expect("JSON");
        reply["message"]["response"]
            .as_array()
            .map_or(0, |rows| rows.len())
    })
}

/// Writes the preload with the store's bulk path and its contact statements; returns the
/// list statement's query plan.
fn preload_list(db: &Path, total: i64) -> Vec<String> {
    let mut conn = open_write_connection(db, Synchronous::Normal).expect("database");
    schema::migrate(&mut conn, None).expect("schema");
    let now = Utc::now();
    let start = (now + Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let listed = UserId::parse(LISTED).expect("an agent");
    let tx = conn.transaction().expect("a transaction");
    telephony::set_agent_login(&tx, &listed, true, now).expect("logged in");
    let ten_days = Duration::days(10).num_seconds();
    let windows = |prefix: &str, n: i64, user: &UserId| {
        let windows = Windows {
            prefix,
            from: 0,
            to: n,
            start,
            step: Duration::seconds(ten_days / n),
            length: Duration::hours(1),
            user,
        };
        bulk::insert_windows(&tx, &windows, now).expect("windows");
    };
    windows("listed-", LISTED_CALLBACKS, &listed);
    let others = total - LISTED_CALLBACKS;
    for a in 0..OTHER_AGENTS {
        let user = UserId::parse(format!("other-{a}")).expect("an agent");
        let n = others / OTHER_AGENTS + i64::from(a < others % OTHER_AGENTS);
        windows(&format!("other-{a}-"), n, &user);
    }
    let contact = Contact {
        campaign_id: Some("C7".to_owned()),
        contact_id: None,
    };
    for i in 0..LISTED_CALLBACKS {
        let account = AccountNumber::parse(format!("listed-{i}")).expect("an account");
        let modes = [
            Mode {
                mode_id: 1,
                description: "Mobile".to_owned(),
                cvalue: format!("+1555{i:07}"),
            },
            Mode {
                mode_id: 2,
                description: "Home".to_owned(),
                cvalue: format!("+1556{i:07}"),
            },
        ];
        let contact = Contact {
            contact_id: Some(i.to_string()),
            ..contact.clone()
        };
        contacts::register(&tx, &account, &contact, Some(&modes), now).expect("a contact");
    }
    tx.commit().expect("committed");
    bulk::settle(&conn).expect("checkpointed");
    lists::page_plan(&conn, &listed).expect("a plan")
}
