//! The frame format of CPython's `multiprocessing.connection`, byte for byte.
//!
//! Every message is a length prefix followed by the payload:
//!
//! | payload length `n`        | header                                               |
//! |---------------------------|------------------------------------------------------|
//! | `n <= 2^31 - 1`           | `n` as a 4-byte big-endian signed integer            |
//! | `n >  2^31 - 1`           | `-1` as a 4-byte big-endian signed integer, then `n` as an 8-byte big-endian unsigned integer |
//!
//! A 4-byte length that is negative but not `-1` is malformed. A length of `-1` followed by a
//! small 8-byte length is accepted (CPython accepts it too), though CPython never writes one.
//!
//! The functions here are pure (no I/O), so the decoder can be fuzzed and property-tested on
//! its own; [`Connection`](crate::Connection) drives them over a file descriptor.
//!
//! ```
//! use conveyor_pipe::frame::{decode_frame, encode_header, Decoded};
//!
//! let (header, len) = encode_header(5);
//! let mut wire = header[..len].to_vec();
//! wire.extend_from_slice(b"hello");
//! match decode_frame(&wire, 1024).unwrap() {
//!     Decoded::Frame { payload, consumed } => {
//!         assert_eq!(&wire[payload], b"hello");
//!         assert_eq!(consumed, wire.len());
//!     }
//!     Decoded::Incomplete { .. } => unreachable!(),
//! }
//! ```

use std::ops::Range;

/// The largest payload that fits the short, 4-byte header (`2^31 - 1`, as in CPython).
pub const SHORT_MAX: u64 = i32::MAX as u64;

/// The longest header: 4 bytes of `-1` then an 8-byte length.
pub const MAX_HEADER_LEN: usize = 12;

/// Encodes the header for a payload of `len` bytes; returns the buffer and how much of it is
/// used (4 or 12 bytes).
///
/// ```
/// use conveyor_pipe::frame::encode_header;
///
/// assert_eq!(encode_header(1), ([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], 4));
/// let (h, n) = encode_header(1 << 31);
/// assert_eq!(&h[..n], &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0x80, 0, 0, 0]);
/// ```
#[inline]
pub fn encode_header(len: u64) -> ([u8; MAX_HEADER_LEN], usize) {
    let mut h = [0u8; MAX_HEADER_LEN];
    if len <= SHORT_MAX {
        h[..4].copy_from_slice(&(len as i32).to_be_bytes());
        (h, 4)
    } else {
        h[..4].copy_from_slice(&(-1i32).to_be_bytes());
        h[4..].copy_from_slice(&len.to_be_bytes());
        (h, MAX_HEADER_LEN)
    }
}

/// Why a header is malformed or refused.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The 4-byte length is negative and not `-1`: the peer does not speak this protocol.
    #[error(
        "malformed frame header: length {0} is negative (is the peer a multiprocessing.connection?)"
    )]
    NegativeLength(i32),
    /// The announced payload is larger than this end accepts.
    #[error("the peer announced a {size}-byte message, more than the {max} bytes this connection accepts")]
    TooLarge {
        /// The announced payload length.
        size: u64,
        /// The configured maximum.
        max: u64,
    },
}

/// What [`decode_header`] found at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// More bytes are needed: at least `need` in all, counting those already there.
    Incomplete {
        /// How many bytes the header needs in total so far (4, or 12 after a `-1`).
        need: usize,
    },
    /// A whole header.
    Complete {
        /// The payload length it announces (already checked against the maximum).
        len: u64,
        /// How many bytes the header took (4 or 12).
        header_len: usize,
    },
}

/// Decodes the header at the front of `buf`, refusing a payload longer than `max`.
///
/// Nothing is allocated; a refused length is reported before any payload is looked at.
///
/// ```
/// use conveyor_pipe::frame::{decode_header, FrameError, Header};
///
/// assert_eq!(decode_header(&[0, 0], 10), Ok(Header::Incomplete { need: 4 }));
/// assert_eq!(decode_header(&[0, 0, 0, 3], 10), Ok(Header::Complete { len: 3, header_len: 4 }));
/// assert_eq!(decode_header(&[0xFF; 4], 10), Ok(Header::Incomplete { need: 12 }));
/// assert_eq!(
///     decode_header(&[0, 0, 0, 11], 10),
///     Err(FrameError::TooLarge { size: 11, max: 10 })
/// );
/// ```
#[inline]
pub fn decode_header(buf: &[u8], max: u64) -> Result<Header, FrameError> {
    let Some(short) = buf.get(..4) else {
        return Ok(Header::Incomplete { need: 4 });
    };
    let short = i32::from_be_bytes([short[0], short[1], short[2], short[3]]);
    let (len, header_len) = match short {
        -1 => {
            let Some(long) = buf.get(4..MAX_HEADER_LEN) else {
                return Ok(Header::Incomplete {
                    need: MAX_HEADER_LEN,
                });
            };
            let mut b = [0u8; 8];
            b.copy_from_slice(long);
            (u64::from_be_bytes(b), MAX_HEADER_LEN)
        }
        n if n < 0 => return Err(FrameError::NegativeLength(n)),
        n => (n as u64, 4),
    };
    if len > max {
        return Err(FrameError::TooLarge { size: len, max });
    }
    Ok(Header::Complete { len, header_len })
}

/// What [`decode_frame`] found at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// More bytes are needed: at least `need` in all.
    Incomplete {
        /// The total number of bytes the frame needs, as far as is known yet.
        need: u64,
    },
    /// A whole frame.
    Frame {
        /// Where the payload lies in the buffer.
        payload: Range<usize>,
        /// How many bytes the frame took, header included.
        consumed: usize,
    },
}

/// Decodes one whole frame at the front of `buf`, refusing a payload longer than `max`.
pub fn decode_frame(buf: &[u8], max: u64) -> Result<Decoded, FrameError> {
    match decode_header(buf, max)? {
        Header::Incomplete { need } => Ok(Decoded::Incomplete { need: need as u64 }),
        Header::Complete { len, header_len } => {
            let total = header_len as u64 + len;
            if (buf.len() as u64) < total {
                return Ok(Decoded::Incomplete { need: total });
            }
            // total <= buf.len(), so it fits a usize.
            let end = total as usize;
            Ok(Decoded::Frame {
                payload: header_len..end,
                consumed: end,
            })
        }
    }
}

/// Appends one whole frame (header and payload) to `out`.
///
/// ```
/// use conveyor_pipe::frame::encode_frame;
///
/// let mut out = Vec::new();
/// encode_frame(b"ab", &mut out);
/// assert_eq!(out, [0, 0, 0, 2, b'a', b'b']);
/// ```
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    let (h, n) = encode_header(payload.len() as u64);
    out.reserve(n + payload.len());
    out.extend_from_slice(&h[..n]);
    out.extend_from_slice(payload);
}

conveyor_core::debug_shows_message!(FrameError {
    NegativeLength(len),
    TooLarge { size, max },
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_errors_debug_with_their_message() {
        let e = FrameError::NegativeLength(-3);
        assert_eq!(format!("{e:?}"), format!("{e} (NegativeLength(-3))"));
    }

    #[test]
    fn matches_python_struct_pack() {
        // struct.pack("!i", 300) == b'\x00\x00\x01,'
        assert_eq!(&encode_header(300).0[..4], &[0, 0, 1, 44]);
        // struct.pack("!i", 0x7fffffff)
        assert_eq!(encode_header(SHORT_MAX).1, 4);
        assert_eq!(encode_header(SHORT_MAX + 1).1, 12);
    }

    #[test]
    fn negative_lengths_other_than_minus_one_are_malformed() {
        assert_eq!(
            decode_header(&(-2i32).to_be_bytes(), u64::MAX),
            Err(FrameError::NegativeLength(-2))
        );
    }

    #[test]
    fn minus_one_with_huge_size_is_refused_before_payload() {
        let mut b = (-1i32).to_be_bytes().to_vec();
        b.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            decode_header(&b, 1 << 20),
            Err(FrameError::TooLarge {
                size: u64::MAX,
                max: 1 << 20
            })
        );
    }

    #[test]
    fn minus_one_with_small_size_is_accepted() {
        let mut b = (-1i32).to_be_bytes().to_vec();
        b.extend_from_slice(&2u64.to_be_bytes());
        b.extend_from_slice(b"hi");
        assert_eq!(
            decode_frame(&b, 10),
            Ok(Decoded::Frame {
                payload: 12..14,
                consumed: 14
            })
        );
    }

    #[test]
    fn partial_payload_is_incomplete() {
        assert_eq!(
            decode_frame(&[0, 0, 0, 5, 1, 2], 10),
            Ok(Decoded::Incomplete { need: 9 })
        );
    }
}
