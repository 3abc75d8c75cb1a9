"""Redis Cluster routing for the pipelining RESP client: one `RespClient` per primary, commands sent
to the node owning their key's slot (CRC16 of the hash tag, as Redis computes it), the slot map
refreshed from CLUSTER SLOTS on a MOVED/ASK reply or a lost node. Every key a warm-path command
touches shares the learner bucket's hash tag, so each command lives on exactly one node."""

from __future__ import annotations

import asyncio
import binascii
from urllib.parse import urlparse

from serving.resp import Reply, RespClient, RespError

SLOTS = 16384


def key_slot(key: str | bytes) -> int:
    k = key.encode() if isinstance(key, str) else key
    start = k.find(b"{")
    if start != -1:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    return binascii.crc_hqx(k, 0) % SLOTS


class ClusterRespClient:
    def __init__(self, seed_url: str, *, timeout: float = 2.0) -> None:
        u = urlparse(seed_url)
        self.scheme = u.scheme or "redis"
        self.auth = f"{u.username or ''}:{u.password}@" if u.password else ""
        self.seeds = [f"{u.hostname or '127.0.0.1'}:{u.port or 6379}"]
        self.timeout = timeout
        self.nodes: dict[str, RespClient] = {}
        self.slots: list[str] = []
        self._refreshing: asyncio.Lock | None = None

    def _client(self, addr: str) -> RespClient:
        if addr not in self.nodes:
            self.nodes[addr] = RespClient(f"{self.scheme}://{self.auth}{addr}", timeout=self.timeout)
        return self.nodes[addr]

    async def refresh(self) -> None:
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            last: Exception | None = None
            for addr in [*self.seeds, *self.nodes]:
                try:
                    ranges = await self._client(addr).execute("CLUSTER", "SLOTS")
                except (ConnectionError, TimeoutError, OSError, RespError) as exc:
                    last = exc
                    continue
                table = [""] * SLOTS
                for start, end, primary, *_replicas in ranges:
                    node = f"{primary[0].decode()}:{primary[1]}"
                    for slot in range(start, end + 1):
                        table[slot] = node
                self.slots = table
                return
            raise ConnectionError(f"no cluster node answered CLUSTER SLOTS: {last!r}")

    async def execute_for_key(self, key: str, command: bytes) -> Reply:
        """Send an already-encoded command to the node that owns `key`'s slot."""
        if not self.slots:
            await self.refresh()
        slot = key_slot(key)
        try:
            return await self._client(self.slots[slot]).execute_raw(command)
        except RespError as exc:
            if not str(exc).startswith(("MOVED", "ASK")):
                raise
        except (ConnectionError, TimeoutError):
            pass  # a failed-over primary: learn the new map and try once more
        await self.refresh()
        return await self._client(self.slots[slot]).execute_raw(command)

    async def aclose(self) -> None:
        for client in self.nodes.values():
            await client.aclose()
