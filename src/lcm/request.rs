//! `SetBusinessOutcomeWithPersonalCallback`: the request's `data`, parsed into typed values.

use chrono_tz::Tz;

use super::error::LcmError;
use super::fields::{describe, quote, FieldError, Fields};
use super::ids::{AccountNumber, CallId, UserId};
use super::json::{Object, Value};
use super::window::LocalWindow;

/// The most characters kept from an agent's comment.
pub const COMMENTS_MAX_CHARS: usize = 4000;

/// A business outcome with a personal callback, every field checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonalCallback {
    pub callid: CallId,
    pub account_number: AccountNumber,
    pub outcome_id: i64,
    pub business_outcome: i64,
    pub window: LocalWindow,
    pub callback_mode_id: i64,
    pub user_id: UserId,
    pub agent_comments: String,
    pub lead_score: f64,
    pub target_amount: f64,
    /// The contact's zone, when the desktop knows it (`TimeZone`, an IANA name).
    pub timezone: Option<Tz>,
}

impl PersonalCallback {
    /// Reads `data`, field by field in the vendor's order, and stops at the first bad one.
    pub fn parse(data: &Object) -> Result<Self, LcmError> {
        let callid = parse_callid(data)?;
        let f = Fields::new(data);
        let account_number =
            AccountNumber::parse(f.text(AccountNumber::FIELD, 1, AccountNumber::MAX_CHARS)?)?;
        let outcome_id = f.count("OutcomeId")?;
        let business_outcome = f.count("BusinessOutcome")?;
        let start_date = f.date("StartDate")?;
        let end_date = f.date("EndDate")?;
        let start_time = f.time("StartTime")?;
        let end_time = f.time("EndTime")?;
        let callback_mode_id = f.count("CallbackModeID")?;
        let user_id = UserId::parse(f.text(UserId::FIELD, 1, UserId::MAX_CHARS)?)?;
        let agent_comments = f.text("AgentComments", 0, COMMENTS_MAX_CHARS)?;
        let lead_score = f.finite("LeadScore")?;
        let target_amount = f.finite("TargetAmount")?;
        let timezone = match f.optional_text("TimeZone", 64)? {
            None => None,
            Some(name) => Some(name.parse::<Tz>().map_err(|_| FieldError {
                field: "TimeZone",
                detail: format!(
                    "TimeZone {} is not a known IANA zone; expected a name such as \"America/Chicago\"",
                    quote(&name)
                ),
            })?),
        };
        Ok(Self {
            callid,
            account_number,
            outcome_id,
            business_outcome,
            window: LocalWindow::new(start_date, start_time, end_date, end_time),
            callback_mode_id,
            user_id,
            agent_comments,
            lead_score,
            target_amount,
            timezone,
        })
    }
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
