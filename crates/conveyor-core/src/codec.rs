//! Codecs: how items become bytes on the way between processes.
//!
//! Transports that cross a process boundary (shared memory, pipes, the manager) are generic
//! over a [`Codec`]. The default, [`Postcard`], is compact and fast. Byte payloads should be
//! wrapped with `serde_bytes` (or sent with a transport's `put_bytes`/`send_bytes`): serde
//! otherwise encodes a `Vec<u8>` element by element, which costs a call per byte.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CodecError;

/// Turns values into bytes and back.
///
/// Implementations are cheap to clone and carry no per-message state.
///
/// ```
/// use conveyor_core::{Codec, Postcard};
///
/// let mut buf = Vec::new();
/// Postcard.encode(&(1u32, "rose"), &mut buf).unwrap();
/// let back: (u32, String) = Postcard.decode(&buf).unwrap();
/// assert_eq!(back, (1, "rose".to_string()));
/// ```
pub trait Codec: Clone + Send + Sync + 'static {
    /// A short name used in error messages (`"postcard"`).
    const NAME: &'static str;

    /// Appends the encoding of `value` to `out`.
    fn encode<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>)
        -> Result<(), CodecError>;

    /// Encodes `value` into the front of `buf` and returns how many bytes it took, or `None`
    /// if `buf` is too small (the caller then falls back to [`encode`](Codec::encode)).
    ///
    /// The default goes through a temporary vector; codecs that can write in place override it.
    fn encode_to_slice<T: Serialize + ?Sized>(
        &self,
        value: &T,
        buf: &mut [u8],
    ) -> Result<Option<usize>, CodecError> {
        let mut tmp = Vec::new();
        self.encode(value, &mut tmp)?;
        if tmp.len() > buf.len() {
            return Ok(None);
        }
        buf[..tmp.len()].copy_from_slice(&tmp);
        Ok(Some(tmp.len()))
    }

    /// Decodes a whole value from `bytes`; trailing bytes are an error.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// The default codec: [postcard](https://docs.rs/postcard), a compact, stable binary format.
///
/// ```
/// use conveyor_core::{Codec, Postcard};
///
/// let mut small = [0u8; 16];
/// let n = Postcard.encode_to_slice(&300u64, &mut small).unwrap().unwrap();
/// assert_eq!(Postcard.decode::<u64>(&small[..n]).unwrap(), 300);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Postcard;

impl Codec for Postcard {
    const NAME: &'static str = "postcard";

    #[inline]
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        // postcard's extend_from_slice flavor appends to any Extend<u8>; going through a
        // taken Vec keeps the bytes already in `out`.
        let taken = std::mem::take(out);
        match postcard::to_extend(value, taken) {
            Ok(v) => {
                *out = v;
                Ok(())
            }
            Err(e) => Err(CodecError::new(Self::NAME, e.to_string())),
        }
    }

    #[inline]
    fn encode_to_slice<T: Serialize + ?Sized>(
        &self,
        value: &T,
        buf: &mut [u8],
    ) -> Result<Option<usize>, CodecError> {
        match postcard::to_slice(value, buf) {
            Ok(used) => Ok(Some(used.len())),
            Err(postcard::Error::SerializeBufferFull) => Ok(None),
            Err(e) => Err(CodecError::new(Self::NAME, e.to_string())),
        }
    }

    #[inline]
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        match postcard::take_from_bytes(bytes) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(CodecError::new(
                Self::NAME,
                format!("{} trailing bytes after the value", rest.len()),
            )),
            Err(e) => Err(CodecError::new(Self::NAME, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_appends() {
        let mut buf = vec![0xAA];
        Postcard.encode(&5u8, &mut buf).unwrap();
        assert_eq!(buf, vec![0xAA, 5]);
    }

    #[test]
    fn slice_too_small_is_none() {
        let mut buf = [0u8; 2];
        let r = Postcard
            .encode_to_slice(&"a longer string", &mut buf)
            .unwrap();
        assert_eq!(r, None);
    }

    #[test]
    fn trailing_bytes_rejected() {
        let err = Postcard.decode::<u8>(&[1, 2]).unwrap_err();
        assert!(err.to_string().contains("trailing"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Postcard.decode::<String>(&[0xFF, 0xFF, 0xFF]).is_err());
        assert!(Postcard.decode::<Vec<u64>>(&[]).is_err());
    }

    #[test]
    fn serde_bytes_is_compact() {
        #[derive(serde::Serialize)]
        struct B<'a>(#[serde(with = "serde_bytes")] &'a [u8]);
        let payload = vec![7u8; 4096];
        let mut buf = Vec::new();
        Postcard.encode(&B(&payload), &mut buf).unwrap();
        // a varint length (2 bytes for 4096) then the raw bytes
        assert_eq!(buf.len(), 4096 + 2);
    }
}
