//! What the two model checks of [`Proto`] (`crash_model` and `loom_ring`) build alike: the
//! protocol over a model's nine words, closed flag and bytes; the split of a byte range into
//! the 8-byte units a model's bytes are kept or killed by; and the encoder of a put in place.

use std::ops::Range;

use super::*;

/// The protocol over a model ring: `w` in the order tail, head cache, unfinished,
/// journal, journal tail, journal unfinished, head, tail cache, taking; `cap_units` units of
/// 8 bytes; records up to half the ring (header included) inline.
pub(super) fn model_proto<'a, W, C, B>(
    w: &'a [W; 9],
    closed: &'a C,
    bytes: &'a B,
    cap_units: u64,
    max_items: u64,
) -> Proto<'a, W, C, B> {
    Proto {
        w: Words {
            tail: &w[0],
            head_cache: &w[1],
            unfinished: &w[2],
            journal: &w[3],
            j_tail: &w[4],
            j_unfinished: &w[5],
            head: &w[6],
            tail_cache: &w[7],
            taking: &w[8],
            closed,
        },
        bytes,
        cap_units,
        max_items,
        inline_max: (cap_units * 8 / 2 - REC_HDR) as usize,
    }
}

/// The `len` bytes at ring offset `off`, cut where an 8-byte unit ends: for each piece, its
/// ring offset and its range within the `len` bytes, in order.
pub(super) fn unit_pieces(off: u64, len: usize) -> impl Iterator<Item = (usize, Range<usize>)> {
    let off = off as usize;
    let mut done = 0;
    std::iter::from_fn(move || {
        (done < len).then(|| {
            let at = off + done;
            let n = (len - done).min(8 - at % 8);
            done += n;
            (at, done - n..done)
        })
    })
}

/// The encoder of a put in place that copies `payload`, or asks for the general path when
/// the room it is lent is too small.
pub(super) fn copy_encoder(
    payload: &[u8],
) -> impl FnOnce(&mut [u8]) -> Result<Option<usize>, ()> + '_ {
    move |slice: &mut [u8]| {
        Ok((payload.len() <= slice.len()).then(|| {
            slice[..payload.len()].copy_from_slice(payload);
            payload.len()
        }))
    }
}
