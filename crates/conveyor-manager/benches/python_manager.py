"""Python's multiprocessing.Manager doing what benches/manager.rs measures, for comparison.

Prints one line per workload, `name operations_per_second`. benches/manager.rs runs it in the
same run as its own measurements; by hand: `python3 python_manager.py [seconds]`.
"""
import multiprocessing as mp
import sys
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0


def timed(step, ops_per_step):
    """Repeats step() for about SECONDS; returns operations per second."""
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + SECONDS
    while True:
        for _ in range(50):
            step(n)
            n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n * ops_per_step / (now - t0)


def dict_worker(d, start, out):
    def step(i):
        d[i & 1023] = i
        d[i & 1023]
    start.wait()
    out.put(timed(step, 2))


def main():
    with mp.Manager() as m:
        d = m.dict()

        def dict_step(i):
            d[i & 1023] = i
            d[i & 1023]
        print(f"dict_set_get_1_client {timed(dict_step, 2):.0f}", flush=True)

        start = m.Barrier(4)
        out = m.Queue()
        workers = [mp.Process(target=dict_worker, args=(d, start, out)) for _ in range(4)]
        for w in workers:
            w.start()
        total = sum(out.get() for _ in workers)
        for w in workers:
            w.join()
        print(f"dict_set_get_4_clients {total:.0f}", flush=True)

        q = m.Queue()

        def queue_step(i):
            q.put(i)
            q.get()
        print(f"queue_put_get {timed(queue_step, 1):.0f}", flush=True)

        lock = m.Lock()

        def lock_step(_):
            lock.acquire()
            lock.release()
        print(f"lock_acquire_release {timed(lock_step, 1):.0f}", flush=True)


if __name__ == "__main__":
    main()
