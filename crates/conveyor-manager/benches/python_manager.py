"""Python's multiprocessing.Manager doing what benches/manager.rs measures, for comparison.

The machine is shared and noisy, so the bench interleaves: it starts this script once and
asks for one short measurement at a time, alternating with its own. Each line read on stdin is
`WORKLOAD SECONDS`; the answer is one line, the operations per second. Workloads:
dict_set_get_1_client, dict_set_get_4_clients, queue_put_get, lock_acquire_release.

By hand: `echo "dict_set_get_1_client 1" | python3 python_manager.py`.
"""
import multiprocessing as mp
import sys
import time


def timed(step, ops_per_step, seconds):
    """Repeats step() for about `seconds`; returns operations per second."""
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(20):
            step(n)
            n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n * ops_per_step / (now - t0)


def dict_step(d):
    def step(i):
        d[i & 1023] = i
        d[i & 1023]
    return step


def dict_worker(d, start, out, seconds):
    start.wait()
    out.put(timed(dict_step(d), 2, seconds))


def main():
    with mp.Manager() as m:
        d = m.dict()
        q = m.Queue()
        lock = m.Lock()
        start = m.Barrier(4)
        out = m.Queue()

        def queue_step(i):
            q.put(i)
            q.get()

        def lock_step(_):
            lock.acquire()
            lock.release()

        for line in sys.stdin:
            name, seconds = line.split()
            seconds = float(seconds)
            if name == "dict_set_get_1_client":
                r = timed(dict_step(d), 2, seconds)
            elif name == "dict_set_get_4_clients":
                ws = [mp.Process(target=dict_worker, args=(d, start, out, seconds))
                      for _ in range(4)]
                for w in ws:
                    w.start()
                r = sum(out.get() for _ in ws)
                for w in ws:
                    w.join()
            elif name == "queue_put_get":
                r = timed(queue_step, 1, seconds)
            elif name == "lock_acquire_release":
                r = timed(lock_step, 1, seconds)
            else:
                r = 0.0
            print(f"{r:.0f}", flush=True)


if __name__ == "__main__":
    main()
