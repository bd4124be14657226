//! Proxies to data: dict, list, array, value, namespace.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{proxy_impl, Handle};
use crate::error::Result;
use crate::number::{NumOp, Number};
use crate::protocol::{decode, encode, unexpected, unit};
use crate::protocol::{Blob, Op, Reply};

fn item<T: DeserializeOwned>(r: Reply<'_>) -> Result<Option<T>> {
    match r {
        Reply::Item(v) => v.map(decode).transpose(),
        other => Err(unexpected(&other)),
    }
}

fn some_item<T: DeserializeOwned>(r: Reply<'_>) -> Result<T> {
    match r {
        Reply::Item(Some(v)) => decode(v),
        other => Err(unexpected(&other)),
    }
}

fn items<T: DeserializeOwned>(r: Reply<'_>) -> Result<Vec<T>> {
    match r {
        Reply::Items(v) => v.into_iter().map(decode).collect(),
        other => Err(unexpected(&other)),
    }
}

fn count(r: Reply<'_>) -> Result<usize> {
    match r {
        Reply::Count(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        other => Err(unexpected(&other)),
    }
}

fn boolean(r: Reply<'_>) -> Result<bool> {
    match r {
        Reply::Bool(b) => Ok(b),
        other => Err(unexpected(&other)),
    }
}

pub(crate) fn num<T: Number>(r: Reply<'_>) -> Result<T> {
    match r {
        Reply::Num(n) => T::from_num(n).ok_or_else(|| {
            crate::error::ManagerError::protocol(format!("the server answered {n:?}"))
        }),
        other => Err(unexpected(&other)),
    }
}

/// The outcome of a compare-and-swap: `Ok(())` if stored, else `Err(current value)`.
fn swapped<T: DeserializeOwned>(r: Reply<'_>) -> Result<Result<(), Option<T>>> {
    match r {
        Reply::Swapped { done: true, .. } => Ok(Ok(())),
        Reply::Swapped {
            done: false,
            current,
        } => Ok(Err(current.map(decode).transpose()?)),
        other => Err(unexpected(&other)),
    }
}

/// Marks a proxy's types without owning values: proxies are `Send + Sync` whatever they are.
type Types<K, V> = fn(K, V) -> (K, V);

/// A shared dict (`Manager().dict()`): a map from `K` to `V` on the server.
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let d = m.dict::<String, i64>("scores")?;
/// d.set(&"ada".into(), &3)?;
/// assert_eq!(d.get(&"ada".into())?, Some(3));
/// // An atomic increment, done by the server under its own lock.
/// assert_eq!(d.fetch_add(&"ada".into(), 4)?, 3);
/// assert_eq!(d.get(&"ada".into())?, Some(7));
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct DictProxy<K, V> {
    h: Handle,
    _t: PhantomData<Types<K, V>>,
}
proxy_impl!(Dict, DictProxy<K, V>);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// The value under `key` (`d.get(k)`).
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let k = encode(key)?;
        self.h.call(Op::DictGet(Blob(&k)), item)
    }

    /// Sets the value under `key` (`d[k] = v`).
    pub fn set(&self, key: &K, value: &V) -> Result<()> {
        let k = encode(key)?;
        let v = encode(value)?;
        self.h.call(Op::DictSet(Blob(&k), Blob(&v)), unit)
    }

    /// Removes `key`, returning its value (`d.pop(k, None)`).
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        let k = encode(key)?;
        self.h.call(Op::DictRemove(Blob(&k)), item)
    }

    /// Whether `key` is present (`k in d`).
    pub fn contains(&self, key: &K) -> Result<bool> {
        let k = encode(key)?;
        self.h.call(Op::DictContains(Blob(&k)), boolean)
    }

    /// The number of entries (`len(d)`).
    pub fn len(&self) -> Result<usize> {
        self.h.call(Op::DictLen, count)
    }

    /// Whether the dict is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Every key, in no particular order (`list(d.keys())`).
    pub fn keys(&self) -> Result<Vec<K>> {
        self.h.call(Op::DictKeys, items)
    }

    /// A copy of every entry, taken atomically, in no particular order (`dict(d)`).
    pub fn snapshot(&self) -> Result<Vec<(K, V)>> {
        self.h.call(Op::DictItems, |r| match r {
            Reply::Pairs(p) => p
                .into_iter()
                .map(|(k, v)| Ok((decode(k)?, decode(v)?)))
                .collect(),
            other => Err(unexpected(&other)),
        })
    }

    /// Sets every entry of `entries` in one atomic request (`d.update(other)`).
    pub fn update<'a, I>(&self, entries: I) -> Result<()>
    where
        I: IntoIterator<Item = (&'a K, &'a V)>,
        K: 'a,
        V: 'a,
    {
        let enc = entries
            .into_iter()
            .map(|(k, v)| Ok((encode(k)?, encode(v)?)))
            .collect::<Result<Vec<_>>>()?;
        let pairs = enc.iter().map(|(k, v)| (Blob(k), Blob(v))).collect();
        self.h.call(Op::DictUpdate(pairs), unit)
    }

    /// Removes every entry (`d.clear()`).
    pub fn clear(&self) -> Result<()> {
        self.h.call(Op::DictClear, unit)
    }

    /// Stores `new` under `key` (removes the key if `None`) only if it now holds `expected`
    /// (`None`: absent), atomically. Returns `Ok(Ok(()))` if stored, else `Ok(Err(current))`.
    ///
    /// Values are compared by their encoding.
    pub fn compare_and_swap(
        &self,
        key: &K,
        expected: Option<&V>,
        new: Option<&V>,
    ) -> Result<Result<(), Option<V>>> {
        let k = encode(key)?;
        let e = expected.map(encode).transpose()?;
        let n = new.map(encode).transpose()?;
        self.h.call(
            Op::DictCas {
                key: Blob(&k),
                expected: e.as_deref().map(Blob),
                new: n.as_deref().map(Blob),
            },
            swapped,
        )
    }

    /// Replaces the value under `key` with `f(current)` atomically, retrying if another
    /// client changed it in between (compare-and-swap); returns what was stored.
    ///
    /// `f` runs here, possibly several times; it must not have side effects. Returning `None`
    /// removes the key.
    pub fn update_with(
        &self,
        key: &K,
        mut f: impl FnMut(Option<V>) -> Option<V>,
    ) -> Result<Option<V>> {
        let k = encode(key)?;
        let mut current = self.h.call(Op::DictGet(Blob(&k)), |r| match r {
            Reply::Item(v) => Ok(v.map(|b| b.0.to_vec())),
            other => Err(unexpected(&other)),
        })?;
        loop {
            let value = current.as_deref().map(|b| decode(Blob(b))).transpose()?;
            let new = f(value);
            let n = new.as_ref().map(encode).transpose()?;
            let outcome = self.h.call(
                Op::DictCas {
                    key: Blob(&k),
                    expected: current.as_deref().map(Blob),
                    new: n.as_deref().map(Blob),
                },
                |r| match r {
                    Reply::Swapped { done, current } => Ok((done, current.map(|b| b.0.to_vec()))),
                    other => Err(unexpected(&other)),
                },
            )?;
            match outcome {
                (true, _) => return Ok(new),
                (false, now) => current = now,
            }
        }
    }
}

impl<K: Serialize + DeserializeOwned, V: Number> DictProxy<K, V> {
    /// Applies `op` with `operand` to the number under `key` atomically on the server (a
    /// missing key counts as zero) and returns the previous value.
    pub fn fetch_op(&self, key: &K, op: NumOp, operand: V) -> Result<V> {
        let k = encode(key)?;
        self.h.call(
            Op::DictNum {
                key: Blob(&k),
                op,
                operand: operand.to_num(),
            },
            num,
        )
    }

    /// Adds `delta` to the number under `key` atomically (a missing key counts as zero);
    /// returns the previous value. The fix for seed 004's `d["number"] += 1` race.
    pub fn fetch_add(&self, key: &K, delta: V) -> Result<V> {
        self.fetch_op(key, NumOp::Add, delta)
    }

    /// Subtracts `delta` from the number under `key` atomically; returns the previous value.
    pub fn fetch_sub(&self, key: &K, delta: V) -> Result<V> {
        self.fetch_op(key, NumOp::Sub, delta)
    }
}

/// A shared list (`Manager().list()`). Indexes follow Python: negative ones count from the
/// end.
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let l = m.list::<String>("log")?;
/// l.push(&"a".into())?;
/// l.push(&"b".into())?;
/// assert_eq!(l.get(-1)?, "b");
/// assert_eq!(l.snapshot()?, vec!["a".to_string(), "b".into()]);
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct ListProxy<T> {
    h: Handle,
    _t: PhantomData<fn(T) -> T>,
}
proxy_impl!(List, ListProxy<T>);

/// A shared array (`Manager().Array(...)`): a sequence whose length is fixed at creation.
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let a = m.array("counts", &[0u32; 4])?;
/// a.fetch_add(2, 5)?;
/// assert_eq!(a.snapshot()?, vec![0, 0, 5, 0]);
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct ArrayProxy<T> {
    h: Handle,
    _t: PhantomData<fn(T) -> T>,
}
proxy_impl!(Array, ArrayProxy<T>);

macro_rules! seq_common {
    ($name:ident) => {
        impl<T: Serialize + DeserializeOwned> $name<T> {
            /// The number of elements (`len(l)`).
            pub fn len(&self) -> Result<usize> {
                self.h.call(Op::SeqLen, count)
            }

            /// Whether there is no element.
            pub fn is_empty(&self) -> Result<bool> {
                Ok(self.len()? == 0)
            }

            /// The element at `index` (`l[i]`); out of range is an `IndexOutOfRange` error.
            pub fn get(&self, index: i64) -> Result<T> {
                self.h.call(Op::SeqGet(index), some_item)
            }

            /// Replaces the element at `index` (`l[i] = v`).
            pub fn set(&self, index: i64, value: &T) -> Result<()> {
                let v = encode(value)?;
                self.h.call(Op::SeqSet(index, Blob(&v)), unit)
            }

            /// A copy of every element, taken atomically (`list(l)`).
            pub fn snapshot(&self) -> Result<Vec<T>> {
                self.h.call(Op::SeqSnapshot, items)
            }

            /// Stores `new` at `index` only if it holds `expected` now, atomically.
            /// Returns `Ok(Ok(()))` if stored, else `Ok(Err(current))`.
            pub fn compare_and_swap(
                &self,
                index: i64,
                expected: &T,
                new: &T,
            ) -> Result<Result<(), T>> {
                let e = encode(expected)?;
                let n = encode(new)?;
                let r = self.h.call(
                    Op::SeqCas {
                        index,
                        expected: Blob(&e),
                        new: Blob(&n),
                    },
                    swapped::<T>,
                )?;
                match r {
                    Ok(()) => Ok(Ok(())),
                    Err(Some(cur)) => Ok(Err(cur)),
                    Err(None) => Err(crate::error::ManagerError::protocol(
                        "a failed swap without the current value",
                    )),
                }
            }
        }

        impl<T: Number> $name<T> {
            /// Applies `op` to the number at `index` atomically; returns the previous value.
            pub fn fetch_op(&self, index: i64, op: NumOp, operand: T) -> Result<T> {
                self.h.call(
                    Op::SeqNum {
                        index,
                        op,
                        operand: operand.to_num(),
                    },
                    num,
                )
            }

            /// Adds `delta` to the number at `index` atomically; returns the previous value.
            pub fn fetch_add(&self, index: i64, delta: T) -> Result<T> {
                self.fetch_op(index, NumOp::Add, delta)
            }

            /// Subtracts `delta` from the number at `index` atomically; returns the previous
            /// value.
            pub fn fetch_sub(&self, index: i64, delta: T) -> Result<T> {
                self.fetch_op(index, NumOp::Sub, delta)
            }
        }
    };
}
seq_common!(ListProxy);
seq_common!(ArrayProxy);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `value` (`l.append(v)`).
    pub fn push(&self, value: &T) -> Result<()> {
        let v = encode(value)?;
        self.h.call(Op::ListAppend(Blob(&v)), unit)
    }

    /// Appends every value, in one atomic request (`l.extend(vs)`).
    pub fn extend<'a, I>(&self, values: I) -> Result<()>
    where
        I: IntoIterator<Item = &'a T>,
        T: 'a,
    {
        let enc = values.into_iter().map(encode).collect::<Result<Vec<_>>>()?;
        self.h
            .call(Op::ListExtend(enc.iter().map(|b| Blob(b)).collect()), unit)
    }

    /// Inserts `value` before `index`, clamping as Python's `l.insert(i, v)` does.
    pub fn insert(&self, index: i64, value: &T) -> Result<()> {
        let v = encode(value)?;
        self.h.call(Op::ListInsert(index, Blob(&v)), unit)
    }

    /// Removes and returns the last element (`l.pop()`); an empty list is an error.
    pub fn pop(&self) -> Result<T> {
        self.h.call(Op::ListPop(None), some_item)
    }

    /// Removes and returns the element at `index` (`l.pop(i)`).
    pub fn pop_at(&self, index: i64) -> Result<T> {
        self.h.call(Op::ListPop(Some(index)), some_item)
    }

    /// Removes every element (`l.clear()`).
    pub fn clear(&self) -> Result<()> {
        self.h.call(Op::ListClear, unit)
    }
}

/// A shared value (`Manager().Value(...)`).
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let v = m.value("total", &10i64)?;
/// assert_eq!(v.fetch_add(5)?, 10);
/// assert_eq!(v.update(|x| x * 2)?, 30);
/// assert_eq!(v.get()?, 30);
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct ValueProxy<T> {
    h: Handle,
    _t: PhantomData<fn(T) -> T>,
}
proxy_impl!(Value, ValueProxy<T>);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The value (`v.value`).
    pub fn get(&self) -> Result<T> {
        self.h.call(Op::ValueGet, some_item)
    }

    /// Replaces the value (`v.value = x`).
    pub fn set(&self, value: &T) -> Result<()> {
        let v = encode(value)?;
        self.h.call(Op::ValueSet(Blob(&v)), unit)
    }

    /// Replaces the value and returns the previous one, atomically.
    pub fn swap(&self, value: &T) -> Result<T> {
        let v = encode(value)?;
        self.h.call(Op::ValueSwap(Blob(&v)), some_item)
    }

    /// Stores `new` only if the value is `expected` now, atomically. Returns `Ok(Ok(()))` if
    /// stored, else `Ok(Err(current))`. Values are compared by their encoding.
    pub fn compare_and_swap(&self, expected: &T, new: &T) -> Result<Result<(), T>> {
        let e = encode(expected)?;
        let n = encode(new)?;
        let r = self.h.call(
            Op::ValueCas {
                expected: Blob(&e),
                new: Blob(&n),
            },
            swapped::<T>,
        )?;
        match r {
            Ok(()) => Ok(Ok(())),
            Err(Some(cur)) => Ok(Err(cur)),
            Err(None) => Err(crate::error::ManagerError::protocol(
                "a failed swap without the current value",
            )),
        }
    }

    /// Replaces the value with `f(value)` atomically, retrying if another client changed it
    /// in between (compare-and-swap); returns the value stored.
    ///
    /// This is the generic atomic update: any function of the value, for any type. `f` runs
    /// here, possibly several times, so it must not have side effects. For numbers,
    /// [`fetch_add`](ValueProxy::fetch_add) does it in one round trip.
    pub fn update(&self, mut f: impl FnMut(T) -> T) -> Result<T> {
        let mut current = self.h.call(Op::ValueGet, |r| match r {
            Reply::Item(Some(b)) => Ok(b.0.to_vec()),
            other => Err(unexpected(&other)),
        })?;
        loop {
            let new = f(decode(Blob(&current))?);
            let n = encode(&new)?;
            let outcome = self.h.call(
                Op::ValueCas {
                    expected: Blob(&current),
                    new: Blob(&n),
                },
                |r| match r {
                    Reply::Swapped { done: true, .. } => Ok(None),
                    Reply::Swapped {
                        done: false,
                        current: Some(b),
                    } => Ok(Some(b.0.to_vec())),
                    other => Err(unexpected(&other)),
                },
            )?;
            match outcome {
                None => return Ok(new),
                Some(now) => current = now,
            }
        }
    }
}

impl<T: Number> ValueProxy<T> {
    /// Applies `op` with `operand` atomically on the server; returns the previous value.
    pub fn fetch_op(&self, op: NumOp, operand: T) -> Result<T> {
        self.h.call(
            Op::ValueNum {
                op,
                operand: operand.to_num(),
            },
            num,
        )
    }

    /// Adds `delta` atomically on the server; returns the previous value. A result that
    /// does not fit `T` fails with [`ErrorKind::Overflow`](crate::ErrorKind::Overflow) and
    /// changes nothing.
    pub fn fetch_add(&self, delta: T) -> Result<T> {
        self.fetch_op(NumOp::Add, delta)
    }

    /// Subtracts `delta` atomically on the server; returns the previous value. A result that
    /// does not fit `T` fails with [`ErrorKind::Overflow`](crate::ErrorKind::Overflow) and
    /// changes nothing.
    pub fn fetch_sub(&self, delta: T) -> Result<T> {
        self.fetch_op(NumOp::Sub, delta)
    }
}

/// A shared namespace (`Manager().Namespace()`): named attributes of any type.
///
/// ```
/// use conveyor_manager::Manager;
///
/// let m = Manager::start()?;
/// let ns = m.namespace("config")?;
/// ns.set("workers", &4u32)?;
/// ns.set("label", &"night run")?;
/// assert_eq!(ns.get::<u32>("workers")?, Some(4));
/// assert_eq!(ns.names()?, vec!["label".to_string(), "workers".into()]);
/// # Ok::<(), conveyor_manager::ManagerError>(())
/// ```
pub struct NamespaceProxy {
    h: Handle,
    _t: PhantomData<()>,
}
proxy_impl!(Namespace, NamespaceProxy);

impl NamespaceProxy {
    /// The attribute `name`, decoded as `T` (`ns.x`); `None` if it is not set.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        self.h.call(Op::NsGet(name), item)
    }

    /// Sets the attribute `name` (`ns.x = v`).
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        let v = encode(value)?;
        self.h.call(Op::NsSet(name, Blob(&v)), unit)
    }

    /// Removes the attribute `name` (`del ns.x`); returns whether it was set.
    pub fn remove(&self, name: &str) -> Result<bool> {
        self.h.call(Op::NsDel(name), boolean)
    }

    /// Every attribute's name, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        self.h.call(Op::NsNames, |r| match r {
            Reply::Names(n) => Ok(n),
            other => Err(unexpected(&other)),
        })
    }
}
