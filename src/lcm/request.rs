//! The family's requests: each message's `data` parsed into typed values, field by field in
//! the vendor's order, stopping at the first bad one. Unknown fields are ignored.

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::control::Control;
use super::error::LcmError;
use super::fields::{describe, quote, FieldError, Fields};
use super::ids::{AccountNumber, CallId, UserId};
use super::json::{Object, Value};
use super::subtopic::Subtopic;
use super::telephony::{AgentPresence, TelephonyOutcome};
use super::window::LocalWindow;

/// The most characters kept from an agent's comment.
pub const COMMENTS_MAX_CHARS: usize = 4000;

/// The most rows one `GetPersonalCallbackList` page holds.
pub const LIST_MAX_ROWS: i64 = 1000;

/// Who may take a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackKind {
    /// Only its owner, `UserID` (a personal callback, PCB).
    Personal,
    /// Any agent (a normal callback, NCB); `UserID` is who set it.
    Normal,
}

impl CallbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackKind::Personal => "personal",
            CallbackKind::Normal => "normal",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [CallbackKind::Personal, CallbackKind::Normal]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// The callback a message asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackAsked {
    pub kind: CallbackKind,
    pub window: LocalWindow,
    /// The contact mode (which of the contact's numbers) to redial.
    pub callback_mode_id: i64,
    /// The contact's zone, when the desktop knows it (`TimeZone`, an IANA name).
    pub timezone: Option<Tz>,
}

/// A message that writes about a call: an outcome, a callback, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct Disposition {
    pub subtopic: Subtopic,
    pub callid: CallId,
    pub account_number: AccountNumber,
    pub user_id: UserId,
    pub outcome_id: Option<i64>,
    pub business_outcome: Option<i64>,
    pub call_outcome: Option<TelephonyOutcome>,
    pub agent_comments: String,
    pub lead_score: f64,
    pub target_amount: f64,
    pub callback: Option<CallbackAsked>,
}

impl Disposition {
    /// Whether it sets the call's outcome row: every write message but
    /// `SetPersonalCallbackWithComments`, which leaves the outcome as it was.
    pub fn sets_outcome(&self) -> bool {
        self.subtopic != Subtopic::PersonalCallbackWithComments
    }
}

/// `SendAgentState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    pub user_id: UserId,
    pub presence: AgentPresence,
}

/// `GetPersonalCallbackList`: a page of an agent's live personal callbacks whose window starts
/// on a local date from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackList {
    pub user_id: UserId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The first row, counted from 1.
    pub first: i64,
    pub rows: i64,
}

/// A read about the contact of a call (`GetCallBackModes`, `GetBusinessOutcome`,
/// `GetBusinessOutcomeParent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRead {
    pub subtopic: Subtopic,
    pub callid: CallId,
    pub account_number: AccountNumber,
    /// `GetBusinessOutcomeParent`'s `ParentBusinessOutcomeId`.
    pub parent: Option<i64>,
}

/// A request of the family, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Disposition(Disposition),
    AgentState(AgentState),
    CallbackList(CallbackList),
    Contact(ContactRead),
    /// A bus message (`topic: "Bus"`), served on the bus only.
    Control(Control),
}

impl Message {
    /// Reads `data` as the message `subtopic` names.
    pub fn parse(subtopic: Subtopic, data: &Object) -> Result<Self, LcmError> {
        use Subtopic as S;
        let f = Fields::new(data);
        Ok(match subtopic {
            S::PersonalCallback | S::NormalCallback | S::PersonalCallbackWithComments => {
                Message::Disposition(callback_message(subtopic, data, &f)?)
            }
            S::Comments | S::CallOutcome | S::CallOutcomeWithComments => {
                Message::Disposition(outcome_message(subtopic, data, &f)?)
            }
            S::AgentState => {
                let user_id = user(&f, "agentID")?;
                let state = f.text("agentState", 1, 64)?;
                Message::AgentState(AgentState {
                    user_id,
                    presence: AgentPresence::read("agentState", &state)?,
                })
            }
            S::PersonalCallbackList => {
                let user_id = user(&f, UserId::FIELD)?;
                let from = f.date("FromDate")?;
                let to = f.date("ToDate")?;
                if to < from {
                    return Err(FieldError {
                        field: "ToDate",
                        detail: format!(
                            "ToDate {} is before FromDate {}; expected a range from the earlier \
                             date to the later",
                            to.format("%d/%m/%Y"),
                            from.format("%d/%m/%Y")
                        ),
                    }
                    .into());
                }
                let first = in_range(&f, "StartingNoOfRecord", 1, i64::MAX)?;
                let rows = in_range(&f, "NoofRecords", 0, LIST_MAX_ROWS)?;
                Message::CallbackList(CallbackList {
                    user_id,
                    from,
                    to,
                    first,
                    rows,
                })
            }
            S::CallbackModes | S::BusinessOutcome | S::BusinessOutcomeParent => {
                let callid = parse_callid(data)?;
                let account_number = account(&f)?;
                let parent = match subtopic {
                    S::BusinessOutcomeParent => Some(f.count("ParentBusinessOutcomeId")?),
                    _ => None,
                };
                Message::Contact(ContactRead {
                    subtopic,
                    callid,
                    account_number,
                    parent,
                })
            }
        })
    }
}

/// The three messages that ask for a callback: the seed's fields, without OutcomeId and
/// BusinessOutcome for `SetPersonalCallbackWithComments`.
fn callback_message(
    subtopic: Subtopic,
    data: &Object,
    f: &Fields,
) -> Result<Disposition, LcmError> {
    let callid = parse_callid(data)?;
    let account_number = account(f)?;
    let (outcome_id, business_outcome) = match subtopic {
        Subtopic::PersonalCallbackWithComments => (None, None),
        _ => (
            Some(f.count("OutcomeId")?),
            Some(f.count("BusinessOutcome")?),
        ),
    };
    let window = window(f)?;
    let callback_mode_id = f.count("CallbackModeID")?;
    let user_id = user(f, UserId::FIELD)?;
    let agent_comments = comments(f)?;
    let lead_score = f.finite("LeadScore")?;
    let target_amount = f.finite("TargetAmount")?;
    let timezone = timezone(f)?;
    let kind = match subtopic {
        Subtopic::NormalCallback => CallbackKind::Normal,
        _ => CallbackKind::Personal,
    };
    Ok(Disposition {
        subtopic,
        callid,
        account_number,
        user_id,
        outcome_id,
        business_outcome,
        call_outcome: None,
        agent_comments,
        lead_score,
        target_amount,
        callback: Some(CallbackAsked {
            kind,
            window,
            callback_mode_id,
            timezone,
        }),
    })
}

/// The three messages that set an outcome and ask for no callback: a business outcome with
/// comments (`OutcomeId`), or a telephony outcome (`CallOutcome` with a `BusinessOutcome`, or
/// `OutcomeID` alone). Fields are read in each one's vendor order: the telephony messages list
/// LeadScore before UserID.
fn outcome_message(subtopic: Subtopic, data: &Object, f: &Fields) -> Result<Disposition, LcmError> {
    let callid = parse_callid(data)?;
    let account_number = account(f)?;
    let telephony = |field: &'static str| TelephonyOutcome::read(field, data.get(field));
    let (outcome_id, business_outcome, call_outcome, early_score) = match subtopic {
        Subtopic::Comments => (Some(f.count("OutcomeId")?), None, None, None),
        Subtopic::CallOutcome => {
            let business_outcome = f.count("BusinessOutcome")?;
            let call_outcome = telephony("CallOutcome")?;
            let score = f.finite("LeadScore")?;
            (
                None,
                Some(business_outcome),
                Some(call_outcome),
                Some(score),
            )
        }
        _ => {
            let call_outcome = telephony("OutcomeID")?;
            (None, None, Some(call_outcome), Some(f.finite("LeadScore")?))
        }
    };
    let user_id = user(f, UserId::FIELD)?;
    let agent_comments = comments(f)?;
    let lead_score = match early_score {
        Some(score) => score,
        None => f.finite("LeadScore")?,
    };
    Ok(Disposition {
        subtopic,
        callid,
        account_number,
        user_id,
        outcome_id,
        business_outcome,
        call_outcome,
        agent_comments,
        lead_score,
        target_amount: f.finite("TargetAmount")?,
        callback: None,
    })
}

/// A callback window's four fields, `DD/MM/YYYY` dates and `HH:mm` times, in the vendor's
/// order: a new callback's and a rescheduled one's.
pub fn window(f: &Fields) -> Result<LocalWindow, FieldError> {
    let start_date = f.date("StartDate")?;
    let end_date = f.date("EndDate")?;
    let start_time = f.time("StartTime")?;
    let end_time = f.time("EndTime")?;
    Ok(LocalWindow::new(start_date, start_time, end_date, end_time))
}

/// The contact's zone, `TimeZone`, an IANA name, when the client sends one.
pub fn timezone(f: &Fields) -> Result<Option<Tz>, FieldError> {
    f.optional_text("TimeZone", 64)?
        .map(|name| {
            name.parse::<Tz>().map_err(|_| FieldError {
                field: "TimeZone",
                detail: format!(
                    "TimeZone {} is not a known IANA zone; expected a name such as \"America/Chicago\"",
                    quote(&name)
                ),
            })
        })
        .transpose()
}

fn account(f: &Fields) -> Result<AccountNumber, FieldError> {
    AccountNumber::parse(f.text(AccountNumber::FIELD, 1, AccountNumber::MAX_CHARS)?)
}

/// An agent id, in the field `field` (`UserID`, or `SendAgentState`'s `agentID`).
fn user(f: &Fields, field: &'static str) -> Result<UserId, FieldError> {
    UserId::parse(f.text(field, 1, UserId::MAX_CHARS)?).map_err(|e| FieldError { field, ..e })
}

fn comments(f: &Fields) -> Result<String, FieldError> {
    f.text("AgentComments", 0, COMMENTS_MAX_CHARS)
}

/// A whole number from `min` to `max`, as a number or a string of digits.
fn in_range(f: &Fields, field: &'static str, min: i64, max: i64) -> Result<i64, FieldError> {
    let n = f.count(field)?;
    if (min..=max).contains(&n) {
        return Ok(n);
    }
    let expected = if max == i64::MAX {
        format!("an integer of at least {min}")
    } else {
        format!("an integer from {min} to {max}")
    };
    Err(FieldError {
        field,
        detail: format!("{field} is {n}; expected {expected}"),
    })
}

/// `callid` has its own messages in the vendor's error table: missing and empty are both
/// "Callid is empty".
fn parse_callid(data: &Object) -> Result<CallId, LcmError> {
    match data.get(CallId::FIELD) {
        None | Some(Value::Null) => Err(LcmError::EmptyCallId),
        Some(Value::String(s)) if s.trim().is_empty() => Err(LcmError::EmptyCallId),
        Some(Value::String(s)) => Ok(CallId::parse(s.as_ref())?),
        Some(other) => Err(FieldError {
            field: CallId::FIELD,
            detail: format!(
                "callid must be a non-empty string of at most {} characters, got {}",
                CallId::MAX_CHARS,
                describe(other)
            ),
        }
        .into()),
    }
}
