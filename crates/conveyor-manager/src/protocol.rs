//! The wire protocol between a manager client and its server.
//!
//! Every message is one frame of the transport (CPython's `multiprocessing.connection`
//! framing: a big-endian length, then the payload). The payload is postcard:
//!
//! - client to server: `(id: u64, Request)`;
//! - server to client: `(id: u64, Response)`, with the id of the request it answers.
//!
//! Replies come back in the order the requests were sent, so a client may write many requests
//! before reading the first reply (pipelining); the ids let it check that nothing was lost.
//! A [`Request::Batch`] carries many calls in one frame and is answered by one
//! [`Reply::Batch`] with a response per call, in order: the cheapest way to do many small
//! operations.
//!
//! The first request on a connection must be [`Request::Hello`] with [`MAGIC`] and
//! [`PROTOCOL_VERSION`]; the server answers with its own version or refuses. Variants are only
//! ever added at the end of these enums, and every change that old peers cannot read bumps
//! [`PROTOCOL_VERSION`].
//!
//! Values travel as opaque byte strings ([`Blob`]): the postcard encoding of the user's type.
//! The server stores them as they are and never needs the type, except for the arithmetic of
//! [`Op::ValueNum`] and its siblings, where the operand's [`Num`] variant names the type.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use conveyor_core::{Codec, Postcard};

use crate::error::{ManagerError, RemoteError, Result};
use crate::number::{Num, NumOp};

/// The largest request a server accepts unless configured otherwise: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// The protocol version this crate speaks. A server refuses a client with another version.
pub const PROTOCOL_VERSION: u32 = 2;

/// The four bytes a client's hello starts with, so a stray peer is told apart from an old one.
pub const MAGIC: [u8; 4] = *b"CVYM";

/// An encoded value: the bytes of a postcard encoding, borrowed from a frame or from the
/// server's store, never copied on the way through the codec.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct Blob<'a>(#[serde(borrow, with = "serde_bytes")] pub &'a [u8]);

/// The kinds of shared object a manager holds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// A map from keys to values (`Manager().dict()`).
    Dict,
    /// A growable sequence (`Manager().list()`).
    List,
    /// One value (`Manager().Value(...)`).
    Value,
    /// A sequence of fixed length (`Manager().Array(...)`).
    Array,
    /// A FIFO queue, bounded or not, with task accounting (`Manager().Queue()`,
    /// `JoinableQueue()`).
    Queue,
    /// A mutual-exclusion lock owned by one connection (one thread of a client) at a time.
    Lock,
    /// A reentrant lock: its owner may acquire it again.
    RLock,
    /// A flag others wait on (`threading.Event`).
    Event,
    /// A counting semaphore, optionally bounded.
    Semaphore,
    /// A barrier for a fixed number of parties.
    Barrier,
    /// A bag of named attributes (`Manager().Namespace()`).
    Namespace,
    /// A condition variable with its own reentrant lock (`Manager().Condition()`).
    Condition,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Kind::Dict => "dict",
            Kind::List => "list",
            Kind::Value => "value",
            Kind::Array => "array",
            Kind::Queue => "queue",
            Kind::Lock => "lock",
            Kind::RLock => "rlock",
            Kind::Event => "event",
            Kind::Semaphore => "semaphore",
            Kind::Barrier => "barrier",
            Kind::Namespace => "namespace",
            Kind::Condition => "condition",
        };
        f.write_str(s)
    }
}

/// How an object is made when [`Request::Open`] does not find it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Create<'a> {
    /// An empty dict.
    Dict,
    /// An empty list.
    List,
    /// A value holding `initial`.
    Value {
        /// The encoded first value.
        #[serde(borrow)]
        initial: Blob<'a>,
    },
    /// An array holding `initial`; its length never changes.
    Array {
        /// The encoded elements.
        #[serde(borrow)]
        initial: Vec<Blob<'a>>,
    },
    /// A queue holding at most `capacity` items (`None`: unbounded).
    Queue {
        /// The most items it holds.
        capacity: Option<u64>,
    },
    /// An unlocked lock.
    Lock,
    /// An unlocked reentrant lock.
    RLock,
    /// A cleared event.
    Event,
    /// A semaphore with `value` permits, never more than `bound` if one is given.
    Semaphore {
        /// The first count of permits.
        value: u64,
        /// The most permits a release may lead to (`BoundedSemaphore`).
        bound: Option<u64>,
    },
    /// A barrier for `parties` waiters.
    Barrier {
        /// How many waiters it takes to pass.
        parties: u32,
    },
    /// An empty namespace.
    Namespace,
    /// A condition variable, its reentrant lock free and nobody waiting.
    Condition,
}

impl Create<'_> {
    /// The kind of object this makes.
    pub fn kind(&self) -> Kind {
        match self {
            Create::Dict => Kind::Dict,
            Create::List => Kind::List,
            Create::Value { .. } => Kind::Value,
            Create::Array { .. } => Kind::Array,
            Create::Queue { .. } => Kind::Queue,
            Create::Lock => Kind::Lock,
            Create::RLock => Kind::RLock,
            Create::Event => Kind::Event,
            Create::Semaphore { .. } => Kind::Semaphore,
            Create::Barrier { .. } => Kind::Barrier,
            Create::Namespace => Kind::Namespace,
            Create::Condition => Kind::Condition,
        }
    }
}

/// How long a blocking operation may wait on the server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Not at all (`block=False`).
    Never,
    /// As long as it takes (`block=True`).
    Forever,
    /// At most this many microseconds (`timeout=t`).
    Micros(u64),
}

impl Wait {
    /// The wait for an optional timeout, as Python's `timeout=None` means forever.
    pub fn from_timeout(timeout: Option<std::time::Duration>) -> Wait {
        match timeout {
            None => Wait::Forever,
            Some(d) => Wait::Micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        }
    }
}

/// A request: the body of a client frame.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Request<'a> {
    /// The first request of every connection.
    Hello {
        /// Must be [`MAGIC`].
        magic: [u8; 4],
        /// The client's [`PROTOCOL_VERSION`].
        version: u32,
    },
    /// Finds the object called `name`, making it with `create` if there is none and `create`
    /// is given. Answered by [`Reply::Opened`].
    Open {
        /// The object's name.
        name: &'a str,
        /// The kind the caller expects; another kind is a `WrongType` error.
        kind: Kind,
        /// How to make it if it does not exist yet.
        #[serde(borrow)]
        create: Option<Create<'a>>,
    },
    /// Forgets the object called `name` (handles still open keep working until they close).
    Delete {
        /// The object's name.
        name: &'a str,
    },
    /// Lists every object's name and kind ([`Reply::Objects`]).
    List,
    /// One operation on one object.
    Call(#[serde(borrow)] Call<'a>),
    /// Many operations, done in order and answered by one [`Reply::Batch`].
    Batch(#[serde(borrow)] Vec<Call<'a>>),
    /// Asks the server to shut down once it has answered.
    Shutdown,
    /// Does nothing; answered by [`Reply::Unit`].
    Ping,
    /// Over a Unix socket: the client asks to move the connection's frames to a pair of
    /// pipes. The server answers [`Reply::Unit`] if it can, then the two move with
    /// conveyor-pipe's `Connection::move_to_pipes` (client) and `Connection::accept_pipes`
    /// (server): one byte on the socket carrying the server's pipe ends (`SCM_RIGHTS`: the
    /// request pipe's read end, the reply pipe's write end), or one byte saying the client
    /// stays after all; from then on frames go through the pipes and the socket only tells
    /// that the peer is still there. The client sends nothing else until it has the answer.
    Pipes,
}

/// One operation on the object with id `obj` (from [`Reply::Opened`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Call<'a> {
    /// The object's id.
    pub obj: u64,
    /// What to do.
    #[serde(borrow)]
    pub op: Op<'a>,
}

/// An operation, by object kind. Indexes are Python's: negative ones count from the end.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Op<'a> {
    // ---- dict ----
    /// The value under a key ([`Reply::Item`], `None` if absent).
    DictGet(#[serde(borrow)] Blob<'a>),
    /// Sets a key's value ([`Reply::Unit`]).
    DictSet(#[serde(borrow)] Blob<'a>, #[serde(borrow)] Blob<'a>),
    /// Removes a key, answering its value ([`Reply::Item`]).
    DictRemove(#[serde(borrow)] Blob<'a>),
    /// Whether a key is present ([`Reply::Bool`]).
    DictContains(#[serde(borrow)] Blob<'a>),
    /// The number of entries ([`Reply::Count`]).
    DictLen,
    /// Every key ([`Reply::Items`]).
    DictKeys,
    /// Every entry ([`Reply::Pairs`]).
    DictItems,
    /// Sets many entries at once ([`Reply::Unit`]).
    DictUpdate(#[serde(borrow)] Vec<(Blob<'a>, Blob<'a>)>),
    /// Removes every entry ([`Reply::Unit`]).
    DictClear,
    /// Applies arithmetic to a number under a key, a missing key counting as zero; answers
    /// the previous value ([`Reply::Num`]).
    DictNum {
        /// The key.
        #[serde(borrow)]
        key: Blob<'a>,
        /// The operation.
        op: NumOp,
        /// The operand; its variant names the stored type.
        operand: Num,
    },
    /// Sets the key to `new` (or removes it if `None`) only if it now holds `expected`
    /// (`None`: absent); answers [`Reply::Swapped`].
    DictCas {
        /// The key.
        #[serde(borrow)]
        key: Blob<'a>,
        /// The value the caller last saw.
        #[serde(borrow)]
        expected: Option<Blob<'a>>,
        /// The value to store.
        #[serde(borrow)]
        new: Option<Blob<'a>>,
    },

    // ---- list and array ----
    /// The number of elements ([`Reply::Count`]).
    SeqLen,
    /// The element at an index ([`Reply::Item`]).
    SeqGet(i64),
    /// Replaces the element at an index ([`Reply::Unit`]).
    SeqSet(i64, #[serde(borrow)] Blob<'a>),
    /// Every element ([`Reply::Items`]).
    SeqSnapshot,
    /// Appends an element (lists only; [`Reply::Unit`]).
    ListAppend(#[serde(borrow)] Blob<'a>),
    /// Appends many elements (lists only; [`Reply::Unit`]).
    ListExtend(#[serde(borrow)] Vec<Blob<'a>>),
    /// Inserts before an index, as Python's `list.insert` (lists only; [`Reply::Unit`]).
    ListInsert(i64, #[serde(borrow)] Blob<'a>),
    /// Removes and answers the element at an index, the last if `None` (lists only;
    /// [`Reply::Item`]).
    ListPop(Option<i64>),
    /// Removes every element (lists only; [`Reply::Unit`]).
    ListClear,
    /// Arithmetic on the number at an index; answers the previous value ([`Reply::Num`]).
    SeqNum {
        /// The index.
        index: i64,
        /// The operation.
        op: NumOp,
        /// The operand; its variant names the stored type.
        operand: Num,
    },
    /// Compare-and-swap of the element at an index ([`Reply::Swapped`]).
    SeqCas {
        /// The index.
        index: i64,
        /// The value the caller last saw.
        #[serde(borrow)]
        expected: Blob<'a>,
        /// The value to store.
        #[serde(borrow)]
        new: Blob<'a>,
    },

    // ---- value ----
    /// The value ([`Reply::Item`]).
    ValueGet,
    /// Replaces the value ([`Reply::Unit`]).
    ValueSet(#[serde(borrow)] Blob<'a>),
    /// Replaces the value and answers the previous one ([`Reply::Item`]).
    ValueSwap(#[serde(borrow)] Blob<'a>),
    /// Arithmetic on the value; answers the previous value ([`Reply::Num`]).
    ValueNum {
        /// The operation.
        op: NumOp,
        /// The operand; its variant names the stored type.
        operand: Num,
    },
    /// Compare-and-swap of the value ([`Reply::Swapped`]).
    ValueCas {
        /// The value the caller last saw.
        #[serde(borrow)]
        expected: Blob<'a>,
        /// The value to store.
        #[serde(borrow)]
        new: Blob<'a>,
    },

    // ---- queue ----
    /// Puts an item, waiting for room as told ([`Reply::Unit`]; errors `Full`, `Timeout`,
    /// `Closed`).
    QueuePut(#[serde(borrow)] Blob<'a>, Wait),
    /// Takes an item, waiting as told ([`Reply::Item`]; errors `Empty`, `Timeout`,
    /// `Closed`).
    QueueGet(Wait),
    /// Length, capacity, unfinished tasks and closed flag ([`Reply::QueueState`]).
    QueueState,
    /// Shuts the queue down for every client, as Python 3.13's `Queue.shutdown(immediate)`
    /// ([`Reply::Unit`]): later puts fail, waiters wake; with `immediate` (`true`) the items
    /// left are discarded and counted as done.
    QueueShutdown(bool),
    /// Marks one task done ([`Reply::Unit`]; error `TooManyTaskDone`).
    QueueTaskDone,
    /// Waits until every task is done ([`Reply::Bool`]: whether they all were in time).
    QueueJoin(Wait),

    // ---- lock, rlock, semaphore ----
    /// Acquires, waiting as told ([`Reply::Bool`]: whether it was acquired).
    Acquire(Wait),
    /// Releases once ([`Reply::Unit`]; error `NotOwner` for a lock this connection does not
    /// hold, `TooManyReleases` for a bounded semaphore at its bound).
    Release,
    /// Whether the lock is held by anyone; the semaphore's count ([`Reply::Count`]).
    LockState,

    // ---- event ----
    /// Sets the flag and wakes every waiter ([`Reply::Unit`]).
    EventSet,
    /// Clears the flag ([`Reply::Unit`]).
    EventClear,
    /// The flag ([`Reply::Bool`]).
    EventIsSet,
    /// Waits for the flag; answers it ([`Reply::Bool`], false on timeout).
    EventWait(Wait),

    // ---- barrier ----
    /// Waits for the other parties ([`Reply::Count`]: this waiter's arrival index; error
    /// `BrokenBarrier`).
    BarrierWait(Wait),
    /// Breaks the barrier: every waiter, now and later, fails until a reset.
    BarrierAbort,
    /// Breaks the current round (its waiters fail) and makes the barrier usable again.
    BarrierReset,
    /// Parties, waiters now, broken flag ([`Reply::BarrierState`]).
    BarrierState,

    // ---- namespace ----
    /// An attribute ([`Reply::Item`], `None` if absent).
    NsGet(&'a str),
    /// Sets an attribute ([`Reply::Unit`]).
    NsSet(&'a str, #[serde(borrow)] Blob<'a>),
    /// Removes an attribute ([`Reply::Bool`]: whether it existed).
    NsDel(&'a str),
    /// Every attribute's name ([`Reply::Names`]).
    NsNames,

    // ---- condition (Acquire, Release and LockState act on its lock) ----
    /// Releases the condition's lock (however deeply this connection holds it), waits to be
    /// notified, and takes the lock back at the same depth ([`Reply::Bool`]: whether it was
    /// notified in time); error `NotOwner` without the lock.
    CondWait(Wait),
    /// Wakes up to this many waiters ([`Reply::Count`]: how many it woke); error `NotOwner`
    /// without the lock.
    CondNotify(u64),
    /// Wakes every waiter ([`Reply::Count`]: how many it woke); error `NotOwner` without the
    /// lock.
    CondNotifyAll,
}

/// A response: the body of a server frame.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Response<'a> {
    /// The request was done.
    Ok(#[serde(borrow)] Reply<'a>),
    /// The request failed; nothing was changed unless the error says so.
    Err(RemoteError),
}

/// What a request answers, by shape.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Reply<'a> {
    /// Nothing to say.
    Unit,
    /// A yes or no.
    Bool(bool),
    /// A count or an index.
    Count(u64),
    /// A value, or none.
    Item(#[serde(borrow)] Option<Blob<'a>>),
    /// Values.
    Items(#[serde(borrow)] Vec<Blob<'a>>),
    /// Key-value pairs.
    Pairs(#[serde(borrow)] Vec<(Blob<'a>, Blob<'a>)>),
    /// A number (the previous value of an arithmetic operation).
    Num(Num),
    /// The object found or made by [`Request::Open`].
    Opened {
        /// Its id, for [`Call::obj`].
        id: u64,
        /// Its kind.
        kind: Kind,
        /// Whether this request made it.
        created: bool,
    },
    /// Every object's name and kind.
    Objects(Vec<(String, Kind)>),
    /// The outcome of a compare-and-swap.
    Swapped {
        /// Whether the new value was stored.
        done: bool,
        /// The value now stored (the new one if `done`).
        #[serde(borrow)]
        current: Option<Blob<'a>>,
    },
    /// A queue's state.
    QueueState {
        /// Items in it.
        len: u64,
        /// The most it holds, `None` if unbounded.
        capacity: Option<u64>,
        /// Items put and not yet marked done.
        unfinished: u64,
        /// Whether it was shut down.
        closed: bool,
    },
    /// A barrier's state.
    BarrierState {
        /// How many waiters it takes.
        parties: u32,
        /// How many wait now.
        waiting: u32,
        /// Whether it is broken.
        broken: bool,
    },
    /// Attribute names.
    Names(Vec<String>),
    /// One response per call of a [`Request::Batch`], in order.
    Batch(#[serde(borrow)] Vec<Response<'a>>),
    /// The server's answer to [`Request::Hello`].
    Hello {
        /// The server's [`PROTOCOL_VERSION`].
        version: u32,
        /// The largest request frame it accepts, in bytes.
        max_frame: u64,
    },
}

/// Decodes a server frame: the id of the request it answers, and the response.
pub(crate) fn decode_frame(bytes: &[u8]) -> Result<(u64, Response<'_>)> {
    match postcard::take_from_bytes::<(u64, Response<'_>)>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(ManagerError::protocol(format!(
            "{} stray bytes after a reply",
            rest.len()
        ))),
        Err(e) => Err(ManagerError::Decode(e)),
    }
}

/// Encodes a value for the wire.
pub(crate) fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    let mut b = Vec::new();
    Postcard.encode(v, &mut b)?;
    Ok(b)
}

/// Decodes a value from the wire.
pub(crate) fn decode<T: DeserializeOwned>(b: Blob<'_>) -> Result<T> {
    Ok(Postcard.decode(b.0)?)
}

/// The error for a reply of the wrong shape.
pub(crate) fn unexpected(r: &Reply<'_>) -> ManagerError {
    let s = format!("{r:?}");
    let s: String = s.chars().take(80).collect();
    ManagerError::protocol(format!("unexpected reply {s}"))
}

/// Accepts only [`Reply::Unit`].
pub(crate) fn unit(r: Reply<'_>) -> Result<()> {
    match r {
        Reply::Unit => Ok(()),
        other => Err(unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_borrowed() {
        let key = [1u8, 2, 3];
        let req = (
            7u64,
            Request::Batch(vec![
                Call {
                    obj: 3,
                    op: Op::DictSet(Blob(&key), Blob(b"v")),
                },
                Call {
                    obj: 3,
                    op: Op::DictNum {
                        key: Blob(&key),
                        op: NumOp::Add,
                        operand: Num::I64(-5),
                    },
                },
            ]),
        );
        let mut buf = Vec::new();
        Postcard.encode(&req, &mut buf).unwrap();
        let back: (u64, Request<'_>) = postcard::from_bytes(&buf).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn batch_reply_is_concatenation() {
        // The server writes a batch reply piece by piece; check that equals the derived form.
        let whole = Response::Ok(Reply::Batch(vec![
            Response::Ok(Reply::Unit),
            Response::Ok(Reply::Count(9)),
        ]));
        let mut expect = Vec::new();
        Postcard.encode(&whole, &mut expect).unwrap();
        let mut got = Vec::new();
        Postcard
            .encode(&Response::Ok(Reply::Batch(Vec::new())), &mut got)
            .unwrap();
        got.pop(); // the empty length
        Postcard.encode(&2usize, &mut got).unwrap();
        Postcard
            .encode(&Response::Ok(Reply::Unit), &mut got)
            .unwrap();
        Postcard
            .encode(&Response::Ok(Reply::Count(9)), &mut got)
            .unwrap();
        assert_eq!(got, expect);
    }
}
