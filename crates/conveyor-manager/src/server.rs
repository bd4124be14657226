//! The server: accepts connections, authenticates them, and answers their requests.
//!
//! One thread accepts; each connection gets a thread of its own (which runs the handshake, so
//! a slow client holds up no one), so a request that waits (a blocking get, an acquire) holds
//! up only its own client. A connection thread reads requests as they come and queues the
//! replies in order, writing them before it waits for the next request (on pipes, only when
//! no further request was already read) and before a request that may wait: a client that pipelines many requests gets its replies in a few
//! large writes.
//!
//! Faults are confined to their connection: a malformed request is answered with an error and
//! the connection goes on; an oversize one is answered and the connection is closed (its
//! bytes cannot be skipped safely); a client that goes away has its locks released.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use conveyor_core::{Codec, GetError, Postcard};
use conveyor_pipe::{Address, Listener, PendingConnection};

use crate::connection::{sigpipe_is_safe, Closer, Wire};
use crate::error::{ErrorKind, ManagerError, RemoteError};
use crate::protocol::{Call, Op, Reply, Request, Response, MAGIC, PROTOCOL_VERSION};
use crate::store::{self, Ctx, Object, Store};

/// The largest reply a server sends (what a client accepts): 1 GiB.
const MAX_REPLY: u64 = 1 << 30;

/// The name of an object whose open makes the server's handler panic (tests only).
#[cfg(test)]
pub(crate) const PANIC_NAME: &str = "conveyor-manager fault test: panic here";

struct ConnEntry {
    closer: Option<Closer>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    store: Store,
    listener: Listener,
    /// Wakes the accept thread at shutdown.
    listener_closer: Closer,
    max_frame: usize,
    stopping: AtomicBool,
    conns: Mutex<HashMap<u64, ConnEntry>>,
    next_conn: AtomicU64,
    /// Set by the accept thread when everything has stopped.
    stopped: Mutex<bool>,
    stopped_cv: Condvar,
    /// The first bytes of an encoded `Response::Ok(Reply::Batch(..))`, before the length.
    batch_prefix: Vec<u8>,
}

impl Shared {
    fn request_stop(&self) {
        if !self.stopping.swap(true, Ordering::AcqRel) {
            tracing::info!("manager server shutting down");
            self.listener_closer.close();
        }
    }
}

/// A running server. Dropping it shuts the server down (as [`shutdown`](Server::shutdown)).
pub struct Server {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    address: Address,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `address` and serves on background threads until shut down, with
    /// conveyor-pipe's default handshake deadline.
    pub(crate) fn bind(
        address: &Address,
        authkey: Arc<[u8]>,
        max_frame: usize,
    ) -> Result<Server, ManagerError> {
        Server::bind_with(
            address,
            authkey,
            max_frame,
            Some(conveyor_pipe::DEFAULT_HANDSHAKE_TIMEOUT),
        )
    }

    /// Listens on `address` and serves on background threads until shut down. Each client's
    /// handshake must finish within `handshake_timeout` of its connecting (conveyor-pipe's
    /// one deadline for the whole handshake, so a client that drips its bytes cannot hold a
    /// connection thread longer); `None` waits forever.
    pub(crate) fn bind_with(
        address: &Address,
        authkey: Arc<[u8]>,
        max_frame: usize,
        handshake_timeout: Option<Duration>,
    ) -> Result<Server, ManagerError> {
        let listener = Listener::builder()
            .authkey(&authkey)
            .handshake_timeout(handshake_timeout)
            .bind(address)
            .map_err(|e| match address {
                Address::Unix(p) => io::Error::new(
                    e.kind(),
                    format!(
                        "cannot listen on {}: {e} (remove a stale socket file first)",
                        p.display()
                    ),
                ),
                Address::Tcp(a) => io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")),
            })?;
        let listener_closer = Closer::new(&listener)?;
        let address = listener.address().clone();
        let mut batch_prefix = Vec::new();
        Postcard.encode(&Response::Ok(Reply::Batch(Vec::new())), &mut batch_prefix)?;
        batch_prefix.pop(); // the empty vector's length
        let shared = Arc::new(Shared {
            store: Store::default(),
            listener,
            listener_closer,
            max_frame,
            stopping: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            stopped: Mutex::new(false),
            stopped_cv: Condvar::new(),
            batch_prefix,
        });
        let s2 = shared.clone();
        let accept = std::thread::Builder::new()
            .name("manager-accept".into())
            .spawn(move || accept_loop(s2))?;
        tracing::info!(%address, "manager server listening");
        Ok(Server {
            shared,
            accept: Some(accept),
            address,
        })
    }

    /// The address clients connect to.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Blocks until the server has stopped (a client asked it to shut down, or
    /// [`shutdown`](Server::shutdown) was called from another handle).
    pub fn wait(&self) {
        let mut stopped = self
            .shared
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while !*stopped {
            stopped = self
                .shared
                .stopped_cv
                .wait(stopped)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Begins shutting down without waiting for it (from a signal handler thread, say);
    /// [`wait`](Server::wait) returns once it is done.
    pub fn request_shutdown(&self) {
        self.shared.request_stop();
    }

    /// Whether the server has begun shutting down.
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    /// Stops accepting, closes every connection (waking every waiting request), and waits for
    /// the server's threads to end. Objects are dropped with the server.
    pub fn shutdown(&mut self) {
        self.shared.request_stop();
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(shared: Arc<Shared>) {
    loop {
        let accepted = shared.listener.accept_pending();
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        match accepted {
            Ok(stream) => spawn_connection(&shared, stream),
            Err(e) => {
                tracing::warn!(error = %e, "manager accept failed");
                // Out of descriptors or a similar condition that lasts: back off a little
                // rather than spin on it.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    // Close every connection (their threads see end of file), wake every waiting request,
    // and wait for the connection threads.
    let entries: Vec<ConnEntry> = {
        let mut conns = shared.conns.lock().unwrap_or_else(|e| e.into_inner());
        for e in conns.values() {
            if let Some(c) = &e.closer {
                c.close();
            }
        }
        conns.drain().map(|(_, e)| e).collect()
    };
    shared.store.wake_all();
    for e in entries {
        // A connection still in its handshake has no closer yet: it sees the shutdown when
        // the handshake ends and exits; it is not waited for.
        if e.closer.is_some() {
            if let Some(t) = e.thread {
                let _ = t.join();
            }
        }
    }
    if let Address::Unix(p) = shared.listener.address() {
        let _ = std::fs::remove_file(p);
    }
    *shared.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
    shared.stopped_cv.notify_all();
    tracing::info!("manager server stopped");
}

fn spawn_connection(shared: &Arc<Shared>, pending: PendingConnection) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    shared
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            id,
            ConnEntry {
                closer: None,
                thread: None,
            },
        );
    let s2 = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("manager-conn-{id}"))
        .spawn(move || {
            // The handshake runs here, so a slow or silent client holds up no one (it is
            // bounded by conveyor-pipe's handshake timeout).
            match pending.authenticate() {
                Ok(conn) => {
                    let mut wire = Wire::new(conn, s2.max_frame as u64);
                    let registered = {
                        let mut conns = s2.conns.lock().unwrap_or_else(|e| e.into_inner());
                        // Checked under the table's lock: either shutdown sees this closer,
                        // or this thread sees shutdown.
                        match conns.get_mut(&id) {
                            Some(e) if !s2.stopping.load(Ordering::Acquire) => {
                                match Closer::new(wire.socket()) {
                                    Ok(c) => {
                                        e.closer = Some(c);
                                        true
                                    }
                                    Err(err) => {
                                        tracing::warn!(conn = id, error = %err, "manager could not keep a closer for a connection; dropping it");
                                        false
                                    }
                                }
                            }
                            _ => false,
                        }
                    };
                    if registered {
                        serve_connection(&s2, id, &mut wire);
                    }
                    // Forget the closer before the socket closes, so it is never called on a
                    // reused descriptor.
                    s2.conns
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    drop(wire);
                }
                Err(e) => {
                    tracing::warn!(conn = id, error = %e, "manager client failed authentication");
                    s2.conns
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                }
            }
        });
    let mut conns = shared.conns.lock().unwrap_or_else(|e| e.into_inner());
    match spawned {
        Ok(h) => {
            if let Some(e) = conns.get_mut(&id) {
                e.thread = Some(h);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "manager could not start a connection thread");
            conns.remove(&id);
        }
    }
}

/// What a connection's thread keeps between requests.
struct Session {
    conn: u64,
    hello: bool,
    /// Objects this connection has used, by id (saves the registry's lock on every call).
    cache: HashMap<u64, Arc<Object>>,
    /// Locks this connection holds.
    held: HashMap<u64, Arc<Object>>,
}

impl Drop for Session {
    /// Releases the locks this connection holds on every way out of its thread, a panic
    /// included, so that a fault in one request never leaves a lock held for everyone.
    fn drop(&mut self) {
        store::release_all_held(self.conn, &mut self.held);
    }
}

/// What to do after answering a request.
#[derive(PartialEq, Eq)]
enum After {
    Continue,
    Close,
    /// Send the reply, then stop the server (after, so the reply is not cut off).
    StopServer,
}

/// Whether the client of `c` has gone (closed its end, or shut it down): a request waiting
/// for it gives up, and one that would take something (an item, a lock) takes nothing.
fn peer_closed(c: &Wire) -> bool {
    c.hung_up()
}

/// Sends one reply: buffered while a further request was already read (so that pipelined
/// requests get their replies in few writes), written at once with those buffered before it
/// otherwise (the receive that follows would write it before waiting anyway; at once, it
/// takes the connection's writer lock once instead of twice). A reply over the request limit
/// is still sent, up to what a client accepts.
fn send_reply(shared: &Shared, c: &Wire, out: &[u8]) -> Result<(), conveyor_pipe::SendError> {
    let send = |out: &[u8]| {
        if c.has_read_ahead() {
            c.send_bytes(out)
        } else {
            c.send_bytes_now(out)
        }
    };
    if out.len() > shared.max_frame {
        c.set_max_message_size(MAX_REPLY);
        let sent = send(out);
        c.set_max_message_size(shared.max_frame as u64);
        sent
    } else {
        send(out)
    }
}

/// The request loop of one connection: each receive writes the replies buffered so far
/// first, so a client that pipelines requests gets their replies in few writes.
fn serve_connection(shared: &Shared, conn: u64, w: &mut Wire) {
    tracing::debug!(conn, "manager client connected");
    let mut session = Session {
        conn,
        hello: false,
        cache: HashMap::new(),
        held: HashMap::new(),
    };
    let mut inbuf = Vec::new();
    let mut out = Vec::new();
    loop {
        let c: &Wire = w;
        match c.recv_bytes_into(&mut inbuf) {
            Ok(_) => {}
            Err(GetError::Closed) => break,
            Err(GetError::TooLarge { size, max }) => {
                tracing::warn!(conn, size, max, "manager refused an oversize request");
                out.clear();
                let err = RemoteError::new(
                    ErrorKind::TooLarge,
                    format!(
                        "the request is {size} bytes, more than the {max} bytes this server \
                         accepts; the connection is closed (split the batch, or raise the \
                         server's max_frame)"
                    ),
                );
                if Postcard
                    .encode(&(0u64, Response::Err(err)), &mut out)
                    .is_ok()
                {
                    let _ = c.send_bytes(&out);
                    let _ = c.flush();
                }
                break;
            }
            Err(e) => {
                tracing::debug!(conn, error = %e, "manager connection ended");
                break;
            }
        }
        out.clear();
        let after = match postcard::take_from_bytes::<(u64, Request<'_>)>(&inbuf) {
            Ok(((id, Request::Pipes), []))
                if session.hello && !c.has_read_ahead() && sigpipe_is_safe() =>
            {
                // Answer, then take the pipe ends the client sends once it has the answer.
                let _ = Postcard.encode(&(id, Response::Ok(Reply::Unit)), &mut out);
                if c.send_bytes(&out).and_then(|()| c.flush()).is_err() {
                    break;
                }
                if let Err(e) = w.take_over() {
                    tracing::debug!(conn, error = %e, "manager client failed to hand over pipes");
                    break;
                }
                continue;
            }
            Ok(((id, req), [])) => {
                if request_may_block(&req) {
                    // Replies queued so far go out before this one waits; and a client that
                    // is already gone does not get to take an item, a lock or a barrier
                    // place it cannot use.
                    if c.flush().is_err() || (request_takes(&req) && peer_closed(c)) {
                        break;
                    }
                }
                let cancelled = || shared.stopping.load(Ordering::Relaxed) || peer_closed(c);
                // A panic in a handler (a bug) ends this connection with an error reply; the
                // locks it holds are released with the session, and every other connection
                // goes on.
                let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    handle(shared, &mut session, id, req, &cancelled, &mut out)
                }));
                match handled {
                    Ok(after) => after,
                    Err(_) => {
                        tracing::error!(conn, "a manager request panicked; closing its connection");
                        out.clear();
                        let err = RemoteError::new(
                            ErrorKind::Internal,
                            "the server failed while doing this request (a bug: please report \
                             it); the connection is closed and its locks are released",
                        );
                        let _ = Postcard.encode(&(id, Response::Err(err)), &mut out);
                        After::Close
                    }
                }
            }
            Ok((_, rest)) => malformed(
                &inbuf,
                &format!("{} bytes after the request", rest.len()),
                &mut out,
            ),
            Err(e) => malformed(&inbuf, &e.to_string(), &mut out),
        };
        if let Err(e) = send_reply(shared, c, &out) {
            tracing::debug!(conn, error = %e, "manager could not send a reply");
            break;
        }
        match after {
            After::Continue => {}
            After::Close => {
                let _ = c.flush();
                break;
            }
            After::StopServer => {
                let _ = c.flush();
                shared.request_stop();
            }
        }
    }
    let _ = w.flush();
    drop(session);
    tracing::debug!(conn, "manager client disconnected");
}

fn request_may_block(req: &Request<'_>) -> bool {
    match req {
        Request::Call(c) => store::may_block(&c.op),
        Request::Batch(calls) => calls.iter().any(|c| store::may_block(&c.op)),
        _ => false,
    }
}

fn request_takes(req: &Request<'_>) -> bool {
    let takes = |c: &Call<'_>| {
        matches!(
            c.op,
            Op::QueueGet(_) | Op::Acquire(_) | Op::BarrierWait(_) | Op::CondWait(_)
        )
    };
    match req {
        Request::Call(c) => takes(c),
        Request::Batch(calls) => calls.iter().any(takes),
        _ => false,
    }
}

/// Answers a frame that is not a request: with its id if one can be read, else id 0.
fn malformed(frame: &[u8], why: &str, out: &mut Vec<u8>) -> After {
    let id = postcard::take_from_bytes::<u64>(frame)
        .map(|(id, _)| id)
        .unwrap_or(0);
    let err = RemoteError::new(
        ErrorKind::Malformed,
        format!("the request could not be decoded ({why}): do both sides run the same version?"),
    );
    let _ = Postcard.encode(&(id, Response::Err(err)), out);
    After::Continue
}

fn encode_err(out: &mut Vec<u8>, err: RemoteError) {
    // Encoding an error into a Vec cannot fail.
    let _ = Postcard.encode(&Response::Err(err), out);
}

fn handle(
    shared: &Shared,
    session: &mut Session,
    id: u64,
    req: Request<'_>,
    cancelled: &dyn Fn() -> bool,
    out: &mut Vec<u8>,
) -> After {
    let _ = Postcard.encode(&id, out);
    if !session.hello {
        return match req {
            Request::Hello { magic, version } if magic == MAGIC && version == PROTOCOL_VERSION => {
                session.hello = true;
                let _ = store::ok(
                    out,
                    Reply::Hello {
                        version: PROTOCOL_VERSION,
                        max_frame: shared.max_frame as u64,
                    },
                );
                After::Continue
            }
            Request::Hello { magic, version } if magic == MAGIC => {
                encode_err(
                    out,
                    RemoteError::new(
                        ErrorKind::Version,
                        format!(
                            "the client speaks protocol version {version}, this server \
                             {PROTOCOL_VERSION}: use matching conveyor-manager versions"
                        ),
                    ),
                );
                After::Close
            }
            _ => {
                encode_err(
                    out,
                    RemoteError::new(
                        ErrorKind::Malformed,
                        "the first request must be a hello from a conveyor-manager client",
                    ),
                );
                After::Close
            }
        };
    }
    #[cfg(test)]
    if matches!(req, Request::Open { name, .. } if name == PANIC_NAME) {
        panic!("a request the fault tests make panic on purpose");
    }
    let start = out.len();
    let result = match req {
        Request::Hello { .. } => Err(RemoteError::new(
            ErrorKind::Malformed,
            "hello was already done on this connection",
        )),
        Request::Open { name, kind, create } => shared
            .store
            .open(name, kind, create.as_ref())
            .and_then(|(obj, created)| {
                let r = store::ok(
                    out,
                    Reply::Opened {
                        id: obj.id,
                        kind: obj.kind,
                        created,
                    },
                );
                session.cache.insert(obj.id, obj);
                r
            }),
        Request::Delete { name } => shared.store.delete(name).and_then(|()| {
            session.cache.retain(|_, o| o.name != name);
            store::ok(out, Reply::Unit)
        }),
        Request::List => store::ok(out, Reply::Objects(shared.store.list())),
        Request::Call(call) => {
            do_call(shared, session, call, cancelled, out);
            Ok(())
        }
        Request::Batch(calls) => {
            out.extend_from_slice(&shared.batch_prefix);
            let _ = Postcard.encode(&calls.len(), out);
            for call in calls {
                do_call(shared, session, call, cancelled, out);
            }
            Ok(())
        }
        Request::Shutdown => {
            return match store::ok(out, Reply::Unit) {
                Ok(()) => After::StopServer,
                Err(e) => {
                    out.truncate(start);
                    encode_err(out, e);
                    After::Continue
                }
            };
        }
        Request::Ping => store::ok(out, Reply::Unit),
        // Reaches here only after hello, with requests already buffered behind it or in a
        // process where a write to a closed pipe would kill it.
        Request::Pipes => Err(RemoteError::new(
            ErrorKind::Malformed,
            "this connection cannot move to pipes (requests are in flight behind the move, \
             or SIGPIPE is not ignored in the server's process); it stays on its socket",
        )),
    };
    if let Err(e) = result {
        out.truncate(start);
        encode_err(out, e);
    }
    After::Continue
}

fn do_call(
    shared: &Shared,
    session: &mut Session,
    call: Call<'_>,
    cancelled: &dyn Fn() -> bool,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let obj = match session.cache.get(&call.obj) {
        Some(o) if !o.deleted.load(Ordering::Acquire) => Ok(o.clone()),
        Some(_) => {
            session.cache.remove(&call.obj);
            shared.store.get(call.obj)
        }
        None => shared.store.get(call.obj).inspect(|o| {
            session.cache.insert(o.id, o.clone());
        }),
    };
    let result = obj.and_then(|obj| {
        let mut ctx = Ctx {
            conn: session.conn,
            cancelled,
            held: &mut session.held,
        };
        store::call(&obj, call.op, &mut ctx, out)
    });
    if let Err(e) = result {
        out.truncate(start);
        encode_err(out, e);
    }
}
