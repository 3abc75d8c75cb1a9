"""The review portal: a server-rendered web app (litestar + Jinja, htmx for live parts) under
`/portal`, for curriculum designers (jobs, review) and admins (users, review policy).

`portal_config(settings)` gives what `create_app()` spreads into `Litestar(...)`: the portal's
router (encrypted session cookie, CSRF protection and HTML error pages apply to it alone, so the
bearer-token JSON API under `/v1` is untouched by either), its static files, the root redirect, and
the template config.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp

from review_portal.web import admin, auth, bank, dashboard, jobs, review
from review_portal.web.pages import EXCEPTION_HANDLERS, PREFIX, signed_in
from shared.settings import PortalSettings, Settings

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
SESSION_COOKIE = "ll_portal"
CSRF_COOKIE = "ll_csrf"


def _key(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"{purpose}:{secret}".encode()).digest()


def session_config(cfg: PortalSettings) -> CookieBackendConfig:
    return CookieBackendConfig(secret=_key(cfg.session_secret, "session"), key=SESSION_COOKIE, path=PREFIX,
                               max_age=cfg.session_max_age_s, httponly=True, samesite="lax",
                               secure=cfg.secure_cookies)


def session_middleware(app: ASGIApp, cfg: PortalSettings) -> ASGIApp:
    """Built per app from plain settings: litestar deep-copies route layers, and the cookie backend's
    cipher cannot be copied."""
    return session_config(cfg).middleware(app)


def csrf_config(settings: Settings) -> CSRFConfig:
    cfg = settings.portal
    return CSRFConfig(secret=_key(cfg.session_secret, "csrf").hex(), cookie_name=CSRF_COOKIE, cookie_path=PREFIX,
                      cookie_secure=cfg.secure_cookies, cookie_httponly=True, cookie_samesite="lax",
                      header_name="x-csrftoken")


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    def setup(engine: JinjaTemplateEngine) -> None:
        from review_portal.web import filters

        engine.engine.filters.update(filters.FILTERS)
        engine.engine.globals.update(filters.GLOBALS)

    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=setup)


def portal_router(settings: Settings) -> Router:
    return Router(
        path=PREFIX,
        route_handlers=[*auth.ROUTES, *dashboard.ROUTES, *jobs.ROUTES, *review.ROUTES, *bank.ROUTES, *admin.ROUTES],
        middleware=[DefineMiddleware(session_middleware, cfg=settings.portal),
                    DefineMiddleware(CSRFMiddleware, config=csrf_config(settings))],
        guards=[signed_in],
        exception_handlers=EXCEPTION_HANDLERS,
        include_in_schema=False,
    )


def portal_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `Litestar(...)`: `route_handlers` (to add to the app's) and `template_config`."""
    static = create_static_files_router(path=f"{PREFIX}/static", directories=[STATIC], name="portal-static",
                                        cache_control=CacheControlHeader(max_age=3600), include_in_schema=False)
    return {"route_handlers": [portal_router(settings), static, dashboard.root], "template_config": template_config()}
