//! `redial report`: the callback SLA, outcomes, agents, the audit and callbacks, read from the database
//! file. It opens the file read-only, so it is safe while the service runs, and it reads
//! through the views of `schema.sql`, so a `sqlite3` user gets the same figures (`--sql`
//! prints the statement it runs). The command chooses rows and formats; it does not compute.

pub mod format;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clap::{Args, Subcommand, ValueEnum};
use rusqlite::{Connection, OpenFlags};

use crate::clock::Clock;
use crate::lcm::fields::FieldError;
use crate::lcm::{AccountNumber, UserId};
use crate::lifecycle::CallbackState;
use crate::store::callbacks::{self, Filter};
use crate::store::reports::{self, OutcomesBy, Range, Rows, SlaBy};
use crate::store::schema;
use crate::zone::{range_end, utc_rfc3339, Bound};
use format::Format;

/// A file at least this large gets a progress spinner on a terminal.
const LARGE_FILE: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub report: Report,
    /// The service's database file (opened read-only).
    #[arg(
        long,
        env = "REDIAL_DB",
        default_value = "data/redial.db",
        global = true
    )]
    pub db: PathBuf,
    /// The first day (YYYY-MM-DD, in --tz) or instant (RFC 3339) of the range; default today.
    #[arg(long, global = true)]
    pub from: Option<String>,
    /// The last day of the range, included (YYYY-MM-DD), or the instant it ends before
    /// (RFC 3339); default the day of --from.
    #[arg(long, global = true)]
    pub to: Option<String>,
    /// The zone days are read in.
    #[arg(long, default_value = "UTC", global = true)]
    pub tz: Tz,
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub format: Format,
    /// Print the SQL the report runs, for sqlite3, instead of running it.
    #[arg(long, global = true)]
    pub sql: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Report {
    /// The callback SLA of the callbacks whose window opened in the range.
    Sla {
        #[arg(long, value_enum, default_value = "day")]
        by: SlaGroup,
    },
    /// Business outcomes set in the range, with the catalogue's descriptions.
    Outcomes {
        #[arg(long, value_enum, default_value = "outcome")]
        by: OutcomesGroup,
    },
    /// Per agent: personal callbacks owned and due now; windows in the range, made in the
    /// window, missed.
    Agents,
    /// Supervisors' changes made in the range: who, what, why, before and after.
    Audit,
    /// The callbacks whose window starts in the range, filtered as `GET /v1/callbacks`.
    Callbacks {
        #[arg(long)]
        user_id: Option<String>,
        /// A state as shown (scheduled, due, leased, completed, expired, cancelled,
        /// superseded); repeat for several.
        #[arg(long)]
        state: Vec<String>,
        #[arg(long)]
        account: Option<String>,
        /// true: personal callbacks only; false: normal ones only.
        #[arg(long)]
        personal: Option<bool>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SlaGroup {
    Day,
    Agent,
    Campaign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutcomesGroup {
    Outcome,
    Agent,
    Day,
}

/// Runs the report, writing it to `out`.
pub fn run(args: &ReportArgs, clock: &Clock, out: &mut impl Write) -> anyhow::Result<()> {
    let range = range(args, clock)?;
    let statement = match &args.report {
        Report::Sla { by } => Some(reports::sla(
            &range,
            match by {
                SlaGroup::Day => SlaBy::Day,
                SlaGroup::Agent => SlaBy::Agent,
                SlaGroup::Campaign => SlaBy::Campaign,
            },
        )),
        Report::Outcomes { by } => Some(reports::outcomes(
            &range,
            match by {
                OutcomesGroup::Outcome => OutcomesBy::Outcome,
                OutcomesGroup::Agent => OutcomesBy::Agent,
                OutcomesGroup::Day => OutcomesBy::Day,
            },
        )),
        Report::Agents => Some(reports::agents(&range)),
        Report::Audit => Some(reports::audit(&range)),
        Report::Callbacks { .. } => None,
    };
    if args.sql {
        match &statement {
            Some(sql) => write!(out, "{sql}")?,
            None => bail!(
                "the callbacks report pages through callbacks_shown as GET /v1/callbacks does; \
                 --sql is for sla, outcomes and agents"
            ),
        }
        return Ok(());
    }
    let conn = open(&args.db)?;
    let _progress = Progress::start(&conn, &args.db);
    let rows = match (&args.report, statement) {
        (
            Report::Callbacks {
                user_id,
                state,
                account,
                personal,
            },
            _,
        ) => {
            let filter = Filter {
                user_id: user_id
                    .clone()
                    .map(UserId::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--user-id: {}", e.detail))?,
                states: state
                    .iter()
                    .map(|s| {
                        CallbackState::parse(s)
                            .with_context(|| format!("--state {s:?} is not a callback state"))
                    })
                    .collect::<anyhow::Result<_>>()?,
                account: account
                    .clone()
                    .map(AccountNumber::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--account: {}", e.detail))?,
                from: Some(range.from.timestamp_millis()),
                to: Some(range.to.timestamp_millis()),
                personal: *personal,
            };
            every_callback(&conn, &filter)?
        }
        (_, Some(sql)) => reports::run(&conn, &sql)?,
        (_, None) => unreachable!("every report but callbacks has a statement"),
    };
    drop(_progress);
    if args.format == Format::Table {
        writeln!(out, "{}", reports::describe(&range))?;
    }
    format::write(&rows, args.format, out)?;
    Ok(())
}

/// The range from `--from`/`--to`, today by default.
fn range(args: &ReportArgs, clock: &Clock) -> anyhow::Result<Range> {
    range_of(
        args.from.as_deref(),
        args.to.as_deref(),
        args.tz,
        clock.now(),
    )
    .map_err(|e| anyhow::anyhow!("--{}", e.detail))
}

/// The range a report covers: `from` and `to` are dates `YYYY-MM-DD` in `zone` (`to`
/// included) or RFC 3339 instants (`to` excluded); without `from`, today; without `to`, the
/// day or instant `from` names. The same rule for `redial report` and `GET /v1/reports/...`.
pub fn range_of(
    from: Option<&str>,
    to: Option<&str>,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<Range, FieldError> {
    let today = now.with_timezone(&zone).date_naive().to_string();
    let from_text = from.unwrap_or(&today);
    let start = range_end(from_text, zone, Bound::From).ok_or_else(|| {
        FieldError::new(
            "from",
            format!("from {from_text:?} is neither a date YYYY-MM-DD nor an RFC 3339 instant"),
        )
    })?;
    let to_text = to.unwrap_or(from_text);
    let end = range_end(to_text, zone, Bound::To).ok_or_else(|| {
        FieldError::new(
            "to",
            format!("to {to_text:?} is neither a date YYYY-MM-DD nor an RFC 3339 instant"),
        )
    })?;
    if end <= start {
        return Err(FieldError::new(
            "to",
            format!("to {to_text:?} is not after from {from_text:?}: the range is empty"),
        ));
    }
    Ok(Range {
        from: start,
        to: end,
        zone,
    })
}

/// The database, read-only, with the views this build reads.
fn open(db: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {} read-only", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = schema::steps().len() as i64;
    if version < latest {
        bail!(
            "{} is at schema step {version}, and reports need step {latest}: start this build's \
             `redial serve` on it once to bring it up to date",
            db.display()
        );
    }
    Ok(conn)
}

/// The columns of the callbacks report: the API's callback object, in its order.
const CALLBACK_COLUMNS: [&str; 12] = [
    "id",
    "state",
    "callid",
    "AccountNumber",
    "CallbackModeID",
    "UserID",
    "window_start",
    "window_end",
    "timezone",
    "local_start",
    "local_end",
    "attempts",
];

/// Every callback `filter` finds, page by page as `GET /v1/callbacks` reads them.
fn every_callback(conn: &Connection, filter: &Filter) -> anyhow::Result<Rows> {
    use rusqlite::types::Value;
    let mut rows = Rows {
        columns: CALLBACK_COLUMNS.map(str::to_owned).to_vec(),
        rows: Vec::new(),
    };
    let mut after = None;
    loop {
        let page = callbacks::page(conn, filter, after, 1000)?;
        rows.rows.extend(page.iter().map(|c| {
            vec![
                Value::Integer(c.id),
                Value::Text(c.state.as_str().to_owned()),
                Value::Text(c.callid.to_string()),
                Value::Text(c.account_number.to_string()),
                Value::Integer(c.callback_mode_id),
                Value::Text(c.user_id.to_string()),
                Value::Text(utc_rfc3339(c.window_start)),
                Value::Text(utc_rfc3339(c.window_end)),
                Value::Text(c.timezone.name().to_owned()),
                Value::Text(c.local_start.clone()),
                Value::Text(c.local_end.clone()),
                Value::Integer(c.attempts),
            ]
        }));
        match page.last() {
            Some(last) if page.len() == 1000 => {
                after = Some(callbacks::Cursor {
                    window_start: last.window_start.timestamp_millis(),
                    id: last.id,
                })
            }
            _ => return Ok(rows),
        }
    }
}

/// A spinner on stderr while a report reads a large file, when stderr is a terminal: SQLite
/// calls back every million steps of its work.
struct Progress<'c> {
    conn: &'c Connection,
    bar: Option<indicatif::ProgressBar>,
}

impl<'c> Progress<'c> {
    fn start(conn: &'c Connection, db: &Path) -> Self {
        let large = std::fs::metadata(db).is_ok_and(|m| m.len() >= LARGE_FILE);
        let bar = (large && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message(format!("reading {}", db.display()));
            let ticking = bar.clone();
            conn.progress_handler(
                1_000_000,
                Some(move || {
                    ticking.tick();
                    false
                }),
            );
            bar
        });
        Self { conn, bar }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            self.conn.progress_handler(0, None::<fn() -> bool>);
            bar.finish_and_clear();
        }
    }
}
