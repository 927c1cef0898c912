//! "Did you mean `command`?" for a mistyped key. The keys a table may have are asked of the
//! task file's own serde types — a probing deserializer walks to the table and records the
//! field names serde hands it — so the suggestions can never drift from what kpo accepts.

use std::cell::Cell;

use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::locate::{KeyPath, Segment};
use super::raw::RawTask;

/// The known key closest to the unknown one at `path` (a typo, not a different word).
pub fn did_you_mean(path: &KeyPath) -> Option<&'static str> {
    let (Segment::Key(unknown), parent) = path.0.split_last()? else {
        return None;
    };
    let found = Cell::new(None);
    let _ = RawTask::deserialize(Probe {
        path: parent,
        found: &found,
    });
    let limit = (unknown.chars().count() / 3).max(1);
    found
        .get()?
        .iter()
        .map(|known| (strsim::damerau_levenshtein(unknown, known), *known))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, known)| known)
}

/// Walks `path` through structs, options and lists, and records the field names of the struct
/// it ends at. Everything else (maps, hand-written enums) ends the walk without an answer.
struct Probe<'a> {
    path: &'a [Segment],
    found: &'a Cell<Option<&'static [&'static str]>>,
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.path.split_first() {
            None => {
                self.found.set(Some(fields));
                Err(de::Error::custom("found"))
            }
            Some((Segment::Key(key), rest)) => visitor.visit_map(OneEntry {
                key: Some(key),
                value: Probe {
                    path: rest,
                    found: self.found,
                },
            }),
            Some((Segment::Index(_), _)) => Err(de::Error::custom("not a list")),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.path.split_first() {
            Some((Segment::Index(_), rest)) => visitor.visit_seq(OneElement(Some(Probe {
                path: rest,
                found: self.found,
            }))),
            _ => Err(de::Error::custom("not a table")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct tuple tuple_struct map enum identifier ignored_any
    }
}

/// A table with the one key on the way.
struct OneEntry<'a> {
    key: Option<&'a str>,
    value: Probe<'a>,
}

impl<'de> MapAccess<'de> for OneEntry<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some(key) = self.key.take() else {
            return Ok(None);
        };
        let key: StrDeserializer<'_, Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(Probe {
            path: self.value.path,
            found: self.value.found,
        })
    }
}

/// A list with the one element on the way.
struct OneElement<'a>(Option<Probe<'a>>);

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|probe| seed.deserialize(probe)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(keys: &[&str]) -> KeyPath {
        KeyPath(keys.iter().map(|k| Segment::Key((*k).into())).collect())
    }

    #[test]
    fn a_typo_gets_the_key_it_meant() {
        assert_eq!(did_you_mean(&path(&["comand"])), Some("command"));
        assert_eq!(did_you_mean(&path(&["run", "timout"])), Some("timeout"));
        assert_eq!(
            did_you_mean(&path(&["retry", "infrastucture"])),
            Some("infrastructure")
        );
        let in_a_list = KeyPath(vec![
            Segment::Key("volumes".into()),
            Segment::Index(0),
            Segment::Key("nmae".into()),
        ]);
        assert_eq!(did_you_mean(&in_a_list), Some("name"));
    }

    #[test]
    fn a_different_word_gets_no_suggestion() {
        assert_eq!(did_you_mean(&path(&["colour"])), None);
        assert_eq!(did_you_mean(&path(&["run", "x"])), None);
    }
}
