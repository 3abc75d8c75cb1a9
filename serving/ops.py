"""Operations routes: /v1/ping (touches no store; the benchmark baseline), /healthz, /readyz, /metrics."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import generate_latest

from shared import constants, metrics
from shared.http import Documented, documented, errors, services


class Ok(msgspec.Struct):
    ok: bool


class Checks(msgspec.Struct):
    postgres: bool
    redis: bool
    """The playlist store."""
    queue_redis: bool
    """The job queues' Redis."""


class Readiness(msgspec.Struct):
    ok: bool
    checks: Checks


OK = Ok(ok=True)
PUBLIC: list[dict[str, list[str]]] = [{}]
"""OpenAPI: these operations need no token."""
LIMITED = errors(429)
"""The per-address limit runs before every route, these included (shared.asgi): a flood from one
address gets 429 here too. A load balancer's health checks come from its own few addresses at a
few requests a second, far below the limit, and exempting these paths would give a flood a route
that is never limited."""


@get("/v1/ping", summary="Liveness baseline: touches no store (the benchmarks' hello endpoint)", security=PUBLIC,
     responses=LIMITED, operation_class=Documented)
async def ping() -> Ok:
    return OK


@get("/healthz", summary="The process is up", security=PUBLIC, responses=LIMITED, operation_class=Documented)
async def healthz() -> Ok:
    return OK


@get("/readyz", summary="PostgreSQL and Redis answer", security=PUBLIC,
     responses={503: ResponseSpec(data_container=Readiness, description="a store is down"), **LIMITED},
     operation_class=documented({503: {}}))
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
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
    return Response(Readiness(ok=ok, checks=Checks(**checks)), status_code=200 if ok else 503)


@get("/metrics", summary="Prometheus metrics", media_type="text/plain; version=0.0.4", security=PUBLIC,
     responses=LIMITED, operation_class=Documented)
async def prometheus(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    for queue in (constants.GENERATION_QUEUE, constants.REFILL_QUEUE):
        with contextlib.suppress(Exception):
            metrics.QUEUE_DEPTH.labels(queue.removeprefix("arq:")).set(await svc.arq.zcard(queue))
    return Response(generate_latest(metrics.REGISTRY), media_type="text/plain; version=0.0.4")


ROUTES = [ping, healthz, readyz, prometheus]
