//! The authkey handshake: each side proves it knows the key without sending it.
//!
//! This is the challenge of CPython's `multiprocessing.connection` in its `{sha256}` form
//! (Python 3.12 and later), run in both directions over the connection's frames:
//!
//! 1. the server sends `#CHALLENGE#{sha256}` followed by 40 random bytes;
//! 2. the client answers `{sha256}` followed by HMAC-SHA256(authkey, everything after
//!    `#CHALLENGE#`);
//! 3. the server answers `#WELCOME#` or `#FAILURE#`;
//! 4. then the same with the roles swapped, so the client knows the server is genuine.

use std::io;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ManagerError;
use crate::transport::{RecvError, Transport};

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
const DIGEST: &[u8] = b"{sha256}";
const NONCE_LEN: usize = 40;
/// The longest handshake message either side accepts (as CPython's 256).
const MAX_MESSAGE: usize = 256;

fn mac(key: &[u8], message: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any size");
    m.update(message);
    m
}

/// Random bytes from the kernel.
pub(crate) fn random_bytes(n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        // SAFETY: getrandom writes at most `n - filled` bytes into the buffer from `filled`,
        // which is inside `buf`.
        let r = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), n - filled, 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += r as usize;
    }
    Ok(buf)
}

fn recv(t: &mut dyn Transport, buf: &mut Vec<u8>) -> Result<(), ManagerError> {
    t.recv(buf, MAX_MESSAGE).map_err(|e| match e {
        RecvError::TooLarge { .. } | RecvError::Malformed(_) => ManagerError::Auth(format!(
            "the peer sent an unexpected handshake message: {e}"
        )),
        other => ManagerError::Io(other.into()),
    })
}

fn send(t: &mut dyn Transport, msg: &[u8]) -> Result<(), ManagerError> {
    t.send(msg)?;
    t.flush()?;
    Ok(())
}

/// Challenges the peer to prove it knows `key`.
fn deliver_challenge(t: &mut dyn Transport, key: &[u8]) -> Result<(), ManagerError> {
    let mut message = DIGEST.to_vec();
    message.extend_from_slice(&random_bytes(NONCE_LEN)?);
    let mut frame = CHALLENGE.to_vec();
    frame.extend_from_slice(&message);
    send(t, &frame)?;
    let mut response = Vec::new();
    recv(t, &mut response)?;
    let good = response
        .strip_prefix(DIGEST)
        .is_some_and(|tag| mac(key, &message).verify_slice(tag).is_ok());
    if good {
        send(t, WELCOME)
    } else {
        let _ = send(t, FAILURE);
        Err(ManagerError::Auth(
            "the peer's answer to the challenge is wrong".into(),
        ))
    }
}

/// Answers the peer's challenge with `key`.
fn answer_challenge(t: &mut dyn Transport, key: &[u8]) -> Result<(), ManagerError> {
    let mut frame = Vec::new();
    recv(t, &mut frame)?;
    let Some(message) = frame.strip_prefix(CHALLENGE) else {
        return Err(ManagerError::Auth(
            "the peer did not start with a challenge: is it a manager?".into(),
        ));
    };
    if !message.starts_with(DIGEST) {
        return Err(ManagerError::Auth(
            "the peer asked for a digest other than sha256".into(),
        ));
    }
    let mut response = DIGEST.to_vec();
    response.extend_from_slice(&mac(key, message).finalize().into_bytes());
    send(t, &response)?;
    let mut verdict = Vec::new();
    recv(t, &mut verdict)?;
    if verdict == WELCOME {
        Ok(())
    } else {
        Err(ManagerError::Auth("the peer refused our authkey".into()))
    }
}

/// The server's half: challenge, then answer.
pub(crate) fn server(t: &mut dyn Transport, key: &[u8]) -> Result<(), ManagerError> {
    deliver_challenge(t, key)?;
    answer_challenge(t, key)
}

/// The client's half: answer, then challenge.
pub(crate) fn client(t: &mut dyn Transport, key: &[u8]) -> Result<(), ManagerError> {
    answer_challenge(t, key)?;
    deliver_challenge(t, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::StreamTransport;
    use std::os::unix::net::UnixStream;

    fn run(server_key: &'static [u8], client_key: &'static [u8]) -> (bool, bool) {
        let (a, b) = UnixStream::pair().unwrap();
        let h = std::thread::spawn(move || {
            let mut t = StreamTransport::new(a);
            server(&mut t, server_key).is_ok()
        });
        let mut t = StreamTransport::new(b);
        let c = client(&mut t, client_key).is_ok();
        drop(t);
        (h.join().unwrap(), c)
    }

    #[test]
    fn same_key_passes() {
        assert_eq!(run(b"secret", b"secret"), (true, true));
    }

    #[test]
    fn wrong_key_fails_both_sides() {
        assert_eq!(run(b"secret", b"guess"), (false, false));
    }
}
