#!/usr/bin/env python3
"""Drives the connection_echo example with Python's multiprocessing.connection.Client.

    python3 examples/connection_echo_client.py ADDR AUTHKEY [CLIENTS]

ADDR is host:port (TCP) or a path (Unix socket), as given to `connection_echo --listen`.
CLIENTS (default 3) clients connect at once, each sending messages of several sizes (up to
1 MiB) and checking that every echo comes back unchanged; then each closes. Exits non-zero on
any mismatch or error.
"""
import sys
import threading
import time
from multiprocessing.connection import Client

SIZES = (0, 1, 100, 4096, 65536, 1 << 20)


def parse(addr):
    if '/' not in addr and ':' in addr:
        host, port = addr.rsplit(':', 1)
        return (host, int(port))
    return addr


def run_client(addr, key, n, errors):
    try:
        with Client(addr, authkey=key) as c:
            for size in SIZES:
                msg = bytes((n + i) % 256 for i in range(size))
                t = time.perf_counter()
                c.send_bytes(msg)
                back = c.recv_bytes()
                dt = time.perf_counter() - t
                if back != msg:
                    errors.append('client %d: echo of %d bytes differs' % (n, size))
                    return
                print('client %d: %7d bytes echoed in %.3f ms' % (n, size, dt * 1e3))
    except Exception as e:  # report, and let the exit code say it failed
        errors.append('client %d: %r' % (n, e))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    addr, key = parse(sys.argv[1]), sys.argv[2].encode()
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    errors = []
    threads = [threading.Thread(target=run_client, args=(addr, key, n, errors))
               for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors:
        print(e, file=sys.stderr)
    print('%d clients, %d errors' % (clients, len(errors)))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
