"""HTTP load: `wrk` (C, one thread, pinned to its own core) with `wrk_script.lua`, or, when wrk is not
installed, a small asyncio raw-socket client with the same modes and the same result fields (slower:
the figures it gives are a floor, and the report says which generator ran).

Closed loop by default (each connection sends its next request as soon as a response is in: the
server is saturated). With `rate=R` the load is paced: sends follow a schedule of R requests/s
(Poisson arrivals by default, or uniform) over enough connections that the schedule, not the server,
sets the pace (`wrk_paced.lua`; the fallback does the same with asyncio timers but cannot offer more
than a few thousand requests/s on one core: its `late` count says when it fell behind).

A result is a dict: requests, rps, client latency percentiles (ms), Server-Timing app;dur percentiles
(ms), warm/cold counts, error counts and, for paced runs, `late` (sends more than 1 ms behind their
scheduled time).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LUA = Path(__file__).with_name("wrk_script.lua")
PACED_LUA = Path(__file__).with_name("wrk_paced.lua")
ARRIVALS = ("poisson", "uniform")
_DUR = re.compile(rb"app;dur=([\d.]+)")
_WAIT = re.compile(rb"cpuwait;dur=([\d.]+)")


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else "python-asyncio"


def pin_prefix(cpu: int | None) -> list[str]:
    """`taskset -c N` when the machine has that core and taskset exists."""
    if cpu is None or shutil.which("taskset") is None or cpu >= (os.cpu_count() or 1):
        return []
    return ["taskset", "-c", str(cpu)]


def _finish(raw: dict[str, Any]) -> dict[str, Any]:
    secs = raw["duration_us"] / 1e6
    errors = raw["non200"] + raw["err_connect"] + raw["err_read"] + raw["err_write"] + raw["err_timeout"]
    return {
        "requests": raw["requests"], "seconds": round(secs, 3), "rps": raw["requests"] / secs if secs else 0.0,
        "p50_ms": raw["p50_us"] / 1000, "p95_ms": raw["p95_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
        "p999_ms": raw["p999_us"] / 1000, "mean_ms": raw["mean_us"] / 1000, "max_ms": raw["max_us"] / 1000,
        "app_n": raw["app_n"], "app_p50_ms": raw["app_p50_ms"], "app_p95_ms": raw["app_p95_ms"],
        "app_p99_ms": raw["app_p99_ms"], "app_p999_ms": raw["app_p999_ms"], "app_max_ms": raw["app_max_ms"],
        "net_n": raw.get("net_n", 0), "net_p50_ms": raw.get("net_p50_ms", 0.0),
        "net_p99_ms": raw.get("net_p99_ms", 0.0), "net_p999_ms": raw.get("net_p999_ms", 0.0),
        "warm": raw["warm"], "cold": raw["cold"], "late": raw["late"], "errors": errors,
        "error_rate": errors / raw["requests"] if raw["requests"] else 1.0,
        "statuses": raw.get("statuses", {}),
        "socket_errors": {k[4:]: raw[k] for k in ("err_connect", "err_read", "err_write", "err_timeout") if raw[k]},
    }


def run(base_url: str, mode: str, *, lines: Path | None, course: str, connections: int, seconds: float,
        cpu: int | None = 1, rate: float | None = None, arrivals: str = "poisson") -> dict[str, Any]:
    """Closed loop, or paced at `rate` requests/s when given."""
    if arrivals not in ARRIVALS:
        raise ValueError(f"arrivals must be one of {', '.join(ARRIVALS)}, not {arrivals!r}")
    if shutil.which("wrk"):
        return run_wrk(base_url, mode, lines=lines, course=course, connections=connections, seconds=seconds, cpu=cpu,
                       rate=rate, arrivals=arrivals)
    return asyncio.run(run_python(base_url, mode, lines=lines, course=course, connections=connections,
                                  seconds=seconds, rate=rate, arrivals=arrivals))


def run_wrk(base_url: str, mode: str, *, lines: Path | None, course: str, connections: int, seconds: float,
            cpu: int | None, rate: float | None = None, arrivals: str = "poisson") -> dict[str, Any]:
    script, paced = (PACED_LUA, [f"{rate:.3f}", arrivals]) if rate else (LUA, [])
    cmd = [*pin_prefix(cpu), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(script), base_url, "--", mode, str(lines or ""), course, *paced]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            return _finish(json.loads(line[len("BENCHJSON "):]))
    raise RuntimeError(f"wrk gave no result (exit {out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")


# --- the fallback client --------------------------------------------------------------------------
def _requests(base_url: str, mode: str, lines: list[str], course: str) -> list[bytes]:
    host = urlsplit(base_url).netloc
    if mode == "ping":
        return [f"GET /v1/ping HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()]
    out = []
    for line in lines:
        if mode == "lesson":
            out.append(f"POST /v1/courses/{course}/lessons HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {line}\r\n"
                       f"Content-Length: 0\r\n\r\n".encode())
        else:
            tok, lesson, item = line.split()
            body = json.dumps({"item_id": item, "answer": "x", "response_ms": 1500,
                               "attempt_id": f"{lesson}-{item}"}).encode()
            out.append(f"POST /v1/lessons/{lesson}/answers HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tok}\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


async def run_python(base_url: str, mode: str, *, lines: Path | None, course: str, connections: int,
                     seconds: float, rate: float | None = None, arrivals: str = "poisson") -> dict[str, Any]:
    reqs = _requests(base_url, mode, lines.read_text().split("\n") if lines else [], course)
    reqs = [r for r in reqs if r]
    parts = urlsplit(base_url)
    lat: list[float] = []
    app: list[float] = []
    net: list[float] = []  # app;dur minus cpuwait;dur
    counts = {"warm": 0, "cold": 0, "non200": 0, "err": 0, "late": 0}
    nxt = 0
    deadline = time.perf_counter() + seconds
    # paced: a schedule of send times, taken by whichever connection is free
    tickets: asyncio.Queue[float] = asyncio.Queue()

    async def pacer() -> None:
        rng = random.Random(20261122)
        assert rate
        at = time.perf_counter()
        while at < deadline:
            at += rng.expovariate(rate) if arrivals == "poisson" else 1 / rate
            if (wait := at - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tickets.put_nowait(time.perf_counter())  # asyncio's timers are ~1 ms coarse: late = no free connection
        for _ in range(connections):
            tickets.put_nowait(-1.0)

    async def conn() -> None:
        nonlocal nxt
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                if rate:
                    issued = await tickets.get()
                    if issued < 0:
                        break
                    if time.perf_counter() - issued > 0.001:
                        counts["late"] += 1
                req = reqs[nxt % len(reqs)]
                nxt += 1
                t0 = time.perf_counter()
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                lat.append(time.perf_counter() - t0)
                if not head.startswith(b"HTTP/1.1 200"):
                    counts["non200"] += 1
                if (d := _DUR.search(head)) is not None:
                    app.append(float(d.group(1)))
                    if (w := _WAIT.search(head)) is not None:
                        net.append(float(d.group(1)) - float(w.group(1)))
                low = head.lower()
                if b"x-lesson-source: warm" in low:
                    counts["warm"] += 1
                elif b"x-lesson-source: cold" in low:
                    counts["cold"] += 1
        except (OSError, asyncio.IncompleteReadError):
            counts["err"] += 1
        finally:
            writer.close()

    t_start = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(connections)), *([pacer()] if rate else []))
    elapsed = time.perf_counter() - t_start
    lat.sort()
    app.sort()
    net.sort()

    def pct(xs: list[float], p: float) -> float:
        return xs[max(0, min(len(xs) - 1, int(len(xs) * p / 100 + 0.999) - 1))] if xs else 0.0

    return _finish({
        "requests": len(lat), "duration_us": elapsed * 1e6, "bytes": 0,
        "mean_us": sum(lat) / len(lat) * 1e6 if lat else 0, "p50_us": pct(lat, 50) * 1e6,
        "p95_us": pct(lat, 95) * 1e6, "p99_us": pct(lat, 99) * 1e6, "p999_us": pct(lat, 99.9) * 1e6,
        "max_us": (lat[-1] if lat else 0) * 1e6, "app_n": len(app), "app_p50_ms": pct(app, 50),
        "app_p95_ms": pct(app, 95), "app_p99_ms": pct(app, 99), "app_p999_ms": pct(app, 99.9),
        "app_max_ms": app[-1] if app else 0.0, "net_n": len(net), "net_p50_ms": pct(net, 50),
        "net_p99_ms": pct(net, 99), "net_p999_ms": pct(net, 99.9), "warm": counts["warm"], "cold": counts["cold"],
        "late": counts["late"], "non200": counts["non200"], "err_connect": counts["err"],
        "err_read": 0, "err_write": 0, "err_timeout": 0,
    })
