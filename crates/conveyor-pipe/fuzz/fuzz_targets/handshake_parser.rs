//! Feeds arbitrary bytes to the handshake parsers (challenge, digest prefix, answer check):
//! they must never panic, and a response never verifies under a different key.
#![no_main]

use conveyor_pipe::handshake::{create_response, parse_challenge, split_digest, verify_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (key, msg) = data.split_at(data.len().min(data.first().copied().unwrap_or(0) as usize));
    let _ = split_digest(msg);
    if let Ok(m) = parse_challenge(msg) {
        if let Ok(r) = create_response(key, m) {
            assert!(verify_response(key, m, &r, true).is_ok());
            let mut other = key.to_vec();
            other.push(1);
            assert!(verify_response(&other, m, &r, true).is_err());
        }
    }
    let _ = verify_response(key, msg, msg, true);
    let _ = verify_response(key, msg, msg, false);
});
