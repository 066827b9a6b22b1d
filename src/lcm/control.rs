//! The bus's own messages, envelopes with `topic: "Bus"` (README: The bus): `Subscribe`, to
//! say which pushes a socket hears, and `Unsubscribe`.

use super::error::LcmError;
use super::fields::{describe, quote, FieldError, Fields};
use super::json::{Object, Value};
use super::UserId;

pub const TOPIC: &str = "Bus";

/// Who a subscription hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// One agent's desktop: the pushes about that agent.
    Agent(UserId),
    /// A supervisor screen: every push.
    All,
}

/// A bus message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Hear `audience`'s pushes; with `after`, first every stored one after that id.
    Subscribe {
        audience: Audience,
        after: Option<i64>,
    },
    /// Hear nothing more.
    Unsubscribe,
}

impl Control {
    pub const SUBTOPICS: &'static str = "\"Subscribe\" or \"Unsubscribe\"";

    /// Reads `data` as the bus message `subtopic` names (matched case-insensitively).
    pub fn parse(subtopic: &str, data: &Object) -> Result<Self, LcmError> {
        if subtopic.eq_ignore_ascii_case("Unsubscribe") {
            return Ok(Control::Unsubscribe);
        }
        if !subtopic.eq_ignore_ascii_case("Subscribe") {
            return Err(LcmError::Envelope(FieldError::new(
                "subtopic",
                format!(
                    "subtopic {} is not a bus message; expected {}",
                    quote(subtopic),
                    Self::SUBTOPICS
                ),
            )));
        }
        let f = Fields::new(data);
        let all = match data.get("all") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(other) => {
                return Err(FieldError::new(
                    "all",
                    format!("all must be true or false, got {}", describe(other)),
                )
                .into())
            }
        };
        let user = match data.get(UserId::FIELD) {
            None => None,
            Some(_) => Some(UserId::parse(f.text(
                UserId::FIELD,
                1,
                UserId::MAX_CHARS,
            )?)?),
        };
        let audience = match (user, all) {
            (Some(user), false) => Audience::Agent(user),
            (None, true) => Audience::All,
            (Some(_), true) => {
                return Err(FieldError::new(
                    "all",
                    "give UserID (one agent's pushes) or \"all\": true (every push), not both",
                )
                .into())
            }
            (None, false) => {
                return Err(FieldError::new(
                    UserId::FIELD,
                    "UserID is missing; expected the agent whose pushes to hear, or \"all\": \
                     true for every push",
                )
                .into())
            }
        };
        let after = match data.get("after") {
            None | Some(Value::Null) => None,
            Some(_) => Some(f.count("after")?),
        };
        Ok(Control::Subscribe { audience, after })
    }
}
