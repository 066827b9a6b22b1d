//! What the relay publishes for a push, and where: the subject by kind, the agent as its last
//! token for personal callbacks, and the payload. Pure functions of the push, so that every
//! consumer can rely on them (README: More than one box).
//!
//! | push | subject | payload |
//! | --- | --- | --- |
//! | `PersonalCallbackDue` | `<prefix>.events.redial.agent.<UserID>` | the redial, with `deadline` |
//! | `CallbackDue` | `<prefix>.events.redial.any` | the same |
//! | `CallbackExpired` | `<prefix>.events.expired.agent.<UserID>` or `.any` | the callback |
//! | `OutcomeSetForCall` | `<prefix>.outcomes` | the outcome |
//! | `CallbackCancelled`, `...Completed`, `...Superseded`, `...Rescheduled`, `...Reassigned` | `<prefix>.callbacks.<cancelled\|completed\|...>` | the callback |
//! | `AgentStateChanged` | `<prefix>.agents.state` | the agent |
//!
//! A subject token cannot hold `.`, `*`, `>` or white space: a UserID is written with every
//! byte outside `A-Z a-z 0-9 - _` as `%XX` (so `%` itself too), which reads back unambiguously.

use serde::Deserialize;

use crate::store::bus::split_envelope;

/// What a relay publishes, by class (`--nats-publish`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Class {
    /// Redials as their windows open (and their retries): what dialers consume.
    Redial,
    /// Callbacks that expired, and those an outcome or a listing ended.
    Expired,
    /// Every outcome set.
    Outcomes,
    /// The other changes of a callback: cancelled, completed, superseded, moved.
    Callbacks,
    /// Agents logging in and out.
    Agents,
}

/// One push as the relay publishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message<'a> {
    pub class: Class,
    pub subject: String,
    /// The push's message (JSON) as the bus stored it: a redial already carries its
    /// `deadline`, so nothing is rewritten.
    pub payload: &'a str,
}

/// The subject token of a UserID (see the module's documentation).
pub fn token(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    push_token(&mut out, user);
    out
}

fn push_token(out: &mut String, user: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in user.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 15)] as char);
        }
    }
}

/// The two fields of a message that choose its subject.
#[derive(Deserialize)]
struct Owner<'a> {
    #[serde(rename = "UserID", borrow, default)]
    user: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    personal: Option<bool>,
}

/// `agent.<token>` for a personal callback's message, `any` for the others.
fn push_audience(out: &mut String, raw: &str) -> Option<()> {
    let owner: Owner = serde_json::from_str(raw).ok()?;
    match owner.user {
        Some(user) if owner.personal != Some(false) => {
            out.push_str("agent.");
            push_token(out, &user);
        }
        _ => out.push_str("any"),
    }
    Some(())
}

/// The subject and payload of the stored push `envelope` under `prefix`; `None` for what is
/// not a push, or a kind the relay does not know (a newer binary's).
pub fn of<'a>(prefix: &str, envelope: &'a str) -> Option<Message<'a>> {
    let (subtopic, raw) = split_envelope(envelope)?;
    of_parts(prefix, subtopic, raw)
}

/// As [`of`], for an envelope already split ([`split_envelope`]).
pub fn of_parts<'a>(prefix: &str, subtopic: &str, raw: &'a str) -> Option<Message<'a>> {
    let class = class(subtopic)?;
    let mut subject = String::with_capacity(prefix.len() + 48);
    subject.push_str(prefix);
    subject.push('.');
    match subtopic {
        "PersonalCallbackDue" => {
            subject.push_str("events.redial.");
            push_audience(&mut subject, raw)?;
        }
        "CallbackDue" => subject.push_str("events.redial.any"),
        "CallbackExpired" => {
            subject.push_str("events.expired.");
            push_audience(&mut subject, raw)?;
        }
        "OutcomeSetForCall" => subject.push_str("outcomes"),
        "AgentStateChanged" => subject.push_str("agents.state"),
        // The other changes of a callback: `callbacks.cancelled`, `callbacks.reassigned`...
        _ => {
            subject.push_str("callbacks.");
            subject.push_str(&subtopic["Callback".len()..].to_ascii_lowercase());
        }
    }
    Some(Message {
        class,
        subject,
        payload: raw,
    })
}

/// The class of a push's kind, without reading its message: the relay skips what it does
/// not publish at no cost.
pub fn class_of(envelope: &str) -> Option<Class> {
    class(split_envelope(envelope)?.0)
}

/// The class of the push kind `subtopic`.
pub fn class(subtopic: &str) -> Option<Class> {
    Some(match subtopic {
        "PersonalCallbackDue" | "CallbackDue" => Class::Redial,
        "CallbackExpired" => Class::Expired,
        "OutcomeSetForCall" => Class::Outcomes,
        "CallbackCancelled"
        | "CallbackCompleted"
        | "CallbackSuperseded"
        | "CallbackRescheduled"
        | "CallbackReassigned" => Class::Callbacks,
        "AgentStateChanged" => Class::Agents,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A stored push of `kind` with `message`, as `store::bus::page` writes it.
    fn push(kind: &str, message: Value) -> String {
        format!(
            r#"{{"channel":"LCM","topic":"Bus","subtopic":"{kind}","id":7,"message":{message}}}"#
        )
    }

    fn payload(m: &Message) -> Value {
        serde_json::from_str(m.payload).unwrap()
    }

    #[test]
    fn a_user_id_becomes_one_subject_token_that_reads_back() {
        assert_eq!(token("testagent"), "testagent");
        assert_eq!(token("ana.maria"), "ana%2Emaria");
        assert_eq!(token("a b*c>d%"), "a%20b%2Ac%3Ed%25");
        assert_eq!(token("zoë"), "zo%C3%AB");
        for user in ["x", "ana.maria", "a b*c>d%", "zoë", "%2E"] {
            let t = token(user);
            assert!(!t.is_empty() && !t.contains(['.', '*', '>', ' ']));
            let mut bytes = Vec::new();
            let mut rest = t.as_bytes();
            while let Some((&b, tail)) = rest.split_first() {
                if b == b'%' {
                    let hex = std::str::from_utf8(&tail[..2]).unwrap();
                    bytes.push(u8::from_str_radix(hex, 16).unwrap());
                    rest = &tail[2..];
                } else {
                    bytes.push(b);
                    rest = tail;
                }
            }
            assert_eq!(String::from_utf8(bytes).unwrap(), user);
        }
    }

    #[test]
    fn a_personal_redial_goes_to_its_agent_with_its_deadline_and_a_normal_one_to_any() {
        let due = json!({"callback_id": 7, "event_id": 42, "id": 42, "type": "redial",
            "UserID": "ana.maria", "personal": true, "window_start": "2026-01-13T13:45:00Z",
            "window_end": "2026-01-13T14:00:00Z", "attempt": 1,
            "deadline": "2026-01-13T14:00:00Z"});
        let stored = push("PersonalCallbackDue", due.clone());
        let m = of("redial", &stored).unwrap();
        assert_eq!(m.class, Class::Redial);
        assert_eq!(m.subject, "redial.events.redial.agent.ana%2Emaria");
        assert_eq!(payload(&m), due, "as stored");
        let stored = push("CallbackDue", due);
        let m = of("site1", &stored).unwrap();
        assert_eq!(m.subject, "site1.events.redial.any");
    }

    #[test]
    fn every_other_kind_has_its_subject_and_goes_as_stored() {
        let cb = json!({"callback_id": 7, "UserID": "ana", "personal": false});
        let subject = |kind: &str| {
            let stored = push(kind, cb.clone());
            let m = of("redial", &stored);
            assert_eq!(m.as_ref().map(|m| m.class), class_of(&stored));
            m.map(|m| (m.class, m.subject))
        };
        assert_eq!(
            subject("CallbackExpired"),
            Some((Class::Expired, "redial.events.expired.any".into()))
        );
        assert_eq!(
            subject("OutcomeSetForCall"),
            Some((Class::Outcomes, "redial.outcomes".into()))
        );
        assert_eq!(
            subject("CallbackReassigned"),
            Some((Class::Callbacks, "redial.callbacks.reassigned".into()))
        );
        assert_eq!(
            subject("AgentStateChanged"),
            Some((Class::Agents, "redial.agents.state".into()))
        );
        assert_eq!(subject("SomethingNew"), None);
        let personal = push(
            "CallbackExpired",
            json!({"UserID": "ana", "personal": true}),
        );
        let m = of("redial", &personal).unwrap();
        assert_eq!(m.subject, "redial.events.expired.agent.ana");
        assert_eq!(
            payload(&m),
            json!({"UserID": "ana", "personal": true}),
            "as stored"
        );
        assert_eq!(of("redial", "not a push"), None);
    }
}
