//! The message every workload sends: a sequence number and a byte payload.
//!
//! The payload is shared ([`Arc`]) so that an in-process transport moves a pointer, as Python's
//! `queue.Queue` moves a reference, and a process transport encodes the bytes once. It goes
//! through `serde_bytes`, so a codec writes a length and the raw bytes, with no per-byte cost.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A byte payload, cheap to clone, serialized as raw bytes through `serde_bytes`.
///
/// ```
/// use conveyor_bench::Payload;
/// use conveyor_core::{Codec, Postcard};
///
/// let p = Payload::filled(4096);
/// let mut buf = Vec::new();
/// Postcard.encode(&p, &mut buf).unwrap();
/// assert_eq!(buf.len(), 4096 + 2); // a varint length, then the bytes
/// let back: Payload = Postcard.decode(&buf).unwrap();
/// assert_eq!(back.len(), 4096);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Arc<Vec<u8>>);

impl Payload {
    /// A payload of `size` bytes with a recognisable pattern.
    pub fn filled(size: usize) -> Self {
        Payload(Arc::new((0..size).map(|i| (i % 251) as u8).collect()))
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the payload has no byte.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::Bytes::new(&self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let buf = serde_bytes::ByteBuf::deserialize(d)?;
        Ok(Payload(Arc::new(buf.into_vec())))
    }
}

/// One message: a sequence number unique within a run, and the payload.
///
/// Messages order by `seq` alone (so a priority queue compares numbers, not megabytes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Msg {
    /// Unique within a run: `producer * per_producer + i`.
    pub seq: u64,
    /// The bytes carried.
    pub data: Payload,
}

impl Msg {
    /// A message with sequence number `seq` carrying `data`.
    pub fn new(seq: u64, data: Payload) -> Self {
        Msg { seq, data }
    }
}

impl PartialEq for Msg {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}

impl Eq for Msg {}

impl PartialOrd for Msg {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Msg {
    fn cmp(&self, other: &Self) -> Ordering {
        self.seq.cmp(&other.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_core::{Codec, Postcard};

    #[test]
    fn msg_round_trips_through_postcard_compactly() {
        let m = Msg::new(300, Payload::filled(1 << 20));
        let mut buf = Vec::new();
        Postcard.encode(&m, &mut buf).unwrap();
        // seq varint (2 bytes) + length varint (3 bytes) + payload
        assert_eq!(buf.len(), (1 << 20) + 5);
        let back: Msg = Postcard.decode(&buf).unwrap();
        assert_eq!(back.seq, 300);
        assert_eq!(back.data, m.data);
    }

    #[test]
    fn msgs_order_by_seq_only() {
        let a = Msg::new(1, Payload::filled(10));
        let b = Msg::new(2, Payload::filled(1));
        assert!(a < b);
        assert_eq!(a, Msg::new(1, Payload::filled(3)));
    }
}
