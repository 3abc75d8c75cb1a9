"""The embedded runtime: start, reuse on the next run, clean stop, recovery from a killed owner
and from servers that died leaving stale pid files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from shared.runtime import EmbeddedServices, pid_alive


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="lessonloop-rt-"))
    yield path
    EmbeddedServices(path).stop()
    shutil.rmtree(path, ignore_errors=True)


def _write_and_read(db_url: str, redis_url: str, value: str | None) -> tuple[str | None, str | None]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS probe (v text)")
        if value is not None:
            conn.execute("INSERT INTO probe VALUES (%s)", (value,))
        row = conn.execute("SELECT v FROM probe ORDER BY v DESC LIMIT 1").fetchone()
    r = redis.Redis.from_url(redis_url)
    try:
        if value is not None:
            r.set("probe", value)
        got = r.get("probe")
    finally:
        r.close()
    return (row[0] if row else None), (got.decode() if got else None)


def test_start_stop_and_reuse_keeps_data(data_dir: Path) -> None:
    svc = EmbeddedServices(data_dir)
    eps = svc.start()
    assert _write_and_read(eps.database_url, eps.redis_url, "one") == ("one", "one")
    pg_pid, redis_pid = svc.postgres.running_pid(), svc.redis.running_pid()
    # A second start while running reuses the same servers.
    again = EmbeddedServices(data_dir).start()
    assert again == eps
    assert (svc.postgres.running_pid(), svc.redis.running_pid()) == (pg_pid, redis_pid)
    svc.stop()
    assert svc.postgres.running_pid() is None and svc.redis.running_pid() is None
    assert not pid_alive(pg_pid) and not pid_alive(redis_pid)  # type: ignore[arg-type]
    # The next run starts them again on the same data.
    eps = EmbeddedServices(data_dir).start()
    assert _write_and_read(eps.database_url, eps.redis_url, None) == ("one", "one")


def test_servers_left_by_a_killed_owner_are_reused(data_dir: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from shared.runtime import EmbeddedServices; "
            "EmbeddedServices(Path(sys.argv[1])).start(); print('up', flush=True); time.sleep(60)")
    owner = subprocess.Popen([sys.executable, "-c", code, str(data_dir)], stdout=subprocess.PIPE,
                             cwd=Path(__file__).resolve().parents[2])
    assert owner.stdout is not None and owner.stdout.readline().strip() == b"up"
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    owner.stdout.close()
    svc = EmbeddedServices(data_dir)
    left_pg, left_redis = svc.postgres.running_pid(), svc.redis.running_pid()
    assert left_pg and left_redis, "the killed owner's servers keep running"
    eps = svc.start()
    assert (svc.postgres.running_pid(), svc.redis.running_pid()) == (left_pg, left_redis)
    assert _write_and_read(eps.database_url, eps.redis_url, "two") == ("two", "two")
    svc.stop()
    assert not pid_alive(left_pg) and not pid_alive(left_redis)


def test_recovers_from_servers_that_died_with_stale_pid_files(data_dir: Path) -> None:
    svc = EmbeddedServices(data_dir)
    eps = svc.start()
    _write_and_read(eps.database_url, eps.redis_url, "three")
    time.sleep(1.2)  # Redis appendfsync everysec
    pg_pid, redis_pid = svc.postgres.running_pid(), svc.redis.running_pid()
    assert pg_pid and redis_pid
    os.kill(redis_pid, signal.SIGKILL)
    os.kill(pg_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (pid_alive(pg_pid) or pid_alive(redis_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (data_dir / "redis" / "redis.pid").exists() or (data_dir / "postgres" / "postmaster.pid").exists()
    eps = EmbeddedServices(data_dir).start()
    assert svc.postgres.running_pid() not in (None, pg_pid)
    assert _write_and_read(eps.database_url, eps.redis_url, None) == ("three", "three")


def test_configured_urls_start_nothing(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    from shared.runtime import resolve_endpoints
    from shared.settings import Settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    monkeypatch.setenv("LESSONLOOP_DATA_DIR", str(data_dir))
    monkeypatch.delenv("LESSONLOOP_QUEUE_REDIS_URL", raising=False)
    eps, started = resolve_endpoints(Settings())
    assert started is None
    assert (eps.database_url, eps.redis_url, eps.queue_redis_url) == (
        "postgresql://elsewhere/db", "redis://elsewhere:6379/0", "redis://elsewhere:6379/0")
    assert not (data_dir / "postgres").exists() and not (data_dir / "redis").exists()


def test_a_killed_test_sessions_servers_are_reaped_by_the_next() -> None:
    from tests.conftest import OWNER_FILE, SESSION_PREFIX, reap_orphaned_sessions

    folder = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX))
    dead = subprocess.Popen(["true"])
    dead.wait()
    (folder / OWNER_FILE).write_text(str(dead.pid))  # the session that owned it is gone
    svc = EmbeddedServices(folder)
    try:
        svc.start()
        pg_pid, redis_pid = svc.postgres.running_pid(), svc.redis.running_pid()
        assert pg_pid and redis_pid
        reap_orphaned_sessions()
        assert not folder.exists()
        assert not pid_alive(pg_pid) and not pid_alive(redis_pid)
    finally:
        svc.stop()
        shutil.rmtree(folder, ignore_errors=True)
