//! Numbers the server can do arithmetic on, under its own lock.
//!
//! The server stores every value as opaque bytes. For an atomic `fetch_add` it must know the
//! type, so the operand travels as a [`Num`] whose variant names it; the server decodes the
//! stored bytes as that type (a missing dict key counts as zero), applies the [`NumOp`] and
//! stores the result, all while holding the object's lock. An integer result that would not fit
//! its type is refused with an [`Overflow`](crate::ErrorKind::Overflow) error and the stored
//! value is left as it was (Python's integers never wrap, so a wrapped count would be a wrong
//! answer given as a right one); floats follow IEEE 754.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use conveyor_core::{Codec, Postcard};

use crate::error::{ErrorKind, RemoteError};

/// A number of a named primitive type, as it travels on the wire.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Num {
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
}

/// The arithmetic a server applies atomically.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumOp {
    /// `stored + operand` (an integer overflow is an error).
    Add,
    /// `stored - operand` (an integer overflow is an error).
    Sub,
    /// `stored * operand` (an integer overflow is an error).
    Mul,
    /// The smaller of the two.
    Min,
    /// The larger of the two.
    Max,
}

mod sealed {
    pub trait Sealed {}
}

/// A primitive number that proxies can do server-side arithmetic on (`fetch_add` and friends).
///
/// Implemented for every integer type up to 64 bits, `isize`/`usize` (which travel as 64-bit
/// numbers) and the two float types; sealed.
pub trait Number:
    Copy + Serialize + DeserializeOwned + Send + Sync + 'static + sealed::Sealed
{
    /// The number as it travels.
    fn to_num(self) -> Num;
    /// The number back from the wire, if it has this type and fits.
    fn from_num(n: Num) -> Option<Self>;
}

macro_rules! number {
    ($($t:ty => $v:ident as $wire:ty),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Number for $t {
            #[inline]
            fn to_num(self) -> Num {
                Num::$v(self as $wire)
            }
            #[inline]
            fn from_num(n: Num) -> Option<Self> {
                match n {
                    Num::$v(x) => <$t>::try_from(x).ok(),
                    _ => None,
                }
            }
        }
    )*};
}

number!(
    i8 => I8 as i8, i16 => I16 as i16, i32 => I32 as i32, i64 => I64 as i64,
    u8 => U8 as u8, u16 => U16 as u16, u32 => U32 as u32, u64 => U64 as u64,
    isize => I64 as i64, usize => U64 as u64,
);

impl sealed::Sealed for f32 {}
impl Number for f32 {
    fn to_num(self) -> Num {
        Num::F32(self)
    }
    fn from_num(n: Num) -> Option<Self> {
        match n {
            Num::F32(x) => Some(x),
            _ => None,
        }
    }
}

impl sealed::Sealed for f64 {}
impl Number for f64 {
    fn to_num(self) -> Num {
        Num::F64(self)
    }
    fn from_num(n: Num) -> Option<Self> {
        match n {
            Num::F64(x) => Some(x),
            _ => None,
        }
    }
}

trait Arith: Copy + Default + Serialize + DeserializeOwned {
    const NAME: &'static str;
    /// The result, or `None` where an integer would overflow.
    fn apply(self, op: NumOp, rhs: Self) -> Option<Self>;
}

macro_rules! int_arith {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            const NAME: &'static str = stringify!($t);
            #[inline]
            fn apply(self, op: NumOp, rhs: Self) -> Option<Self> {
                match op {
                    NumOp::Add => self.checked_add(rhs),
                    NumOp::Sub => self.checked_sub(rhs),
                    NumOp::Mul => self.checked_mul(rhs),
                    NumOp::Min => Some(self.min(rhs)),
                    NumOp::Max => Some(self.max(rhs)),
                }
            }
        }
    )*};
}
int_arith!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_arith {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            const NAME: &'static str = stringify!($t);
            #[inline]
            fn apply(self, op: NumOp, rhs: Self) -> Option<Self> {
                Some(match op {
                    NumOp::Add => self + rhs,
                    NumOp::Sub => self - rhs,
                    NumOp::Mul => self * rhs,
                    NumOp::Min => self.min(rhs),
                    NumOp::Max => self.max(rhs),
                })
            }
        }
    )*};
}
float_arith!(f32, f64);

fn step<T: Arith>(
    stored: Option<&[u8]>,
    op: NumOp,
    rhs: T,
    out: &mut Vec<u8>,
) -> Result<T, RemoteError> {
    let cur: T = match stored {
        None => T::default(),
        Some(bytes) => Postcard.decode(bytes).map_err(|_| {
            RemoteError::new(
                ErrorKind::WrongType,
                format!(
                    "the stored value is not a {}: use the number type it was stored with",
                    T::NAME
                ),
            )
        })?,
    };
    let new = cur.apply(op, rhs).ok_or_else(|| {
        RemoteError::new(
            ErrorKind::Overflow,
            format!(
                "{op:?} would take the stored {} past its range; the value is unchanged",
                T::NAME
            ),
        )
    })?;
    out.clear();
    Postcard
        .encode(&new, out)
        .map_err(|e| RemoteError::new(ErrorKind::Internal, e.to_string()))?;
    Ok(cur)
}

/// Applies `op` with `operand` to the encoded number `stored` (absent: zero), writing the new
/// encoding to `out` and answering the previous value.
pub(crate) fn apply(
    stored: Option<&[u8]>,
    op: NumOp,
    operand: Num,
    out: &mut Vec<u8>,
) -> Result<Num, RemoteError> {
    Ok(match operand {
        Num::I8(x) => Num::I8(step(stored, op, x, out)?),
        Num::I16(x) => Num::I16(step(stored, op, x, out)?),
        Num::I32(x) => Num::I32(step(stored, op, x, out)?),
        Num::I64(x) => Num::I64(step(stored, op, x, out)?),
        Num::U8(x) => Num::U8(step(stored, op, x, out)?),
        Num::U16(x) => Num::U16(step(stored, op, x, out)?),
        Num::U32(x) => Num::U32(step(stored, op, x, out)?),
        Num::U64(x) => Num::U64(step(stored, op, x, out)?),
        Num::F32(x) => Num::F32(step(stored, op, x, out)?),
        Num::F64(x) => Num::F64(step(stored, op, x, out)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<T: Serialize>(v: T) -> Vec<u8> {
        let mut b = Vec::new();
        Postcard.encode(&v, &mut b).unwrap();
        b
    }

    #[test]
    fn add_to_missing_counts_from_zero() {
        let mut out = Vec::new();
        let old = apply(None, NumOp::Add, Num::I64(5), &mut out).unwrap();
        assert_eq!(old, Num::I64(0));
        assert_eq!(Postcard.decode::<i64>(&out).unwrap(), 5);
    }

    #[test]
    fn integer_overflow_is_an_error() {
        let mut out = Vec::new();
        let err = apply(Some(&enc(u8::MAX)), NumOp::Add, Num::U8(2), &mut out).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Overflow);
        let err = apply(Some(&enc(0u64)), NumOp::Sub, Num::U64(1), &mut out).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Overflow);
        let err = apply(Some(&enc(i64::MIN)), NumOp::Mul, Num::I64(-1), &mut out).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Overflow);
        apply(Some(&enc(u8::MAX - 2)), NumOp::Add, Num::U8(2), &mut out).unwrap();
        assert_eq!(Postcard.decode::<u8>(&out).unwrap(), u8::MAX);
    }

    #[test]
    fn floats_and_min_max() {
        let mut out = Vec::new();
        apply(Some(&enc(1.5f64)), NumOp::Mul, Num::F64(2.0), &mut out).unwrap();
        assert_eq!(Postcard.decode::<f64>(&out).unwrap(), 3.0);
        apply(Some(&enc(-4i32)), NumOp::Max, Num::I32(7), &mut out).unwrap();
        assert_eq!(Postcard.decode::<i32>(&out).unwrap(), 7);
    }

    #[test]
    fn wrong_stored_type_is_an_error() {
        let mut out = Vec::new();
        let err = apply(Some(b"\xff"), NumOp::Add, Num::I64(1), &mut out).unwrap_err();
        assert_eq!(err.kind, ErrorKind::WrongType);
    }

    #[test]
    fn usize_round_trips_as_u64() {
        assert_eq!(usize::from_num(7usize.to_num()), Some(7));
        assert_eq!(i32::from_num(Num::I64(1)), None);
    }
}
