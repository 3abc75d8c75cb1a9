"""The dashboard: what waits for review (by skill and risk), the skills short of questions (each an
opportunity with a one-click generation job), recent jobs and this week's reviewer progress."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Redirect

from review_portal.web import reports
from review_portal.web.pages import PREFIX, render
from shared.db import jobs
from shared.http import services


@get("/", include_in_schema=False)
async def dashboard(request: Request[Any, Any, Any]) -> Any:
    async with services(request).pool.connection() as conn:
        pending = await reports.pending_by_skill(conn)
        opportunities = await reports.opportunities(conn)
        totals = await reports.staging_totals(conn)
        bank = await reports.bank_total(conn)
        progress = await reports.reviewer_progress(conn)
        recent = await jobs.list_jobs(conn, limit=5)
    return render(request, "dashboard.html", pending=pending, opportunities=opportunities, totals=totals, bank=bank,
                  progress=progress, recent=recent, low=reports.LOW_RISK, high=reports.HIGH_RISK,
                  max_count=services(request).settings.factory.max_job_count)


@get("/", include_in_schema=False)
async def root() -> Redirect:
    """The site's root opens the portal."""
    return Redirect(PREFIX + "/", status_code=302)


ROUTES = [dashboard]
