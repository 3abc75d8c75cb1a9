"""Client addresses behind a proxy, through a real uvicorn server started with `lessonloop serve`'s
options: the per-address limit keys on the client a trusted proxy names in X-Forwarded-For, and on
the peer itself when the peer is not a trusted proxy (its X-Forwarded-For is ignored).

Two loopback addresses stand for the two kinds of peer: 127.0.0.2 is the load balancer
(`LESSONLOOP_SERVING_FORWARDED_ALLOW_IPS`), 127.0.0.1 a client reaching the server directly."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lessonloop.cli import server_options
from shared.runtime import Endpoints
from shared.settings import get_settings
from tests.helpers import LiveServer

PROXY, DIRECT = "127.0.0.2", "127.0.0.1"


@pytest.fixture
def server(stores: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("LESSONLOOP_SERVING_RATE_PER_IP", "0.25")  # burst 0.5: one request, then 429 for 6 s
    monkeypatch.setenv("LESSONLOOP_SERVING_FORWARDED_ALLOW_IPS", PROXY)
    get_settings.cache_clear()
    live = LiveServer(options=server_options(get_settings())).start()
    try:
        yield live
    finally:
        live.stop()
        get_settings.cache_clear()


def test_per_address_limit_keys_on_the_forwarded_client_only_from_a_trusted_proxy(server: LiveServer) -> None:
    def ping(client: httpx.Client, forwarded: str | None = None) -> int:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        return client.get(f"{server.url}/v1/ping", headers=headers).status_code

    with httpx.Client(transport=httpx.HTTPTransport(local_address=PROXY)) as proxy, \
            httpx.Client(transport=httpx.HTTPTransport(local_address=DIRECT)) as direct:
        # Through the trusted proxy: a bucket per forwarded client, not one for everyone behind it.
        assert ping(proxy, "203.0.113.7") == 200
        assert ping(proxy, "203.0.113.7") == 429
        assert ping(proxy, "203.0.113.8") == 200
        # What a client writes into the header itself comes before what the proxy appends: no new bucket.
        assert ping(proxy, "198.51.100.1, 203.0.113.7") == 429
        # The proxy's own requests (a health check) count as its own address.
        assert ping(proxy) == 200
        # A peer that is not a trusted proxy: its own address, whatever X-Forwarded-For it sends.
        assert ping(direct, "192.0.2.1") == 200
        assert ping(direct, "192.0.2.2") == 429
        assert ping(direct) == 429
