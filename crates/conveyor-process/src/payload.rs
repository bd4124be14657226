//! The launch payload: what a parent hands a child so that it knows which entry point to run,
//! with which arguments and descriptors.
//!
//! The parent writes the payload into an anonymous memory file (`memfd`) and seals it against
//! any further change, so arguments of any size are ready before the child starts, nobody
//! blocks writing them, and the child maps the file and decodes the arguments in place:
//!
//! ```text
//! "CVP1" | header length: u32 LE | header (postcard) | the entry's arguments (postcard)
//! ```
//!
//! The child learns where the payload and the status pipe are from one environment variable,
//! [`ENV_VAR`] = `"<payload fd>:<status fd>"`, which it removes at once so that its own
//! children never see it.

use std::os::fd::RawFd;

use conveyor_core::{Codec, Postcard};
use serde::{Deserialize, Serialize};

/// The environment variable that tells a process it was started as a conveyor child.
pub(crate) const ENV_VAR: &str = "CONVEYOR_PROCESS_LAUNCH";
/// The name the payload's memory file carries (visible in `/proc/<pid>/fd`).
pub(crate) const MEMFD_NAME: &std::ffi::CStr = c"conveyor-launch";
const MAGIC: &[u8; 4] = b"CVP1";

/// What the child needs to know besides its arguments.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Header {
    /// The entry point to run.
    pub entry: String,
    /// The process's name (`Process-3` unless given).
    pub name: String,
    /// Whether the child is a daemon.
    pub daemon: bool,
    /// The inherited descriptors, in handoff index order.
    pub fds: Vec<RawFd>,
}

/// Encodes what precedes the arguments in a payload: the magic, the header's length, the header.
pub(crate) fn encode_prefix(header: &Header) -> Vec<u8> {
    let mut head = Vec::new();
    Postcard
        .encode(header, &mut head)
        .expect("a header of strings and numbers always encodes");
    let mut out = Vec::with_capacity(8 + head.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    out
}

/// Splits a payload into its header and the argument bytes.
pub(crate) fn decode_payload(bytes: &[u8]) -> Result<(Header, &[u8]), String> {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(
            "the payload does not start with the conveyor launch magic: parent and \
                    child are different versions of conveyor-process"
                .into(),
        );
    }
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    let rest = &bytes[8..];
    if rest.len() < len {
        return Err(format!(
            "the payload's header claims {len} bytes but only {} follow",
            rest.len()
        ));
    }
    let header = Postcard.decode(&rest[..len]).map_err(|e| e.to_string())?;
    Ok((header, &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let h = Header {
            entry: "worker".into(),
            name: "Process-1".into(),
            daemon: true,
            fds: vec![5, 9],
        };
        let mut bytes = encode_prefix(&h);
        bytes.extend_from_slice(&[1, 2, 3]);
        let (back, args) = decode_payload(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(args, &[1, 2, 3]);
    }

    #[test]
    fn damaged_payloads_are_errors() {
        assert!(decode_payload(b"").is_err());
        assert!(decode_payload(b"XXXX\0\0\0\0").is_err());
        assert!(decode_payload(b"CVP1\xff\0\0\0abc").is_err());
    }
}
