"""Python's side of benches/shared_memory.rs: multiprocessing.Value under its lock, from two
processes at once.

Started once by the bench; it forks one child (the "fork" start method, as the harness's
Python peers) that shares a Value('Q', 0), then answers one request per line on stdin:

    fetch_add N   both processes do `with v.get_lock(): v.value += 1` N times at once;
                  prints the wall time in nanoseconds, from the go to the last increment

The result is checked (the value must be 2N), so a lost update fails the bench.
"""

import multiprocessing as mp
import sys
import time


def child(v, conn):
    while True:
        n = conn.recv()
        if n is None:
            return
        for _ in range(n):
            with v.get_lock():
                v.value += 1
        conn.send("done")


def main():
    ctx = mp.get_context("fork")
    v = ctx.Value("Q", 0)  # lock=True: an RLock, as the Rust Value has
    ours, theirs = ctx.Pipe()
    p = ctx.Process(target=child, args=(v, theirs), daemon=True)
    p.start()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] != "fetch_add":
            print(f"unknown request {words[0]!r}", file=sys.stderr, flush=True)
            sys.exit(2)
        n = int(words[1])
        v.value = 0
        t0 = time.perf_counter_ns()
        ours.send(n)
        for _ in range(n):
            with v.get_lock():
                v.value += 1
        assert ours.recv() == "done"
        elapsed = time.perf_counter_ns() - t0
        if v.value != 2 * n:
            print(f"lost updates: {v.value} != {2 * n}", file=sys.stderr, flush=True)
            sys.exit(1)
        print(elapsed, flush=True)
    ours.send(None)
    p.join()


if __name__ == "__main__":
    main()
