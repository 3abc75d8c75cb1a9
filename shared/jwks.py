"""The identity provider's signing keys (its JWKS document), held in memory by the API process and
fetched off the request path (DESIGN.md rule 1): once at start-up, then by one background task —
every `jwks_refresh_s`, and soon after a token names a key id (`kid`) not in the set, at most one
fetch per `jwks_retry_s` however many such tokens arrive. A request never waits on the identity
provider: `get()` is a dict lookup, and a token with an unknown `kid` is refused at once (it works
once the refresh it asked for has brought the key). While the identity provider is down the keys
already fetched stay in use; a document without a usable RS256 key counts as a failed fetch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from shared.settings import AuthSettings

log = logging.getLogger(__name__)


def parse_jwks(doc: Any) -> dict[str | None, Any]:
    """RS256 signature keys of a JWKS document by `kid`; raises ValueError when there is none."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("not a JWKS document (no `keys` list)")
    keys: dict[str | None, Any] = {}
    for jwk in doc["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("alg", "RS256") != "RS256":
            continue
        try:
            keys[jwk.get("kid")] = jwt.PyJWK(jwk, "RS256").key
        except jwt.PyJWTError:
            continue  # a malformed key is skipped, as PyJWKSet does
    if not keys:
        raise ValueError("the JWKS document holds no usable RS256 signing key")
    return keys


class SigningKeys:
    """The key set and its refresher. `start()`/`aclose()` belong to the API's lifespan; a process that
    never starts it (a worker) never fetches."""

    def __init__(self, cfg: AuthSettings, on_removed: Callable[[], None] | None = None) -> None:
        assert cfg.jwks_url is not None
        self.url = cfg.jwks_url
        self.refresh_s, self.retry_s, self.timeout_s = cfg.jwks_refresh_s, cfg.jwks_retry_s, cfg.jwks_timeout_s
        self.on_removed = on_removed
        """Called when a refresh drops (or replaces) a key: tokens it signed must stop being accepted."""
        self.keys: dict[str | None, Any] = {}
        self.loaded = False
        """A key set was fetched at least once."""
        self.fetches = 0
        self.failures = 0
        """Consecutive failed fetches (0 after a success)."""
        self.last_error: str | None = None
        self._last_fetch = float("-inf")
        self._wanted = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    def get(self, kid: str | None) -> Any | None:
        """The key for `kid` (a token without one: the only key, if there is exactly one), or None —
        and then a refresh is asked for. Never waits."""
        key = self.keys.get(kid)
        if key is None and kid is None and len(self.keys) == 1:
            key = next(iter(self.keys.values()))
        if key is None:
            self._wanted.set()
        return key

    async def start(self) -> None:
        """Fetch once (bounded by `jwks_timeout_s`; a failure is logged, not raised: HS256 tokens and the
        rest of the API work meanwhile, and the refresher keeps trying), then refresh in the background."""
        self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False,
                                         headers={"Accept": "application/json"})
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="jwks-refresh")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def refresh(self) -> bool:
        """One fetch now; True if it brought a key set. On failure the current keys stay."""
        assert self._client is not None
        self._last_fetch = time.monotonic()
        self.fetches += 1
        try:
            r = await self._client.get(self.url)
            r.raise_for_status()
            keys = parse_jwks(r.json())
        except (httpx.HTTPError, ValueError) as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("JWKS fetch from %s failed (%d in a row; %d keys kept): %s", self.url, self.failures,
                        len(self.keys), self.last_error)
            return False
        removed = [k for k, old in self.keys.items()
                   if k not in keys or keys[k].public_numbers() != old.public_numbers()]
        self.keys, self.loaded, self.failures, self.last_error = keys, True, 0, None
        if removed and self.on_removed is not None:
            self.on_removed()
        return True

    async def _run(self) -> None:
        while True:
            wait = self.refresh_s if self.failures == 0 else self.retry_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), wait)
            pause = self._last_fetch + self.retry_s - time.monotonic()
            if pause > 0:  # rate limit: tokens naming unknown keys during the pause share the next fetch
                await asyncio.sleep(pause)
            self._wanted.clear()
            try:
                await self.refresh()
            except Exception:  # a bug must not end the refresher: the keys would silently go stale
                log.exception("JWKS refresh failed unexpectedly")
