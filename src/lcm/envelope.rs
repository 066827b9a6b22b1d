//! The LCM message envelope (`channel`, `topic`, `subtopic`, `source`, `data`) and its replies.

use serde::Serialize;

use super::control::{self, Control};
use super::error::{ErrorObject, LcmError};
use super::fields::{describe, quote, FieldError, Fields};
use super::json::{self, Object, Unreadable, Value};
use super::request::Message;
use super::rows::Rows;
use super::subtopic::Subtopic;

pub const CHANNEL: &str = "LCM";
pub const TOPIC: &str = "WebService";
/// Every key a request of the family may carry, in the envelope and in `data`.
const FIELDS: &[&str] = &[
    "channel",
    "topic",
    "subtopic",
    "source",
    "data",
    "callid",
    "AccountNumber",
    "OutcomeId",
    "OutcomeID",
    "BusinessOutcome",
    "CallOutcome",
    "StartDate",
    "EndDate",
    "StartTime",
    "EndTime",
    "CallbackModeID",
    "UserID",
    "AgentComments",
    "LeadScore",
    "TargetAmount",
    "TimeZone",
    "agentID",
    "agentState",
    "FromDate",
    "ToDate",
    "StartingNoOfRecord",
    "NoofRecords",
    "ParentBusinessOutcomeId",
    "requestid",
    "all",
    "after",
];
/// The longest `source` kept; it names an application, not a document.
const SOURCE_MAX_CHARS: usize = 128;

/// What a reply echoes from its request, filled in as far as the request could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHead {
    pub topic: String,
    pub subtopic: String,
    pub callid: String,
    /// The request's `requestid`, echoed so that a bus client can match replies to requests.
    pub requestid: Option<RequestId>,
}

/// A client's name for one request: a string of at most 128 characters, or an integer.
/// Anything else is not echoed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RequestId {
    Text(String),
    Number(i64),
}

impl Default for ReplyHead {
    /// The seed's, for a request of which nothing could be read.
    fn default() -> Self {
        Self {
            topic: TOPIC.to_owned(),
            subtopic: Subtopic::PersonalCallback.reply().to_owned(),
            callid: String::new(),
            requestid: None,
        }
    }
}

/// A readable, valid request.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub source: Option<String>,
    pub message: Message,
}

impl Envelope {
    /// Reads a request body. The head says as much of the request as was readable, so that
    /// even an error reply echoes the client's topic, subtopic and callid.
    pub fn parse(body: &[u8]) -> (ReplyHead, Result<Self, LcmError>) {
        let mut head = ReplyHead::default();
        let value = match json::parse(body) {
            Ok(value) => value,
            Err(Unreadable::Syntax(why)) => return (head, Err(LcmError::NotJson(why))),
            Err(Unreadable::DuplicateKey(key)) => {
                let field = FIELDS.iter().copied().find(|f| *f == key);
                return (head, Err(LcmError::DuplicateKey { key, field }));
            }
        };
        let Value::Object(map) = value else {
            let error = LcmError::NotJson(format!("got {}", describe(&value)));
            return (head, Err(error));
        };
        read_head(&map, &mut head);
        let envelope = Self::parse_fields(&map).map(|(source, message)| Self { source, message });
        (head, envelope)
    }

    fn parse_fields(map: &Object) -> Result<(Option<String>, Message), LcmError> {
        let f = Fields::new(map);
        let envelope = LcmError::Envelope;
        let channel = f.text("channel", 1, 16).map_err(envelope)?;
        if !channel.eq_ignore_ascii_case(CHANNEL) {
            return Err(envelope(FieldError {
                field: "channel",
                detail: format!(
                    "channel {} is not served here; expected \"LCM\"",
                    quote(&channel)
                ),
            }));
        }
        let topic = f.text("topic", 1, 64).map_err(envelope)?;
        let bus = topic.eq_ignore_ascii_case(control::TOPIC);
        if !topic.eq_ignore_ascii_case(TOPIC) && !bus {
            return Err(envelope(FieldError {
                field: "topic",
                detail: format!(
                    "topic {} is not served here; expected \"WebService\" (or \"Bus\" on \
                     the bus)",
                    quote(&topic)
                ),
            }));
        }
        let text = f.text("subtopic", 1, 128).map_err(envelope)?;
        let source = f
            .optional_text("source", SOURCE_MAX_CHARS)
            .map_err(envelope)?;
        let data = data_of(map)?;
        if bus {
            return Ok((source, Message::Control(Control::parse(&text, data)?)));
        }
        let Some(subtopic) = Subtopic::parse(&text) else {
            return Err(envelope(FieldError {
                field: "subtopic",
                detail: format!(
                    "subtopic {} is not served here; expected one of {}",
                    quote(&text),
                    Subtopic::names()
                ),
            }));
        };
        Ok((source, Message::parse(subtopic, data)?))
    }
}

/// The envelope's `data`, which every message has.
fn data_of<'a>(map: &'a Object<'a>) -> Result<&'a Object<'a>, LcmError> {
    match map.get("data") {
        Some(Value::Object(data)) => Ok(data),
        None => Err(LcmError::Envelope(FieldError {
            field: "data",
            detail: "data is missing; expected an object with the request's fields".to_owned(),
        })),
        Some(other) => Err(LcmError::Envelope(FieldError {
            field: "data",
            detail: format!("data must be an object, got {}", describe(other)),
        })),
    }
}

/// Copies what the reply should echo: the client's spelling of `topic`, the reply's subtopic
/// as the vendor names it (the request's own with `Result` when it names no message served
/// here), and the callid, each only if it is a short string.
fn read_head(map: &Object, head: &mut ReplyHead) {
    let short = |key: &str, max: usize| match map.get(key) {
        Some(Value::String(s))
            if !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control) =>
        {
            Some(s.as_ref())
        }
        _ => None,
    };
    let topic = short("topic", 64)
        .filter(|t| t.eq_ignore_ascii_case(TOPIC) || t.eq_ignore_ascii_case(control::TOPIC));
    if let Some(topic) = topic {
        head.topic = topic.to_owned();
    }
    head.requestid = match map.get("requestid") {
        Some(Value::Number(n)) => n.as_i64().map(RequestId::Number),
        Some(Value::String(_)) => short("requestid", 128).map(|id| RequestId::Text(id.to_owned())),
        _ => None,
    };
    if let Some(subtopic) = short("subtopic", 128) {
        head.subtopic = match Subtopic::parse(subtopic) {
            Some(known) => known.reply().to_owned(),
            None => format!("{subtopic}Result"),
        };
    }
    if let Some(Value::Object(data)) = map.get("data") {
        if let Some(Value::String(callid)) = data.get("callid") {
            if callid.chars().count() <= 64 && !callid.chars().any(char::is_control) {
                head.callid = callid.as_ref().to_owned();
            }
        }
    }
}

/// A reply, serialized straight from its parts: the reply to every stored request is written
/// without building a JSON tree first.
#[derive(Debug, Serialize)]
pub struct Reply<'a> {
    channel: &'static str,
    topic: &'a str,
    subtopic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    requestid: Option<&'a RequestId>,
    message: Body<'a>,
}

#[derive(Debug, Serialize)]
struct Body<'a> {
    callid: &'a str,
    response: Response,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Response {
    Stored {
        success: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        callback_id: Option<i64>,
    },
    Refused {
        success: bool,
        error: ErrorObject,
    },
    Rows(Rows),
}

/// The reply to a write that was stored; `callback_id` names the callback it created.
pub fn success(head: &ReplyHead, callback_id: Option<i64>) -> Reply<'_> {
    reply(
        head,
        Response::Stored {
            success: true,
            callback_id,
        },
    )
}

/// The reply to a read: its rows, as the vendor names their fields.
pub fn rows(head: &ReplyHead, rows: Rows) -> Reply<'_> {
    reply(head, Response::Rows(rows))
}

/// The reply to a request that was refused.
pub fn failure(head: &ReplyHead, error: ErrorObject) -> Reply<'_> {
    reply(
        head,
        Response::Refused {
            success: false,
            error,
        },
    )
}

fn reply(head: &ReplyHead, response: Response) -> Reply<'_> {
    Reply {
        channel: CHANNEL,
        topic: &head.topic,
        subtopic: &head.subtopic,
        requestid: head.requestid.as_ref(),
        message: Body {
            callid: &head.callid,
            response,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_the_envelope_order() {
        let head = ReplyHead {
            callid: "c-1".to_owned(),
            ..ReplyHead::default()
        };
        assert_eq!(
            serde_json::to_string(&success(&head, Some(7))).unwrap(),
            r#"{"channel":"LCM","topic":"WebService","subtopic":"SetBusinessOutcomeWithPersonalCallbackResult","message":{"callid":"c-1","response":{"success":true,"callback_id":7}}}"#
        );
        assert_eq!(
            serde_json::to_string(&failure(&head, LcmError::EmptyCallId.error_object())).unwrap(),
            r#"{"channel":"LCM","topic":"WebService","subtopic":"SetBusinessOutcomeWithPersonalCallbackResult","message":{"callid":"c-1","response":{"success":false,"error":{"type":"WS_Error","message":"Invalid Call ID.","detail":"Callid is empty","field":"callid"}}}}"#
        );
    }
}
