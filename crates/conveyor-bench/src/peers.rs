//! Thin [`Channel`] adapters over the Rust peers: crossbeam-channel, std `mpsc` and flume.
//!
//! Each adapter keeps both ends of the peer's channel in one cloneable handle, so the same
//! workload code drives the peer and conveyor's queues. The adapters add one relaxed atomic
//! load per put (the `close` flag) and nothing else on the hot path.
//!
//! The peers have no shutdown that wakes a blocked receiver while senders live (their channels
//! close when the last sender drops), so `shutdown` here refuses later puts and makes gets on
//! an empty channel return `Closed`, but a get already blocked stays blocked; `shutdown(true)`
//! also drains and drops what is left (the peers have no task count). They have no per-handle
//! close either: on the thread peers `close` is `shutdown(false)` for every handle (the
//! workloads close only once every producer is done); on the process peers (ipmpsc,
//! ipc-channel) the flag belongs to the adapter in its process, so `close` is per handle and
//! `shutdown` reaches no other process. The workloads rely on none of these wake-ups.
//!
//! ```
//! use conveyor_bench::peers::CrossbeamChannel;
//! use conveyor_core::Channel;
//!
//! let ch = CrossbeamChannel::bounded(4);
//! ch.put(1u32).unwrap();
//! assert_eq!(ch.get().unwrap(), 1);
//! ch.shutdown(false);
//! assert!(ch.put(2).unwrap_err().is_closed());
//! assert!(ch.try_get().unwrap_err().is_closed());
//! ```

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use conveyor_core::{Channel, Codec, GetError, PutError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The shared close flag of an adapter.
#[derive(Debug, Default)]
struct Closed(AtomicBool);

impl Closed {
    #[inline]
    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self) {
        self.0.store(true, Ordering::Release)
    }
}

/// crossbeam-channel's MPMC channel behind the [`Channel`] trait.
#[derive(Debug)]
pub struct CrossbeamChannel<T> {
    tx: crossbeam_channel::Sender<T>,
    rx: crossbeam_channel::Receiver<T>,
    closed: Arc<Closed>,
}

impl<T> Clone for CrossbeamChannel<T> {
    fn clone(&self) -> Self {
        CrossbeamChannel {
            tx: self.tx.clone(),
            rx: self.rx.clone(),
            closed: self.closed.clone(),
        }
    }
}

impl<T> CrossbeamChannel<T> {
    /// A channel holding at most `cap` items (`crossbeam_channel::bounded`).
    pub fn bounded(cap: usize) -> Self {
        Self::from_parts(crossbeam_channel::bounded(cap))
    }

    /// A channel without a bound (`crossbeam_channel::unbounded`).
    pub fn unbounded() -> Self {
        Self::from_parts(crossbeam_channel::unbounded())
    }

    fn from_parts(
        (tx, rx): (crossbeam_channel::Sender<T>, crossbeam_channel::Receiver<T>),
    ) -> Self {
        CrossbeamChannel {
            tx,
            rx,
            closed: Arc::default(),
        }
    }
}

impl<T> Channel<T> for CrossbeamChannel<T> {
    #[inline]
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        self.tx.send(item).map_err(|e| PutError::Closed(e.0))
    }

    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        self.tx.try_send(item).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(v) => PutError::Full(v),
            crossbeam_channel::TrySendError::Disconnected(v) => PutError::Closed(v),
        })
    }

    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        self.tx.send_timeout(item, timeout).map_err(|e| match e {
            crossbeam_channel::SendTimeoutError::Timeout(v) => PutError::Timeout(v),
            crossbeam_channel::SendTimeoutError::Disconnected(v) => PutError::Closed(v),
        })
    }

    #[inline]
    fn get(&self) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        self.rx.recv().map_err(|_| GetError::Closed)
    }

    fn try_get(&self) -> Result<T, GetError> {
        self.rx.try_recv().map_err(|e| match e {
            crossbeam_channel::TryRecvError::Empty if !self.closed.get() => GetError::Empty,
            _ => GetError::Closed,
        })
    }

    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => GetError::Timeout,
            crossbeam_channel::RecvTimeoutError::Disconnected => GetError::Closed,
        })
    }

    fn shutdown(&self, immediate: bool) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        if immediate {
            while self.try_get().is_ok() {}
        }
        Ok(())
    }

    fn close(&self) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        Ok(())
    }
}

/// flume's MPMC channel behind the [`Channel`] trait.
#[derive(Debug)]
pub struct FlumeChannel<T> {
    tx: flume::Sender<T>,
    rx: flume::Receiver<T>,
    closed: Arc<Closed>,
}

impl<T> Clone for FlumeChannel<T> {
    fn clone(&self) -> Self {
        FlumeChannel {
            tx: self.tx.clone(),
            rx: self.rx.clone(),
            closed: self.closed.clone(),
        }
    }
}

impl<T> FlumeChannel<T> {
    /// A channel holding at most `cap` items (`flume::bounded`).
    pub fn bounded(cap: usize) -> Self {
        let (tx, rx) = flume::bounded(cap);
        FlumeChannel {
            tx,
            rx,
            closed: Arc::default(),
        }
    }

    /// A channel without a bound (`flume::unbounded`).
    pub fn unbounded() -> Self {
        let (tx, rx) = flume::unbounded();
        FlumeChannel {
            tx,
            rx,
            closed: Arc::default(),
        }
    }
}

impl<T> Channel<T> for FlumeChannel<T> {
    #[inline]
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        self.tx.send(item).map_err(|e| PutError::Closed(e.0))
    }

    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        self.tx.try_send(item).map_err(|e| match e {
            flume::TrySendError::Full(v) => PutError::Full(v),
            flume::TrySendError::Disconnected(v) => PutError::Closed(v),
        })
    }

    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        self.tx.send_timeout(item, timeout).map_err(|e| match e {
            flume::SendTimeoutError::Timeout(v) => PutError::Timeout(v),
            flume::SendTimeoutError::Disconnected(v) => PutError::Closed(v),
        })
    }

    #[inline]
    fn get(&self) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        self.rx.recv().map_err(|_| GetError::Closed)
    }

    fn try_get(&self) -> Result<T, GetError> {
        self.rx.try_recv().map_err(|e| match e {
            flume::TryRecvError::Empty if !self.closed.get() => GetError::Empty,
            _ => GetError::Closed,
        })
    }

    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            flume::RecvTimeoutError::Timeout => GetError::Timeout,
            flume::RecvTimeoutError::Disconnected => GetError::Closed,
        })
    }

    fn shutdown(&self, immediate: bool) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        if immediate {
            while self.try_get().is_ok() {}
        }
        Ok(())
    }

    fn close(&self) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        Ok(())
    }
}

/// std's `mpsc::sync_channel` (bounded) or `mpsc::channel` behind the [`Channel`] trait.
///
/// std's receiver is single-consumer, so consumers share it behind a mutex: with several
/// consumers, one receives while the others wait for the lock. That is how a program shares an
/// `mpsc::Receiver`, and the 4 producers/4 consumers figure shows its cost.
#[derive(Debug)]
pub struct MpscChannel<T> {
    tx: MpscSender<T>,
    rx: Arc<Mutex<mpsc::Receiver<T>>>,
    closed: Arc<Closed>,
}

#[derive(Debug)]
enum MpscSender<T> {
    Bounded(mpsc::SyncSender<T>),
    Unbounded(mpsc::Sender<T>),
}

impl<T> Clone for MpscSender<T> {
    fn clone(&self) -> Self {
        match self {
            MpscSender::Bounded(s) => MpscSender::Bounded(s.clone()),
            MpscSender::Unbounded(s) => MpscSender::Unbounded(s.clone()),
        }
    }
}

impl<T> Clone for MpscChannel<T> {
    fn clone(&self) -> Self {
        MpscChannel {
            tx: self.tx.clone(),
            rx: self.rx.clone(),
            closed: self.closed.clone(),
        }
    }
}

impl<T> MpscChannel<T> {
    /// A channel holding at most `cap` items (`mpsc::sync_channel`).
    pub fn bounded(cap: usize) -> Self {
        let (tx, rx) = mpsc::sync_channel(cap);
        MpscChannel {
            tx: MpscSender::Bounded(tx),
            rx: Arc::new(Mutex::new(rx)),
            closed: Arc::default(),
        }
    }

    /// A channel without a bound (`mpsc::channel`).
    pub fn unbounded() -> Self {
        let (tx, rx) = mpsc::channel();
        MpscChannel {
            tx: MpscSender::Unbounded(tx),
            rx: Arc::new(Mutex::new(rx)),
            closed: Arc::default(),
        }
    }

    fn receiver(&self) -> std::sync::MutexGuard<'_, mpsc::Receiver<T>> {
        // A consumer that panicked while holding the lock left the receiver intact.
        self.rx.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T> Channel<T> for MpscChannel<T> {
    #[inline]
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        match &self.tx {
            MpscSender::Bounded(s) => s.send(item).map_err(|e| PutError::Closed(e.0)),
            MpscSender::Unbounded(s) => s.send(item).map_err(|e| PutError::Closed(e.0)),
        }
    }

    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        match &self.tx {
            MpscSender::Bounded(s) => s.try_send(item).map_err(|e| match e {
                mpsc::TrySendError::Full(v) => PutError::Full(v),
                mpsc::TrySendError::Disconnected(v) => PutError::Closed(v),
            }),
            MpscSender::Unbounded(s) => s.send(item).map_err(|e| PutError::Closed(e.0)),
        }
    }

    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        // std has no stable send_timeout: retry try_put, yielding, until the deadline.
        let deadline = Instant::now() + timeout;
        let mut item = item;
        loop {
            match self.try_put(item) {
                Err(PutError::Full(v)) => {
                    if Instant::now() >= deadline {
                        return Err(PutError::Timeout(v));
                    }
                    item = v;
                    std::thread::yield_now();
                }
                other => return other,
            }
        }
    }

    #[inline]
    fn get(&self) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        self.receiver().recv().map_err(|_| GetError::Closed)
    }

    fn try_get(&self) -> Result<T, GetError> {
        self.receiver().try_recv().map_err(|e| match e {
            mpsc::TryRecvError::Empty if !self.closed.get() => GetError::Empty,
            _ => GetError::Closed,
        })
    }

    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        self.receiver().recv_timeout(timeout).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => GetError::Timeout,
            mpsc::RecvTimeoutError::Disconnected => GetError::Closed,
        })
    }

    fn shutdown(&self, immediate: bool) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        if immediate {
            while self.try_get().is_ok() {}
        }
        Ok(())
    }

    fn close(&self) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        Ok(())
    }
}

/// Two one-way channels seen as one duplex end: puts go to `tx`, gets come from `rx`.
///
/// The ping-pong workload talks to its echo through two duplex ends; a pipe's `Connection` is
/// one already, and two queues become one with this adapter.
#[derive(Debug, Clone)]
pub struct Duplex<Tx, Rx> {
    tx: Tx,
    rx: Rx,
}

impl<Tx, Rx> Duplex<Tx, Rx> {
    /// An end that puts into `tx` and gets from `rx`.
    pub fn new(tx: Tx, rx: Rx) -> Self {
        Duplex { tx, rx }
    }
}

impl<T, Tx: Channel<T>, Rx: Channel<T>> Channel<T> for Duplex<Tx, Rx> {
    #[inline]
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.tx.put(item)
    }
    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.tx.try_put(item)
    }
    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.tx.put_timeout(item, timeout)
    }
    #[inline]
    fn get(&self) -> Result<T, GetError> {
        self.rx.get()
    }
    fn try_get(&self) -> Result<T, GetError> {
        self.rx.try_get()
    }
    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.rx.get_timeout(timeout)
    }
    fn shutdown(&self, immediate: bool) -> Result<(), conveyor_core::Unavailable> {
        self.tx.shutdown(immediate)
    }
    fn close(&self) -> Result<(), conveyor_core::Unavailable> {
        self.tx.close()
    }
}

/// ipmpsc's shared-memory ring (one receiving process, many sending ones) behind the
/// [`Channel`] trait: a process peer of conveyor's `ShmQueue`.
///
/// An end opens the ring file by path and sends, receives, or both. Items are encoded with
/// bincode by ipmpsc. The ring is bounded in bytes, not items; a get with no receiving end, or
/// a put with no sending end, is an `Io` error. `close` is this adapter's flag only (ipmpsc has
/// no close): later puts fail and gets on an empty ring return `Closed`.
pub struct IpmpscChannel {
    tx: Option<ipmpsc::Sender>,
    rx: Option<ipmpsc::Receiver>,
    closed: Closed,
}

impl fmt::Debug for IpmpscChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpmpscChannel")
            .field("sends", &self.tx.is_some())
            .field("receives", &self.rx.is_some())
            .finish()
    }
}

fn ipmpsc_io(e: ipmpsc::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl IpmpscChannel {
    /// Creates a ring of `bytes` bytes in a temporary file; returns its path and the ring,
    /// which deletes the file when dropped (keep it until every end has opened it).
    pub fn create_temp(bytes: u32) -> io::Result<(String, ipmpsc::SharedRingBuffer)> {
        ipmpsc::SharedRingBuffer::create_temp(bytes).map_err(ipmpsc_io)
    }

    /// Opens the ring at `path` to send (`send`), receive (`recv`) or both.
    pub fn open(path: &str, send: bool, recv: bool) -> io::Result<Self> {
        let ring = |p: &str| ipmpsc::SharedRingBuffer::open(p).map_err(ipmpsc_io);
        Ok(IpmpscChannel {
            tx: if send {
                Some(ipmpsc::Sender::new(ring(path)?))
            } else {
                None
            },
            rx: if recv {
                Some(ipmpsc::Receiver::new(ring(path)?))
            } else {
                None
            },
            closed: Closed::default(),
        })
    }

    fn sender<T>(&self, item: T) -> Result<(&ipmpsc::Sender, T), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        match &self.tx {
            Some(tx) => Ok((tx, item)),
            None => Err(PutError::Io {
                item,
                source: io::Error::other("this ipmpsc end does not send"),
            }),
        }
    }

    fn receiver(&self) -> Result<&ipmpsc::Receiver, GetError> {
        self.rx
            .as_ref()
            .ok_or_else(|| GetError::Io(io::Error::other("this ipmpsc end does not receive")))
    }
}

impl<T: Serialize + DeserializeOwned> Channel<T> for IpmpscChannel {
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        let (tx, item) = self.sender(item)?;
        match tx.send(&item) {
            Ok(()) => Ok(()),
            Err(e) => Err(PutError::Io {
                item,
                source: ipmpsc_io(e),
            }),
        }
    }

    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_timeout(item, Duration::ZERO).map_err(|e| match e {
            PutError::Timeout(item) => PutError::Full(item),
            other => other,
        })
    }

    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        let (tx, item) = self.sender(item)?;
        match tx.send_timeout(&item, timeout) {
            Ok(true) => Ok(()),
            Ok(false) => Err(PutError::Timeout(item)),
            Err(e) => Err(PutError::Io {
                item,
                source: ipmpsc_io(e),
            }),
        }
    }

    fn get(&self) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        self.receiver()?
            .recv()
            .map_err(|e| GetError::Io(ipmpsc_io(e)))
    }

    fn try_get(&self) -> Result<T, GetError> {
        match self.receiver()?.try_recv() {
            Ok(Some(v)) => Ok(v),
            Ok(None) if self.closed.get() => Err(GetError::Closed),
            Ok(None) => Err(GetError::Empty),
            Err(e) => Err(GetError::Io(ipmpsc_io(e))),
        }
    }

    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        match self.receiver()?.recv_timeout(timeout) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(GetError::Timeout),
            Err(e) => Err(GetError::Io(ipmpsc_io(e))),
        }
    }

    fn shutdown(&self, _immediate: bool) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        Ok(())
    }

    fn close(&self) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        Ok(())
    }
}

/// ipc-channel's `IpcSender`/`IpcReceiver` (Servo's inter-process channel over Unix sockets)
/// behind the [`Channel`] trait: a process peer of conveyor's pipe and queues.
///
/// An end holds a sender, a receiver, or both. Items are encoded with bincode by ipc-channel.
/// Its `send` consumes the item, so the adapter sends a clone to be able to hand the item back
/// on failure (for the benchmark's messages that is a reference-count increment). ipc-channel
/// has no capacity and no close: `try_put` and `put_timeout` send at once, and `close` is this
/// adapter's flag.
pub struct IpcChannelEnd<T> {
    tx: Option<ipc_channel::ipc::IpcSender<T>>,
    rx: Option<ipc_channel::ipc::IpcReceiver<T>>,
    closed: Closed,
}

impl<T> fmt::Debug for IpcChannelEnd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpcChannelEnd")
            .field("sends", &self.tx.is_some())
            .field("receives", &self.rx.is_some())
            .finish()
    }
}

impl<T> IpcChannelEnd<T> {
    /// An end from an optional sender and an optional receiver.
    pub fn new(
        tx: Option<ipc_channel::ipc::IpcSender<T>>,
        rx: Option<ipc_channel::ipc::IpcReceiver<T>>,
    ) -> Self {
        IpcChannelEnd {
            tx,
            rx,
            closed: Closed::default(),
        }
    }
}

fn ipc_get_error(e: ipc_channel::ipc::IpcError) -> GetError {
    match e {
        ipc_channel::ipc::IpcError::Disconnected => GetError::Closed,
        other => GetError::Io(io::Error::other(other.to_string())),
    }
}

impl<T> Channel<T> for IpcChannelEnd<T>
where
    T: Serialize + DeserializeOwned + Clone,
{
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        let Some(tx) = &self.tx else {
            return Err(PutError::Io {
                item,
                source: io::Error::other("this ipc-channel end does not send"),
            });
        };
        match tx.send(item.clone()) {
            Ok(()) => Ok(()),
            Err(e) => Err(PutError::Io {
                item,
                source: io::Error::other(e.to_string()),
            }),
        }
    }

    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put(item)
    }

    fn put_timeout(&self, item: T, _timeout: Duration) -> Result<(), PutError<T>> {
        self.put(item)
    }

    fn get(&self) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        self.receiver()?.recv().map_err(ipc_get_error)
    }

    fn try_get(&self) -> Result<T, GetError> {
        match self.receiver()?.try_recv() {
            Ok(v) => Ok(v),
            Err(ipc_channel::ipc::TryRecvError::Empty) if self.closed.get() => {
                Err(GetError::Closed)
            }
            Err(ipc_channel::ipc::TryRecvError::Empty) => Err(GetError::Empty),
            Err(ipc_channel::ipc::TryRecvError::IpcError(e)) => Err(ipc_get_error(e)),
        }
    }

    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        if self.closed.get() {
            return self.try_get();
        }
        match self.receiver()?.try_recv_timeout(timeout) {
            Ok(v) => Ok(v),
            Err(ipc_channel::ipc::TryRecvError::Empty) => Err(GetError::Timeout),
            Err(ipc_channel::ipc::TryRecvError::IpcError(e)) => Err(ipc_get_error(e)),
        }
    }

    fn shutdown(&self, _immediate: bool) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        Ok(())
    }

    fn close(&self) -> Result<(), conveyor_core::Unavailable> {
        self.closed.set();
        Ok(())
    }
}

impl<T> IpcChannelEnd<T> {
    fn receiver(&self) -> Result<&ipc_channel::ipc::IpcReceiver<T>, GetError> {
        self.rx
            .as_ref()
            .ok_or_else(|| GetError::Io(io::Error::other("this ipc-channel end does not receive")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract<C: Channel<u32> + Clone + Send + 'static>(ch: C) {
        assert!(ch.try_get().unwrap_err().is_empty());
        assert!(ch
            .get_timeout(Duration::from_millis(1))
            .unwrap_err()
            .is_timeout());
        ch.put(1).unwrap();
        ch.try_put(2).unwrap();
        assert!(ch.try_put(3).unwrap_err().is_full());
        let e = ch.put_timeout(4, Duration::from_millis(1)).unwrap_err();
        assert!(e.is_timeout());
        assert_eq!(e.into_inner(), 4);
        let other = ch.clone();
        let h = std::thread::spawn(move || (other.get().unwrap(), other.get().unwrap()));
        assert_eq!(h.join().unwrap(), (1, 2));
        ch.put(5).unwrap();
        ch.shutdown(false).unwrap();
        assert!(ch.put(6).unwrap_err().is_closed());
        assert_eq!(ch.get().unwrap(), 5);
        assert!(ch.get().unwrap_err().is_closed());
        assert!(ch.try_get().unwrap_err().is_closed());
    }

    #[test]
    fn crossbeam_keeps_the_contract() {
        contract(CrossbeamChannel::bounded(2));
    }

    #[test]
    fn flume_keeps_the_contract() {
        contract(FlumeChannel::bounded(2));
    }

    #[test]
    fn mpsc_keeps_the_contract() {
        contract(MpscChannel::bounded(2));
    }

    #[test]
    fn unbounded_peers_take_many() {
        let a = CrossbeamChannel::unbounded();
        let b = FlumeChannel::unbounded();
        let c = MpscChannel::unbounded();
        for i in 0..1000u32 {
            a.try_put(i).unwrap();
            b.try_put(i).unwrap();
            c.try_put(i).unwrap();
        }
        assert_eq!(c.get().unwrap(), 0);
        assert_eq!(b.get().unwrap(), 0);
        assert_eq!(a.get().unwrap(), 0);
    }

    #[test]
    fn ipmpsc_sends_and_receives_through_its_ring() {
        let (path, _ring) = IpmpscChannel::create_temp(1 << 16).unwrap();
        let tx = IpmpscChannel::open(&path, true, false).unwrap();
        let rx = IpmpscChannel::open(&path, false, true).unwrap();
        assert!(Channel::<u32>::try_get(&rx).unwrap_err().is_empty());
        tx.put(7u32).unwrap();
        assert_eq!(Channel::<u32>::get(&rx).unwrap(), 7);
        assert!(Channel::<u32>::get(&tx).unwrap_err().is_io());
        assert!(rx.put(1u32).unwrap_err().is_io());
        Channel::<u32>::close(&tx).unwrap();
        assert!(tx.put(8u32).unwrap_err().is_closed());
        Channel::<u32>::close(&rx).unwrap();
        assert!(Channel::<u32>::get(&rx).unwrap_err().is_closed());
    }

    #[test]
    fn ipc_channel_sends_and_receives() {
        let (tx, rx) = ipc_channel::ipc::channel::<u32>().unwrap();
        let a = IpcChannelEnd::new(Some(tx), None);
        let b = IpcChannelEnd::new(None, Some(rx));
        assert!(b.try_get().unwrap_err().is_empty());
        a.put(3).unwrap();
        assert_eq!(b.get().unwrap(), 3);
        assert!(b.put(4).unwrap_err().is_io());
        assert!(a.get().unwrap_err().is_io());
        drop(a);
        assert!(b.get().unwrap_err().is_closed());
    }

    #[test]
    fn duplex_routes_puts_and_gets() {
        let ab = CrossbeamChannel::bounded(1);
        let ba = CrossbeamChannel::bounded(1);
        let a = Duplex::new(ab.clone(), ba.clone());
        let b = Duplex::new(ba, ab);
        a.put(7u32).unwrap();
        assert_eq!(b.get().unwrap(), 7);
        b.put(8).unwrap();
        assert_eq!(a.get().unwrap(), 8);
    }
}

/// The floor any framing on a socket can reach: a Unix socketpair end with 4-byte big-endian
/// length prefixes, a value encoded with postcard into a reused buffer and written with one
/// `write_all`, read with two `read_exact` calls into a reused buffer. It is what a program
/// would write by hand instead of using a pipe `Connection`, measured in the same workloads.
///
/// `try_put`/`put_timeout` and `try_get`/`get_timeout` wait for the socket with `poll`, then
/// move the whole message; `close` shuts the socket down for writing.
#[derive(Debug)]
pub struct RawFramed {
    sock: std::os::unix::net::UnixStream,
    out: Mutex<Vec<u8>>,
    inp: Mutex<Vec<u8>>,
}

impl RawFramed {
    /// Frames over `sock`.
    pub fn new(sock: std::os::unix::net::UnixStream) -> Self {
        RawFramed {
            sock,
            out: Mutex::new(Vec::new()),
            inp: Mutex::new(Vec::new()),
        }
    }

    fn ready(&self, events: libc::c_short, timeout: Duration) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let mut p = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `p` is one live pollfd for the call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r > 0)
    }
}

impl<T: Serialize + DeserializeOwned> Channel<T> for RawFramed {
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        use std::io::Write;
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.clear();
        out.extend_from_slice(&[0; 4]);
        if let Err(source) = conveyor_core::Postcard.encode(&item, &mut out) {
            return Err(PutError::Codec { item, source });
        }
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        match (&self.sock).write_all(&out) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(PutError::Closed(item)),
            Err(source) => Err(PutError::Io { item, source }),
        }
    }

    fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_timeout(item, Duration::ZERO).map_err(|e| match e {
            PutError::Timeout(item) => PutError::Full(item),
            other => other,
        })
    }

    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        match self.ready(libc::POLLOUT, timeout) {
            Ok(true) => self.put(item),
            Ok(false) => Err(PutError::Timeout(item)),
            Err(source) => Err(PutError::Io { item, source }),
        }
    }

    fn get(&self) -> Result<T, GetError> {
        use std::io::Read;
        let mut inp = self.inp.lock().unwrap_or_else(|e| e.into_inner());
        let mut h = [0u8; 4];
        match (&self.sock).read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(GetError::Closed),
            Err(e) => return Err(GetError::Io(e)),
        }
        let n = u32::from_be_bytes(h) as usize;
        inp.resize(n, 0);
        (&self.sock).read_exact(&mut inp[..n])?;
        conveyor_core::Postcard
            .decode(&inp[..n])
            .map_err(GetError::Codec)
    }

    fn try_get(&self) -> Result<T, GetError> {
        match Channel::<T>::get_timeout(self, Duration::ZERO) {
            Err(GetError::Timeout) => Err(GetError::Empty),
            other => other,
        }
    }

    fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        if !self.ready(libc::POLLIN, timeout)? {
            return Err(GetError::Timeout);
        }
        self.get()
    }

    fn shutdown(&self, _immediate: bool) -> Result<(), conveyor_core::Unavailable> {
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
        Ok(())
    }

    fn close(&self) -> Result<(), conveyor_core::Unavailable> {
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
        Ok(())
    }
}
