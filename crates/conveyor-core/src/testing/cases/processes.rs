//! Producers and consumers in other processes (on threads where the transport has none).

use super::*;

/// A producer or consumer elsewhere: a child process, or a thread where the transport has no
/// processes.
pub(super) enum Elsewhere {
    Process(Box<dyn RemoteChild>),
    Thread(Waiter<Result<Vec<u64>, String>>),
}

impl Elsewhere {
    pub(super) fn start<F: Factory>(f: &F, q: &F::Queue, role: Role) -> Elsewhere {
        match f.remote() {
            Ok(remote) => match remote.start(q, role) {
                Ok(child) => Elsewhere::Process(child),
                Err(e) => panic!(
                    "{}: could not start a child process as {role:?}: {e}",
                    name(f)
                ),
            },
            Err(_) => {
                let what = format!("{role:?} on a thread");
                match role {
                    Role::Produce { first, count } => {
                        let p = f.producer(q);
                        Elsewhere::Thread(Waiter::start(what, move || {
                            run_producer(&p, first, count).map(|()| Vec::new())
                        }))
                    }
                    Role::Consume { task_done } => {
                        let c = f.consumer(q);
                        Elsewhere::Thread(Waiter::start(what, move || {
                            let j = if task_done {
                                F::joinable(&c).ok()
                            } else {
                                None
                            };
                            run_consumer(&c, j)
                        }))
                    }
                }
            }
        }
    }

    pub(super) fn until_asleep(self) -> Elsewhere {
        match self {
            Elsewhere::Process(child) => {
                asleep("a consumer process on an empty queue", child.pid());
                Elsewhere::Process(child)
            }
            Elsewhere::Thread(w) => Elsewhere::Thread(w.until_asleep()),
        }
    }

    pub(super) fn finish<F: Factory>(self, f: &F) -> Vec<u64> {
        let r = match self {
            Elsewhere::Process(child) => child.finish(GENEROUS),
            Elsewhere::Thread(w) => w.finish(),
        };
        r.unwrap_or_else(|e| panic!("{}: a producer or consumer elsewhere failed: {e}", name(f)))
    }
}

/// Says, where the transport has no processes, that the roles run on threads instead.
pub(super) fn elsewhere_note<F: Factory>(f: &F, case: &str) {
    if let Err(why) = f.remote() {
        not_met(
            f,
            case,
            &format!("{why}; its producers and consumers run on threads instead"),
        );
    }
}

/// Producers in other processes each put their items and close their handle when done (the
/// Python idiom); the consumer here gets every item once, each producer's in order. One
/// producer's close does not refuse another's puts. On a point-to-point link there is one
/// producer, and its close ends the link.
pub fn producers_in_other_processes<F: Factory>(f: &F) {
    elsewhere_note(f, "producers_in_other_processes");
    let q = f.create(Capacity::Bounded(16));
    let c = f.consumer(&q);
    let producers = match f.profile().shape {
        Shape::Queue => 2,
        Shape::PointToPoint => 1,
    };
    let children: Vec<_> = (0..producers)
        .map(|k| {
            let role = Role::Produce {
                first: k * 1_000_000,
                count: PER_PRODUCER,
            };
            Elsewhere::start(f, &q, role)
        })
        .collect();
    let ids = take(f, &c, producers * PER_PRODUCER);
    producer_order_kept(f, &ids);
    for child in children {
        child.finish(f);
    }
    if f.profile().shape == Shape::Queue {
        known(f, "shutdown", f.producer(&q).shutdown(false));
    }
    let (_c, r) = guarded("get after the producers are done", c, |c| c.get());
    expect_closed(f, "get after every producer finished", r);
    let expected = (0..producers)
        .flat_map(|k| (0..PER_PRODUCER).map(move |i| k * 1_000_000 + i))
        .collect();
    no_loss_no_duplicate(f, ids, expected);
}

/// Consumers in other processes get until `Closed`; between them they get every item put
/// here exactly once. On a point-to-point link there is one consumer.
pub fn consumers_in_other_processes<F: Factory>(f: &F) {
    elsewhere_note(f, "consumers_in_other_processes");
    let q = f.create(Capacity::Bounded(16));
    let consumers = match f.profile().shape {
        Shape::Queue => 2,
        Shape::PointToPoint => 1,
    };
    let children: Vec<_> = (0..consumers)
        .map(|_| Elsewhere::start(f, &q, Role::Consume { task_done: false }))
        .collect();
    let p = f.producer(&q);
    let total = consumers * PER_PRODUCER;
    for id in 0..total {
        put(f, &p, Item::new(id));
    }
    end_of_stream(f, &q);
    let mut all = Vec::new();
    for child in children {
        let got = child.finish(f);
        producer_order_kept(f, &got);
        all.extend(got);
    }
    no_loss_no_duplicate(f, all, (0..total).collect());
}

/// A consumer in another process, asleep in a get on an empty channel, wakes with `Closed`
/// when the channel is shut down here (a link: when the sending end closes).
pub fn consumer_in_another_process_woken_by_shutdown<F: Factory>(f: &F) {
    elsewhere_note(f, "consumer_in_another_process_woken_by_shutdown");
    let q = f.create(Capacity::Unbounded);
    let child = Elsewhere::start(f, &q, Role::Consume { task_done: false }).until_asleep();
    end_of_stream(f, &q);
    let got = child.finish(f);
    assert!(
        got.is_empty(),
        "{}: the consumer got items never put: {got:?}",
        name(f)
    );
}

/// `join` here returns once consumers in other processes have marked every item done.
pub fn join_across_processes<F: Factory>(f: &F) {
    elsewhere_note(f, "join_across_processes");
    let q = f.create(Capacity::Bounded(16));
    let p = f.producer(&q);
    let _ = joinable_or_return!(f, &p, "join_across_processes");
    let children: Vec<_> = (0..2)
        .map(|_| Elsewhere::start(f, &q, Role::Consume { task_done: true }))
        .collect();
    let total = 2 * PER_PRODUCER;
    for id in 0..total {
        put(f, &p, Item::new(id));
    }
    let (p, r) = guarded("join while consumers elsewhere mark items done", p, |p| {
        F::joinable(p).unwrap().join()
    });
    known(f, "join while consumers elsewhere mark items done", r);
    known(f, "shutdown", p.shutdown(false));
    let mut all = Vec::new();
    for child in children {
        all.extend(child.finish(f));
    }
    no_loss_no_duplicate(f, all, (0..total).collect());
}
