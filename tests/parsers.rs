//! Property tests for the parsers at the edge: the date and time parsers (every valid value
//! round-trips) and the whole envelope, fed arbitrary bytes and mutations of a valid request.
//! None may panic, and every refusal must carry a detail. This is the fuzzing the toolchain
//! allows (cargo-fuzz needs a nightly compiler); proptest keeps any failing input it finds in
//! `tests/parsers.regressions`, to be committed, and replays it first on every run; a case
//! worth naming also becomes a unit test beside the code it broke.

use chrono::{Datelike, NaiveDate, Timelike};
use proptest::prelude::*;
use redial::lcm::envelope::Envelope;
use redial::lcm::fields::{parse_date, parse_time};

/// The seed request as bytes.
fn seed() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/seed-request.json");
    std::fs::read(path).unwrap()
}

/// What the envelope parser must always give: a reply head it can echo, and either a request
/// or a refusal with a detail.
fn parses_sanely(body: &[u8]) -> Result<(), TestCaseError> {
    let (head, parsed) = Envelope::parse(body);
    prop_assert!(head.subtopic.ends_with("Result"));
    prop_assert!(head.callid.chars().count() <= 64);
    if let Err(e) = parsed {
        prop_assert!(!e.error_object().detail.is_empty());
        let status = redial::http::Problem::from(&e).status;
        prop_assert!(status == 400 || status == 413);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // A failing case is kept beside this file and replayed first on every later run.
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource(
            "regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_valid_date_and_time_round_trips(days in 0i64..(365 * 400), minute in 0u32..(24 * 60)) {
        let date = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(days);
        let text = format!("{:02}/{:02}/{:04}", date.day(), date.month(), date.year());
        prop_assert_eq!(parse_date(&text), Ok(date));
        let time_text = format!("{:02}:{:02}", minute / 60, minute % 60);
        let time = parse_time(&time_text).unwrap();
        prop_assert_eq!((time.hour(), time.minute()), (minute / 60, minute % 60));
        prop_assert_eq!(time.format("%H:%M").to_string(), time_text);
    }

    #[test]
    fn no_string_panics_the_parsers(s in "\\PC{0,16}") {
        let _ = parse_date(&s);
        let _ = parse_time(&s);
    }

    #[test]
    fn near_misses_are_refused(day in 0u32..100, month in 0u32..100, year in 0u32..10_000, hour in 0u32..100, minute in 0u32..100) {
        let date = format!("{day:02}/{month:02}/{year:04}");
        let valid = NaiveDate::from_ymd_opt(year as i32, month, day).filter(|_| year > 0);
        prop_assert_eq!(parse_date(&date).ok(), valid);
        let time = format!("{hour:02}:{minute:02}");
        prop_assert_eq!(parse_time(&time).is_ok(), hour < 24 && minute < 60);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse_date(&s);
        let _ = parse_time(&s);
    }

    #[test]
    fn the_envelope_takes_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        parses_sanely(&bytes)?;
    }

    #[test]
    fn the_envelope_takes_any_mutation_of_a_valid_request(
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<proptest::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut body = seed();
        for (at, byte, kind) in edits {
            let i = at.index(body.len());
            match kind {
                0 => body[i] = byte,
                1 => body.insert(i, byte),
                _ => { body.remove(i); }
            }
        }
        if truncate {
            body.truncate(cut.index(body.len() + 1));
        }
        parses_sanely(&body)?;
    }

    #[test]
    fn the_envelope_takes_any_value_in_any_field(
        field in proptest::sample::select(vec![
            "callid", "AccountNumber", "OutcomeId", "BusinessOutcome", "StartDate", "EndDate",
            "StartTime", "EndTime", "CallbackModeID", "UserID", "AgentComments", "LeadScore",
            "TargetAmount", "TimeZone",
        ]),
        value in prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            "\\PC{0,40}".prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
        ],
    ) {
        let mut request: serde_json::Value = serde_json::from_slice(&seed()).unwrap();
        request["data"][field] = value;
        parses_sanely(serde_json::to_vec(&request).unwrap().as_slice())?;
    }
}
