#!/usr/bin/env python3
"""The Python side of conveyor-bench: one run of one workload over one Python original.

Usage:
    python3 conveyor_bench.py TRANSPORT WORKLOAD PRODUCERS CONSUMERS SIZE CAPACITY COUNT

TRANSPORT is one of the names in TRANSPORTS below; WORKLOAD is throughput, pingpong or
joinable; or TRANSPORT is one of POOLS and WORKLOAD pool-submit or pool-map (see there). It prints one JSON object on stdout, in the shape of the harness's `Sample`:

    {"kind": "throughput", "messages": N, "size": S, "elapsed_ns": T}
    {"kind": "latency", "rounds": N, "median_ns": M, "p99_ns": P}

and exits 0, or prints the reason on stderr and exits non-zero (2: not supported).

The workloads mirror the Rust ones (crates/conveyor-bench/src/workload.rs): messages are
(seq, payload) tuples, seq unique within the run (so a PriorityQueue compares numbers, never
the bytes); each consumer takes exactly COUNT / CONSUMERS messages and adds up the seqs, and
the total is checked. The payload is one bytes object, put by reference in-process and
pickled across processes, as a Python program would do.
"""

import json
import multiprocessing
import queue
import sys
import threading
import time

PINGPONG_WARMUP = 50
WAIT_S = 120


def mp_context():
    # fork is the classic Linux start method and the fastest to start; the workloads
    # measure the transport, not the start-up.
    try:
        return multiprocessing.get_context("fork")
    except ValueError:
        return multiprocessing.get_context()


def expected_sum(count):
    return count * (count - 1) // 2


def fail(msg, code=1):
    print(msg, file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------- queue workers


def produce(q, base, n, payload, barrier):
    barrier.wait()
    put = q.put
    for i in range(base, base + n):
        put((i, payload))


def consume(q, n, size, barrier, results):
    barrier.wait()
    get = q.get
    total = 0
    for _ in range(n):
        seq, data = get()
        if len(data) != size:
            raise RuntimeError("got %d bytes, expected %d" % (len(data), size))
        total += seq
    results.put(total)


def consume_task_done(q, n, barrier, results):
    barrier.wait()
    total = 0
    for _ in range(n):
        seq, _data = q.get()
        total += seq
        q.task_done()
    results.put(total)


def echo(ping, pong, n):
    for _ in range(n):
        pong.put(ping.get())


def echo_conn(conn, n):
    for _ in range(n):
        conn.send(conn.recv())


def conn_produce(conn, n, payload, barrier):
    barrier.wait()
    send = conn.send
    for i in range(n):
        send((i, payload))


def conn_consume(conn, n, size, barrier, results):
    barrier.wait()
    recv = conn.recv
    total = 0
    for _ in range(n):
        seq, data = recv()
        if len(data) != size:
            raise RuntimeError("got %d bytes, expected %d" % (len(data), size))
        total += seq
    results.put(total)


def dict_write(d, keys, payload, barrier):
    barrier.wait()
    for k in keys:
        d[k] = payload


# ---------------------------------------------------------------- the kinds of transport


class Threads:
    """queue.Queue and friends, with threading.Thread workers."""

    def __init__(self, cls):
        self.cls = cls

    def queue(self, cap):
        return self.cls(maxsize=cap)

    def worker(self, target, args):
        t = threading.Thread(target=target, args=args, daemon=True)
        return t

    def barrier(self, n):
        return threading.Barrier(n)

    def results(self):
        return queue.Queue()


class Processes:
    """multiprocessing queues, with Process workers."""

    def __init__(self, make):
        self.ctx = mp_context()
        self.make = make
        self.manager = None

    def queue(self, cap):
        return self.make(self, cap)

    def worker(self, target, args):
        return self.ctx.Process(target=target, args=args, daemon=True)

    def barrier(self, n):
        return self.ctx.Barrier(n)

    def results(self):
        return self.ctx.Queue()

    def get_manager(self):
        if self.manager is None:
            self.manager = self.ctx.Manager()
        return self.manager

    def close(self):
        if self.manager is not None:
            self.manager.shutdown()


TRANSPORTS = {
    "queue.Queue": lambda: Threads(queue.Queue),
    "queue.LifoQueue": lambda: Threads(queue.LifoQueue),
    "queue.PriorityQueue": lambda: Threads(queue.PriorityQueue),
    "multiprocessing.Queue": lambda: Processes(lambda s, cap: s.ctx.Queue(cap)),
    "multiprocessing.JoinableQueue": lambda: Processes(
        lambda s, cap: s.ctx.JoinableQueue(cap)
    ),
    "multiprocessing.Pipe": lambda: Processes(None),
    "Manager().Queue": lambda: Processes(lambda s, cap: s.get_manager().Queue(cap)),
    "Manager().dict": lambda: Processes(None),
}

JOINABLE = {
    "queue.Queue",
    "queue.LifoQueue",
    "queue.PriorityQueue",
    "multiprocessing.JoinableQueue",
    "Manager().Queue",
}


def run_workers(kind, workers, barrier, results, n_results):
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter_ns()
    total = 0
    for _ in range(n_results):
        total += results.get(timeout=WAIT_S)
    elapsed = time.perf_counter_ns() - t0
    for w in workers:
        w.join(WAIT_S)
    return total, elapsed


def throughput(name, kind, producers, consumers, size, cap, count):
    payload = bytes(i % 251 for i in range(size))
    barrier = kind.barrier(producers + consumers + 1)
    results = kind.results()
    workers = []
    if name == "multiprocessing.Pipe":
        if producers != 1 or consumers != 1:
            fail("a Pipe has one sender and one receiver", 2)
        recv_end, send_end = kind.ctx.Pipe(duplex=False)
        workers.append(kind.worker(conn_produce, (send_end, count, payload, barrier)))
        workers.append(
            kind.worker(conn_consume, (recv_end, count, size, barrier, results))
        )
    elif name == "Manager().dict":
        # A dict is not a queue: producers write their keys, consumers pop theirs. Each
        # consumer pops keys that producers write, so it waits on the producers by polling.
        d = kind.get_manager().dict()
        keys = list(range(count))
        for p in range(producers):
            workers.append(
                kind.worker(dict_write, (d, keys[p::producers], payload, barrier))
            )
        for c in range(consumers):
            workers.append(
                kind.worker(
                    dict_read_polling, (d, keys[c::consumers], size, barrier, results)
                )
            )
    else:
        q = kind.queue(cap)
        per_p, per_c = count // producers, count // consumers
        for p in range(producers):
            workers.append(kind.worker(produce, (q, p * per_p, per_p, payload, barrier)))
        for _ in range(consumers):
            workers.append(kind.worker(consume, (q, per_c, size, barrier, results)))
    total, elapsed = run_workers(kind, workers, barrier, results, consumers)
    if total != expected_sum(count):
        fail("messages were lost or duplicated: %d != %d" % (total, expected_sum(count)))
    return {"kind": "throughput", "messages": count, "size": size, "elapsed_ns": elapsed}


def dict_read_polling(d, keys, size, barrier, results):
    barrier.wait()
    total = 0
    for k in keys:
        while True:
            data = d.pop(k, None)
            if data is not None:
                break
        if len(data) != size:
            raise RuntimeError("got %d bytes, expected %d" % (len(data), size))
        total += k
    results.put(total)


def pingpong(name, kind, size, rounds):
    payload = bytes(i % 251 for i in range(size))
    total = rounds + PINGPONG_WARMUP
    if name == "Manager().dict":
        fail("a dict has no ping-pong", 2)
    if name == "multiprocessing.Pipe":
        mine, theirs = kind.ctx.Pipe(duplex=True)
        w = kind.worker(echo_conn, (theirs, total))
        send, recv = mine.send, mine.recv
    else:
        ping, pong = kind.queue(1), kind.queue(1)
        w = kind.worker(echo, (ping, pong, total))
        send, recv = ping.put, pong.get
    w.start()
    samples = []
    clock = time.perf_counter_ns
    for i in range(total):
        t0 = clock()
        send((i, payload))
        seq, _ = recv()
        dt = clock() - t0
        if seq != i:
            fail("round %d came back as %d" % (i, seq))
        if i >= PINGPONG_WARMUP:
            samples.append(dt)
    w.join(WAIT_S)
    samples.sort()
    return {
        "kind": "latency",
        "rounds": len(samples),
        "median_ns": float(percentile(samples, 50.0)),
        "p99_ns": float(percentile(samples, 99.0)),
    }


def percentile(sorted_values, p):
    n = len(sorted_values)
    if n == 0:
        return 0.0
    rank = p / 100.0 * (n - 1)
    lo, hi = int(rank), min(int(rank) + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def joinable(name, kind, size, cap, count):
    if name not in JOINABLE:
        fail("%s has no task_done/join" % name, 2)
    payload = bytes(i % 251 for i in range(size))
    q = kind.queue(cap)
    barrier = kind.barrier(3)
    results = kind.results()
    prod = kind.worker(produce, (q, 0, count, payload, barrier))
    cons = kind.worker(consume_task_done, (q, count, barrier, results))
    prod.start()
    cons.start()
    barrier.wait()
    t0 = time.perf_counter_ns()
    prod.join(WAIT_S)
    q.join()
    elapsed = time.perf_counter_ns() - t0
    total = results.get(timeout=WAIT_S)
    cons.join(WAIT_S)
    if total != expected_sum(count):
        fail("messages were lost or duplicated: %d != %d" % (total, expected_sum(count)))
    return {"kind": "throughput", "messages": count, "size": size, "elapsed_ns": elapsed}


# ---------------------------------------------------------------- pools
#
# pool-submit: SUBMITTERS threads (PRODUCERS) each submit COUNT / SUBMITTERS empty tasks in
# batches of CAPACITY, waiting for each batch's results; pool-map: map over COUNT small tasks,
# the sum checked. CONSUMERS is the number of workers.

POOLS = ("ThreadPoolExecutor", "ProcessPoolExecutor", "multiprocessing.Pool")


def empty():
    return None


def double(x):
    return 2 * x + 1


def make_pool(name, workers):
    import concurrent.futures as cf

    if name == "ThreadPoolExecutor":
        return cf.ThreadPoolExecutor(max_workers=workers)
    if name == "ProcessPoolExecutor":
        return cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp_context())
    return mp_context().Pool(processes=workers)


def close_pool(name, pool):
    if name == "multiprocessing.Pool":
        pool.close()
        pool.join()
    else:
        pool.shutdown(wait=True)


def pool_calls(name, pool):
    if name == "multiprocessing.Pool":
        return (lambda: pool.apply_async(empty)), (lambda r: r.get(WAIT_S))
    return (lambda: pool.submit(empty)), (lambda f: f.result(timeout=WAIT_S))


def pool_submit(name, submitters, workers, batch, count):
    pool = make_pool(name, workers)
    try:
        submit, result = pool_calls(name, pool)
        # start every worker before the clock does
        for f in [submit() for _ in range(4 * workers)]:
            result(f)
        per = count // submitters
        barrier = threading.Barrier(submitters + 1)
        errors = []

        def run():
            try:
                barrier.wait()
                done = 0
                while done < per:
                    n = min(batch, per - done)
                    for f in [submit() for _ in range(n)]:
                        if result(f) is not None:
                            raise RuntimeError("an empty task returned something")
                    done += n
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=run) for _ in range(submitters)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter_ns()
        for t in threads:
            t.join()
        elapsed = time.perf_counter_ns() - t0
        if errors:
            raise errors[0]
    finally:
        close_pool(name, pool)
    return {"kind": "throughput", "messages": per * submitters, "size": 0, "elapsed_ns": elapsed}


def pool_map(name, workers, count):
    pool = make_pool(name, workers)
    try:
        submit, result = pool_calls(name, pool)
        for f in [submit() for _ in range(4 * workers)]:
            result(f)
        t0 = time.perf_counter_ns()
        total = sum(pool.map(double, range(count)))
        elapsed = time.perf_counter_ns() - t0
    finally:
        close_pool(name, pool)
    if total != count * count:
        raise RuntimeError("map returned the wrong results: sum %d, expected %d" % (total, count * count))
    return {"kind": "throughput", "messages": count, "size": 0, "elapsed_ns": elapsed}


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        print(json.dumps({"transports": sorted(TRANSPORTS), "version": sys.version.split()[0]}))
        return 0
    if len(argv) != 8:
        fail(__doc__, 2)
    name, workload = argv[1], argv[2]
    producers, consumers, size, cap, count = (int(a) for a in argv[3:])
    if name in POOLS:
        if workload == "pool-submit":
            out = pool_submit(name, producers, consumers, cap, count)
        elif workload == "pool-map":
            out = pool_map(name, consumers, count)
        else:
            fail("a pool runs pool-submit and pool-map, not %r" % workload, 2)
        print(json.dumps(out))
        sys.stdout.flush()
        return 0
    if name not in TRANSPORTS:
        fail("unknown transport %r; known: %s" % (name, ", ".join(sorted(TRANSPORTS))), 2)
    kind = TRANSPORTS[name]()
    try:
        if workload == "throughput":
            out = throughput(name, kind, producers, consumers, size, cap, count)
        elif workload == "pingpong":
            out = pingpong(name, kind, size, count)
        elif workload == "joinable":
            out = joinable(name, kind, size, cap, count)
        else:
            fail("unknown workload %r" % workload, 2)
    finally:
        if isinstance(kind, Processes):
            kind.close()
    print(json.dumps(out))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
