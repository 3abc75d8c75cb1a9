"""The Redis round-trip floor: a bare PING, one at a time at Poisson send times, from a given core.

Every warm lesson start includes one round trip to Redis; this measures what that round trip costs
on this machine with nothing else in it (no Python client, no event loop, no HTTP), so the warm
path's server-side tail can be read against it. Run pinned, in its own process:

    taskset -c 0 python -m loadtests.rtt_probe unix:///path/redis.sock 500 5
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlparse

from loadtests import loadgen

PING = b"*1\r\n$4\r\nPING\r\n"


def _connect(url: str) -> socket.socket:
    u = urlparse(url)
    if u.scheme == "unix":
        s = socket.socket(socket.AF_UNIX)
        s.connect(u.path)
    else:
        s = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def probe(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """PING round trips in ms (p50, p99, p99.9, max) at `rate` per second for `seconds`."""
    rng = random.Random(7)
    ms: list[float] = []
    with _connect(url) as s:
        due = time.perf_counter()
        for _ in range(int(rate * seconds)):
            due += rng.expovariate(rate)
            while (wait := due - time.perf_counter()) > 0:
                time.sleep(wait - 0.0001 if wait > 0.0002 else 0)
            t0 = time.perf_counter()
            s.sendall(PING)
            if s.recv(64) != b"+PONG\r\n":
                raise RuntimeError("unexpected reply to PING")
            ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    n = len(ms)
    return {"rate": rate, "n": n, "p50_ms": ms[n // 2], "p99_ms": ms[int(n * 0.99)],
            "p999_ms": ms[int(n * 0.999)], "max_ms": ms[-1]}


def measure(url: str, cpu: int, rate: float, seconds: float) -> dict[str, Any]:
    """`probe` in a process of its own pinned to `cpu` (the API's core)."""
    out = subprocess.run([*loadgen.pin_prefix(cpu), sys.executable, "-m", "loadtests.rtt_probe", url, str(rate),
                          str(seconds)], capture_output=True, text=True, check=True)
    return {**json.loads(out.stdout), "cpu": cpu}


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))))
