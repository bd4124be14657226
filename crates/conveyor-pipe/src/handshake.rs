//! The authkey handshake of CPython's `multiprocessing.connection`, both of its forms.
//!
//! When a listener has an authkey, every new connection is authenticated in both directions
//! before any data passes: the listener challenges the client, then the client challenges the
//! listener. Each challenge is one message and so is each answer and each verdict, framed as
//! every other message (see [`frame`](crate::frame)):
//!
//! ```text
//! challenger                                  answerer
//!   "#CHALLENGE#" + M          ------------>
//!                              <------------  response R (HMAC of M under the authkey)
//!   "#WELCOME#" or "#FAILURE#" ------------>
//! ```
//!
//! | form                      | `M`                               | `R`                         |
//! |---------------------------|-----------------------------------|-----------------------------|
//! | [`ChallengeForm::Sha256`] (Python 3.12+) | `{sha256}` + 40 random bytes | `{sha256}` + HMAC-SHA256(key, M) |
//! | [`ChallengeForm::LegacyMd5`] (Python 3.11 and older) | 20 random bytes | HMAC-MD5(key, M), 16 raw bytes |
//!
//! The two are told apart by length, as CPython does: a 20-byte challenge or a 16-byte answer is
//! the legacy form; anything else must start with `{digest}`. The HMAC covers the whole of `M`,
//! prefix included, so a prefixed challenge cannot be downgraded. Like CPython 3.12, a
//! challenger sending the `{sha256}` form accepts a raw HMAC-MD5 answer computed over the whole
//! of `M` by default, because that is what a Python 3.11 peer sends: that is what lets a 3.11
//! client talk to a 3.12 listener (and to ours). Turn it off with `accept_md5_answers(false)`
//! on the [`ListenerBuilder`](crate::ListenerBuilder) or [`Connector`](crate::Connector) when every
//! peer is new enough.
//!
//! Digests are compared in constant time (`hmac`'s `verify_slice`). Digests computed here:
//! `md5`, `sha256`, `sha384`; a peer asking for `sha3_256` or `sha3_384` (which CPython also
//! allows) gets an [`AuthFailure::UnsupportedDigest`] error.
//!
//! The parsing functions are public and pure so that they can be fuzzed.
//!
//! ```
//! use conveyor_pipe::handshake::{create_response, parse_challenge, verify_response};
//!
//! let message = b"{sha256}0123456789012345678901234567890123456789";
//! let mut wire = b"#CHALLENGE#".to_vec();
//! wire.extend_from_slice(message);
//! let m = parse_challenge(&wire).unwrap();
//! let response = create_response(b"key", m).unwrap();
//! assert!(response.starts_with(b"{sha256}"));
//! assert!(verify_response(b"key", m, &response, true).is_ok());
//! assert!(verify_response(b"other key", m, &response, true).is_err());
//! ```

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use conveyor_core::{Codec, GetError};
use hmac::{Hmac, Mac};

use crate::connection::Connection;
use crate::error::{AuthFailure, AuthenticationError, ConnectError, SendError};

/// Opens every challenge message.
pub const CHALLENGE: &[u8] = b"#CHALLENGE#";
/// The challenger's verdict when the answer was right.
pub const WELCOME: &[u8] = b"#WELCOME#";
/// The challenger's verdict when the answer was wrong.
pub const FAILURE: &[u8] = b"#FAILURE#";
/// Random bytes in a `{sha256}` challenge (CPython 3.12's `MESSAGE_LENGTH`).
pub const MESSAGE_LENGTH: usize = 40;
/// Random bytes in a legacy challenge (CPython 3.11's `MESSAGE_LENGTH`).
pub const LEGACY_MESSAGE_LENGTH: usize = 20;
/// Length of a raw HMAC-MD5 answer.
pub const MD5_DIGEST_LEN: usize = 16;
/// The longest handshake message either side accepts (CPython's `recv_bytes(256)`).
pub const MAX_HANDSHAKE_MESSAGE: u64 = 256;
/// The longest digest name CPython allows (`sha3_256`).
const MAX_DIGEST_NAME_LEN: usize = 8;

/// Which challenge this end sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChallengeForm {
    /// `{sha256}` + 40 random bytes, answered with `{sha256}` + HMAC-SHA256 (Python 3.12+).
    /// Python 3.11 peers answer it with a raw HMAC-MD5, which is accepted unless
    /// `accept_md5_answers(false)` was set.
    #[default]
    Sha256,
    /// 20 random bytes, answered with a raw HMAC-MD5 (Python 3.11 and older, and 3.12+).
    LegacyMd5,
}

/// A digest the handshake can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// HMAC-MD5: the legacy form.
    Md5,
    /// HMAC-SHA256: what CPython 3.12+ sends.
    Sha256,
    /// HMAC-SHA384.
    Sha384,
}

impl Digest {
    /// The name written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Digest::Md5 => "md5",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
        }
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length.
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Digest::Md5 => run::<Hmac<md5::Md5>>(key, message),
            Digest::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
            Digest::Sha384 => run::<Hmac<sha2::Sha384>>(key, message),
        }
    }

    fn verify(self, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
            mac.update(message);
            // verify_slice compares in constant time (and fails on a length mismatch).
            mac.verify_slice(tag).is_ok()
        }
        match self {
            Digest::Md5 => run::<Hmac<md5::Md5>>(key, message, tag),
            Digest::Sha256 => run::<Hmac<sha2::Sha256>>(key, message, tag),
            Digest::Sha384 => run::<Hmac<sha2::Sha384>>(key, message, tag),
        }
    }

    fn output_len(self) -> usize {
        match self {
            Digest::Md5 => 16,
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
        }
    }
}

fn protocol(detail: impl Into<String>) -> AuthenticationError {
    AuthenticationError::new(AuthFailure::Protocol, detail)
}

/// Splits a challenge payload or an answer into its digest and the rest, as CPython's
/// `_get_digest_name_and_payload`: a message of 16 or 20 bytes is the legacy, unprefixed form
/// (`None`); anything else must start with `{name}` naming an allowed digest.
pub fn split_digest(message: &[u8]) -> Result<(Option<Digest>, &[u8]), AuthenticationError> {
    if message.len() == LEGACY_MESSAGE_LENGTH || message.len() == MD5_DIGEST_LEN {
        return Ok((None, message));
    }
    let close = message
        .iter()
        .take(MAX_DIGEST_NAME_LEN + 2)
        .skip(1)
        .position(|&b| b == b'}')
        .map(|p| p + 1);
    if let (Some(b'{'), Some(close)) = (message.first(), close) {
        let name = &message[1..close];
        let rest = &message[close + 1..];
        let digest = match name {
            b"md5" => Some(Digest::Md5),
            b"sha256" => Some(Digest::Sha256),
            b"sha384" => Some(Digest::Sha384),
            b"sha3_256" | b"sha3_384" => None,
            _ => {
                return Err(protocol(format!(
                    "unknown digest {:?} in a handshake message",
                    String::from_utf8_lossy(name)
                )))
            }
        };
        return match digest {
            Some(d) => Ok((Some(d), rest)),
            None => Err(AuthenticationError::new(
                AuthFailure::UnsupportedDigest,
                format!(
                    "the peer uses the {} digest, which this end does not compute",
                    String::from_utf8_lossy(name)
                ),
            )),
        };
    }
    Err(protocol(format!(
        "unsupported message length ({} bytes) or missing {{digest}} prefix in a handshake message",
        message.len()
    )))
}

/// Checks that `frame` is a challenge and returns the message to answer (without
/// `#CHALLENGE#`).
pub fn parse_challenge(frame: &[u8]) -> Result<&[u8], AuthenticationError> {
    let Some(message) = frame.strip_prefix(CHALLENGE) else {
        return Err(protocol(
            "expected a #CHALLENGE# message: the peer is not an authenticating \
             multiprocessing.connection listener, or it expects no authkey",
        ));
    };
    if message.len() < LEGACY_MESSAGE_LENGTH {
        return Err(protocol(format!(
            "challenge too short: {} bytes",
            message.len()
        )));
    }
    Ok(message)
}

/// The answer to challenge `message`, as CPython's `_create_response`: a raw HMAC-MD5 for a
/// legacy challenge, `{name}` + HMAC-name otherwise.
pub fn create_response(authkey: &[u8], message: &[u8]) -> Result<Vec<u8>, AuthenticationError> {
    match split_digest(message)?.0 {
        None => Ok(Digest::Md5.mac(authkey, message)),
        Some(d) => {
            let mut out = format!("{{{}}}", d.name()).into_bytes();
            out.extend_from_slice(&d.mac(authkey, message));
            Ok(out)
        }
    }
}

/// Checks `response` to challenge `message`, as CPython's `_verify_challenge`. A raw (legacy)
/// answer is HMAC-MD5 and is accepted only with `accept_md5` (or when `message` itself is a
/// legacy challenge).
pub fn verify_response(
    authkey: &[u8],
    message: &[u8],
    response: &[u8],
    accept_md5: bool,
) -> Result<(), AuthenticationError> {
    let (digest, mac) = split_digest(response)?;
    let legacy_challenge = message.len() == LEGACY_MESSAGE_LENGTH;
    let digest = match digest {
        None if accept_md5 || legacy_challenge => Digest::Md5,
        Some(Digest::Md5) if !(accept_md5 || legacy_challenge) => {
            return Err(AuthenticationError::new(
                AuthFailure::UnsupportedDigest,
                "the peer answered with HMAC-MD5, which this end does not accept",
            ))
        }
        None => {
            return Err(AuthenticationError::new(
                AuthFailure::UnsupportedDigest,
                "the peer answered with a raw HMAC-MD5 (Python 3.11 or older), which this end \
                 does not accept: enable accept_md5_answers",
            ))
        }
        Some(d) => d,
    };
    if mac.len() != digest.output_len() {
        return Err(protocol(format!(
            "expected a {}-byte {} digest, got {} bytes",
            digest.output_len(),
            digest.name(),
            mac.len()
        )));
    }
    if digest.verify(authkey, message, mac) {
        Ok(())
    } else {
        Err(AuthenticationError::new(
            AuthFailure::WrongDigest,
            "the digest received was wrong",
        ))
    }
}

/// A fresh challenge message (without `#CHALLENGE#`) of the given form.
pub fn new_challenge(form: ChallengeForm) -> io::Result<Vec<u8>> {
    let (mut out, n) = match form {
        ChallengeForm::Sha256 => (b"{sha256}".to_vec(), MESSAGE_LENGTH),
        ChallengeForm::LegacyMd5 => (Vec::new(), LEGACY_MESSAGE_LENGTH),
    };
    let start = out.len();
    out.resize(start + n, 0);
    random_bytes(&mut out[start..])?;
    Ok(out)
}

fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// Options one side of the handshake needs.
#[derive(Debug, Clone)]
pub(crate) struct AuthOptions {
    pub authkey: Vec<u8>,
    pub form: ChallengeForm,
    pub accept_md5: bool,
    pub timeout: Option<Duration>,
    /// When the whole handshake must be over (`timeout` after it started).
    pub deadline: Option<Instant>,
}

impl AuthOptions {
    fn timed_out(&self) -> ConnectError {
        ConnectError::Timeout(self.timeout.unwrap_or_default())
    }

    fn recv_error(&self, e: GetError) -> ConnectError {
        match e {
            GetError::Closed => ConnectError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection during the authentication handshake",
            )),
            GetError::TooLarge { size, max } => protocol(format!(
                "the peer sent a {size}-byte handshake message, more than {max} bytes: \
                 it does not speak the multiprocessing.connection handshake"
            ))
            .into(),
            GetError::Io(e) if is_timeout(&e) => self.timed_out(),
            GetError::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
                protocol(format!("malformed handshake message: {e}")).into()
            }
            GetError::Io(e) => ConnectError::Io(e),
            other => ConnectError::Io(io::Error::other(other.to_string())),
        }
    }

    /// Sends one handshake message within what is left of the deadline.
    fn send<C: Codec>(&self, conn: &Connection<C>, message: &[u8]) -> Result<(), ConnectError> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out());
            }
            crate::sys::set_socket_timeouts(conn.as_fd(), Some(left))?;
        }
        conn.send_bytes(message).map_err(|e| self.send_error(e))
    }

    fn send_error(&self, e: SendError) -> ConnectError {
        match e {
            SendError::Io(e) if is_timeout(&e) => self.timed_out(),
            SendError::Io(e) => ConnectError::Io(e),
            SendError::Closed => ConnectError::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the peer closed the connection during the authentication handshake",
            )),
            other => ConnectError::Io(io::Error::other(other.to_string())),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Challenges the peer (CPython's `deliver_challenge`): on a wrong answer, sends `#FAILURE#`
/// and fails.
pub(crate) fn deliver_challenge<C: Codec>(
    conn: &Connection<C>,
    opts: &AuthOptions,
) -> Result<(), ConnectError> {
    let message = new_challenge(opts.form)?;
    let mut wire = CHALLENGE.to_vec();
    wire.extend_from_slice(&message);
    opts.send(conn, &wire)?;
    let response = conn.recv_bytes().map_err(|e| opts.recv_error(e))?;
    match verify_response(&opts.authkey, &message, &response, opts.accept_md5) {
        Ok(()) => {
            opts.send(conn, WELCOME)?;
            Ok(())
        }
        Err(e) => {
            // Best effort: the peer learns why, then the error is ours to report.
            let _ = opts.send(conn, FAILURE);
            Err(e.into())
        }
    }
}

/// Answers the peer's challenge (CPython's `answer_challenge`).
pub(crate) fn answer_challenge<C: Codec>(
    conn: &Connection<C>,
    opts: &AuthOptions,
) -> Result<(), ConnectError> {
    let frame = conn.recv_bytes().map_err(|e| opts.recv_error(e))?;
    let message = parse_challenge(&frame)?;
    let response = create_response(&opts.authkey, message)?;
    opts.send(conn, &response)?;
    let verdict = conn.recv_bytes().map_err(|e| opts.recv_error(e))?;
    if verdict == WELCOME {
        Ok(())
    } else if verdict == FAILURE {
        Err(AuthenticationError::new(AuthFailure::Rejected, "the digest sent was rejected").into())
    } else {
        Err(protocol("expected #WELCOME# or #FAILURE# after answering the challenge").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_response_is_raw_md5_and_matches_python() {
        // hmac.new(b'key', b'A' * 20, 'md5').hexdigest()
        let r = create_response(b"key", &[b'A'; 20]).unwrap();
        assert_eq!(hex(&r), "08419336d150549acc0248595d23c9e0");
        assert!(verify_response(b"key", &[b'A'; 20], &r, false).is_ok());
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha256_response_matches_python() {
        // hmac.new(b'key', b'{sha256}' + b'B' * 40, 'sha256').hexdigest()
        let mut m = b"{sha256}".to_vec();
        m.extend_from_slice(&[b'B'; 40]);
        let r = create_response(b"key", &m).unwrap();
        assert_eq!(&r[..8], b"{sha256}");
        assert_eq!(
            hex(&r[8..]),
            "d5ac59c143a25b5716376e85a9f744bdab08966073461fb1b0c90ac0ba8dbaf1"
        );
    }

    #[test]
    fn sha3_is_reported_unsupported() {
        let mut m = b"{sha3_256}".to_vec();
        m.extend_from_slice(&[0; 40]);
        let e = create_response(b"k", &m).unwrap_err();
        assert_eq!(e.failure(), AuthFailure::UnsupportedDigest);
    }

    #[test]
    fn strict_mode_refuses_md5_answers_to_a_sha256_challenge() {
        let m = new_challenge(ChallengeForm::Sha256).unwrap();
        let md5 = Digest::Md5.mac(b"k", &m);
        assert!(verify_response(b"k", &m, &md5, true).is_ok());
        assert_eq!(
            verify_response(b"k", &m, &md5, false)
                .unwrap_err()
                .failure(),
            AuthFailure::UnsupportedDigest
        );
    }

    #[test]
    fn challenges_are_fresh() {
        let a = new_challenge(ChallengeForm::Sha256).unwrap();
        let b = new_challenge(ChallengeForm::Sha256).unwrap();
        assert_eq!(a.len(), 8 + MESSAGE_LENGTH);
        assert_ne!(a, b);
        assert_eq!(
            new_challenge(ChallengeForm::LegacyMd5).unwrap().len(),
            LEGACY_MESSAGE_LENGTH
        );
    }
}
