"""What every portal page shares: the signed-in user (a guard loads it per request), rendering with
the common context, flash messages, redirects that also work for htmx requests, and the HTML error
pages (the JSON API keeps its JSON errors)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode

from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect, Template

from review_portal.web.accounts import User, load_user
from shared.errors import Forbidden, LessonloopError
from shared.http import services

log = logging.getLogger(__name__)

PREFIX = "/portal"
SESSION_USER = "uid"
FLASH = "flash"


class NotSignedIn(NotAuthorizedException):
    """No (valid) portal session: the browser is sent to the sign-in page."""


def session(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any] | None:
    """The session dict, or None when there is none (no cookie middleware, or cleared at sign-out)."""
    value = connection.scope.get("session")
    return value if isinstance(value, dict) else None


def user(request: Request[Any, Any, Any]) -> User:
    who: User = request.state.user
    return who


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard of every portal page but sign-in: loads the user stored in the session (fresh from the
    database, so disabling a user or changing a role takes effect at the next request)."""
    if handler.opt.get("public"):
        return
    uid = (session(connection) or {}).get(SESSION_USER)
    who = None
    if isinstance(uid, str):
        async with services(connection).pool.connection() as conn:  # type: ignore[arg-type]
            who = await load_user(conn, uid)
    if who is None:
        raise NotSignedIn("sign in to use the portal")
    connection.state.user = who
    if handler.opt.get("admin") and not who.is_admin:
        raise Forbidden("This page is for administrators. Ask an admin if you need access.")


def flash(request: Request[Any, Any, Any], message: str, kind: str = "ok") -> None:
    sess = session(request)
    if sess is not None:
        sess[FLASH] = [*(sess.get(FLASH) or []), [kind, message]][-5:]


def render(request: Request[Any, Any, Any], template: str, status_code: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> Template:
    sess = session(request)
    flashes = sess.pop(FLASH, []) if sess else []
    who = getattr(request.state, "user", None)
    return Template(template_name=template, status_code=status_code, media_type=MediaType.HTML, headers=headers,
                    context={"user": who, "flashes": flashes, "path": request.url.path, "prefix": PREFIX,
                             **context})


def partial(request: Request[Any, Any, Any], template: str, **context: Any) -> Template:
    """A fragment for htmx (no flashes consumed)."""
    return Template(template_name=template, media_type=MediaType.HTML,
                    context={"user": getattr(request.state, "user", None), "prefix": PREFIX, **context})


def redirect(request: Request[Any, Any, Any], path: str) -> Response[Any]:
    """303 for a plain form post; HX-Redirect for an htmx request (which would swap the page in)."""
    if request.headers.get("hx-request"):
        return Response(b"", status_code=204, headers={"HX-Redirect": path})
    return Redirect(path, status_code=303)


def url(path: str, **query: Any) -> str:
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{PREFIX}{path}" + (f"?{urlencode(params)}" if params else "")


# --- error pages ------------------------------------------------------------------------------------


def _error_page(request: Request[Any, Any, Any], status: int, title: str, detail: str) -> Response[Any]:
    return render(request, "error.html", status_code=status, title=title, detail=detail)


def not_signed_in(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = f"{PREFIX}/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        return Response(b"", status_code=204, headers={"HX-Redirect": login})
    return Redirect(login, status_code=303)


def lessonloop_error(request: Request[Any, Any, Any], exc: LessonloopError) -> Response[Any]:
    titles = {403: "Not allowed", 404: "Not found", 409: "Someone got there first", 429: "Slow down"}
    return _error_page(request, exc.status_code, titles.get(exc.status_code, "Something is wrong"), exc.detail)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return _error_page(request, 403, "This form has expired",
                           "The page was open too long or came from elsewhere. Go back, reload it and try again.")
    return _error_page(request, exc.status_code, "Something is wrong", str(exc.detail))


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("portal error on %s %s", request.method, request.url.path)
    return _error_page(request, 500, "Something broke", "The error has been logged. Try again, or tell an admin.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    NotSignedIn: not_signed_in,
    LessonloopError: lessonloop_error,
    HTTPException: http_error,
    Exception: internal_error,
}
