"""The live question bank: browse and search, one question with its history, retire it or correct
it (a corrected question is a new version; either way the old one is filtered out of every playlist
before the commit), and run the ingestion of accepted items now."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter

from factory.validation import validate_item
from review_portal import retirement
from review_portal.ingestion import ingest
from review_portal.web import reports
from review_portal.web.pages import flash, redirect, render, url, user
from review_portal.web.review import REASON_LABELS, edits_from_form, field_errors
from shared.db import questions, staging
from shared.errors import BadInput, Conflict, NotFound
from shared.http import services

MAX_REASON_CHARS = 500
PAGE = 50


@get("/bank", include_in_schema=False)
async def bank(
    request: Request[Any, Any, Any],
    skill: Annotated[str | None, QueryParameter(max_length=48)] = None,
    status: Annotated[str | None, QueryParameter(max_length=16)] = "active",
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
    page: Annotated[int, QueryParameter(ge=1, le=1000)] = 1,
) -> Any:
    status = status if status in ("active", "retired") else None
    async with services(request).pool.connection() as conn:
        rows = await reports.list_bank(conn, skill=skill or None, status=status, q=(q or "").strip() or None,
                                       limit=PAGE + 1, offset=(page - 1) * PAGE)
        skills = await reports.all_skills(conn)
        totals = await reports.bank_total(conn)
        staged = await reports.staging_totals(conn)
    return render(request, "bank/list.html", questions=rows[:PAGE], more=len(rows) > PAGE, page=page, skills=skills,
                  filters={"skill": skill or "", "status": status or "", "q": q or ""}, totals=totals,
                  accepted_waiting=staged.get("accepted", 0))


async def _question_context(request: Request[Any, Any, Any], question_id: UUID) -> dict[str, Any]:
    async with services(request).pool.connection() as conn:
        q = await questions.get_question(conn, question_id)
        if q is None:
            raise NotFound(f"There is no question '{question_id}' in the bank.")
        audit = await staging.list_decisions(conn, question_id)
        if q["staging_id"]:
            audit = await staging.list_decisions(conn, q["staging_id"]) + audit
        replaced = await questions.get_question(conn, q["replaces"]) if q["replaces"] else None
    audit.sort(key=lambda a: (a["created_at"], a["id"]))
    return {"q": q, "audit": audit, "replaced": replaced, "reasons": REASON_LABELS}


@get("/bank/{question_id:uuid}", include_in_schema=False)
async def question_page(request: Request[Any, Any, Any], question_id: FromPath[UUID]) -> Any:
    return render(request, "bank/question.html", **await _question_context(request, question_id))


@post("/bank/{question_id:uuid}/retire", include_in_schema=False)
async def retire(request: Request[Any, Any, Any], question_id: FromPath[UUID]) -> Any:
    form = await request.form()
    reason = str(form.get("reason") or "").strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        ctx = await _question_context(request, question_id)
        return render(request, "bank/question.html", status_code=400, retire_error=(
            "Say why this question is retired." if not reason else f"At most {MAX_REASON_CHARS} characters."), **ctx)
    svc = services(request)
    try:
        async with svc.pool.connection() as conn:
            await retirement.retire(conn, svc.redis, question_id, actor=user(request).id, reason=reason)
    except Conflict as exc:
        ctx = await _question_context(request, question_id)
        return render(request, "bank/question.html", status_code=409, retire_error=exc.detail, **ctx)
    flash(request, "Retired. No learner receives this question from now on, even from lessons planned earlier.")
    return redirect(request, url(f"/bank/{question_id}"))


@get("/bank/{question_id:uuid}/correct", include_in_schema=False)
async def correct_form(request: Request[Any, Any, Any], question_id: FromPath[UUID]) -> Any:
    ctx = await _question_context(request, question_id)
    return render(request, "bank/correct.html", content=ctx["q"]["content"], errors={}, reason="", **ctx)


@post("/bank/{question_id:uuid}/correct", include_in_schema=False)
async def correct(request: Request[Any, Any, Any], question_id: FromPath[UUID]) -> Any:
    form = await request.form()
    ctx = await _question_context(request, question_id)
    q = ctx["q"]
    edits = edits_from_form(form, q["content"])
    candidate = {**q["content"], **edits}
    reason = str(form.get("reason") or "").strip()[:MAX_REASON_CHARS]

    def again(status: int, errors: dict[str, list[str]]) -> Any:
        return render(request, "bank/correct.html", status_code=status, content=candidate, errors=errors,
                      reason=reason, **ctx)

    if not edits:
        return again(400, {"form": ["Nothing was changed. Edit a field, or go back."]})
    level = retirement.LEVELS[q["level_rank"]]
    result = validate_item(candidate, skill={"id": q["skill_id"], "level": level}, level=level)
    if not result.valid:
        return again(400, field_errors(result.errors))
    svc = services(request)
    try:
        async with svc.pool.connection() as conn:
            out = await retirement.correct(conn, svc.redis, question_id, edits=edits, actor=user(request).id,
                                           reason=reason or None, embedding_model=svc.settings.factory.embedding)
    except (Conflict, BadInput) as exc:
        return again(409 if isinstance(exc, Conflict) else 400, {"form": [exc.detail]})
    flash(request, "Corrected: the new version is live and the old one is retired everywhere.")
    return redirect(request, url(f"/bank/{out['question_id']}"))


@post("/ingestions", include_in_schema=False)
async def run_ingestion(request: Request[Any, Any, Any]) -> Any:
    svc = services(request)
    out = await ingest(svc.pool, embedding_model=svc.settings.factory.embedding)
    flash(request, f"Ingestion done: {out['ingested']} accepted question(s) moved into the bank.")
    form = await request.form()
    back = str(form.get("back") or "")
    return redirect(request, back if back.startswith("/portal/") else url("/bank"))


ROUTES = [bank, question_page, retire, correct_form, correct, run_ingestion]
