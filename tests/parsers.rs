//! Property tests for the date and time parsers: every valid value round-trips, and no input
//! makes them panic.

use chrono::{Datelike, NaiveDate, Timelike};
use proptest::prelude::*;
use redial::lcm::fields::{parse_date, parse_time};

proptest! {
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
}
