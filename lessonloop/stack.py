"""Running the whole stack locally: embedded servers (under a lock on the data folder), migrations,
the sample curriculum, then the API and the workers as child processes. Used by `up` and `demo`."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from factory.offline.curriculum_file import SAMPLE_CURRICULUM, load_curriculum
from shared.db import courses, migrate
from shared.runtime import EmbeddedServices, Endpoints, resolve_endpoints
from shared.settings import Settings


class StackError(RuntimeError):
    pass


def _lock(data_dir: Path) -> IO[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "lessonloop.lock", "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StackError(f"another lessonloop process is running on {data_dir} (lessonloop.lock is held)") from None
    return handle


def load_sample_if_empty(database_url: str, settings: Settings) -> bool:
    """Load the sample curriculum into an empty database; True if it did."""

    async def run() -> bool:
        import psycopg
        from psycopg.rows import dict_row

        async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
            if await courses.count_courses(conn):
                return False
            await courses.save_curriculum(conn, load_curriculum(SAMPLE_CURRICULUM))
            await conn.commit()
            return True

    return asyncio.run(run())


def create_first_admin(database_url: str) -> str | None:
    """With no portal user at all, create 'admin' with a random password; returns it (printed once)."""

    async def run() -> str | None:
        import psycopg
        from psycopg.rows import dict_row

        from review_portal.web.accounts import ensure_first_admin

        async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
            password = await ensure_first_admin(conn)
            await conn.commit()
            return password

    return asyncio.run(run())


def child_env(endpoints: Endpoints, services: EmbeddedServices | None = None) -> dict[str, str]:
    """The environment of a child process on these stores; with the embedded `services` they run on, the
    child is told their folder (so `lessonloop serve` knows it is on the embedded local setup)."""
    env = dict(os.environ)
    env.update({"DATABASE_URL": endpoints.database_url, "REDIS_URL": endpoints.redis_url,
                "LESSONLOOP_QUEUE_REDIS_URL": endpoints.queue_redis_url, "PYTHONUNBUFFERED": "1"})
    if services is not None:
        env["LESSONLOOP_DATA_DIR"] = str(services.data_dir)
    return env


@dataclass
class Stack:
    settings: Settings
    port: int
    with_workers: bool = True
    log_dir: Path | None = None
    endpoints: Endpoints | None = None
    services: EmbeddedServices | None = None
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _lock: IO[str] | None = None

    def start_stores(self) -> Endpoints:
        if self.settings.embedded:
            self._lock = _lock(self.settings.data_dir.resolve())
        self.endpoints, self.services = resolve_endpoints(self.settings)
        migrate.upgrade(self.endpoints.database_url)
        load_sample_if_empty(self.endpoints.database_url, self.settings)
        return self.endpoints

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        assert self.endpoints is not None
        out: Any = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
            self._logs.append(out)
        proc = subprocess.Popen([sys.executable, "-m", "lessonloop.cli", *args],
                                env=child_env(self.endpoints, self.services),
                                stdout=out, stderr=subprocess.STDOUT if out else None)
        self.children[name] = proc
        return proc

    def start(self) -> Endpoints:
        eps = self.start_stores()
        self.spawn("api", ["serve", "--port", str(self.port)])
        if self.with_workers:
            self.spawn("factory", ["worker", "factory"])
            self.spawn("curator", ["worker", "curator"])
        self.wait_ready()
        return eps

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.children.items():
                if proc.poll() is not None:
                    raise StackError(f"{name} exited with code {proc.returncode} while starting")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StackError(f"the API did not become ready on {self.base_url} within {timeout:.0f}s")

    def stop(self) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in self.children.items():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()
        for handle in self._logs:
            handle.close()
        self._logs.clear()
        if self.services is not None:
            self.services.stop()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
