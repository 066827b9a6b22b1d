//! The relay's stream: created when missing, left alone when it exists with settings the
//! relay can live with, refused with every difference otherwise.

use std::time::Duration;

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, context::GetStreamErrorKind, ErrorCode};

/// What the relay asks of its stream (`--nats-stream`, `--nats-subject`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub name: String,
    /// Every subject the relay publishes is under `<prefix>.>`.
    pub prefix: String,
    /// Limits (the default: every message kept until max age), interest or work queue.
    pub retention: RetentionPolicy,
    pub max_age: Duration,
    pub duplicate_window: Duration,
    pub replicas: usize,
}

impl Wanted {
    pub fn config(&self) -> Config {
        Config {
            name: self.name.clone(),
            subjects: vec![format!("{}.>", self.prefix)],
            storage: StorageType::File,
            retention: self.retention,
            discard: DiscardPolicy::Old,
            max_age: self.max_age,
            duplicate_window: self.duplicate_window,
            num_replicas: self.replicas,
            description: Some("redial's events (README: More than one box)".into()),
            ..Config::default()
        }
    }

    /// The settings of an existing stream that the relay cannot work with: each as "what it
    /// is, what is needed". The retention asked for and storage on disk are required (memory
    /// loses messages at a restart), the subjects must cover the prefix, and a duplicate
    /// window is needed for re-publishes to be dropped. Max age and replicas are the
    /// operator's to choose.
    pub fn conflicts(&self, found: &Config) -> Vec<String> {
        let mut conflicts = Vec::new();
        let prefix = format!("{}.>", self.prefix);
        let covered = found.subjects.iter().any(|s| {
            s == &prefix || s == ">" || (s.ends_with(".>") && prefix.starts_with(&s[..s.len() - 1]))
        });
        if !covered {
            conflicts.push(format!(
                "subjects {:?} do not take {prefix:?}",
                found.subjects
            ));
        }
        if found.retention != self.retention {
            conflicts.push(format!(
                "retention is {:?}, and --nats-retention asks for {:?}",
                found.retention, self.retention
            ));
        }
        if found.storage != StorageType::File {
            conflicts.push(format!(
                "storage is {:?}, and only file storage survives a restart",
                found.storage
            ));
        }
        if found.duplicate_window.is_zero() {
            conflicts.push(
                "the duplicate window is 0, so a re-publish after a restart is not dropped"
                    .to_owned(),
            );
        }
        if found.sealed {
            conflicts.push("the stream is sealed: it takes no new messages".to_owned());
        }
        conflicts
    }
}

/// Why the stream could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// It exists with settings the relay cannot live with: a start-up error.
    #[error("stream {name} exists with settings redial cannot publish to: {}; change them, or give --nats-stream another name", conflicts.join("; "))]
    Conflict {
        name: String,
        conflicts: Vec<String>,
    },
    /// NATS did not answer: try again later.
    #[error("cannot reach JetStream: {0}")]
    Unavailable(String),
}

/// Creates the stream if it is missing; checks it if it exists.
pub async fn ensure(js: &jetstream::Context, wanted: &Wanted) -> Result<(), StreamError> {
    match js.get_stream(&wanted.name).await {
        Ok(mut stream) => {
            let info = stream
                .info()
                .await
                .map_err(|e| StreamError::Unavailable(e.to_string()))?;
            let conflicts = wanted.conflicts(&info.config);
            if conflicts.is_empty() {
                Ok(())
            } else {
                Err(StreamError::Conflict {
                    name: wanted.name.clone(),
                    conflicts,
                })
            }
        }
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(js_error)
                if js_error.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                js.create_stream(wanted.config())
                    .await
                    .map(|_| tracing::info!(stream = %wanted.name, "stream created"))
                    .map_err(|e| StreamError::Unavailable(e.to_string()))
            }
            _ => Err(StreamError::Unavailable(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted {
            name: "REDIAL".into(),
            prefix: "redial".into(),
            retention: RetentionPolicy::Limits,
            max_age: Duration::from_secs(86_400),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
        }
    }

    #[test]
    fn the_streams_own_settings_and_the_operators_choices_are_accepted() {
        let w = wanted();
        assert!(w.conflicts(&w.config()).is_empty());
        let mut wider = w.config();
        wider.subjects = vec!["redial.>".into(), "other.>".into()];
        wider.max_age = Duration::from_secs(7 * 86_400);
        wider.num_replicas = 3;
        assert!(w.conflicts(&wider).is_empty());
    }

    #[test]
    fn settings_that_would_lose_or_repeat_events_are_named() {
        let w = wanted();
        let mut found = w.config();
        found.subjects = vec!["orders.>".into()];
        found.retention = RetentionPolicy::WorkQueue;
        found.storage = StorageType::Memory;
        found.duplicate_window = Duration::ZERO;
        let conflicts = w.conflicts(&found);
        assert_eq!(conflicts.len(), 4, "{conflicts:?}");
        assert!(conflicts[0].contains("orders.>"));
    }
}
