//! [`Pickle`]: a codec speaking Python's pickle, so that [`Connection::send`] and
//! [`Connection::recv`] exchange objects with Python's `Connection.send`/`recv`
//! (feature `pickle`, on by default).
//!
//! [`Connection::send`]: crate::Connection::send
//! [`Connection::recv`]: crate::Connection::recv
//! [`Connection::send_value`]: crate::Connection::send_value
//! [`Connection::recv_value`]: crate::Connection::recv_value
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
//! | [`Value`] ([`Connection::send_value`], [`Connection::recv_value`]) | any of the above, decided at run time |
//!
//! Objects of other Python classes do not decode (pickle would call their constructors, which
//! a Rust peer cannot do); send plain data. Encoding uses pickle protocol 3, which every
//! Python 3 reads; decoding reads the protocols Python writes by default (4 and 5) too.
//!
//! ```
//! use conveyor_pipe::{pipe, Pickle};
//!
//! let (a, b) = pipe().unwrap();
//! let (a, b) = (a.with_codec(Pickle), b.with_codec(Pickle));
//! a.send(&(1, "two", vec![3.0])).unwrap();
//! let got: (i64, String, Vec<f64>) = b.recv().unwrap();
//! assert_eq!(got, (1, "two".to_string(), vec![3.0]));
//! ```

use conveyor_core::GetError;

use crate::{Connection, SendError};

/// The workspace's one pickle codec, defined in conveyor-core (feature `pickle`).
pub use conveyor_core::pickle::{HashableValue, Pickle, Value};

impl Connection<Pickle> {
    /// Sends a dynamic [`Value`] (which serde-pickle encodes itself rather than through serde).
    ///
    /// ```
    /// use conveyor_pipe::pickle::Value;
    /// use conveyor_pipe::{pipe, Pickle};
    ///
    /// let (a, b) = pipe().unwrap();
    /// let (a, b) = (a.with_codec(Pickle), b.with_codec(Pickle));
    /// let v = Value::Tuple(vec![Value::I64(1), Value::None]);
    /// a.send_value(&v).unwrap();
    /// assert_eq!(b.recv_value().unwrap(), v);
    /// ```
    pub fn send_value(&self, value: &Value) -> Result<(), SendError> {
        let bytes = Pickle.encode_value(value).map_err(SendError::Codec)?;
        self.send_bytes(&bytes)
    }

    /// Receives any pickled object as a dynamic [`Value`], keeping tuples apart from lists
    /// (`recv::<Value>()` goes through serde, which turns tuples into lists).
    pub fn recv_value(&self) -> Result<Value, GetError> {
        let bytes = self.recv_bytes()?;
        Pickle.decode_value(&bytes).map_err(GetError::Codec)
    }
}
