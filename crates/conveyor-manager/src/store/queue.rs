//! The queue: FIFO, bounded or not, with task accounting and close.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{cancelled_error, ok, wrong_op, Ctx, Object, State, Waited};
use crate::error::{ErrorKind, RemoteError};
use crate::protocol::{Blob, Op, Reply, Wait};

/// Condition variable: an item arrived, or the queue closed.
const NOT_EMPTY: usize = 0;
/// Condition variable: room appeared, or the queue closed.
const NOT_FULL: usize = 1;
/// Condition variable: the last unfinished task was marked done.
const ALL_DONE: usize = 2;

pub(crate) struct QueueState {
    items: VecDeque<Vec<u8>>,
    capacity: Option<usize>,
    /// Items put and not yet marked done (every put adds one; `task_done` removes one).
    unfinished: u64,
    closed: bool,
}

impl QueueState {
    pub(super) fn new(capacity: Option<usize>) -> Self {
        QueueState {
            items: VecDeque::new(),
            capacity,
            unfinished: 0,
            closed: false,
        }
    }

    fn has_room(&self) -> bool {
        self.capacity.map_or(true, |c| self.items.len() < c)
    }
}

fn closed_error(get: bool) -> RemoteError {
    RemoteError::new(
        ErrorKind::Closed,
        if get {
            "the queue is closed and drained"
        } else {
            "the queue is closed: it takes no more items"
        },
    )
}

fn q(state: &mut State) -> &mut QueueState {
    match state {
        State::Queue(q) => q,
        _ => unreachable!("queue operations only run on queues"),
    }
}

pub(super) fn call(
    obj: &Arc<Object>,
    op: Op<'_>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RemoteError> {
    let g = obj.lock();
    if !matches!(g.state, State::Queue(_)) {
        return Err(wrong_op(obj.kind, &op));
    }
    match op {
        Op::QueuePut(item, wait) => {
            let (mut g, waited) = obj.wait_until(g, NOT_FULL, wait, ctx.cancelled, |s| {
                let q = q(s);
                q.closed || q.has_room()
            });
            match waited {
                Waited::Ready => {
                    let qs = q(&mut g.state);
                    if qs.closed {
                        return Err(closed_error(false));
                    }
                    qs.items.push_back(item.0.to_vec());
                    qs.unfinished += 1;
                    obj.notify(&g, NOT_EMPTY, false);
                    ok(out, Reply::Unit)
                }
                Waited::TimedOut if wait == Wait::Never => {
                    Err(RemoteError::new(ErrorKind::Full, "the queue is full"))
                }
                Waited::TimedOut => Err(RemoteError::new(
                    ErrorKind::Timeout,
                    "timed out waiting for room in the queue",
                )),
                Waited::Cancelled => Err(cancelled_error()),
            }
        }
        Op::QueueGet(wait) => {
            let (mut g, waited) = obj.wait_until(g, NOT_EMPTY, wait, ctx.cancelled, |s| {
                let q = q(s);
                q.closed || !q.items.is_empty()
            });
            match waited {
                Waited::Ready => {
                    let qs = q(&mut g.state);
                    match qs.items.pop_front() {
                        Some(item) => {
                            obj.notify(&g, NOT_FULL, false);
                            ok(out, Reply::Item(Some(Blob(&item))))
                        }
                        None => Err(closed_error(true)),
                    }
                }
                Waited::TimedOut if wait == Wait::Never => {
                    Err(RemoteError::new(ErrorKind::Empty, "the queue is empty"))
                }
                Waited::TimedOut => Err(RemoteError::new(
                    ErrorKind::Timeout,
                    "timed out waiting for an item",
                )),
                Waited::Cancelled => Err(cancelled_error()),
            }
        }
        Op::QueueState => {
            let mut g = g;
            let qs = q(&mut g.state);
            ok(
                out,
                Reply::QueueState {
                    len: qs.items.len() as u64,
                    capacity: qs.capacity.map(|c| c as u64),
                    unfinished: qs.unfinished,
                    closed: qs.closed,
                },
            )
        }
        Op::QueueShutdown(immediate) => {
            let mut g = g;
            let qs = q(&mut g.state);
            qs.closed = true;
            if immediate {
                // Discarded items count as done (CPython gh-137088), never below zero.
                let discarded = qs.items.len() as u64;
                qs.items.clear();
                qs.unfinished -= discarded.min(qs.unfinished);
            }
            let all_done = qs.unfinished == 0;
            obj.notify(&g, NOT_EMPTY, true);
            obj.notify(&g, NOT_FULL, true);
            if immediate && all_done {
                obj.notify(&g, ALL_DONE, true);
            }
            ok(out, Reply::Unit)
        }
        Op::QueueTaskDone => {
            let mut g = g;
            let qs = q(&mut g.state);
            if qs.unfinished == 0 {
                return Err(RemoteError::new(
                    ErrorKind::TooManyTaskDone,
                    "task_done() called more times than there were items put",
                ));
            }
            qs.unfinished -= 1;
            if qs.unfinished == 0 {
                obj.notify(&g, ALL_DONE, true);
            }
            ok(out, Reply::Unit)
        }
        Op::QueueJoin(wait) => {
            let (_g, waited) =
                obj.wait_until(g, ALL_DONE, wait, ctx.cancelled, |s| q(s).unfinished == 0);
            match waited {
                Waited::Ready => ok(out, Reply::Bool(true)),
                Waited::TimedOut => ok(out, Reply::Bool(false)),
                Waited::Cancelled => Err(cancelled_error()),
            }
        }
        other => Err(wrong_op(obj.kind, &other)),
    }
}
