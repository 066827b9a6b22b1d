//! How request bodies are read as JSON: into a tree that borrows from the body ([`Value`]),
//! with the checks `serde_json` does not make by itself ([`parse`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde_json::Number;

/// Why a body could not be read as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Not JSON at all (the parser's message).
    Syntax(String),
    /// A key appears twice in one object.
    DuplicateKey(String),
}

/// A JSON value read from a request body. Strings and keys borrow from the body unless they
/// held escapes: a request is read once and dropped, and copying its twenty-odd strings and
/// keys into a `serde_json::Value` (a map with owned keys) cost more than the rest of reading
/// it (BENCHMARKS.md: request bodies read in place).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Object<'a>),
}

/// An object's members in the order the body gives them. No key appears twice: [`parse`]
/// refuses a body that repeats one.
#[derive(Debug, Clone, PartialEq)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Value<'a>)>);

impl<'a> Object<'a> {
    /// The member named `key`. A request's objects hold a score of members, so a scan is as
    /// quick as a lookup in a map and needs nothing built.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl Value<'_> {
    /// The value as an `i64`, if it is a number that is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }
}

/// Written as `serde_json` writes JSON; `Display` gives the compact form.
impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => n.serialize(serializer),
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => serializer.collect_seq(items),
            Value::Object(object) => serializer.collect_map(object.0.iter().map(|(k, v)| (k, v))),
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

/// Parses `body`:
///
/// * A key given twice in one object is refused, at any depth. JSON leaves its meaning open
///   and parsers disagree (first wins, last wins, error), which is how a request can mean one
///   thing to a proxy and another to redial.
/// * Numbers keep their text (`serde_json`'s `arbitrary_precision`), so `1e400` reaches the
///   field that holds it and is refused there, by name, as not finite; it is not a parse error.
/// * Nesting deeper than 128 levels, invalid UTF-8 and raw control characters are parse errors.
///
/// One pass: the value is built by a visitor that notices a key it has already inserted.
/// A body that is not JSON is reported as such even when a duplicate came before the fault.
pub fn parse(body: &[u8]) -> Result<Value<'_>, Unreadable> {
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

/// Members an object may have before its keys are looked up in a set instead of a scan: a
/// body of 64 KiB can hold 10,000 keys, and scanning for each would take 50 million steps.
const SCANNED_KEYS: usize = 32;

/// Builds a [`Value`], and records in the cell the first key that an object repeats.
#[derive(Clone, Copy)]
struct UniqueKeys<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value<'de>, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value<'de>, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value<'de>, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Value<'de>)> = Vec::new();
        // Filled once the object outgrows a scan.
        let mut keys: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key_seed(Text)? {
            if members.is_empty() && key == NUMBER_TOKEN {
                let text = map.next_value_seed(Text)?;
                return text.parse().map(Value::Number).map_err(de::Error::custom);
            }
            let value = map.next_value_seed(self)?;
            let repeated = match &mut keys {
                Some(keys) => !keys.insert(key.clone()),
                None => members.iter().any(|(k, _)| *k == key),
            };
            if repeated {
                // The first repeat is the one reported; the body is refused, so what the
                // object holds from here on does not matter.
                self.0.borrow_mut().get_or_insert_with(|| key.into_owned());
                continue;
            }
            members.push((key, value));
            if keys.is_none() && members.len() > SCANNED_KEYS {
                keys = Some(members.iter().map(|(k, _)| k.clone()).collect());
            }
        }
        Ok(Value::Object(Object(members)))
    }
}

/// A string as the body holds it: borrowed unless it had escapes. A number's marker key and
/// its text are read so too.
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
        // Keys on either side of the switch from a scan to a set.
        for (keys, repeated) in [(32, 31), (33, 32), (40, 32), (40, 33), (40, 39)] {
            let members: String = (0..keys).map(|i| format!("\"k{i}\": 0, ")).collect();
            let body = format!("{{{members}\"k{repeated}\": 1}}");
            assert_eq!(
                parse(body.as_bytes()),
                Err(Unreadable::DuplicateKey(format!("k{repeated}"))),
                "{keys} keys, k{repeated} repeated"
            );
            let body = format!("{{{members}\"k{keys}\": 1}}");
            assert!(parse(body.as_bytes()).is_ok(), "{keys} keys, none repeated");
        }
    }

    fn member<'a>(value: &'a Value<'a>, key: &str) -> &'a Value<'a> {
        let Value::Object(object) = value else {
            panic!("not an object: {value}")
        };
        object.get(key).expect("the member")
    }

    #[test]
    fn values_are_those_serde_json_builds() {
        let body = br#"{"s": "a\u00e9\n", "n": [0, -1, 2.50, 1e3, 18446744073709551616],
            "b": [true, false, null], "o": {"k": {}, "e": []}, "order": {"z": 1, "a": 2}}"#;
        let ours = parse(body).unwrap();
        let theirs: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(serde_json::to_value(&ours).unwrap(), theirs);
        assert_eq!(
            member(&ours, "n").to_string(),
            theirs["n"].to_string(),
            "same number text"
        );
        assert_eq!(
            member(&ours, "order").to_string(),
            r#"{"z":1,"a":2}"#,
            "members in the body's order"
        );
        assert_eq!(
            member(&ours, "s"),
            &Value::String("a\u{e9}\n".into()),
            "escapes read"
        );
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let value = parse(br#"{"plain": "abc", "escaped": "a\nb"}"#).unwrap();
        assert!(matches!(
            member(&value, "plain"),
            Value::String(Cow::Borrowed("abc"))
        ));
        assert!(matches!(
            member(&value, "escaped"),
            Value::String(Cow::Owned(_))
        ));
    }

    #[test]
    fn huge_numbers_keep_their_text() {
        let v = parse(br#"{"n": 1e400, "z": -0}"#).unwrap();
        let number = |key| match member(&v, key) {
            Value::Number(n) => n.clone(),
            other => panic!("not a number: {other}"),
        };
        assert_eq!(number("n").to_string(), "1e+400");
        assert_eq!(
            number("n").as_f64(),
            None,
            "out of range: the field says so"
        );
        assert_eq!(number("z").as_f64(), Some(-0.0));
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
