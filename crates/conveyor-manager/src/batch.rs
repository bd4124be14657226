//! Batches: many operations sent together, answered together.
//!
//! A round trip costs tens of microseconds; an operation on the server costs well under one.
//! A [`Batch`] collects operations, then [`run`](Batch::run) sends them in frames of up to
//! [`CALLS_PER_FRAME`] calls through the connection's request loop, pipelined (several frames
//! on the wire before the first reply is read, up to [`WINDOW`] bytes of requests in flight so
//! neither side ever blocks writing), and reads the replies. Each operation is done in order and on its own: a batch is not a
//! transaction, and one failing operation does not stop the others.
//!
//! ```
//! use conveyor_manager::Manager;
//!
//! let m = Manager::start()?;
//! let d = m.dict::<u32, u32>("squares")?;
//! let mut batch = m.batch();
//! for i in 0..1000 {
//!     batch.dict_set(&d, &i, &(i * i))?;
//! }
//! let seven = batch.dict_get(&d, &7)?;
//! let results = batch.run()?;
//! assert_eq!(results.get(seven)?, Some(49));
//! assert_eq!(d.len()?, 1000);
//! # Ok::<(), conveyor_manager::ManagerError>(())
//! ```

use std::fmt;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::Serialize;

use conveyor_core::{Codec, Postcard};

use crate::client::ManagerConnection;
pub use crate::connection::WINDOW;
use crate::error::{ManagerError, RemoteError, Result};
use crate::number::{Num, NumOp, Number};
use crate::protocol::{Blob, Call, Op, Reply, Request, Response, Wait};
use crate::proxy::{DictProxy, ListProxy, Proxy, QueueProxy, ValueProxy};

/// The most calls sent in one frame.
pub const CALLS_PER_FRAME: usize = 1024;

#[derive(Debug, Clone)]
enum BOp {
    DictGet(Range<usize>),
    DictSet(Range<usize>, Range<usize>),
    DictRemove(Range<usize>),
    DictContains(Range<usize>),
    DictNum(Range<usize>, NumOp, Num),
    ValueGet,
    ValueSet(Range<usize>),
    ValueNum(NumOp, Num),
    ListAppend(Range<usize>),
    QueuePut(Range<usize>),
    QueueGet,
}

/// An operation's result, kept until asked for.
#[derive(Debug, Clone)]
enum Outcome {
    Unit,
    Bool(bool),
    Item(Option<Vec<u8>>),
    Num(Num),
    Err(RemoteError),
    Other(String),
}

impl Outcome {
    fn from_response(r: Response<'_>) -> Outcome {
        match r {
            Response::Err(e) => Outcome::Err(e),
            Response::Ok(Reply::Unit) => Outcome::Unit,
            Response::Ok(Reply::Bool(b)) => Outcome::Bool(b),
            Response::Ok(Reply::Item(v)) => Outcome::Item(v.map(|b| b.0.to_vec())),
            Response::Ok(Reply::Num(n)) => Outcome::Num(n),
            Response::Ok(other) => Outcome::Other(format!("{other:?}")),
        }
    }
}

/// Names one operation's result in [`BatchResults`]; typed by what it yields.
pub struct Ticket<T> {
    index: usize,
    convert: fn(&Outcome) -> Result<T>,
}

impl<T> Clone for Ticket<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ticket<T> {}

impl<T> fmt::Debug for Ticket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("index", &self.index)
            .finish()
    }
}

fn mismatch(o: &Outcome) -> ManagerError {
    match o {
        Outcome::Err(e) => ManagerError::Remote(e.clone()),
        Outcome::Other(s) => ManagerError::protocol(format!("unexpected reply {s} in a batch")),
        other => ManagerError::protocol(format!("unexpected reply {other:?} in a batch")),
    }
}

fn to_unit(o: &Outcome) -> Result<()> {
    match o {
        Outcome::Unit => Ok(()),
        other => Err(mismatch(other)),
    }
}

fn to_bool(o: &Outcome) -> Result<bool> {
    match o {
        Outcome::Bool(b) => Ok(*b),
        other => Err(mismatch(other)),
    }
}

fn to_option<T: DeserializeOwned>(o: &Outcome) -> Result<Option<T>> {
    match o {
        Outcome::Item(v) => v.as_deref().map(|b| Ok(Postcard.decode(b)?)).transpose(),
        other => Err(mismatch(other)),
    }
}

fn to_value<T: DeserializeOwned>(o: &Outcome) -> Result<T> {
    match o {
        Outcome::Item(Some(b)) => Ok(Postcard.decode(b)?),
        other => Err(mismatch(other)),
    }
}

fn to_num<T: Number>(o: &Outcome) -> Result<T> {
    match o {
        Outcome::Num(n) => T::from_num(*n)
            .ok_or_else(|| ManagerError::protocol(format!("the server answered {n:?}"))),
        other => Err(mismatch(other)),
    }
}

/// Operations collected to be sent together. Made by [`ManagerConnection::batch`].
pub struct Batch<'c> {
    client: &'c ManagerConnection,
    arena: Vec<u8>,
    ops: Vec<(u64, BOp)>,
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("operations", &self.ops.len())
            .finish_non_exhaustive()
    }
}

impl<'c> Batch<'c> {
    pub(crate) fn new(client: &'c ManagerConnection) -> Self {
        Batch {
            client,
            arena: Vec::new(),
            ops: Vec::new(),
        }
    }

    fn put<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<Range<usize>> {
        let start = self.arena.len();
        if let Err(e) = Postcard.encode(v, &mut self.arena) {
            self.arena.truncate(start);
            return Err(e.into());
        }
        Ok(start..self.arena.len())
    }

    fn push<P: Proxy, T>(
        &mut self,
        proxy: &P,
        op: BOp,
        convert: fn(&Outcome) -> Result<T>,
    ) -> Result<Ticket<T>> {
        if !proxy.client().same_connection(self.client) {
            return Err(ManagerError::protocol(
                "a batch takes proxies of its own client only: rebind the proxy first",
            ));
        }
        self.ops.push((proxy.handle().id(), op));
        Ok(Ticket {
            index: self.ops.len() - 1,
            convert,
        })
    }

    /// How many operations are collected.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation is collected.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// [`DictProxy::get`] in the batch.
    pub fn dict_get<K, V>(&mut self, d: &DictProxy<K, V>, key: &K) -> Result<Ticket<Option<V>>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let k = self.put(key)?;
        self.push(d, BOp::DictGet(k), to_option::<V>)
    }

    /// [`DictProxy::set`] in the batch.
    pub fn dict_set<K, V>(&mut self, d: &DictProxy<K, V>, key: &K, value: &V) -> Result<Ticket<()>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let k = self.put(key)?;
        let v = self.put(value)?;
        self.push(d, BOp::DictSet(k, v), to_unit)
    }

    /// [`DictProxy::remove`] in the batch.
    pub fn dict_remove<K, V>(&mut self, d: &DictProxy<K, V>, key: &K) -> Result<Ticket<Option<V>>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let k = self.put(key)?;
        self.push(d, BOp::DictRemove(k), to_option::<V>)
    }

    /// [`DictProxy::contains`] in the batch.
    pub fn dict_contains<K, V>(&mut self, d: &DictProxy<K, V>, key: &K) -> Result<Ticket<bool>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let k = self.put(key)?;
        self.push(d, BOp::DictContains(k), to_bool)
    }

    /// [`DictProxy::fetch_add`] in the batch.
    pub fn dict_fetch_add<K, V>(
        &mut self,
        d: &DictProxy<K, V>,
        key: &K,
        delta: V,
    ) -> Result<Ticket<V>>
    where
        K: Serialize + DeserializeOwned,
        V: Number,
    {
        let k = self.put(key)?;
        self.push(d, BOp::DictNum(k, NumOp::Add, delta.to_num()), to_num::<V>)
    }

    /// [`ValueProxy::get`] in the batch.
    pub fn value_get<T: Serialize + DeserializeOwned>(
        &mut self,
        v: &ValueProxy<T>,
    ) -> Result<Ticket<T>> {
        self.push(v, BOp::ValueGet, to_value::<T>)
    }

    /// [`ValueProxy::set`] in the batch.
    pub fn value_set<T: Serialize + DeserializeOwned>(
        &mut self,
        v: &ValueProxy<T>,
        value: &T,
    ) -> Result<Ticket<()>> {
        let r = self.put(value)?;
        self.push(v, BOp::ValueSet(r), to_unit)
    }

    /// [`ValueProxy::fetch_add`] in the batch.
    pub fn value_fetch_add<T: Number>(&mut self, v: &ValueProxy<T>, delta: T) -> Result<Ticket<T>> {
        self.push(v, BOp::ValueNum(NumOp::Add, delta.to_num()), to_num::<T>)
    }

    /// [`ListProxy::push`] in the batch.
    pub fn list_push<T: Serialize + DeserializeOwned>(
        &mut self,
        l: &ListProxy<T>,
        value: &T,
    ) -> Result<Ticket<()>> {
        let r = self.put(value)?;
        self.push(l, BOp::ListAppend(r), to_unit)
    }

    /// A non-blocking put (`put_nowait`) in the batch: fails with `Full` rather than wait,
    /// since a waiting operation would hold up the rest of the batch.
    pub fn queue_try_put<T: Serialize + DeserializeOwned>(
        &mut self,
        q: &QueueProxy<T>,
        item: &T,
    ) -> Result<Ticket<()>> {
        let r = self.put(item)?;
        self.push(q, BOp::QueuePut(r), to_unit)
    }

    /// A non-blocking get (`get_nowait`) in the batch: fails with `Empty` rather than wait.
    pub fn queue_try_get<T: Serialize + DeserializeOwned>(
        &mut self,
        q: &QueueProxy<T>,
    ) -> Result<Ticket<T>> {
        self.push(q, BOp::QueueGet, to_value::<T>)
    }

    fn call<'a>(arena: &'a [u8], obj: u64, op: &BOp) -> Call<'a> {
        let b = |r: &Range<usize>| Blob(&arena[r.clone()]);
        let op = match op {
            BOp::DictGet(k) => Op::DictGet(b(k)),
            BOp::DictSet(k, v) => Op::DictSet(b(k), b(v)),
            BOp::DictRemove(k) => Op::DictRemove(b(k)),
            BOp::DictContains(k) => Op::DictContains(b(k)),
            BOp::DictNum(k, op, n) => Op::DictNum {
                key: b(k),
                op: *op,
                operand: *n,
            },
            BOp::ValueGet => Op::ValueGet,
            BOp::ValueSet(v) => Op::ValueSet(b(v)),
            BOp::ValueNum(op, n) => Op::ValueNum {
                op: *op,
                operand: *n,
            },
            BOp::ListAppend(v) => Op::ListAppend(b(v)),
            BOp::QueuePut(v) => Op::QueuePut(b(v), Wait::Never),
            BOp::QueueGet => Op::QueueGet(Wait::Never),
        };
        Call { obj, op }
    }

    /// Sends every operation, pipelined, and collects the results.
    ///
    /// Fails only if the connection fails, the server does not follow the protocol, or a
    /// frame of calls is larger than the server accepts (`TooLarge`: that frame and those
    /// after it are not sent, those before it were done); each operation's own error is in
    /// its result.
    pub fn run(self) -> Result<BatchResults> {
        let mut outcomes = Vec::with_capacity(self.ops.len());
        if self.ops.is_empty() {
            return Ok(BatchResults { outcomes });
        }
        let conn_ref = self.client.thread_conn()?;
        let mut conn = conn_ref.lock();
        let max = self.client.max_frame();
        let total = self.ops.len();
        let mut chunks = self.ops.chunks(CALLS_PER_FRAME);
        // Replies come in the order the frames went: the k-th answers calls from
        // k * CALLS_PER_FRAME on.
        let mut answered = 0usize;
        let result = conn.pipeline(
            max,
            |out| {
                let Some(chunk) = chunks.next() else {
                    return Ok(false);
                };
                let calls: Vec<Call<'_>> = chunk
                    .iter()
                    .map(|(obj, op)| Self::call(&self.arena, *obj, op))
                    .collect();
                Postcard.encode(&Request::Batch(calls), out)?;
                Ok(true)
            },
            |resp| {
                let n = (total - answered).min(CALLS_PER_FRAME);
                answered += n;
                match resp {
                    Response::Ok(Reply::Batch(rs)) if rs.len() == n => {
                        outcomes.extend(rs.into_iter().map(Outcome::from_response));
                        Ok(())
                    }
                    Response::Err(e) => {
                        // The whole frame was refused (for example too large): every call
                        // in it gets the error.
                        outcomes.extend((0..n).map(|_| Outcome::Err(e.clone())));
                        Ok(())
                    }
                    other => Err(ManagerError::protocol(format!(
                        "a batch of {n} got the reply {other:?}"
                    ))),
                }
            },
        );
        if let Err(e) = result {
            if !matches!(e, ManagerError::Remote(_)) {
                conn.broken = true;
            }
            return Err(e);
        }
        Ok(BatchResults { outcomes })
    }
}

/// The results of a [`Batch`], one per operation, in order.
#[derive(Debug)]
pub struct BatchResults {
    outcomes: Vec<Outcome>,
}

impl BatchResults {
    /// The result of the operation `ticket` names.
    pub fn get<T>(&self, ticket: Ticket<T>) -> Result<T> {
        match self.outcomes.get(ticket.index) {
            Some(o) => (ticket.convert)(o),
            None => Err(ManagerError::protocol(
                "this ticket belongs to another batch",
            )),
        }
    }

    /// How many operations there were.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// The errors, with the index of the operation that failed.
    pub fn errors(&self) -> impl Iterator<Item = (usize, &RemoteError)> {
        self.outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Outcome::Err(e) => Some((i, e)),
                _ => None,
            })
    }
}

impl ManagerConnection {
    /// Starts a batch: many operations sent together and answered together.
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(self)
    }
}
