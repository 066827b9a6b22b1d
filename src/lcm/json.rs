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
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Why a body could not be read as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Not JSON at all (the parser's message).
    Syntax(String),
    /// A key appears twice in one object.
    DuplicateKey(String),
}

/// Parses `body`, refusing duplicate keys at any depth.
pub fn parse(body: &[u8]) -> Result<Value, Unreadable> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Unreadable::Syntax(e.to_string()))?;
    let duplicate = RefCell::new(None);
    let mut reader = serde_json::Deserializer::from_slice(body);
    if UniqueKeys(&duplicate).deserialize(&mut reader).is_err() {
        if let Some(key) = duplicate.into_inner() {
            return Err(Unreadable::DuplicateKey(key));
        }
    }
    Ok(value)
}

/// Walks a JSON document and fails at the first key seen twice in one object, leaving the key
/// in the cell.
struct UniqueKeys<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys(self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Keys borrowed from the body, not copied; a set, not a list, so that a hostile body
        // of thousands of keys costs linear time.
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Key(key)) = map.next_key()? {
            if seen.contains(&key) {
                *self.0.borrow_mut() = Some(key.into_owned());
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(UniqueKeys(self.0))?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// An object key, borrowed from the body unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
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
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(parse(deep.as_bytes()), Err(Unreadable::Syntax(_))));
    }
}
