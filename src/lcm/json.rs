//! How request bodies are read as JSON, beyond what `serde_json` checks by itself.
//!
//! * A key given twice in one object is refused. JSON leaves its meaning open and parsers
//!   disagree (first wins, last wins, error), which is how a request can mean one thing to a
//!   proxy and another to redial.
//! * Numbers keep their text (`serde_json`'s `arbitrary_precision`), so `1e400` reaches the
//!   field that holds it and is refused there, by name, as not finite; it is not a parse error.
//! * Nesting deeper than 128 levels, invalid UTF-8 and raw control characters are parse errors.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Why a body could not be read as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Not JSON at all (the parser's message).
    Syntax(String),
    /// A key appears twice in one object.
    DuplicateKey(String),
}

/// Parses `body`, refusing duplicate keys at any depth.
///
/// One pass: the value is built by a visitor that notices a key it has already inserted.
/// A body that is not JSON is reported as such even when a duplicate came before the fault.
pub fn parse(body: &[u8]) -> Result<Value, Unreadable> {
    // Checked once, whole: reading from a `str`, serde_json does not check each string again.
    let body = std::str::from_utf8(body).map_err(|e| {
        Unreadable::Syntax(format!(
            "invalid UTF-8 after the first {} bytes",
            e.valid_up_to()
        ))
    })?;
    let duplicate = RefCell::new(None);
    let mut reader = serde_json::Deserializer::from_str(body);
    let value = UniqueKeys(&duplicate)
        .deserialize(&mut reader)
        .and_then(|value| reader.end().map(|()| value))
        .map_err(|e| Unreadable::Syntax(e.to_string()))?;
    match duplicate.into_inner() {
        Some(key) => Err(Unreadable::DuplicateKey(key)),
        None => Ok(value),
    }
}

/// `serde_json`'s marker for a number kept as text (`arbitrary_precision`): the deserializer
/// hands such a number to a visitor as a one-entry map under this key.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Builds a [`Value`] as `serde_json` does, and records in the cell the first key that an
/// object repeats.
#[derive(Clone, Copy)]
struct UniqueKeys<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(Text)? {
            if object.is_empty() && key == NUMBER_TOKEN {
                let text = map.next_value_seed(Text)?;
                return text.parse().map(Value::Number).map_err(de::Error::custom);
            }
            let value = map.next_value_seed(self)?;
            // One lookup says whether the key is new; a repeat keeps the first value, which
            // does not matter, as the body is refused.
            match object.entry(key.into_owned()) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(slot) => {
                    self.0
                        .borrow_mut()
                        .get_or_insert_with(|| slot.key().clone());
                }
            }
        }
        Ok(Value::Object(object))
    }
}

/// A string as the body holds it: borrowed unless it had escapes. Keys are read so, and only
/// then copied into the object; a number's marker key and its text are never copied.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_at_any_depth() {
        assert_eq!(
            parse(br#"{"a": 1, "a": 2}"#),
            Err(Unreadable::DuplicateKey("a".into()))
        );
        assert_eq!(
            parse(br#"{"data": {"callid": "1", "x": [{"k": 1, "k": 1}]}}"#),
            Err(Unreadable::DuplicateKey("k".into()))
        );
        assert!(parse(br#"{"a": {"a": {"a": 1}}, "b": [1, 2, {"a": 1}]}"#).is_ok());
        // A key written with an escape is the same key.
        assert_eq!(
            parse(br#"{"a": 1, "\u0061": 2}"#),
            Err(Unreadable::DuplicateKey("a".into()))
        );
        // Thousands of keys, the last one repeated.
        let mut body: String = (0..5000).map(|i| format!("\"k{i}\": 0, ")).collect();
        body = format!("{{{body}\"k0\": 1}}");
        assert_eq!(
            parse(body.as_bytes()),
            Err(Unreadable::DuplicateKey("k0".into()))
        );
    }

    #[test]
    fn values_are_those_serde_json_builds() {
        let body = br#"{"s": "a\u00e9\n", "n": [0, -1, 2.50, 1e3, 18446744073709551616],
            "b": [true, false, null], "o": {"k": {}, "e": []}, "order": {"z": 1, "a": 2}}"#;
        let ours = parse(body).unwrap();
        let theirs: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(
            ours.to_string(),
            theirs.to_string(),
            "same key order, same number text"
        );
    }

    #[test]
    fn huge_numbers_keep_their_text() {
        let v = parse(br#"{"n": 1e400, "z": -0}"#).unwrap();
        assert_eq!(v["n"].to_string(), "1e+400");
        assert_eq!(v["n"].as_f64(), None, "out of range: the field says so");
        assert_eq!(v["z"].as_f64(), Some(-0.0));
    }

    #[test]
    fn syntax_errors_say_where() {
        let Err(Unreadable::Syntax(why)) = parse(b"{\"a\": ") else {
            panic!("truncated JSON parsed")
        };
        assert!(why.contains("line 1"), "{why}");
        // A fault after a repeated key: the body is not JSON, whatever came before.
        assert!(matches!(
            parse(br#"{"a": 1, "a": 2, "b": }"#),
            Err(Unreadable::Syntax(_))
        ));
        assert!(matches!(
            parse(br#"{"a": 1} x"#),
            Err(Unreadable::Syntax(_))
        ));
        assert_eq!(
            parse(b"{\"a\": \"caf\xe9\"}"),
            Err(Unreadable::Syntax(
                "invalid UTF-8 after the first 10 bytes".into()
            ))
        );
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(parse(deep.as_bytes()), Err(Unreadable::Syntax(_))));
    }
}
