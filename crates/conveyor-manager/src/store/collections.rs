//! Dict, list, array, value and namespace: data that never waits.

use std::sync::Arc;

use super::{ok, wrong_op, Object, State};
use crate::error::{ErrorKind, RemoteError};
use crate::number;
use crate::protocol::{Blob, Kind, Op, Reply};

/// Python's index rule: a negative index counts from the end; the result must be in range.
fn index(i: i64, len: usize) -> Result<usize, RemoteError> {
    let len_i = len as i64;
    let j = if i < 0 { i + len_i } else { i };
    if (0..len_i).contains(&j) {
        Ok(j as usize)
    } else {
        Err(RemoteError::new(
            ErrorKind::IndexOutOfRange,
            format!("index {i} is out of range for a sequence of length {len}"),
        ))
    }
}

/// Python's `list.insert` rule: out-of-range positions clamp to the ends.
fn insert_pos(i: i64, len: usize) -> usize {
    let len_i = len as i64;
    let j = if i < 0 {
        (i + len_i).max(0)
    } else {
        i.min(len_i)
    };
    j as usize
}

pub(super) fn dict(obj: &Arc<Object>, op: Op<'_>, out: &mut Vec<u8>) -> Result<(), RemoteError> {
    let mut g = obj.lock();
    let State::Dict(map) = &mut g.state else {
        return Err(wrong_op(obj.kind, &op));
    };
    match op {
        Op::DictGet(k) => ok(out, Reply::Item(map.get(k.0).map(|v| Blob(v)))),
        Op::DictSet(k, v) => {
            match map.get_mut(k.0) {
                Some(slot) => {
                    slot.clear();
                    slot.extend_from_slice(v.0);
                }
                None => {
                    map.insert(k.0.to_vec(), v.0.to_vec());
                }
            }
            ok(out, Reply::Unit)
        }
        Op::DictRemove(k) => {
            let old = map.remove(k.0);
            ok(out, Reply::Item(old.as_deref().map(Blob)))
        }
        Op::DictContains(k) => ok(out, Reply::Bool(map.contains_key(k.0))),
        Op::DictLen => ok(out, Reply::Count(map.len() as u64)),
        Op::DictKeys => ok(out, Reply::Items(map.keys().map(|k| Blob(k)).collect())),
        Op::DictItems => ok(
            out,
            Reply::Pairs(map.iter().map(|(k, v)| (Blob(k), Blob(v))).collect()),
        ),
        Op::DictUpdate(pairs) => {
            for (k, v) in pairs {
                map.insert(k.0.to_vec(), v.0.to_vec());
            }
            ok(out, Reply::Unit)
        }
        Op::DictClear => {
            map.clear();
            ok(out, Reply::Unit)
        }
        Op::DictNum { key, op, operand } => {
            let mut new = Vec::new();
            let old = match map.get_mut(key.0) {
                Some(slot) => {
                    let old = number::apply(Some(slot), op, operand, &mut new)?;
                    *slot = new;
                    old
                }
                None => {
                    let old = number::apply(None, op, operand, &mut new)?;
                    map.insert(key.0.to_vec(), new);
                    old
                }
            };
            ok(out, Reply::Num(old))
        }
        Op::DictCas { key, expected, new } => {
            let current = map.get(key.0).map(|v| v.as_slice());
            if current != expected.map(|b| b.0) {
                return ok(
                    out,
                    Reply::Swapped {
                        done: false,
                        current: current.map(Blob),
                    },
                );
            }
            match new {
                Some(v) => {
                    map.insert(key.0.to_vec(), v.0.to_vec());
                }
                None => {
                    map.remove(key.0);
                }
            }
            ok(
                out,
                Reply::Swapped {
                    done: true,
                    current: new,
                },
            )
        }
        other => Err(wrong_op(obj.kind, &other)),
    }
}

pub(super) fn seq(obj: &Arc<Object>, op: Op<'_>, out: &mut Vec<u8>) -> Result<(), RemoteError> {
    let fixed = obj.kind == Kind::Array;
    let mut g = obj.lock();
    let State::Seq(items) = &mut g.state else {
        return Err(wrong_op(obj.kind, &op));
    };
    let growable = |op: &Op<'_>| -> Result<(), RemoteError> {
        if fixed {
            Err(RemoteError::new(
                ErrorKind::WrongType,
                format!(
                    "{} changes the length, and an array's length is fixed: use a list",
                    format!("{op:?}").split(['(', ' ']).next().unwrap_or("")
                ),
            ))
        } else {
            Ok(())
        }
    };
    match op {
        Op::SeqLen => ok(out, Reply::Count(items.len() as u64)),
        Op::SeqGet(i) => {
            let i = index(i, items.len())?;
            ok(out, Reply::Item(Some(Blob(&items[i]))))
        }
        Op::SeqSet(i, v) => {
            let i = index(i, items.len())?;
            items[i] = v.0.to_vec();
            ok(out, Reply::Unit)
        }
        Op::SeqSnapshot => ok(out, Reply::Items(items.iter().map(|v| Blob(v)).collect())),
        Op::SeqNum {
            index: i,
            op,
            operand,
        } => {
            let i = index(i, items.len())?;
            let mut new = Vec::new();
            let old = number::apply(Some(&items[i]), op, operand, &mut new)?;
            items[i] = new;
            ok(out, Reply::Num(old))
        }
        Op::SeqCas {
            index: i,
            expected,
            new,
        } => {
            let i = index(i, items.len())?;
            if items[i] != expected.0 {
                return ok(
                    out,
                    Reply::Swapped {
                        done: false,
                        current: Some(Blob(&items[i])),
                    },
                );
            }
            items[i] = new.0.to_vec();
            ok(
                out,
                Reply::Swapped {
                    done: true,
                    current: Some(new),
                },
            )
        }
        op @ (Op::ListAppend(_)
        | Op::ListExtend(_)
        | Op::ListInsert(..)
        | Op::ListPop(_)
        | Op::ListClear) => {
            growable(&op)?;
            match op {
                Op::ListAppend(v) => items.push(v.0.to_vec()),
                Op::ListExtend(vs) => items.extend(vs.iter().map(|v| v.0.to_vec())),
                Op::ListInsert(i, v) => {
                    let at = insert_pos(i, items.len());
                    items.insert(at, v.0.to_vec());
                }
                Op::ListPop(i) => {
                    if items.is_empty() {
                        return Err(RemoteError::new(
                            ErrorKind::IndexOutOfRange,
                            "pop from an empty list",
                        ));
                    }
                    let at = match i {
                        None => items.len() - 1,
                        Some(i) => index(i, items.len())?,
                    };
                    let v = items.remove(at);
                    return ok(out, Reply::Item(Some(Blob(&v))));
                }
                _ => items.clear(),
            }
            ok(out, Reply::Unit)
        }
        other => Err(wrong_op(obj.kind, &other)),
    }
}

pub(super) fn value(obj: &Arc<Object>, op: Op<'_>, out: &mut Vec<u8>) -> Result<(), RemoteError> {
    let mut g = obj.lock();
    let State::Value(v) = &mut g.state else {
        return Err(wrong_op(obj.kind, &op));
    };
    match op {
        Op::ValueGet => ok(out, Reply::Item(Some(Blob(v)))),
        Op::ValueSet(new) => {
            v.clear();
            v.extend_from_slice(new.0);
            ok(out, Reply::Unit)
        }
        Op::ValueSwap(new) => {
            let old = std::mem::replace(v, new.0.to_vec());
            ok(out, Reply::Item(Some(Blob(&old))))
        }
        Op::ValueNum { op, operand } => {
            let mut new = Vec::new();
            let old = number::apply(Some(v), op, operand, &mut new)?;
            *v = new;
            ok(out, Reply::Num(old))
        }
        Op::ValueCas { expected, new } => {
            if v.as_slice() != expected.0 {
                return ok(
                    out,
                    Reply::Swapped {
                        done: false,
                        current: Some(Blob(v)),
                    },
                );
            }
            v.clear();
            v.extend_from_slice(new.0);
            ok(
                out,
                Reply::Swapped {
                    done: true,
                    current: Some(new),
                },
            )
        }
        other => Err(wrong_op(obj.kind, &other)),
    }
}

pub(super) fn namespace(
    obj: &Arc<Object>,
    op: Op<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RemoteError> {
    let mut g = obj.lock();
    let State::Namespace(attrs) = &mut g.state else {
        return Err(wrong_op(obj.kind, &op));
    };
    match op {
        Op::NsGet(name) => ok(out, Reply::Item(attrs.get(name).map(|v| Blob(v)))),
        Op::NsSet(name, v) => {
            attrs.insert(name.to_owned(), v.0.to_vec());
            ok(out, Reply::Unit)
        }
        Op::NsDel(name) => ok(out, Reply::Bool(attrs.remove(name).is_some())),
        Op::NsNames => ok(out, Reply::Names(attrs.keys().cloned().collect())),
        other => Err(wrong_op(obj.kind, &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_indexes() {
        assert_eq!(index(-1, 3).unwrap(), 2);
        assert_eq!(index(0, 3).unwrap(), 0);
        assert!(index(3, 3).is_err());
        assert!(index(-4, 3).is_err());
        assert_eq!(insert_pos(-10, 3), 0);
        assert_eq!(insert_pos(10, 3), 3);
        assert_eq!(insert_pos(-1, 3), 2);
    }
}
