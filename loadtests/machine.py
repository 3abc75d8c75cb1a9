"""Facts about the machine a benchmark ran on, and CPU time of the processes under test (from /proc)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import redis

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _cmd(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def facts(database_url: str, redis_url: str, generator: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg = str(row[0]) if row else "?"
    client = redis.Redis.from_url(redis_url)
    try:
        rv = str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()
    wrk = _cmd(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else "not installed"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": os.cpu_count(), "cpu": _cpu_model(), "memory_gib": round(_mem_gib(), 1),
        "kernel": platform.release(), "python": platform.python_version(), "postgres": pg, "redis": rv,
        "generator": generator if generator != "wrk" else wrk.split(" [")[0],
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in load),
        "commit": _cmd(["git", "rev-parse", "--short", "HEAD"]) or "unknown",
        "dirty": bool(_cmd(["git", "status", "--porcelain", "--untracked-files=no"])),
    }


def children(pid: int) -> list[int]:
    """pid and every descendant (PostgreSQL's backends are the postmaster's children)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICK


class CpuMeter:
    """CPU seconds used by named process trees between start() and stop(); `waits` then holds the
    seconds each tree spent waiting on a run queue (see run_delay_seconds)."""

    def __init__(self, roots: dict[str, int | None]) -> None:
        self.roots = {k: v for k, v in roots.items() if v}
        self._start: dict[str, float] = {}
        self._wait_start: dict[str, float] = {}
        self.waits: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: cpu_seconds(children(pid)) for name, pid in self.roots.items()}

    def _waits(self) -> dict[str, float]:
        return {name: run_delay_seconds(children(pid)) for name, pid in self.roots.items()}

    def start(self) -> None:
        self._wait_start = self._waits()
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        end = self._now()
        waits = self._waits()
        self.waits = {name: waits[name] - self._wait_start.get(name, 0.0) for name in waits}
        return {name: end[name] - self._start.get(name, 0.0) for name in end}


def pin(pid: int, cpu: int) -> bool:
    """Move a process tree (all threads) onto one core; False if taskset is missing or fails."""
    if shutil.which("taskset") is None or cpu >= (os.cpu_count() or 1):
        return False
    ok = True
    for p in children(pid):
        ok &= subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(p)], capture_output=True).returncode == 0
    return ok


def load_average() -> tuple[float, float, float]:
    return os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)


def _core_jiffies() -> dict[int, tuple[int, int]]:
    """Per core: (busy, total) jiffies since boot, from /proc/stat (busy excludes idle and iowait)."""
    out: dict[int, tuple[int, int]] = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        name, *vals = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        nums = [int(v) for v in vals[:8]]
        idle = nums[3] + nums[4]
        out[int(name[3:])] = (sum(nums) - idle, sum(nums))
    return out


def run_delay_seconds(pids: list[int]) -> float:
    """Time the processes' threads spent runnable but waiting for a CPU (/proc/PID/task/TID/schedstat,
    second field, ns): on a shared machine, how long other work kept them off their core."""
    total = 0
    for pid in pids:
        try:
            tids = [t.name for t in Path(f"/proc/{pid}/task").iterdir()]
        except OSError:
            continue
        for tid in tids:
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


class CoreMeter:
    """How busy each core was between start() and stop(), as a fraction of wall time (all processes):
    with the API's own CPU subtracted, what other work (this machine is shared) took from its core."""

    def __init__(self) -> None:
        self._start: dict[int, tuple[int, int]] = {}

    def start(self) -> None:
        self._start = _core_jiffies()

    def stop(self) -> dict[int, float]:
        end = _core_jiffies()
        out = {}
        for core, (busy, total) in end.items():
            b0, t0 = self._start.get(core, (busy, total))
            out[core] = (busy - b0) / (total - t0) if total > t0 else 0.0
        return out
