"""Sign-in and sign-out."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter

from review_portal.web import accounts
from review_portal.web.pages import PREFIX, SESSION_USER, flash, redirect, render, session
from shared.errors import BadInput, RateLimited
from shared.http import services

PUBLIC = {"public": True}


def _safe_next(target: str | None) -> str:
    """Only a path inside the portal (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


@get("/login", opt=PUBLIC, include_in_schema=False)
async def login_form(request: Request[Any, Any, Any],
                     next_: Annotated[str | None, QueryParameter(name="next", max_length=500)] = None) -> Any:
    if (session(request) or {}).get(SESSION_USER):
        return redirect(request, _safe_next(next_))
    return render(request, "login.html", next=_safe_next(next_), errors={}, form={})


@post("/login", opt=PUBLIC, include_in_schema=False)
async def login(request: Request[Any, Any, Any]) -> Any:
    form = await request.form()
    user_id = str(form.get("user_id") or "").strip()
    password = str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or ""))
    errors: dict[str, str] = {}
    if not user_id:
        errors["user_id"] = "Enter your user id."
    if not password:
        errors["password"] = "Enter your password."
    if errors:
        return render(request, "login.html", status_code=400, next=target, errors=errors, form={"user_id": user_id})
    svc = services(request)
    try:
        async with svc.pool.connection() as conn:
            who = await accounts.sign_in(conn, svc.arq, svc.settings.portal, user_id=user_id, password=password,
                                         ip=client_ip(request))
    except RateLimited as exc:
        return render(request, "login.html", status_code=429, headers={"Retry-After": str(exc.retry_after or 60)},
                      next=target, errors={"form": exc.detail}, form={"user_id": user_id})
    except BadInput as exc:
        return render(request, "login.html", status_code=400, next=target, errors={"form": exc.detail},
                      form={"user_id": user_id})
    request.set_session({SESSION_USER: who.id})
    flash(request, f"Welcome, {who.label}.")
    return redirect(request, target)


@post("/logout", include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    request.clear_session()
    return redirect(request, PREFIX + "/login")


ROUTES = [login_form, login, logout]
