"""One error hierarchy, one mapping to HTTP.

    LessonloopError                 500  (base; never raised bare)
    ├── BadInput                    400/422 a field is wrong: `field` names it
    ├── NotAuthenticated            401  missing, expired or forged token
    ├── Forbidden                   403  the role may not do this
    ├── NotFound                    404  an unknown course, skill, lesson, item, job, question
    ├── Conflict                    409  the state changed under you (already decided, answered twice)
    ├── TooLarge                    413  body or field over the size limit
    ├── RateLimited                 429  too many requests (carries Retry-After)
    └── Unavailable                 503  a store is down (carries Retry-After); nothing was recorded

Every error reaches the client as JSON `{"detail": "...", "field"?: "..."}`.
"""

from __future__ import annotations

from typing import Any


class LessonloopError(Exception):
    status_code = 500

    def __init__(self, detail: str, *, field: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status_code": self.status_code, "detail": self.detail}
        if self.field:
            out["field"] = self.field
        return out


class BadInput(LessonloopError):
    status_code = 400


class NotAuthenticated(LessonloopError):
    status_code = 401


class Forbidden(LessonloopError):
    status_code = 403


class NotFound(LessonloopError):
    status_code = 404


class Conflict(LessonloopError):
    status_code = 409


class TooLarge(LessonloopError):
    status_code = 413


class RateLimited(LessonloopError):
    status_code = 429


class Unavailable(LessonloopError):
    status_code = 503
