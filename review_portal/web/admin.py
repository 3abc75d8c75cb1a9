"""Administration (role admin only): portal users, and the review policy in force."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath

from factory.risk import ReviewPolicy
from factory.router import load_tiers
from review_portal.web import accounts
from review_portal.web.pages import flash, redirect, render, url, user
from shared.db import users
from shared.errors import BadInput, Conflict, NotFound
from shared.http import services

ADMIN = {"admin": True}


async def _users_page(request: Request[Any, Any, Any], status: int = 200, **ctx: Any) -> Any:
    async with services(request).pool.connection() as conn:
        rows = await users.list_users(conn)
    ctx.setdefault("errors", {})
    ctx.setdefault("form", {"role": "designer"})
    return render(request, "admin/users.html", status_code=status, users=rows, roles=accounts.ROLES,
                  min_password=accounts.MIN_PASSWORD_CHARS, **ctx)


@get("/admin/users", opt=ADMIN, include_in_schema=False)
async def users_page(request: Request[Any, Any, Any]) -> Any:
    return await _users_page(request)


@post("/admin/users", opt=ADMIN, include_in_schema=False)
async def create_user(request: Request[Any, Any, Any]) -> Any:
    form = await request.form()
    data = {k: str(form.get(k) or "").strip() for k in ("id", "display_name", "role")}
    password = str(form.get("password") or "")
    generated = not password
    password = password or accounts.random_password()
    errors = accounts.check_new_user(data["id"], data["role"], password, data["display_name"])
    if errors:
        return await _users_page(request, 400, errors=errors, form=data)
    try:
        async with services(request).pool.connection() as conn:
            await accounts.create_user(conn, user_id=data["id"], role=data["role"], password=password,
                                       display_name=data["display_name"])
    except (BadInput, Conflict) as exc:
        return await _users_page(request, 400, errors={exc.field or "id": exc.detail.split(": ", 1)[-1]}, form=data)
    note = f" Their password (shown once): {password}" if generated else ""
    flash(request, f"User '{data['id']}' created as {data['role']}.{note}")
    return redirect(request, url("/admin/users"))


@post("/admin/users/{user_id:str}", opt=ADMIN, include_in_schema=False)
async def update_user(request: Request[Any, Any, Any], user_id: FromPath[str]) -> Any:
    form = await request.form()
    action = str(form.get("action") or "")
    me = user(request)
    async with services(request).pool.connection() as conn:
        target = await users.get_user(conn, user_id)
        if target is None:
            raise NotFound(f"There is no user '{user_id}'.")
        last_admin = target["role"] == "admin" and not target["disabled"] and await users.count_active_admins(conn) <= 1
        if action in ("disable", "make_designer") and last_admin:
            return await _users_page(request, 409, errors={"table": "The last active admin cannot lose admin rights."})
        if action == "disable" and target["id"] == me.id:
            return await _users_page(request, 409, errors={"table": "You cannot disable yourself."})
        if action == "disable":
            await users.set_disabled(conn, target["id"], True)
            message = f"'{target['id']}' can no longer sign in."
        elif action == "enable":
            await users.set_disabled(conn, target["id"], False)
            message = f"'{target['id']}' can sign in again."
        elif action in ("make_admin", "make_designer"):
            role = action.removeprefix("make_")
            await users.set_role(conn, target["id"], role)
            message = f"'{target['id']}' is now {role}."
        elif action == "reset_password":
            password = accounts.random_password()
            await users.set_password(conn, target["id"], accounts.hash_password(password))
            message = f"New password for '{target['id']}' (shown once): {password}"
        else:
            raise BadInput(f"unknown action '{action}'")
    flash(request, message)
    return redirect(request, url("/admin/users"))


@get("/admin/policy", opt=ADMIN, include_in_schema=False)
async def policy_page(request: Request[Any, Any, Any]) -> Any:
    settings = services(request).settings
    policy = ReviewPolicy.from_settings(settings.factory)
    try:
        tiers = load_tiers(settings.factory)
        tiers_error = None
    except ValueError as exc:
        tiers, tiers_error = [], str(exc)
    return render(request, "admin/policy.html", policy=policy, tiers=tiers, tiers_error=tiers_error,
                  factory=settings.factory, portal=settings.portal)


ROUTES = [users_page, create_user, update_user, policy_page]
