//! What the telephony side names in LCM messages: telephony outcomes (`CallOutcome`,
//! `OutcomeID`) and agent states (`agentState`).

use std::fmt;

use super::fields::{describe, FieldError};
use super::json::Value;

/// A telephony outcome, by the vendor's ids (its `SetCallOutComeOffline` sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TelephonyOutcome {
    Success,
    Invalid,
    Busy,
    CallBack,
    /// Do not call: the contact goes on the do-not-call list.
    Dnc,
    Fax,
    AnsweringMachine,
    NoAnswer,
    /// The customer rejected the call: the contact's live callback ends.
    Reject,
}

impl TelephonyOutcome {
    pub const ALL: [TelephonyOutcome; 9] = [
        TelephonyOutcome::Success,
        TelephonyOutcome::Invalid,
        TelephonyOutcome::Busy,
        TelephonyOutcome::CallBack,
        TelephonyOutcome::Dnc,
        TelephonyOutcome::Fax,
        TelephonyOutcome::AnsweringMachine,
        TelephonyOutcome::NoAnswer,
        TelephonyOutcome::Reject,
    ];

    pub fn id(self) -> i64 {
        match self {
            TelephonyOutcome::Success => 0,
            TelephonyOutcome::Invalid => 2,
            TelephonyOutcome::Busy => 3,
            TelephonyOutcome::CallBack => 4,
            TelephonyOutcome::Dnc => 5,
            TelephonyOutcome::Fax => 6,
            TelephonyOutcome::AnsweringMachine => 7,
            TelephonyOutcome::NoAnswer => 8,
            TelephonyOutcome::Reject => 9,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TelephonyOutcome::Success => "Success",
            TelephonyOutcome::Invalid => "Invalid",
            TelephonyOutcome::Busy => "Busy",
            TelephonyOutcome::CallBack => "CallBack",
            TelephonyOutcome::Dnc => "DNC",
            TelephonyOutcome::Fax => "Fax",
            TelephonyOutcome::AnsweringMachine => "Answering Machine",
            TelephonyOutcome::NoAnswer => "No Answer",
            TelephonyOutcome::Reject => "Reject",
        }
    }

    pub fn from_id(id: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.id() == id)
    }

    /// An id (`"5"`, or the number 5) or a name in any case, spaces optional (`"dnc"`,
    /// `"NoAnswer"`).
    pub fn read(field: &'static str, value: Option<&Value>) -> Result<Self, FieldError> {
        let expected = || {
            let all: Vec<String> = Self::ALL
                .iter()
                .map(|o| format!("{} {}", o.id(), o.name()))
                .collect();
            format!(
                "a telephony outcome, its id or its name: {}",
                all.join(", ")
            )
        };
        let bad = |seen: String| FieldError {
            field,
            detail: format!(
                "{field} {seen} is not a telephony outcome; expected {}",
                expected()
            ),
        };
        let Some(value) = value else {
            return Err(FieldError {
                field,
                detail: format!("{field} is missing; expected {}", expected()),
            });
        };
        let found = match value {
            Value::Number(n) => n.as_i64().and_then(Self::from_id),
            Value::String(s) => {
                let squeezed: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                match squeezed.parse::<i64>() {
                    Ok(id) => Self::from_id(id),
                    Err(_) => Self::ALL
                        .into_iter()
                        .find(|o| o.name().replace(' ', "").eq_ignore_ascii_case(&squeezed)),
                }
            }
            _ => None,
        };
        found.ok_or_else(|| bad(describe(value)))
    }
}

impl fmt::Display for TelephonyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id(), self.name())
    }
}

/// What an agent state (`SendAgentState`'s `agentState`) says of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentPresence {
    LoggedIn,
    LoggedOut,
}

/// The states that mean logged in: the agent is at the desktop, whatever it is doing.
const LOGGED_IN: [&str; 11] = [
    "LOGIN",
    "LOGGEDIN",
    "LOGGED_ON",
    "READY",
    "NOT_READY",
    "AVAILABLE",
    "RESERVED",
    "TALKING",
    "HOLD",
    "WORK",
    "WORK_READY",
];

/// The states that mean logged out.
const LOGGED_OUT: [&str; 4] = ["LOGOUT", "LOGGEDOUT", "LOGGED_OFF", "OFFLINE"];

impl AgentPresence {
    /// Reads a state name in any case, with `_`, `-` or a space between words or nothing
    /// (`NOT_READY`, `Not Ready`, `notready`).
    pub fn read(field: &'static str, state: &str) -> Result<Self, FieldError> {
        let key = |s: &str| -> String {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_uppercase())
                .collect()
        };
        let seen = key(state);
        if LOGGED_IN.iter().any(|s| key(s) == seen) {
            return Ok(AgentPresence::LoggedIn);
        }
        if LOGGED_OUT.iter().any(|s| key(s) == seen) {
            return Ok(AgentPresence::LoggedOut);
        }
        Err(FieldError {
            field,
            detail: format!(
                "{field} {} is not an agent state; expected one meaning logged in ({}) or \
                 logged out ({})",
                describe(&Value::String(state.into())),
                LOGGED_IN.join(", "),
                LOGGED_OUT.join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telephony_outcomes_are_read_by_id_or_name() {
        let read = |v: Value| TelephonyOutcome::read("CallOutcome", Some(&v));
        assert_eq!(read(Value::String("5".into())), Ok(TelephonyOutcome::Dnc));
        assert_eq!(read(Value::String("dnc".into())), Ok(TelephonyOutcome::Dnc));
        assert_eq!(
            read(Value::String("answering machine".into())),
            Ok(TelephonyOutcome::AnsweringMachine)
        );
        assert_eq!(
            read(Value::String("NoAnswer".into())),
            Ok(TelephonyOutcome::NoAnswer)
        );
        assert_eq!(read(Value::Number(9.into())), Ok(TelephonyOutcome::Reject));
        let unknown = read(Value::String("1".into())).unwrap_err();
        assert_eq!(unknown.field, "CallOutcome");
        assert!(unknown.detail.contains("\"1\"") && unknown.detail.contains("5 DNC"));
        assert!(TelephonyOutcome::read("OutcomeID", None).is_err());
    }

    #[test]
    fn agent_states_mean_logged_in_or_out() {
        assert_eq!(
            AgentPresence::read("agentState", "NOT_READY"),
            Ok(AgentPresence::LoggedIn)
        );
        assert_eq!(
            AgentPresence::read("agentState", "Ready"),
            Ok(AgentPresence::LoggedIn)
        );
        assert_eq!(
            AgentPresence::read("agentState", "logout"),
            Ok(AgentPresence::LoggedOut)
        );
        let unknown = AgentPresence::read("agentState", "ON_LUNCH").unwrap_err();
        assert!(unknown.detail.contains("ON_LUNCH"), "{}", unknown.detail);
    }
}
