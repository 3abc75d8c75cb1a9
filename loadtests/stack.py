"""The system under test for the benchmark: stores (embedded in a temp folder, or given URLs), one API
process pinned to core 0, and the workers when a scenario needs them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx
import redis

from lessonloop.stack import child_env
from loadtests import machine
from loadtests.loadgen import pin_prefix
from shared import constants
from shared.db import migrate
from shared.runtime import EmbeddedServices, Endpoints

API_CPU = 0
LOAD_CPU = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BenchStack:
    def __init__(self, database_url: str | None, redis_url: str | None, keep_dir: bool = False) -> None:
        self.given = (database_url, redis_url)
        self.dir = Path(tempfile.mkdtemp(prefix="lessonloop-bench-"))
        self.keep_dir = keep_dir
        self.services: EmbeddedServices | None = None
        self.endpoints: Endpoints | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.port = free_port()
        self.notes: list[str] = []
        self._logs: list[IO[bytes]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_stores(self) -> Endpoints:
        db, rd = self.given
        if db is None or rd is None:
            self.services = EmbeddedServices(self.dir / "data")
            started = self.services.start()
            db, rd = db or started.database_url, rd or started.redis_url
        self.endpoints = Endpoints(database_url=db, redis_url=rd, queue_redis_url=rd)
        migrate.upgrade(db)
        if self.services is not None:
            # Our own throwaway Redis: no AOF (ElastiCache cluster mode has none either; a rewrite
            # fork in the middle of a run would distort it). Stores share the load generator's core.
            client = redis.Redis.from_url(rd)
            try:
                client.config_set("appendonly", "no")
            finally:
                client.close()
            pinned = [machine.pin(pid, LOAD_CPU) for pid in self.store_pids().values() if pid]
            if pinned and all(pinned):
                self.notes.append(f"PostgreSQL and Redis pinned to core {LOAD_CPU} (with the load generator)")
        else:
            self.notes.append("stores given by URL: not pinned, CPU per request of the stores not measured")
        return self.endpoints

    def store_pids(self) -> dict[str, int | None]:
        if self.services is None:
            return {}
        return {"postgres": self.services.postgres.running_pid(), "redis": self.services.redis.running_pid()}

    def _spawn(self, name: str, args: list[str], cpu: int | None) -> subprocess.Popen[bytes]:
        assert self.endpoints is not None
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        env = child_env(self.endpoints, self.services)
        # Every simulated client connects from 127.0.0.1: the per-address limit (an edge concern, see
        # shared/ratelimit.py) would cap the whole benchmark. The per-learner limit stays on.
        env["LESSONLOOP_SERVING_RATE_PER_IP"] = "0"
        # Server-Timing also says how long the API waited for its core (other processes on this machine)
        env["LESSONLOOP_SERVING_SERVER_TIMING_CPU_WAIT"] = "1"
        return subprocess.Popen([*pin_prefix(cpu), sys.executable, "-m", "lessonloop.cli", *args], env=env,
                                stdout=log, stderr=subprocess.STDOUT)

    def start_api(self) -> int:
        self.api = self._spawn("api", ["serve", "--port", str(self.port)], API_CPU)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.api.poll() is not None:
                raise RuntimeError(f"the API exited ({self.api.returncode}); see {self.dir / 'api.log'}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return self.api.pid
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the API was not ready within 60 s; see {self.dir / 'api.log'}")

    def start_workers(self) -> None:
        for kind in ("curator", "factory"):
            self.workers.append(self._spawn(f"worker-{kind}", ["worker", kind], LOAD_CPU))
        time.sleep(2)

    def stop_workers(self) -> None:
        for proc in self.workers:
            proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.workers.clear()

    def drop_queued_refills(self) -> int:
        """Refill jobs queued by cold misses while no curator ran; dropped before workers start."""
        assert self.endpoints is not None
        client = redis.Redis.from_url(self.endpoints.queue_redis_url)
        try:
            n = int(client.zcard(constants.REFILL_QUEUE))
            client.delete(constants.REFILL_QUEUE)
            batch: list[Any] = []
            for key in client.scan_iter("arq:job:refill:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.delete(*batch)
                    batch.clear()
            if batch:
                client.delete(*batch)
            return n
        finally:
            client.close()

    def stop(self) -> None:
        self.stop_workers()
        if self.api is not None and self.api.poll() is None:
            self.api.terminate()
            try:
                self.api.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.api.kill()
                self.api.wait()
        for log in self._logs:
            log.close()
        if self.services is not None:
            self.services.stop()
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def env(self) -> dict[str, str]:
        assert self.endpoints is not None
        return {**os.environ, **child_env(self.endpoints)}
