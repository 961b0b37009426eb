//! The fast path of `application/json` requests: the common dense shape
//! `{"instances": [{"features": [x1, ..., xd]}, ...]}` parsed straight into
//! the batch, with no `serde_json::Value` tree in between.
//!
//! It accepts only that shape, exactly: any other key, a repeated key, a
//! record of the wrong length or anything else makes it give up, and the
//! caller decodes the body again on the general path, which accepts every
//! shape the stage takes and words the errors. So the fast path changes what
//! a request costs, never what it gets.

use std::fmt;

use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

use super::input::Batch;

/// Appends the records of `body` to `batch` and returns true, or returns
/// false (with `batch` holding a partial decode, to be discarded) when the
/// body is not exactly the dense shape with `dim` features per record.
pub fn decode(body: &[u8], dim: usize, batch: &mut Batch) -> bool {
    let mut de = serde_json::Deserializer::from_slice(body);
    let body = OnlyKey {
        key: "instances",
        value: Instances { batch, dim },
    };
    body.deserialize(&mut de).is_ok() && de.end().is_ok()
}

/// Any refusal of the fast path: the message is never shown.
fn give_up<E: Error>() -> E {
    E::custom("not the dense shape")
}

/// A map of exactly one entry, `key`, whose value `value` reads:
/// `{"instances": [...]}` and each `{"features": [...]}`.
struct OnlyKey<S> {
    key: &'static str,
    value: S,
}

impl<'de, S: DeserializeSeed<'de, Value = ()>> DeserializeSeed<'de> for OnlyKey<S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, S: DeserializeSeed<'de, Value = ()>> Visitor<'de> for OnlyKey<S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{{\"{}\": ...}}", self.key)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match map.next_key::<&str>()? {
            Some(key) if key == self.key => map.next_value_seed(self.value)?,
            _ => return Err(give_up()),
        }
        match map.next_key::<&str>()? {
            None => Ok(()),
            Some(_) => Err(give_up()),
        }
    }
}

/// `[{"features": [...]}, ...]`.
struct Instances<'a> {
    batch: &'a mut Batch,
    dim: usize,
}

impl<'de> DeserializeSeed<'de> for Instances<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Instances<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of instances")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(OnlyKey {
                key: "features",
                value: Features {
                    batch: &mut *self.batch,
                    dim: self.dim,
                },
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// `[x1, ..., xd]`, appended to the batch as one dense record.
struct Features<'a> {
    batch: &'a mut Batch,
    dim: usize,
}

impl<'de> DeserializeSeed<'de> for Features<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Features<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let start = self.batch.dense_len();
        while let Some(x) = seq.next_element::<f64>()? {
            if self.batch.dense_len() - start == self.dim {
                return Err(give_up());
            }
            self.batch.push_value(x);
        }
        self.batch.end_dense(start, self.dim).map_err(|_| give_up())
    }
}
