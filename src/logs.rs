//! Log output: lines written to stderr in batches by a thread of their own ([`Batched`]) and,
//! for `--log-format json`, formatted directly ([`JsonLines`]). Both replace a crate's part
//! that cost measurably more in the same runs (BENCHMARKS.md: logs, hand-written or crates).

use std::fmt::{self, Write};
use std::io::{self, IsTerminal};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// How long lines gather before they are written: the most a line waits to reach stderr.
pub const BATCH_EVERY: Duration = Duration::from_millis(10);
/// Bytes of lines that may wait. If stderr takes them more slowly than they come (a stalled
/// reader of the pipe), lines past this are dropped and counted, and requests never wait.
pub const WAITING_MAX: usize = 8 << 20;

/// Sends log lines to stderr in `format`, at the level `RUST_LOG` sets (default `info`).
/// Dropping the returned guard writes what is still waiting.
pub fn init(format: LogFormat) -> Flush {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, flush) = Batched::start(io::stderr(), WAITING_MAX);
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => logs.with_ansi(io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.with_ansi(false).event_format(JsonLines).init(),
    }
    flush
}

/// Where formatted lines wait for the writing thread. Cloned into every event's writer.
///
/// A request appends its line to a buffer and goes on, and the thread writes what has
/// gathered every [`BATCH_EVERY`], one `write` for hundreds of lines. `tracing-appender`'s
/// non-blocking writer hands each line through a channel and wakes its thread for nearly
/// every one: on two cores, the server spent more CPU a request with it, and served fewer
/// requests a second.
#[derive(Clone)]
pub struct Batched(Arc<Shared>);

struct Shared {
    waiting: Mutex<Waiting>,
    /// Signalled when the first line of a batch arrives, and at the end.
    arrived: Condvar,
    limit: usize,
}

#[derive(Default)]
struct Waiting {
    bytes: Vec<u8>,
    dropped: u64,
    closing: bool,
}

impl Batched {
    /// The writer for the subscriber, and the guard whose drop writes the rest and stops the
    /// thread that writes to `out`.
    pub fn start<W: io::Write + Send + 'static>(mut out: W, limit: usize) -> (Batched, Flush) {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Waiting::default()),
            arrived: Condvar::new(),
            limit,
        });
        let batches = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("redial-logs".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    let closing = batches.next_batch(&mut batch);
                    // Nowhere to report a failure to write a log line; the next batch tries again.
                    let _ = out.write_all(&batch).and_then(|()| out.flush());
                    batch.clear();
                    if closing {
                        return;
                    }
                }
            })
            .expect("a thread for log lines");
        (
            Batched(Arc::clone(&shared)),
            Flush {
                shared,
                thread: Some(thread),
            },
        )
    }
}

impl Shared {
    /// Waits for a line, lets [`BATCH_EVERY`] gather more, and moves them all into `batch`
    /// (with a note of any dropped). Returns whether the writer is closing.
    fn next_batch(&self, batch: &mut Vec<u8>) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        while waiting.bytes.is_empty() && waiting.dropped == 0 && !waiting.closing {
            waiting = self
                .arrived
                .wait(waiting)
                .unwrap_or_else(|e| e.into_inner());
        }
        if !waiting.closing {
            drop(waiting);
            std::thread::sleep(BATCH_EVERY);
            waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        }
        std::mem::swap(batch, &mut waiting.bytes);
        if waiting.dropped > 0 {
            let note = format!(
                "redial: {} log lines dropped: stderr took them more slowly than they came\n",
                waiting.dropped
            );
            batch.extend_from_slice(note.as_bytes());
            waiting.dropped = 0;
        }
        waiting.closing
    }
}

impl io::Write for Batched {
    /// Takes one whole line (the formatter writes each line in one call).
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut waiting = self.0.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let first = waiting.bytes.is_empty() && waiting.dropped == 0;
        if waiting.bytes.len() + line.len() > self.0.limit {
            waiting.dropped += 1;
        } else {
            waiting.bytes.extend_from_slice(line);
        }
        if first {
            self.0.arrived.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Batched;

    fn make_writer(&'a self) -> Batched {
        self.clone()
    }
}

/// Writes the lines still waiting and stops the writing thread, when dropped.
pub struct Flush {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Flush {
    fn drop(&mut self) {
        let mut waiting = self
            .shared
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        waiting.closing = true;
        drop(waiting);
        self.shared.arrived.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Formats an event as one JSON object, in the shape of `tracing-subscriber`'s `json()`
/// formatter, which users' log shippers already parse:
/// `{"timestamp", "level", "fields": {"message", ...}, "target"}`. It is written straight into
/// the line instead of through that formatter, which hands each fragment to serde_json
/// through an adapter that checks it is UTF-8 and copies it again, about 75 calls a line.
/// Lines carry no span context: redial's spans are at debug level, for text lines.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut line: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        line.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut line, DateTime::<Utc>::from(SystemTime::now()))?;
        write!(line, "\",\"level\":\"{}\",\"fields\":{{", meta.level())?;
        let mut fields = JsonFields {
            line: &mut line,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        line.write_str("},\"target\":")?;
        write_string(&mut line, meta.target())?;
        line.write_str("}\n")
    }
}

/// `2026-11-25T06:53:00.123456Z`: UTC to the microsecond, as `tracing-subscriber` writes it,
/// by chrono's RFC 3339 writer, which costs less than `write!` with seven padded fields.
fn write_timestamp(out: &mut impl Write, at: DateTime<Utc>) -> fmt::Result {
    out.write_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// Writes an event's fields as the members of a JSON object.
struct JsonFields<'a, W> {
    line: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: Write> JsonFields<'_, W> {
    /// Writes `"name":` and then the value `write` produces; the first failure is kept.
    fn member(&mut self, field: &Field, write: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let comma = if self.first { "" } else { "," };
        self.first = false;
        self.result = self
            .line
            .write_str(comma)
            .and_then(|()| write_string(self.line, field.name()))
            .and_then(|()| self.line.write_char(':'))
            .and_then(|()| write(self.line));
    }
}

impl<W: Write> Visit for JsonFields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |line| write_string(line, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |line| write!(line, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |line| write!(line, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |line| write!(line, "{value}"));
    }

    /// As serde_json writes an `f64`: `null` when it is not finite.
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field, |line| {
            if value.is_finite() {
                write!(line, "{value:?}")
            } else {
                line.write_str("null")
            }
        });
    }

    /// `%value`, `?value` and errors: their text, as a JSON string.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |line| {
            line.write_char('"')?;
            write!(Escaped(line), "{value:?}")?;
            line.write_char('"')
        });
    }
}

/// `text` as a JSON string.
fn write_string(out: &mut impl Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(text)?;
    out.write_char('"')
}

/// Escapes what it is given as the inside of a JSON string, as serde_json does: quote,
/// backslash and control characters; everything else is copied in runs.
struct Escaped<'a, W>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut copied = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[copied..at])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            copied = at + 1;
        }
        self.0.write_str(&text[copied..])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Events with every kind of field, including text that needs escaping.
    fn emit() {
        let quoted = "a \"quoted\" \\ back\nslash\t\u{1} é ☎ \u{7f}";
        tracing::info!(
            method = %"POST",
            path = quoted,
            status = 201u16,
            latency_us = 1234u64,
            offset = -5i64,
            ok = true,
            score = 1.5f64,
            ratio = 0.1f64,
            nothing = f64::NAN,
            debugged = ?Some(quoted),
            "request"
        );
        tracing::warn!(error = %io::Error::other("disk \"full\""), "no fields but these");
        tracing::error!("only a message, with a \u{0} in it");
    }

    fn lines(captured: &Captured) -> Vec<Value> {
        captured
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn lines_are_those_of_the_json_formatter_they_replace() {
        let (ours, theirs) = (Captured::default(), Captured::default());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(ours.clone())
            .with_ansi(false)
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(theirs.clone())
            .json()
            .finish();
        tracing::subscriber::with_default(subscriber, emit);

        let (mut ours, mut theirs) = (lines(&ours), lines(&theirs));
        assert_eq!(ours.len(), 3);
        for (mine, reference) in ours.iter_mut().zip(theirs.iter_mut()) {
            let stamp = mine["timestamp"].take();
            let stamp = stamp.as_str().unwrap();
            assert!(
                DateTime::parse_from_rfc3339(stamp).is_ok() && stamp.len() == 27,
                "{stamp}"
            );
            reference["timestamp"].take();
        }
        assert_eq!(ours, theirs);
        assert_eq!(
            ours[0]["fields"]["path"].as_str().unwrap().chars().count(),
            31
        );
    }

    /// A sink whose first write waits until the test lets it through.
    struct Gated {
        gate: Option<std::sync::mpsc::Receiver<()>>,
        out: Captured,
    }

    impl io::Write for Gated {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if let Some(gate) = self.gate.take() {
                gate.recv().unwrap();
            }
            self.out.write(bytes)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_whole_and_in_each_threads_order() {
        let sink = Captured::default();
        let (writer, flush) = Batched::start(sink.clone(), WAITING_MAX);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        io::Write::write_all(&mut writer, format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(flush);
        let text = sink.text();
        for t in 0..4 {
            let seen: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        }
        assert_eq!(text.lines().count(), 4000);
    }

    #[test]
    fn a_lone_line_is_written_without_waiting_for_others() {
        let sink = Captured::default();
        let (mut writer, _flush) = Batched::start(sink.clone(), WAITING_MAX);
        io::Write::write_all(&mut writer, b"serving\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.text() != "serving\n" {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::yield_now();
        }
    }

    #[test]
    fn lines_past_the_limit_are_dropped_and_counted() {
        let (release, gate) = std::sync::mpsc::channel();
        let sink = Captured::default();
        let gated = Gated {
            gate: Some(gate),
            out: sink.clone(),
        };
        // Room for two lines. While the first batch waits at the gate, at most two more can
        // wait behind it: of eleven lines, at least seven are dropped.
        let (mut writer, flush) = Batched::start(gated, 2 * 6);
        for i in 0..11 {
            io::Write::write_all(&mut writer, format!("line{i}\n").as_bytes()).unwrap();
        }
        release.send(()).unwrap();
        drop(flush);
        let text = sink.text();
        let written = text.lines().filter(|l| l.starts_with("line")).count();
        let note = text
            .lines()
            .find(|l| l.contains("log lines dropped"))
            .unwrap();
        let dropped: usize = note["redial: ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(written + dropped, 11, "{text}");
        assert!(dropped >= 7, "{text}");
    }

    #[test]
    fn the_timestamp_is_utc_to_the_microsecond() {
        let at = DateTime::parse_from_rfc3339("2026-03-08T07:05:09.000042Z")
            .unwrap()
            .to_utc();
        let mut text = String::new();
        write_timestamp(&mut text, at).unwrap();
        assert_eq!(text, "2026-03-08T07:05:09.000042Z");
    }
}
