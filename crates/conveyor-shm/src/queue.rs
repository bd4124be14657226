//! [`ShmQueue`]: the typed queue handle, and its builder.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conveyor_core::{
    Channel, Codec, CodecError, GetError, Postcard, PutError, QueueInfo, Unavailable,
    UnavailableKind,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::raw::{RawPutError, RawQueue};
use crate::ring::Ring;
use crate::segment::{anonymous_name, fnv1a};
use crate::wait::Deadline;
use crate::ShmError;

/// The ring size used when none is given: 4 MiB (pages are only used once touched).
pub const DEFAULT_RING_BYTES: usize = 4 << 20;
/// How long a blocked put or get spins before sleeping, unless told otherwise.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer (a fresh one if it is already borrowed).
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let r = f(&mut buf);
            if buf.capacity() > 8 << 20 {
                *buf = Vec::new();
            }
            r
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// Encodes `item` into the front of `buf` and returns its length.
///
/// Encoding into a slice is a plain copy for byte payloads, where appending to a vector goes
/// byte by byte; so `buf` is grown (doubling, and kept for the next item) until the item fits.
fn encode_into<C: Codec, T: Serialize + ?Sized>(
    codec: &C,
    item: &T,
    buf: &mut Vec<u8>,
) -> Result<usize, CodecError> {
    if buf.len() < 1024 {
        buf.resize(1024, 0);
    }
    loop {
        if let Some(n) = codec.encode_to_slice(item, &mut buf[..])? {
            return Ok(n);
        }
        if buf.len() >= 1 << 30 {
            buf.clear();
            codec.encode(item, buf)?;
            return Ok(buf.len());
        }
        let grown = buf.len() * 2;
        buf.resize(grown, 0);
    }
}

/// The fingerprint of an item type and codec, stored in the segment and checked at open.
pub(crate) fn fingerprint<T: ?Sized, C: Codec>() -> u64 {
    fnv1a(&[std::any::type_name::<T>().as_bytes(), C::NAME.as_bytes()])
}

/// A queue in shared memory between processes: many producers, many consumers, in any
/// processes and threads.
///
/// Create one with [`ShmQueue::new`] (an anonymous name, default sizes),
/// [`ShmQueue::create`] (a name of your choice) or [`ShmQueue::builder`] (all options), and reach
/// it from another process with [`ShmQueue::open`] and its [`name`](ShmQueue::name). Clones
/// share one mapping. Items are encoded with the codec `C` (postcard by default); the segment
/// remembers the item type and codec and refuses to open with others.
///
/// [`shutdown`](Channel::shutdown) ends the queue for every handle in every process (Python
/// 3.13's `Queue.shutdown`); [`close`](Channel::close) is this handle's own (Python's
/// `multiprocessing.Queue.close()`): a clone, or a handle opened or received by another
/// process, is another handle. A queue built with
/// [`auto_shutdown`](ShmQueueBuilder::auto_shutdown) shuts itself down once its producers are
/// done.
///
/// ```
/// use conveyor_core::{Channel, QueueInfo};
/// use conveyor_shm::ShmQueue;
///
/// let q: ShmQueue<String> = ShmQueue::new()?;
/// // In another process: ShmQueue::<String>::open(&name)
/// let name = q.name().to_string();
/// let other: ShmQueue<String> = ShmQueue::open(&name)?;
/// q.put("hot dog".to_string())?;
/// assert_eq!(other.len(), 1);
/// assert_eq!(other.get()?, "hot dog");
/// q.shutdown(false); // for every handle, in every process
/// assert!(other.get().unwrap_err().is_closed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmQueue<T, C: Codec = Postcard> {
    pub(crate) raw: Arc<RawQueue>,
    codec: C,
    spin: Duration,
    /// This handle's state: [`HANDLE_PUT`] and [`HANDLE_CLOSED`] bits.
    state: AtomicU8,
    _items: PhantomData<fn(T) -> T>,
}

/// The handle has put (on an `auto_shutdown` queue: it is counted as a producer).
const HANDLE_PUT: u8 = 1;
/// The handle was closed: its puts fail.
const HANDLE_CLOSED: u8 = 2;

impl<T, C: Codec> Clone for ShmQueue<T, C> {
    /// Another handle on the same mapping; it starts open and not yet a producer, whatever
    /// this one is.
    fn clone(&self) -> Self {
        ShmQueue {
            raw: self.raw.clone(),
            codec: self.codec.clone(),
            spin: self.spin,
            state: AtomicU8::new(0),
            _items: PhantomData,
        }
    }
}

impl<T, C: Codec> Drop for ShmQueue<T, C> {
    /// A handle that has put and goes without closing counts as closed.
    fn drop(&mut self) {
        self.close_handle();
    }
}

impl<T, C: Codec> fmt::Debug for ShmQueue<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmQueue")
            .field("name", &self.name())
            .field("ring_bytes", &self.raw.ring.capacity_bytes())
            .field("max_items", &self.raw.ring.max_items())
            .field("len", &self.raw.ring.len_hint())
            .finish()
    }
}

/// Options for a new [`ShmQueue`]: name, ring size, item bound, spin before sleeping.
///
/// ```
/// use conveyor_shm::ShmQueue;
///
/// // Python's multiprocessing.Queue(3)
/// let q = ShmQueue::<u32>::builder().max_items(3).ring_bytes(64 * 1024).create()?;
/// assert_eq!(q.capacity(), Some(3));
/// # Ok::<(), conveyor_shm::ShmError>(())
/// ```
pub struct ShmQueueBuilder<T> {
    name: Option<String>,
    ring_bytes: usize,
    max_items: Option<usize>,
    spin: Duration,
    auto_shutdown: bool,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> fmt::Debug for ShmQueueBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmQueueBuilder")
            .field("name", &self.name)
            .field("ring_bytes", &self.ring_bytes)
            .field("max_items", &self.max_items)
            .field("spin", &self.spin)
            .field("auto_shutdown", &self.auto_shutdown)
            .finish()
    }
}

impl<T> Clone for ShmQueueBuilder<T> {
    fn clone(&self) -> Self {
        ShmQueueBuilder {
            name: self.name.clone(),
            ring_bytes: self.ring_bytes,
            max_items: self.max_items,
            spin: self.spin,
            auto_shutdown: self.auto_shutdown,
            _items: PhantomData,
        }
    }
}

impl<T> Default for ShmQueueBuilder<T> {
    fn default() -> Self {
        ShmQueueBuilder {
            name: None,
            ring_bytes: DEFAULT_RING_BYTES,
            max_items: None,
            spin: DEFAULT_SPIN,
            auto_shutdown: false,
            _items: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> ShmQueueBuilder<T> {
    /// The segment's name (1 to 64 of `A-Z a-z 0-9 _ -`); anonymous (unique) if not set.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The ring's size in bytes: a power of two from 256 B to 64 MiB, a size in between being
    /// rounded down (default [`DEFAULT_RING_BYTES`]). Messages larger than half of it travel
    /// out of line, in a file of their own.
    pub fn ring_bytes(mut self, bytes: usize) -> Self {
        self.ring_bytes = bytes;
        self
    }

    /// The most items the queue holds at once (Python's `maxsize`); no bound by default
    /// beyond the ring's bytes.
    pub fn max_items(mut self, n: usize) -> Self {
        self.max_items = Some(n);
        self
    }

    /// How long a blocked put or get of this handle spins before sleeping in the kernel
    /// (default [`DEFAULT_SPIN`]; zero sleeps at once). It belongs to the handle, not to the
    /// segment: a handle opened by name, or received by a child process, starts with
    /// [`DEFAULT_SPIN`]; set it there with [`ShmQueue::with_spin`].
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// Makes the queue shut itself down (as [`shutdown(false)`](Channel::shutdown)) once every
    /// handle that has put has closed or gone, in every process: [closed](Channel::close),
    /// dropped, or its process died (killed included). Consumers then drain what is left and
    /// get `Closed`, so they learn that the producers are done, which Python's consumers never
    /// do. Off by default.
    ///
    /// A handle counts as a producer from its first put (a failed one included), so the rule
    /// holds for producers that have started putting: one that has not put yet when the
    /// others are done finds the queue shut down. Have every producer put (or register by
    /// putting a first item) before another can finish, or end the queue with
    /// [`shutdown`](Channel::shutdown) instead. A killed producer is noticed by a consumer
    /// waiting on the empty queue within about 150 ms (the pid no longer exists); a pid reused
    /// by another process meanwhile keeps the queue open until that process exits. A process
    /// beyond the attach table's 48 slots (see the crate docs) is not counted.
    ///
    /// ```
    /// use conveyor_core::Channel;
    /// use conveyor_shm::ShmQueue;
    ///
    /// let q = ShmQueue::<u32>::builder().auto_shutdown().create()?;
    /// let (a, b) = (q.clone(), q.clone()); // two producers (in two processes, typically)
    /// a.put(1)?;
    /// b.put(2)?;
    /// a.close();
    /// drop(b); // a producer that goes counts as closed
    /// assert_eq!(q.get()?, 1);
    /// assert_eq!(q.get()?, 2);
    /// assert!(q.get().unwrap_err().is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn auto_shutdown(mut self) -> Self {
        self.auto_shutdown = true;
        self
    }

    /// Creates the queue for items of type `T`, encoded with postcard.
    pub fn create(self) -> Result<ShmQueue<T>, ShmError> {
        self.create_with_codec(Postcard)
    }

    /// Creates the queue for items of type `T`, encoded with `codec`.
    pub fn create_with_codec<C: Codec>(self, codec: C) -> Result<ShmQueue<T, C>, ShmError> {
        let name = self.name.unwrap_or_else(|| anonymous_name("q"));
        let ring = Ring::create(
            &name,
            self.ring_bytes,
            self.max_items,
            self.auto_shutdown,
            fingerprint::<T, C>(),
        )?;
        tracing::debug!(
            queue = name.as_str(),
            ring_bytes = ring.capacity_bytes(),
            "created shared-memory queue"
        );
        Ok(ShmQueue::from_raw(RawQueue::new(ring), codec, self.spin))
    }
}

impl<T: Serialize + DeserializeOwned> ShmQueue<T> {
    /// Creates a queue with a fresh anonymous name and default options.
    pub fn new() -> Result<Self, ShmError> {
        Self::builder().create()
    }

    /// Creates a queue called `name` with default options; fails if it exists.
    pub fn create(name: &str) -> Result<Self, ShmError> {
        Self::builder().name(name).create()
    }

    /// Options for a new queue.
    pub fn builder() -> ShmQueueBuilder<T> {
        ShmQueueBuilder::default()
    }

    /// Opens the queue called `name`, created by this or another process for the same item
    /// type.
    pub fn open(name: &str) -> Result<Self, ShmError> {
        Self::open_with_codec(name, Postcard)
    }
}

impl<T: Serialize + DeserializeOwned, C: Codec> ShmQueue<T, C> {
    /// Opens the queue called `name` whose items are encoded with `codec`.
    pub fn open_with_codec(name: &str, codec: C) -> Result<Self, ShmError> {
        let ring = Ring::open(name, fingerprint::<T, C>(), std::any::type_name::<T>())?;
        Ok(Self::from_raw(RawQueue::new(ring), codec, DEFAULT_SPIN))
    }
}

impl<T, C: Codec> ShmQueue<T, C> {
    fn from_raw(raw: RawQueue, codec: C, spin: Duration) -> Self {
        ShmQueue {
            raw: Arc::new(raw),
            codec,
            spin,
            state: AtomicU8::new(0),
            _items: PhantomData,
        }
    }

    /// Before a put: fails if this handle is closed; counts it as a producer on its first put.
    /// One relaxed load once the handle has put.
    #[inline]
    fn before_put(&self) -> Result<(), ()> {
        match self.state.load(Ordering::Relaxed) {
            HANDLE_PUT => Ok(()),
            _ => self.first_put(),
        }
    }

    #[cold]
    fn first_put(&self) -> Result<(), ()> {
        match self
            .state
            .compare_exchange(0, HANDLE_PUT, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                if self.raw.ring.auto_shutdown() && !self.raw.ring.register_producer() {
                    tracing::warn!(
                        queue = self.name(),
                        "this process is not in the attach table: its producers are not \
                         counted for auto_shutdown"
                    );
                }
                Ok(())
            }
            Err(s) if s & HANDLE_CLOSED != 0 => Err(()),
            // Another thread's put on this handle registered it.
            Err(_) => Ok(()),
        }
    }

    /// Closes this handle: later puts through it fail. If it was a producer of an
    /// `auto_shutdown` queue and this mapping's last, the queue shuts down when no producer
    /// is left anywhere.
    fn close_handle(&self) {
        let before = self.state.fetch_or(HANDLE_CLOSED, Ordering::AcqRel);
        if before == HANDLE_PUT
            && self.raw.ring.auto_shutdown()
            && self.raw.ring.deregister_producer()
        {
            self.raw.shutdown_if_producers_done();
        }
    }

    /// [`Channel::shutdown`], with the error if the queue's lock could not be taken (which
    /// [`Channel::shutdown`] can only log): shuts the queue down for every handle in every
    /// process (Python 3.13's `Queue.shutdown(immediate)`). With `immediate`, the items left
    /// are discarded (their out-of-line files removed) and counted as done for
    /// [`join`](conveyor_core::Joinable::join).
    pub fn try_shutdown(&self, immediate: bool) -> Result<(), ShmError> {
        self.raw
            .shutdown(immediate)
            .map_err(|e| ShmError::io(self.name(), e))
    }

    /// The number of items in the queue (Python's `qsize()`), approximate while other
    /// processes put and get. The segment always answers, so this is a plain `usize`;
    /// [`QueueInfo::len`] returns the same value in `Ok`.
    pub fn len(&self) -> usize {
        self.raw.ring.len_hint()
    }

    /// Whether the queue holds no item (Python's `empty()`), approximate as [`len`](Self::len).
    pub fn is_empty(&self) -> bool {
        self.raw.ring.len_hint() == 0
    }

    /// Whether a put would block now (Python's `full()`), approximate as [`len`](Self::len).
    pub fn is_full(&self) -> bool {
        self.raw.ring.full_hint()
    }

    /// The most items the queue holds, or `None` if only its ring's bytes bound it.
    pub fn capacity(&self) -> Option<usize> {
        self.raw.ring.max_items()
    }

    /// Closes this handle for puts (Python's `multiprocessing.Queue.close()`): later puts
    /// through it fail with `Closed`; other handles, clones and processes go on. On a queue
    /// built with `auto_shutdown`, the last producer handle closing shuts the queue down.
    /// Closing twice is a no-op. (The same as [`Channel::close`], which returns `Ok(())`.)
    pub fn close(&self) {
        self.close_handle();
    }

    /// Whether the queue has been shut down (by any process, or by `auto_shutdown`).
    pub fn is_shutdown(&self) -> bool {
        self.raw.is_closed()
    }

    /// The segment's name: what another process passes to [`ShmQueue::open`].
    pub fn name(&self) -> &str {
        self.raw.ring.name()
    }

    /// This handle with another spin time before sleeping (zero: sleep at once).
    pub fn with_spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// The ring's size in bytes.
    pub fn ring_bytes(&self) -> usize {
        self.raw.ring.capacity_bytes()
    }

    /// The largest message stored in the ring itself; larger ones travel out of line.
    pub fn inline_max(&self) -> usize {
        self.raw.ring.inline_max()
    }

    /// How many times a process died holding the queue's lock and the queue was repaired.
    pub fn recoveries(&self) -> u64 {
        self.raw.ring.recoveries()
    }

    /// Whether puts through this handle fail with `Closed`: it was [closed](Channel::close),
    /// or the queue was [shut down](Channel::shutdown).
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Relaxed) & HANDLE_CLOSED != 0 || self.raw.is_closed()
    }

    /// Removes the segment's name now, as its creator may: handles already open keep working
    /// (large messages in flight, which travel in files of their own, stay deliverable), new
    /// `open`s fail. Normally the last handle to go does this.
    pub fn unlink(&self) -> Result<(), ShmError> {
        self.raw
            .ring
            .segment()
            .unlink()
            .map_err(|e| ShmError::io(self.name(), e))
    }

    /// Puts raw bytes (no codec), blocking while the queue is full.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(), PutError<()>> {
        self.put_bytes_deadline(bytes, Deadline::Never)
    }

    /// Puts raw bytes if there is room now.
    pub fn try_put_bytes(&self, bytes: &[u8]) -> Result<(), PutError<()>> {
        self.put_bytes_deadline(bytes, Deadline::Now)
    }

    /// Puts raw bytes, waiting at most `timeout` for room.
    pub fn put_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), PutError<()>> {
        self.put_bytes_deadline(bytes, Deadline::after(timeout))
    }

    /// Takes the next message's raw bytes, blocking while the queue is empty.
    pub fn get_bytes(&self) -> Result<Vec<u8>, GetError> {
        let mut out = Vec::new();
        self.raw.get(&mut out, Deadline::Never, self.spin)?;
        Ok(out)
    }

    /// Takes the next message's raw bytes if there is one now.
    pub fn try_get_bytes(&self) -> Result<Vec<u8>, GetError> {
        let mut out = Vec::new();
        self.raw.get(&mut out, Deadline::Now, self.spin)?;
        Ok(out)
    }

    /// Takes the next message's raw bytes, waiting at most `timeout`.
    pub fn get_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, GetError> {
        let mut out = Vec::new();
        self.raw
            .get(&mut out, Deadline::after(timeout), self.spin)?;
        Ok(out)
    }

    /// Takes the next message's raw bytes into `out` (replacing its contents), blocking while
    /// the queue is empty: reuses `out`'s allocation.
    pub fn get_bytes_into(&self, out: &mut Vec<u8>) -> Result<(), GetError> {
        self.raw.get(out, Deadline::Never, self.spin)
    }

    /// Takes the next message's raw bytes into `out` (replacing its contents) if there is one
    /// now: [`GetError::Empty`] if not, [`GetError::Closed`] once the queue is shut down and
    /// drained. Reuses `out`'s allocation.
    pub fn try_get_bytes_into(&self, out: &mut Vec<u8>) -> Result<(), GetError> {
        self.raw.get(out, Deadline::Now, self.spin)
    }

    /// Takes the next message, if there is one now, and hands its raw bytes to `f`: in place
    /// in the ring (no copy) for a message of up to 64 KiB, copied out first for a larger one.
    /// The message is consumed whatever `f` does. Errors as
    /// [`try_get_bytes_into`](Self::try_get_bytes_into).
    pub fn try_get_bytes_with<R>(&self, f: impl Fn(&[u8]) -> R) -> Result<R, GetError> {
        self.raw.get_map(Deadline::Now, self.spin, f)
    }

    /// Puts the concatenation of `parts` as one message, waiting at most `timeout` for room
    /// (`None`: as long as it takes). When the message fits in the ring now, the parts are
    /// copied straight into it (so a caller adds a header or a trailer to a payload without
    /// copying the payload first); otherwise they are joined in a scratch buffer and put as
    /// [`put_bytes`](Self::put_bytes) does.
    pub fn put_bytes_parts(
        &self,
        parts: &[&[u8]],
        timeout: Option<Duration>,
    ) -> Result<(), PutError<()>> {
        if self.before_put().is_err() {
            return Err(PutError::Closed(()));
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let deadline = match timeout {
            None => Deadline::Never,
            Some(t) => Deadline::after(t),
        };
        if total <= crate::raw::IN_PLACE_MAX {
            let in_place = self.raw.try_put_in_place(deadline, |slice: &mut [u8]| {
                if slice.len() < total {
                    return Ok::<_, std::convert::Infallible>(None);
                }
                let mut at = 0;
                for p in parts {
                    slice[at..at + p.len()].copy_from_slice(p);
                    at += p.len();
                }
                Ok(Some(total))
            });
            match in_place {
                Ok(Ok(true)) => return Ok(()),
                Ok(Ok(false)) => {}
                Ok(Err(never)) => match never {},
                Err(e) => return Err(raw_to_put_error(e, ())),
            }
        }
        with_scratch(|buf| {
            buf.clear();
            for p in parts {
                buf.extend_from_slice(p);
            }
            self.raw
                .put(buf, deadline, self.spin)
                .map_err(|e| raw_to_put_error(e, ()))
        })
    }

    /// Runs `f` while holding both of the queue's locks. Only for crash tests: a child calls
    /// it and is killed inside `f`.
    #[doc(hidden)]
    pub fn __hold_lock_for_tests<R>(&self, f: impl FnOnce() -> R) -> R {
        let _put = self.raw.ring.lock(crate::ring::Side::Put);
        let _get = self.raw.ring.lock(crate::ring::Side::Get);
        f()
    }

    fn put_bytes_deadline(&self, bytes: &[u8], deadline: Deadline) -> Result<(), PutError<()>> {
        if self.before_put().is_err() {
            return Err(PutError::Closed(()));
        }
        self.raw
            .put(bytes, deadline, self.spin)
            .map_err(|e| raw_to_put_error(e, ()))
    }
}

fn raw_to_put_error<T>(e: RawPutError, item: T) -> PutError<T> {
    match e {
        RawPutError::Full => PutError::Full(item),
        RawPutError::Timeout => PutError::Timeout(item),
        RawPutError::Closed => PutError::Closed(item),
        RawPutError::TooLarge { size, max } => PutError::TooLarge { item, size, max },
        RawPutError::Io(source) => PutError::Io { item, source },
    }
}

impl<T: Serialize + DeserializeOwned, C: Codec> ShmQueue<T, C> {
    /// Puts `*item`, encoded straight from the reference (no clone), blocking while full.
    pub fn put_ref(&self, item: &T) -> Result<(), PutError<()>> {
        self.put_ref_deadline(item, Deadline::Never)
    }

    /// Puts `*item` if there is room now.
    pub fn try_put_ref(&self, item: &T) -> Result<(), PutError<()>> {
        self.put_ref_deadline(item, Deadline::Now)
    }

    /// Puts `*item`, waiting at most `timeout` for room.
    pub fn put_ref_timeout(&self, item: &T, timeout: Duration) -> Result<(), PutError<()>> {
        self.put_ref_deadline(item, Deadline::after(timeout))
    }

    #[inline]
    fn put_ref_deadline(&self, item: &T, deadline: Deadline) -> Result<(), PutError<()>> {
        self.put_encoded(item, deadline).map_err(|e| e.map(|_| ()))
    }

    /// The put path shared by `put` and `put_ref`: encode straight into the ring when the
    /// item fits at the tail now (one copy), else through a scratch buffer (which also learns
    /// the size, for waiting or for out-of-line delivery).
    #[inline]
    fn put_encoded(&self, item: &T, deadline: Deadline) -> Result<(), PutError<()>> {
        if self.before_put().is_err() {
            return Err(PutError::Closed(()));
        }
        match self
            .raw
            .try_put_in_place(deadline, |slice| self.codec.encode_to_slice(item, slice))
        {
            Ok(Ok(true)) => return Ok(()),
            Ok(Ok(false)) => {}
            Ok(Err(source)) => return Err(PutError::Codec { item: (), source }),
            Err(e) => return Err(raw_to_put_error(e, ())),
        }
        with_scratch(|buf| {
            let n = match encode_into(&self.codec, item, buf) {
                Ok(n) => n,
                Err(source) => return Err(PutError::Codec { item: (), source }),
            };
            self.raw
                .put(&buf[..n], deadline, self.spin)
                .map_err(|e| raw_to_put_error(e, ()))
        })
    }

    fn put_deadline(&self, item: T, deadline: Deadline) -> Result<(), PutError<T>> {
        match self.put_encoded(&item, deadline) {
            Ok(()) => Ok(()),
            Err(e) => Err(e.map(|()| item)),
        }
    }

    /// Takes the next item, decoded in place in the ring under the get mutex. The record is
    /// consumed whatever the decoder does: a decode that fails returns `GetError::Codec`, and
    /// one that panics unwinds through this call, in both cases with the record already taken
    /// from the queue, the lock free and the ring consistent, so the queue goes on for
    /// everyone (as Python's `Queue.get` consumes an unpicklable message and raises).
    #[inline]
    fn get_deadline(&self, deadline: Deadline) -> Result<T, GetError> {
        self.raw
            .get_map(deadline, self.spin, |bytes| self.codec.decode(bytes))?
            .map_err(GetError::Codec)
    }
}

impl<T: Serialize + DeserializeOwned, C: Codec> Channel<T> for ShmQueue<T, C> {
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, Deadline::Never)
    }

    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, Deadline::Now)
    }

    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_deadline(item, Deadline::after(timeout))
    }

    fn get(&self) -> Result<T, GetError> {
        self.get_deadline(Deadline::Never)
    }

    fn try_get(&self) -> Result<T, GetError> {
        self.get_deadline(Deadline::Now)
    }

    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_deadline(Deadline::after(timeout))
    }

    /// Fails only if the queue's lock in the segment cannot be taken (see
    /// [`try_shutdown`](ShmQueue::try_shutdown), whose [`ShmError`] is the source).
    fn shutdown(&self, immediate: bool) -> Result<(), Unavailable> {
        self.try_shutdown(immediate).map_err(|e| {
            Unavailable::new(
                UnavailableKind::Failed,
                "shutdown",
                format!("shared-memory queue `{}`", self.name()),
                e,
            )
        })
    }

    /// Never fails.
    fn close(&self) -> Result<(), Unavailable> {
        self.close_handle();
        Ok(())
    }
}

/// Never fails: the answers come from the shared segment. The inherent methods of the same
/// names return the plain values.
impl<T, C: Codec> QueueInfo for ShmQueue<T, C> {
    fn len(&self) -> Result<usize, Unavailable> {
        Ok(ShmQueue::len(self))
    }

    fn is_empty(&self) -> Result<bool, Unavailable> {
        Ok(ShmQueue::is_empty(self))
    }

    fn is_full(&self) -> Result<bool, Unavailable> {
        Ok(ShmQueue::is_full(self))
    }

    fn capacity(&self) -> Result<Option<usize>, Unavailable> {
        Ok(ShmQueue::capacity(self))
    }
}

/// A queue handle travels (for example into a conveyor-process child's arguments) as its
/// segment's name; deserialising opens the segment, checking the item type.
impl<T, C: Codec> Serialize for ShmQueue<T, C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.name().serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned, C: Codec + Default> Deserialize<'de> for ShmQueue<T, C> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ShmQueue::open_with_codec(&name, C::default()).map_err(serde::de::Error::custom)
    }
}
