"""What every component's HTTP handlers share: the services from the app state, the caller's
identity from the bearer token, and the one mapping of errors to JSON responses."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
import psycopg
import redis
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from psycopg_pool import PoolTimeout

from shared import metrics
from shared.auth import Principal, require_role
from shared.errors import LessonloopError, RateLimited
from shared.services import Services

log = logging.getLogger(__name__)
STORE_RETRY_AFTER_S = 2


class ErrorBody(msgspec.Struct):
    """Every error response: `detail` says what is wrong; `field` names the offending field, if any."""

    status_code: int
    detail: str
    field: str | None = None


ERROR_MEANINGS = {
    400: "invalid input: `detail` and `field` name the problem",
    401: "missing, expired or invalid bearer token",
    403: "the token's role may not do this",
    404: "not found (or not yours)",
    409: "conflicts with the current state (already decided, answered, completed…)",
    413: "request body over the size limit",
    429: "too many requests; retry after the Retry-After header",
    503: "a data store is unavailable; nothing was recorded; retry after the Retry-After header",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a route can return (their headers: `Documented`)."""
    return {c: ResponseSpec(data_container=ErrorBody, description=ERROR_MEANINGS[c]) for c in codes}


AUTHED = (401, 403, 429, 503)
"""What any authenticated route can answer besides its own statuses."""
NO_NUL = r"^[^\x00]*$"
"""The pattern of a free-text parameter that reaches SQL: PostgreSQL text cannot hold U+0000, so the
schema says so and the 400 names the field."""

Headers = Mapping[int, Mapping[str, OpenAPIHeader]]
RETRY_AFTER = OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER, minimum=1), required=True,
                            description="Seconds to wait before trying again.")
ERROR_HEADERS: Headers = {
    401: {"WWW-Authenticate": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING, const="Bearer"), required=True,
                                            description="The scheme to authenticate with: `Bearer`.")},
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}
"""The headers every error response of these statuses carries (`error_response`, `store_down_response`,
shared.ratelimit's 429 before the framework)."""


@dataclass
class Documented(Operation):
    """An OpenAPI operation whose responses document the headers sent with them: each route names
    `documented(...)` as its `operation_class`. Needed because litestar's `ResponseSpec` (the
    `responses=` of a route) has no headers (litestar-org/litestar#5066), and a `ResponseSpec` for the
    success status replaces the response `response_headers=` would have documented."""

    headers: ClassVar[Headers] = ERROR_HEADERS

    def __post_init__(self) -> None:
        for status, headers in self.headers.items():
            response = (self.responses or {}).get(str(status))
            if isinstance(response, OpenAPIResponse) and headers:
                response.headers = {**(response.headers or {}), **headers}


def documented(headers: Headers | None = None) -> type[Operation]:
    """The operation class of a route: `ERROR_HEADERS`, with `headers` added or replacing them per
    status (`{200: {...}}` documents a success header; `{503: {}}` a 503 that carries none)."""
    if not headers:
        return Documented
    return type("DocumentedWith", (Documented,), {"headers": {**ERROR_HEADERS, **headers}})


def route_label(request: Request[Any, Any, Any]) -> str:
    handler = request.scope.get("route_handler")
    return getattr(handler, "handler_name", None) or "unmatched"


def services(request: Request[Any, Any, Any]) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def principal(request: Request[Any, Any, Any]) -> Principal:
    """The caller, from the bearer token; each learner is held to the per-learner rate limit (staff,
    few and trusted, review in bulk and are limited per address only)."""
    return _checked(services(request), request.headers.get("authorization"))


def learner_from_scope(scope: Any) -> Principal:
    """`learner()` for hot handlers that take the raw ASGI scope instead of a Request object."""
    authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
            break
    who = _checked(scope["app"].state.services, authorization)
    require_role(who, "learner")
    return who


def _checked(svc: Services, authorization: str | None) -> Principal:
    who = svc.verifier.verify(authorization)
    if who.role == "learner" and svc.subject_limits.enabled:
        wait = svc.subject_limits.allow(who.sub)
        if wait:
            raise RateLimited(f"too many requests for this account; retry in {wait:.1f}s",
                              retry_after=math.ceil(wait))
    return who


def learner(request: Request[Any, Any, Any]) -> Principal:
    who = principal(request)
    require_role(who, "learner")
    return who


def staff(request: Request[Any, Any, Any]) -> Principal:
    who = principal(request)
    require_role(who, "designer", "admin")
    return who


def error_response(request: Request[Any, Any, Any], exc: LessonloopError) -> Response[Any]:
    metrics.ERRORS.labels(route_label(request), str(exc.status_code)).inc()
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    if exc.status_code == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return Response(exc.body(), status_code=exc.status_code, headers=headers)


def validation_response(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Litestar's body/query validation: name the offending field(s) in `detail`."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    fields = []
    for e in extra:
        if isinstance(e, dict):
            key = e.get("key") or ""
            fields.append(key)
            parts.append(f"{key}: {e.get('message', 'invalid')}" if key else str(e.get("message", "invalid")))
    detail = "; ".join(parts) or str(exc.detail)
    metrics.ERRORS.labels(route_label(request), "400").inc()
    body: dict[str, Any] = {"status_code": 400, "detail": detail}
    if fields and fields[0]:
        body["field"] = fields[0]
    return Response(body, status_code=400)


def http_exception_response(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    metrics.ERRORS.labels(route_label(request), str(exc.status_code)).inc()
    return Response({"status_code": exc.status_code, "detail": exc.detail}, status_code=exc.status_code,
                    headers=exc.headers)


def store_down_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """PostgreSQL or Redis unreachable: 503 with Retry-After; nothing was acknowledged."""
    log.warning("store unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    metrics.ERRORS.labels(route_label(request), "503").inc()
    return Response({"status_code": 503, "detail": "a data store is unavailable; retry shortly"},
                    status_code=503, headers={"Retry-After": str(STORE_RETRY_AFTER_S)})


def bad_data_response(request: Request[Any, Any, Any], exc: psycopg.DataError) -> Response[Any]:
    """A value PostgreSQL cannot store (a NUL character, a number out of range): the input's fault."""
    metrics.ERRORS.labels(route_label(request), "400").inc()
    detail = str(exc).splitlines()[0] if str(exc) else "invalid value"
    return Response({"status_code": 400, "detail": f"invalid input: {detail}"}, status_code=400)


def internal_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    metrics.ERRORS.labels(route_label(request), "500").inc()
    return Response({"status_code": 500, "detail": "internal error"}, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    LessonloopError: error_response,
    ValidationException: validation_response,
    HTTPException: http_exception_response,
    psycopg.OperationalError: store_down_response,
    psycopg.DataError: bad_data_response,
    PoolTimeout: store_down_response,
    redis.ConnectionError: store_down_response,
    redis.TimeoutError: store_down_response,
    Exception: internal_error_response,
}
