"""The paced load generator against a tiny local HTTP server: the schedule, not the server, sets the
rate (both generators), and the result carries the fields the report reads. Nothing absolute is timed:
only the achieved rate relative to the offered one, with a wide margin."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests import loadgen

BODY = b'{"lesson_id":"x"}'
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nserver-timing: app;dur=0.050\r\n"
            b"x-lesson-source: warm\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY))


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:  # the generator's lesson requests have no body
            _, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = asyncio.run_coroutine_threadsafe(loop.create_server(_Echo, "127.0.0.1", 0), loop).result(10)
    try:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    finally:
        srv.close()
        asyncio.run_coroutine_threadsafe(srv.wait_closed(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def lines(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.txt"
    path.write_text("token-a\ntoken-b\n")
    return path


def _check(res: dict[str, object], rate: float) -> None:
    assert res["errors"] == 0, res
    assert res["late"] <= 0.1 * res["requests"], res  # type: ignore[operator]  # a busy CI machine stalls timers
    assert res["app_n"] == res["requests"] == res["warm"], res  # every response's Server-Timing parsed
    assert res["app_p999_ms"] == pytest.approx(0.05), res
    assert 0.6 * rate <= res["rps"] <= 1.25 * rate, res  # type: ignore[operator]


@pytest.mark.parametrize("arrivals", loadgen.ARRIVALS)
def test_python_generator_offers_the_scheduled_rate(server: str, lines: Path, arrivals: str) -> None:
    rate = 200.0
    res = asyncio.run(loadgen.run_python(server, "lesson", lines=lines, course="c", connections=8, seconds=1.0,
                                         rate=rate, arrivals=arrivals))
    _check(res, rate)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed")
@pytest.mark.parametrize("arrivals", loadgen.ARRIVALS)
def test_wrk_generator_offers_the_scheduled_rate(server: str, lines: Path, arrivals: str) -> None:
    rate = 200.0
    res = loadgen.run(server, "lesson", lines=lines, course="c", connections=8, seconds=1.0, cpu=None, rate=rate,
                      arrivals=arrivals)
    _check(res, rate)


def test_unknown_arrivals_are_refused(server: str, lines: Path) -> None:
    with pytest.raises(ValueError, match="arrivals"):
        loadgen.run(server, "lesson", lines=lines, course="c", connections=1, seconds=1.0, rate=10, arrivals="bursty")
