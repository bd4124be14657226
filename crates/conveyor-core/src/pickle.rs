//! [`Pickle`]: a codec speaking Python's pickle (feature `pickle`), the one pickle codec of the
//! workspace: conveyor-pipe's connections and conveyor-redis's queues use it to exchange
//! objects with Python programs.
//!
//! Values map as [serde-pickle](https://docs.rs/serde-pickle) maps them:
//!
//! | Rust                                   | Python                  |
//! |----------------------------------------|-------------------------|
//! | integers (`i64`, `u32`, ...)           | `int`                   |
//! | `f64`, `f32`                           | `float`                 |
//! | `String`, `&str`                       | `str`                   |
//! | `serde_bytes::ByteBuf`, `#[serde(with = "serde_bytes")]` | `bytes` |
//! | `Vec<T>`, slices                       | `list`                  |
//! | tuples                                 | `tuple`                 |
//! | `HashMap`, `BTreeMap`, structs         | `dict` (a struct's fields by name) |
//! | `Option<T>`: `None` / `Some(v)`        | `None` / `v`            |
//! | `bool`, `()`                           | `bool`, `None`          |
//! | [`Value`]                              | any of the above, decided at run time |
//!
//! Objects of other Python classes do not decode (pickle would call their constructors, which
//! a Rust peer cannot do); send plain data. Encoding uses pickle protocol 3, which every
//! Python 3 reads; decoding reads the protocols Python writes by default (4 and 5) too.
//!
//! ```
//! use conveyor_core::{Codec, Pickle};
//!
//! let mut buf = Vec::new();
//! Pickle.encode(&(1, "two", vec![3.0]), &mut buf).unwrap();
//! let got: (i64, String, Vec<f64>) = Pickle.decode(&buf).unwrap();
//! assert_eq!(got, (1, "two".to_string(), vec![3.0]));
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Codec, CodecError};

pub use serde_pickle::{HashableValue, Value};

/// The pickle codec (see the [module](self) documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pickle;

impl Pickle {
    /// Encodes a dynamic [`Value`] (which serde-pickle encodes itself rather than through
    /// serde, so tuples stay tuples).
    pub fn encode_value(&self, value: &Value) -> Result<Vec<u8>, CodecError> {
        serde_pickle::value_to_vec(value, serde_pickle::SerOptions::new())
            .map_err(|e| CodecError::new(Self::NAME, e.to_string()))
    }

    /// Decodes any pickled object as a dynamic [`Value`], keeping tuples apart from lists
    /// (`decode::<Value>()` goes through serde, which turns tuples into lists).
    pub fn decode_value(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        serde_pickle::value_from_slice(bytes, serde_pickle::DeOptions::new())
            .map_err(|e| CodecError::new(Self::NAME, e.to_string()))
    }
}

impl Codec for Pickle {
    const NAME: &'static str = "pickle";

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        // What serde_pickle::to_writer does, for an unsized value: the PROTO 3 opcode, the
        // value, the STOP opcode.
        out.extend_from_slice(&[0x80, 3]);
        let mut ser = serde_pickle::Serializer::new(&mut *out, serde_pickle::SerOptions::new());
        value
            .serialize(&mut ser)
            .map_err(|e| CodecError::new(Self::NAME, e.to_string()))?;
        out.push(b'.');
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_pickle::from_slice(bytes, serde_pickle::DeOptions::new())
            .map_err(|e| CodecError::new(Self::NAME, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_values_round_trip() {
        let v = Value::List(vec![
            Value::I64(1),
            Value::String("a".into()),
            Value::Bytes(vec![0, 255]),
            Value::Tuple(vec![Value::None, Value::Bool(true)]),
        ]);
        let buf = Pickle.encode_value(&v).unwrap();
        assert_eq!(Pickle.decode_value(&buf).unwrap(), v);
    }

    #[test]
    fn encoding_matches_serde_pickle_to_vec() {
        let v = (1u8, "two", [3.5f64]);
        let mut buf = vec![9];
        Pickle.encode(&v, &mut buf).unwrap();
        let want = serde_pickle::to_vec(&v, serde_pickle::SerOptions::new()).unwrap();
        assert_eq!(&buf[1..], &want[..]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Pickle.decode::<Value>(b"not a pickle").is_err());
        assert!(Pickle.decode::<Value>(&[]).is_err());
    }
}
