//! Typed parsing of the LCM `data` fields. Each function takes the raw JSON value (or its
//! absence) and returns a value that cannot be wrong any more, or a [`FieldError`] that names
//! the field, the value seen and the form expected.

use chrono::{NaiveDate, NaiveTime};

use super::json::{Object, Value};

/// A field that is missing, of the wrong JSON type, or out of its range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as it appears on the wire (`StartDate`, `callid`, ...).
    pub field: &'static str,
    /// What was wrong: the value seen and the form expected.
    pub detail: String,
}

impl FieldError {
    pub fn new(field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field,
            detail: detail.into(),
        }
    }
}

/// The longest excerpt of a bad value quoted back in an error: enough to recognise it, never
/// the whole of a hostile multi-megabyte string.
const QUOTE_LIMIT: usize = 80;

/// Describes a JSON value for an error message: its type and a bounded excerpt of its text.
pub fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_owned(),
        Value::Bool(b) => return format!("boolean {b}"),
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let text = match value {
        Value::String(s) => quote(s),
        other => excerpt(&other.to_string()),
    };
    format!("{kind} {text}")
}

/// A string quoted as JSON, cut to `QUOTE_LIMIT` characters.
pub fn quote(s: &str) -> String {
    let json = serde_json::to_string(s).expect("a string is always JSON");
    excerpt(&json)
}

fn excerpt(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} characters)", &text[..cut], text.chars().count()),
    }
}

fn missing(field: &'static str, expected: &str) -> FieldError {
    FieldError::new(field, format!("{field} is missing; expected {expected}"))
}

/// The `data` object of a request, read field by field.
pub struct Fields<'a> {
    map: &'a Object<'a>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Object<'a>) -> Self {
        Self { map }
    }

    fn get(&self, field: &'static str, expected: &str) -> Result<&'a Value<'a>, FieldError> {
        self.map.get(field).ok_or_else(|| missing(field, expected))
    }

    /// A string field that may be absent.
    pub fn optional_text(
        &self,
        field: &'static str,
        max_chars: usize,
    ) -> Result<Option<String>, FieldError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.text(field, 0, max_chars).map(Some),
        }
    }

    /// A string of `min_chars..=max_chars` characters. Identifiers (`min_chars` > 0) must also be
    /// free of control characters, which no contact-center id holds and which break logs and CSV.
    pub fn text(
        &self,
        field: &'static str,
        min_chars: usize,
        max_chars: usize,
    ) -> Result<String, FieldError> {
        // Written out only for an error: every request reads several text fields.
        let expected = || {
            if min_chars == 0 {
                format!("a string of at most {max_chars} characters")
            } else {
                format!("a non-empty string of at most {max_chars} characters")
            }
        };
        let value = self
            .map
            .get(field)
            .ok_or_else(|| missing(field, &expected()))?;
        let Value::String(s) = value else {
            return Err(FieldError::new(
                field,
                format!("{field} must be {}, got {}", expected(), describe(value)),
            ));
        };
        check_text(field, s, min_chars, max_chars)?;
        Ok(s.as_ref().to_owned())
    }

    /// An identifier that may be absent: a string of 1 to `max_chars` printable characters, or
    /// a whole number, kept as its text (campaign and contact ids come both ways).
    pub fn optional_id_text(
        &self,
        field: &'static str,
        max_chars: usize,
    ) -> Result<Option<String>, FieldError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(Some(n.to_string())),
            Some(Value::String(_)) => self.text(field, 1, max_chars).map(Some),
            Some(other) => Err(FieldError::new(
                field,
                format!(
                    "{field} must be a string of at most {max_chars} characters or a whole \
                     number, got {}",
                    describe(other)
                ),
            )),
        }
    }

    /// The array `field`, absent or `null` as `None`.
    pub fn optional_array(
        &self,
        field: &'static str,
    ) -> Result<Option<&'a [Value<'a>]>, FieldError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(FieldError::new(
                field,
                format!("{field} must be an array, got {}", describe(other)),
            )),
        }
    }

    /// An integer ≥ 0 that fits SQLite's INTEGER, as a JSON number or a string of digits.
    pub fn count(&self, field: &'static str) -> Result<i64, FieldError> {
        const EXPECTED: &str = "an integer ≥ 0 (a JSON number or a string of digits)";
        let value = self.get(field, EXPECTED)?;
        let bad = |why: &str| {
            FieldError::new(
                field,
                format!(
                    "{field} {why}: got {}; expected {EXPECTED}",
                    describe(value)
                ),
            )
        };
        match value {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    if i < 0 {
                        return Err(bad("is negative"));
                    }
                    Ok(i)
                } else if n.is_u64() || is_integer_literal(&n.to_string()) {
                    Err(bad("is too large"))
                } else {
                    Err(bad("is not a whole number"))
                }
            }
            Value::String(s) => parse_count(s).map_err(&bad),
            _ => Err(bad("has the wrong type")),
        }
    }

    /// An optional integer in `range`: absent or `null` gives `default`.
    pub fn count_in(
        &self,
        field: &'static str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, FieldError> {
        let n = match self.map.get(field) {
            None | Some(Value::Null) => return Ok(default),
            Some(_) => self.count(field)?,
        };
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(FieldError::new(
                field,
                format!(
                    "{field} is {n}; expected an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            ))
        }
    }

    /// A non-empty array of at most `max` ids (integers ≥ 0).
    pub fn ids(&self, field: &'static str, max: usize) -> Result<Vec<i64>, FieldError> {
        let expected = format!("an array of 1 to {max} integer ids");
        let value = self.get(field, &expected)?;
        let bad = || {
            FieldError::new(
                field,
                format!("{field} must be {expected}, got {}", describe(value)),
            )
        };
        let Value::Array(items) = value else {
            return Err(bad());
        };
        if items.is_empty() || items.len() > max {
            return Err(bad());
        }
        items
            .iter()
            .map(|item| item.as_i64().filter(|id| *id >= 0).ok_or_else(bad))
            .collect()
    }

    /// A finite number, as a JSON number or a string holding one.
    pub fn finite(&self, field: &'static str) -> Result<f64, FieldError> {
        const EXPECTED: &str = "a finite number (a JSON number or a numeric string)";
        let value = self.get(field, EXPECTED)?;
        let bad = |why: &str| {
            FieldError::new(
                field,
                format!(
                    "{field} {why}: got {}; expected {EXPECTED}",
                    describe(value)
                ),
            )
        };
        let number = match value {
            Value::Number(n) => n.as_f64().ok_or_else(|| bad("is not representable"))?,
            Value::String(s) => parse_decimal(s).ok_or_else(|| bad("is not a number"))?,
            _ => return Err(bad("has the wrong type")),
        };
        if number.is_finite() {
            Ok(number)
        } else {
            Err(bad("is not finite"))
        }
    }

    /// A calendar date written `DD/MM/YYYY`.
    pub fn date(&self, field: &'static str) -> Result<NaiveDate, FieldError> {
        let value = self.get(field, "a string date DD/MM/YYYY")?;
        match value {
            Value::String(s) => parse_date(s).map_err(|why| {
                FieldError::new(
                    field,
                    format!("{field} {why}: got {}; expected DD/MM/YYYY", quote(s)),
                )
            }),
            _ => Err(FieldError::new(
                field,
                format!(
                    "{field} must be a string date DD/MM/YYYY, got {}",
                    describe(value)
                ),
            )),
        }
    }

    /// A time of day written `HH:mm`, 24-hour.
    pub fn time(&self, field: &'static str) -> Result<NaiveTime, FieldError> {
        let value = self.get(field, "a string time HH:mm (00:00 to 23:59)")?;
        match value {
            Value::String(s) => parse_time(s).map_err(|why| {
                FieldError::new(
                    field,
                    format!(
                        "{field} {why}: got {}; expected HH:mm (00:00 to 23:59)",
                        quote(s)
                    ),
                )
            }),
            _ => Err(FieldError::new(
                field,
                format!(
                    "{field} must be a string time HH:mm (00:00 to 23:59), got {}",
                    describe(value)
                ),
            )),
        }
    }
}

/// Digits with an optional minus sign: an integer, however large.
fn is_integer_literal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Checks length and the absence of control characters (free text, `min_chars` 0, may hold
/// line breaks and tabs).
pub fn check_text(
    field: &'static str,
    s: &str,
    min_chars: usize,
    max_chars: usize,
) -> Result<(), FieldError> {
    if min_chars > 0 && s.trim().is_empty() {
        return Err(FieldError::new(
            field,
            format!(
                "{field} is empty; expected a non-empty string of at most {max_chars} characters"
            ),
        ));
    }
    let chars = s.chars().count();
    if chars > max_chars {
        return Err(FieldError::new(
            field,
            format!(
                "{field} is {chars} characters long: got {}; at most {max_chars} allowed",
                quote(s)
            ),
        ));
    }
    // Names and ids are one printable line; free text (a comment) may have line breaks and
    // tabs, but no other control character: a NUL, say, cuts a string short in other tools.
    let free_text = min_chars == 0;
    if s.chars()
        .any(|c| c.is_control() && !(free_text && matches!(c, '\t' | '\n' | '\r')))
    {
        return Err(FieldError::new(
            field,
            format!(
                "{field} holds a control character: got {}; expected printable text",
                quote(s)
            ),
        ));
    }
    Ok(())
}

fn two_digits(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

/// Parses `DD/MM/YYYY` exactly: two-digit day and month, four-digit year, a real calendar date.
pub fn parse_date(s: &str) -> Result<NaiveDate, &'static str> {
    let b = s.as_bytes();
    if b.len() != 10 || b[2] != b'/' || b[5] != b'/' {
        return Err("is not in the form DD/MM/YYYY");
    }
    let (Some(day), Some(month), Some(hi), Some(lo)) = (
        two_digits(&b[0..2]),
        two_digits(&b[3..5]),
        two_digits(&b[6..8]),
        two_digits(&b[8..10]),
    ) else {
        return Err("is not in the form DD/MM/YYYY");
    };
    let year = (hi * 100 + lo) as i32;
    if !(1..=12).contains(&month) {
        return Err("has no such month");
    }
    NaiveDate::from_ymd_opt(year, month, day)
        .filter(|_| year > 0)
        .ok_or("is not a calendar date")
}

/// Parses `HH:mm` exactly: two digits each, 00:00 to 23:59.
pub fn parse_time(s: &str) -> Result<NaiveTime, &'static str> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return Err("is not in the form HH:mm");
    }
    let (Some(hour), Some(minute)) = (two_digits(&b[0..2]), two_digits(&b[3..5])) else {
        return Err("is not in the form HH:mm");
    };
    NaiveTime::from_hms_opt(hour, minute, 0)
        .filter(|_| hour < 24 && minute < 60)
        .ok_or("is not a time of day")
}

fn parse_count(s: &str) -> Result<i64, &'static str> {
    if let Some(digits) = s.strip_prefix('-') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("is negative");
        }
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not a string of digits");
    }
    s.parse::<i64>().map_err(|_| "is too large")
}

/// A decimal number in a string: digits, an optional sign, point and exponent. Rust's own
/// float parser also takes `inf` and `NaN`; those are refused here before it sees them.
fn parse_decimal(s: &str) -> Option<f64> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && s.bytes().any(|b| b.is_ascii_digit());
    if plain {
        s.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            parse_date("13/01/2021"),
            Ok(NaiveDate::from_ymd_opt(2021, 1, 13).unwrap())
        );
        assert_eq!(
            parse_date("29/02/2028"),
            Ok(NaiveDate::from_ymd_opt(2028, 2, 29).unwrap())
        );
        for bad in [
            "31/02/2026",
            "29/02/2027",
            "1/1/2026",
            "2026-01-13",
            "13/13/2026",
            "00/01/2026",
            "13/01/26",
            "13-01-2026",
            "01/01/0000",
            " 13/01/2026",
            "１３/01/2026",
        ] {
            assert!(parse_date(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn times_are_strict() {
        assert_eq!(parse_time("00:00"), Ok(NaiveTime::MIN));
        assert_eq!(
            parse_time("23:59"),
            Ok(NaiveTime::from_hms_opt(23, 59, 0).unwrap())
        );
        for bad in [
            "24:00", "7:5", "07:5", "12:60", "1245", "12:45:00", "-1:00", "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn numeric_strings() {
        assert_eq!(parse_count("4"), Ok(4));
        assert_eq!(parse_count("-4"), Err("is negative"));
        assert!(parse_count("4.5").is_err());
        assert!(parse_count("99999999999999999999").is_err());
        assert_eq!(parse_decimal("-1.5e2"), Some(-150.0));
        assert_eq!(parse_decimal("NaN"), None);
        assert_eq!(parse_decimal("inf"), None);
        assert_eq!(parse_decimal(""), None);
    }

    #[test]
    fn long_values_are_quoted_in_part() {
        let long = "x".repeat(10_000);
        let text = describe(&Value::String(long.into()));
        assert!(text.len() < 200, "{text}");
        assert!(text.contains("10002 characters"), "{text}");
    }
}
