"""redis-py doing what conveyor's RedisQueue does, for conveyor-bench: a producer process
XADDs pickled (seq, payload) tuples, a consumer process XREADGROUPs (BLOCK) and XACKs them;
ping-pong goes through an echo process on two streams. Prints one JSON sample.

usage: redis_bench.py throughput URL STREAM SIZE COUNT
       redis_bench.py pingpong   URL STREAM SIZE ROUNDS
"""

import json
import multiprocessing as mp
import pickle
import sys
import time

import redis

GROUP = "bench"
PINGPONG_WARMUP = 50
WAIT_S = 120


def connect(url, stream):
    r = redis.Redis.from_url(url)
    try:
        r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise
    return r


def get(r, stream, consumer):
    while True:
        reply = r.xreadgroup(GROUP, consumer, {stream: ">"}, count=1, block=1000)
        if reply:
            entry_id, fields = reply[0][1][0]
            r.xack(stream, GROUP, entry_id)
            return pickle.loads(fields[b"d"])


def produce(url, stream, n, payload, barrier):
    r = connect(url, stream)
    barrier.wait()
    for i in range(n):
        r.xadd(stream, {"d": pickle.dumps((i, payload))})


def consume(url, stream, n, size, barrier, results):
    r = connect(url, stream)
    barrier.wait()
    total = 0
    for _ in range(n):
        seq, data = get(r, stream, "consumer")
        if len(data) != size:
            sys.exit("got %d bytes, expected %d" % (len(data), size))
        total += seq
    results.put((total, time.perf_counter_ns()))


def echo(url, ping, pong, n):
    r = connect(url, ping)
    connect(url, pong)
    for _ in range(n):
        item = get(r, ping, "echo")
        r.xadd(pong, {"d": pickle.dumps(item)})


def throughput(url, stream, size, count):
    ctx = mp.get_context("fork")
    payload = bytes(i % 251 for i in range(size))
    connect(url, stream)
    barrier = ctx.Barrier(3)
    results = ctx.Queue()
    p = ctx.Process(target=produce, args=(url, stream, count, payload, barrier))
    c = ctx.Process(target=consume, args=(url, stream, count, size, barrier, results))
    p.start()
    c.start()
    barrier.wait()
    start = time.perf_counter_ns()
    total, end = results.get(timeout=WAIT_S)
    p.join(WAIT_S)
    c.join(WAIT_S)
    if total != count * (count - 1) // 2:
        sys.exit("lost or duplicated messages")
    return {"kind": "throughput", "messages": count, "size": size, "elapsed_ns": end - start}


def percentile(sorted_values, p):
    n = len(sorted_values)
    if n == 0:
        return 0.0
    rank = p / 100.0 * (n - 1)
    lo, hi = int(rank), min(int(rank) + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def pingpong(url, stream, size, rounds):
    ctx = mp.get_context("fork")
    payload = bytes(i % 251 for i in range(size))
    ping, pong = stream + "-ping", stream + "-pong"
    r = connect(url, ping)
    connect(url, pong)
    total = rounds + PINGPONG_WARMUP
    w = ctx.Process(target=echo, args=(url, ping, pong, total))
    w.start()
    samples = []
    clock = time.perf_counter_ns
    for i in range(total):
        t0 = clock()
        r.xadd(ping, {"d": pickle.dumps((i, payload))})
        seq, _ = get(r, pong, "main")
        dt = clock() - t0
        if seq != i:
            sys.exit("round %d came back as %d" % (i, seq))
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


def main(argv):
    mode, url, stream, size, count = argv[1], argv[2], argv[3], int(argv[4]), int(argv[5])
    if mode == "throughput":
        out = throughput(url, stream, size, count)
    elif mode == "pingpong":
        out = pingpong(url, stream, size, count)
    else:
        sys.exit("unknown mode " + mode)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
