//! Feeds arbitrary bytes to the frame decoder, both as a buffer and through a real connection:
//! it must never panic, allocate more than the limit, or report a payload it does not hold.
#![no_main]

use std::io::Write;
use std::os::unix::net::UnixStream;

use conveyor_pipe::frame::{decode_frame, Decoded};
use conveyor_pipe::Connection;
use libfuzzer_sys::fuzz_target;

const MAX: u64 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Decoded::Frame { payload, consumed }) = decode_frame(rest, MAX) {
        assert!(payload.end == consumed && consumed <= rest.len());
        assert!(payload.len() as u64 <= MAX);
        rest = &rest[consumed..];
        if consumed == 0 {
            break;
        }
    }
    // The same bytes through a connection: each receive ends in a message or an error.
    if data.len() <= 100_000 {
        let (mut raw, theirs) = UnixStream::pair().unwrap();
        let conn = Connection::from_fd(theirs.into()).unwrap();
        conn.set_max_message_size(MAX);
        raw.write_all(data).unwrap();
        drop(raw);
        while conn.recv_bytes().is_ok() {}
    }
});
