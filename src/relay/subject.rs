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

use serde_json::{Map, Value};

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
pub struct Message {
    pub class: Class,
    pub subject: String,
    pub payload: Value,
}

/// The subject token of a UserID (see the module's documentation).
pub fn token(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for byte in user.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The subject and payload of the push `kind` with `message`, under `prefix`; `None` for a
/// kind the relay does not know (a newer binary's).
pub fn of(prefix: &str, kind: &str, message: &Map<String, Value>) -> Option<Message> {
    let agent = || {
        let personal = message.get("personal").and_then(Value::as_bool) != Some(false);
        match message.get("UserID").and_then(Value::as_str) {
            Some(user) if personal => format!("agent.{}", token(user)),
            _ => "any".to_owned(),
        }
    };
    let (class, subject, payload) = match kind {
        "PersonalCallbackDue" | "CallbackDue" => {
            let mut redial = message.clone();
            // The queue's event id is the redial's id, as `POST /v1/queue/lease` gives it.
            if let Some(event) = redial.remove("event_id") {
                redial.insert("id".into(), event);
            }
            redial.insert("type".into(), "redial".into());
            let deadline = redial.get("window_end").cloned().unwrap_or(Value::Null);
            redial.insert("deadline".into(), deadline);
            let subject = if kind == "CallbackDue" {
                "events.redial.any".to_owned()
            } else {
                format!("events.redial.{}", agent())
            };
            (Class::Redial, subject, Value::Object(redial))
        }
        "CallbackExpired" => (
            Class::Expired,
            format!("events.expired.{}", agent()),
            Value::Object(message.clone()),
        ),
        "OutcomeSetForCall" => (
            Class::Outcomes,
            "outcomes".to_owned(),
            Value::Object(message.clone()),
        ),
        "CallbackCancelled"
        | "CallbackCompleted"
        | "CallbackSuperseded"
        | "CallbackRescheduled"
        | "CallbackReassigned" => (
            Class::Callbacks,
            format!(
                "callbacks.{}",
                kind["Callback".len()..].to_ascii_lowercase()
            ),
            Value::Object(message.clone()),
        ),
        "AgentStateChanged" => (
            Class::Agents,
            "agents.state".to_owned(),
            Value::Object(message.clone()),
        ),
        _ => return None,
    };
    Some(Message {
        class,
        subject: format!("{prefix}.{subject}"),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
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
        let due = map(
            json!({"callback_id": 7, "event_id": 42, "UserID": "ana.maria",
            "personal": true, "window_start": "2026-01-13T13:45:00Z",
            "window_end": "2026-01-13T14:00:00Z", "attempt": 1}),
        );
        let m = of("redial", "PersonalCallbackDue", &due).unwrap();
        assert_eq!(m.class, Class::Redial);
        assert_eq!(m.subject, "redial.events.redial.agent.ana%2Emaria");
        assert_eq!(m.payload["id"], 42);
        assert_eq!(m.payload["type"], "redial");
        assert_eq!(m.payload["deadline"], "2026-01-13T14:00:00Z");
        assert!(m.payload.get("event_id").is_none());
        let m = of("site1", "CallbackDue", &due).unwrap();
        assert_eq!(m.subject, "site1.events.redial.any");
    }

    #[test]
    fn every_other_kind_has_its_subject() {
        let cb = map(json!({"callback_id": 7, "UserID": "ana", "personal": false}));
        let subject = |kind: &str| of("redial", kind, &cb).map(|m| (m.class, m.subject));
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
        let personal = map(json!({"UserID": "ana", "personal": true}));
        assert_eq!(
            of("redial", "CallbackExpired", &personal).unwrap().subject,
            "redial.events.expired.agent.ana"
        );
    }
}
