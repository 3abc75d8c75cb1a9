"""Operations routes: /v1/ping (touches no store; the benchmark baseline), /healthz, /readyz, /metrics."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import generate_latest

from shared import constants, metrics
from shared.http import services


class Ok(msgspec.Struct):
    ok: bool


OK = Ok(ok=True)
PUBLIC: list[dict[str, list[str]]] = [{}]
"""OpenAPI: these operations need no token."""


@get("/v1/ping", summary="Liveness baseline: touches no store (the benchmarks' hello endpoint)", security=PUBLIC)
async def ping() -> Ok:
    return OK


@get("/healthz", summary="The process is up", security=PUBLIC)
async def healthz() -> Ok:
    return OK


@get("/readyz", summary="PostgreSQL and Redis answer", security=PUBLIC,
     responses={503: ResponseSpec(data_container=dict[str, Any], description="a store is down")})
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    svc = services(request)
    checks: dict[str, bool] = {}
    try:
        async with svc.pool.connection(timeout=1) as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = True
    except Exception:
        checks["postgres"] = False
    for name, client in (("redis", svc.redis), ("queue_redis", svc.arq)):
        try:
            checks[name] = bool(await client.ping())
        except Exception:
            checks[name] = False
    ok = all(checks.values())
    return Response({"ok": ok, "checks": checks}, status_code=200 if ok else 503)


@get("/metrics", summary="Prometheus metrics", media_type="text/plain; version=0.0.4", security=PUBLIC)
async def prometheus(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    for queue in (constants.GENERATION_QUEUE, constants.REFILL_QUEUE):
        with contextlib.suppress(Exception):
            metrics.QUEUE_DEPTH.labels(queue.removeprefix("arq:")).set(await svc.arq.zcard(queue))
    return Response(generate_latest(metrics.REGISTRY), media_type="text/plain; version=0.0.4")


ROUTES = [ping, healthz, readyz, prometheus]
