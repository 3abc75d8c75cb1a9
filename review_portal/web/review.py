"""The review queue (riskiest first, filters, search), one item as the learner will see it with
everything a reviewer needs beside it, the decisions (accept, reject with a reason, edit then
accept, send back for regeneration), bulk accept of a filtered low-risk set, and reviewer progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath, QueryParameter

from factory.jobs import LEVELS
from factory.schemas import QUESTION_TYPES
from factory.validation import validate_item
from review_portal import decisions
from review_portal.web import reports
from review_portal.web.jobs import start_job
from review_portal.web.pages import flash, redirect, render, url, user
from shared.db import jobs, questions, staging
from shared.errors import BadInput, Conflict, LessonloopError, NotFound
from shared.http import services

STATUSES = ("pending", "duplicate", "accepted", "rejected", "revision", "ingested", "invalid")
DECIDABLE = ("pending", "revision", "duplicate")
REASON_LABELS = {
    "incorrect": "Incorrect answer key", "ambiguous": "Ambiguous (more than one answer fits)",
    "off_topic": "Off topic for the skill", "wrong_level": "Wrong level", "duplicate": "Duplicate",
    "offensive": "Offensive or inappropriate", "poor_quality": "Poor quality", "other": "Other (say why)",
}
NEIGHBOURS_LIMIT = 500
PAGE = 50


@dataclass
class Filters:
    job: UUID | None = None
    skill: str | None = None
    level: str | None = None
    type: str | None = None
    max_risk: float | None = None
    status: str | None = "pending"
    q: str | None = None

    def query(self, **overrides: Any) -> dict[str, Any]:
        params = {"job": self.job, "skill": self.skill, "level": self.level, "type": self.type,
                  "max_risk": self.max_risk, "status": self.status, "q": self.q, **overrides}
        return {k: str(v) for k, v in params.items() if v not in (None, "")}

    def qs(self, **overrides: Any) -> str:
        return urlencode(self.query(**overrides))

    def db(self) -> dict[str, Any]:
        return {"job": self.job, "skill": self.skill, "level": self.level, "type": self.type,
                "max_risk": self.max_risk, "status": self.status, "q": self.q}


def filters_from(job: str | None, skill: str | None, level: str | None, type_: str | None, max_risk: str | None,
                 status: str | None, q: str | None) -> Filters:
    """Lenient: an unusable filter value is dropped (the page says so), never a 500."""
    f = Filters(skill=skill or None, q=(q or "").strip() or None)
    try:
        f.job = UUID(job) if job else None
    except ValueError:
        f.job = None
    f.level = level if level in LEVELS else None
    f.type = type_ if type_ in QUESTION_TYPES else None
    try:
        f.max_risk = min(1.0, max(0.0, float(max_risk))) if max_risk else None
    except ValueError:
        f.max_risk = None
    f.status = status if status in STATUSES or status == "" else "pending"
    f.status = f.status or None
    return f


def filters_from_qs(form: FormMultiDict) -> Filters:
    from urllib.parse import parse_qs

    raw = {k: v[0] for k, v in parse_qs(str(form.get("back") or "")).items()}
    return filters_from(raw.get("job"), raw.get("skill"), raw.get("level"), raw.get("type"), raw.get("max_risk"),
                        raw.get("status", "pending"), raw.get("q"))



async def _queue_ids(conn: Any, f: Filters) -> list[UUID]:
    return [r["id"] for r in await staging.list_items(conn, **f.db(), limit=NEIGHBOURS_LIMIT)]


async def _neighbours(conn: Any, f: Filters, item_id: UUID) -> tuple[UUID | None, UUID | None, int, int]:
    """(previous, next, position from 1 or 0, queue length) of an item in the filtered queue."""
    ids = await _queue_ids(conn, f)
    if item_id in ids:
        i = ids.index(item_id)
        return (ids[i - 1] if i > 0 else None, ids[i + 1] if i + 1 < len(ids) else None, i + 1, len(ids))
    return None, (ids[0] if ids else None), 0, len(ids)


async def _match(conn: Any, item: dict[str, Any]) -> dict[str, Any] | None:
    """The existing question a duplicate finding points at: {source, id, content, status}."""
    dup = item.get("duplicate_of")
    if not dup:
        return None
    try:
        if dup.get("match") == "bank" and dup.get("id"):
            q = await questions.get_question(conn, UUID(dup["id"]))
            return {"source": "bank", "id": q["id"], "content": q["content"], "status": q["status"]} if q else None
        if dup.get("match") == "staging" and dup.get("id"):
            s = await staging.get_item(conn, UUID(dup["id"]))
            return {"source": "staging", "id": s["id"], "content": s["content"], "status": s["status"]} if s else None
        if dup.get("match") == "batch" and item.get("job_id") is not None:
            for s in await staging.list_items(conn, job=item["job_id"], limit=NEIGHBOURS_LIMIT):
                if s["batch_no"] == item["batch_no"] and s["seq"] == dup.get("seq"):
                    return {"source": "same batch", "id": s["id"], "content": s["content"], "status": s["status"]}
    except ValueError:
        return None
    return None


async def item_context(request: Request[Any, Any, Any], item_id: UUID, f: Filters) -> dict[str, Any]:
    async with services(request).pool.connection() as conn:
        item = await staging.get_item(conn, item_id)
        if item is None:
            raise NotFound(f"There is no staged item '{item_id}'.")
        prev_id, next_id, position, total = await _neighbours(conn, f, item_id)
        match = await _match(conn, item)
        audit = await staging.list_decisions(conn, item_id)
        job = await jobs.get_job(conn, item["job_id"]) if item["job_id"] else None
    return {"item": item, "prev_id": prev_id, "next_id": next_id, "position": position, "total": total,
            "match": match, "audit": audit, "job": job, "filters": f, "qs": f.qs(),
            "reasons": [(r, REASON_LABELS.get(r, r)) for r in decisions.REJECT_REASONS],
            "decidable": item["status"] in DECIDABLE}


def _item_url(item_id: UUID | None, f: Filters) -> str:
    if item_id is None:
        return url("/review", **f.query())
    return url(f"/review/items/{item_id}", **f.query())


@get("/review", include_in_schema=False)
async def queue(
    request: Request[Any, Any, Any],
    job: Annotated[str | None, QueryParameter(max_length=64)] = None,
    skill: Annotated[str | None, QueryParameter(max_length=48)] = None,
    level: Annotated[str | None, QueryParameter(max_length=4)] = None,
    type_: Annotated[str | None, QueryParameter(name="type", max_length=32)] = None,
    max_risk: Annotated[str | None, QueryParameter(max_length=8)] = None,
    status: Annotated[str | None, QueryParameter(max_length=16)] = "pending",
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
    page: Annotated[int, QueryParameter(ge=1, le=1000)] = 1,
) -> Any:
    f = filters_from(job, skill, level, type_, max_risk, status, q)
    svc = services(request)
    async with svc.pool.connection() as conn:
        items = await staging.list_items(conn, **f.db(), limit=PAGE + 1, offset=(page - 1) * PAGE)
        skills = await reports.all_skills(conn)
        recent_jobs = await jobs.list_jobs(conn, limit=30)
        progress = await reports.reviewer_progress(conn)
    return render(request, "review/queue.html", items=items[:PAGE], more=len(items) > PAGE, page=page, filters=f,
                  qs=f.qs(), skills=skills, jobs=recent_jobs, levels=LEVELS, types=QUESTION_TYPES,
                  statuses=STATUSES, progress=progress, bulk_max_risk=svc.settings.portal.bulk_max_risk,
                  reasons=[(r, REASON_LABELS.get(r, r)) for r in decisions.REJECT_REASONS])


@get("/review/items/{item_id:uuid}", include_in_schema=False)
async def item_page(
    request: Request[Any, Any, Any],
    item_id: FromPath[UUID],
    job: Annotated[str | None, QueryParameter(max_length=64)] = None,
    skill: Annotated[str | None, QueryParameter(max_length=48)] = None,
    level: Annotated[str | None, QueryParameter(max_length=4)] = None,
    type_: Annotated[str | None, QueryParameter(name="type", max_length=32)] = None,
    max_risk: Annotated[str | None, QueryParameter(max_length=8)] = None,
    status: Annotated[str | None, QueryParameter(max_length=16)] = "pending",
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
) -> Any:
    f = filters_from(job, skill, level, type_, max_risk, status, q)
    return render(request, "review/item.html", **await item_context(request, item_id, f))


@post("/review/items/{item_id:uuid}/decide", include_in_schema=False)
async def decide(request: Request[Any, Any, Any], item_id: FromPath[UUID]) -> Any:
    form = await request.form()
    f = filters_from_qs(form)
    decision = str(form.get("decision") or "")
    code = str(form.get("reason") or "")
    note = str(form.get("note") or "").strip()
    reason = f"{code}: {note}" if code and note else (code or note or None)
    if decision == "reject" and code not in decisions.REJECT_REASONS:
        return await _item_error(request, item_id, f, 400, "Pick a reason for the rejection.")
    if decision == "reject" and code == "other" and not note:
        return await _item_error(request, item_id, f, 400, "Say why in the note when the reason is 'Other'.")
    try:
        version = int(str(form.get("version") or ""))
    except ValueError:
        version = -1
    svc = services(request)
    async with svc.pool.connection() as conn:
        ids = [i for i in await _queue_ids(conn, f)]
        after = ids[ids.index(item_id) + 1:] + ids[: ids.index(item_id)] if item_id in ids else ids
        try:
            row = await decisions.decide(conn, item_id=item_id, actor=user(request).id,
                                         body={"decision": decision, "reason": reason, "version": version},
                                         embedding_model=svc.settings.factory.embedding)
        except Conflict as exc:
            await conn.rollback()
            return await _item_error(request, item_id, f, 409, exc.detail)
        except BadInput as exc:
            await conn.rollback()
            return await _item_error(request, item_id, f, 400, exc.detail)
    message = {"accept": "Accepted.", "reject": "Rejected.", "revision": "Sent back for regeneration."}[decision]
    if decision == "revision":
        try:
            job_id = await start_job(request, {"course": row["course_id"], "skills": [row["skill_id"]], "count": 1,
                                               "level": row["level"], "types": [row["type"]]})
            message += f" A one-question job ({str(job_id)[:8]}) is regenerating it."
        except LessonloopError as exc:
            message += f" The regeneration job could not be queued: {exc.detail}"
    flash(request, message)
    next_id = next((i for i in after if i != item_id), None)
    return redirect(request, _item_url(next_id, f))


async def _item_error(request: Request[Any, Any, Any], item_id: UUID, f: Filters, status: int, message: str) -> Any:
    ctx = await item_context(request, item_id, f)
    return render(request, "review/item.html", status_code=status, error=message, **ctx)


# --- edit then accept -------------------------------------------------------------------------------


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def edits_from_form(form: FormMultiDict, content: dict[str, Any]) -> dict[str, Any]:
    """The changed editable fields (lists come one per line)."""
    new: dict[str, Any] = {
        "prompt": str(form.get("prompt") or "").strip(),
        "answer": str(form.get("answer") or "").strip(),
        "accepted_answers": _lines(str(form.get("accepted_answers") or "")),
        "explanation": str(form.get("explanation") or "").strip(),
        "difficulty": str(form.get("difficulty") or ""),
    }
    if content.get("choices") is not None or content.get("type") == "multiple_choice":
        new["choices"] = _lines(str(form.get("choices") or ""))
    return {k: v for k, v in new.items() if content.get(k) != v}


def field_errors(errors: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """'choices[2]: must not be empty' → {'choices': ['choices[2]: must not be empty']}."""
    out: dict[str, list[str]] = {}
    for e in errors:
        head = e.split(":", 1)[0].split("[", 1)[0].split(".", 1)[0].strip()
        field = head if head in decisions.EDITABLE else "form"
        out.setdefault(field, []).append(e if field == "form" else e.split(":", 1)[-1].strip())
    return out


@get("/review/items/{item_id:uuid}/edit", include_in_schema=False)
async def edit_form(request: Request[Any, Any, Any], item_id: FromPath[UUID],
                    back: Annotated[str | None, QueryParameter(max_length=1000)] = None) -> Any:
    async with services(request).pool.connection() as conn:
        item = await staging.get_item(conn, item_id)
    if item is None:
        raise NotFound(f"There is no staged item '{item_id}'.")
    return render(request, "review/edit.html", item=item, content=item["content"], errors={}, back=back or "",
                  version=item["version"])


@post("/review/items/{item_id:uuid}/edit", include_in_schema=False)
async def edit_accept(request: Request[Any, Any, Any], item_id: FromPath[UUID]) -> Any:
    form = await request.form()
    back = str(form.get("back") or "")
    f = filters_from_qs(form)
    svc = services(request)
    async with svc.pool.connection() as conn:
        item = await staging.get_item(conn, item_id)
        if item is None:
            raise NotFound(f"There is no staged item '{item_id}'.")
        edits = edits_from_form(form, item["content"])
        candidate = {**item["content"], **edits}
        try:
            version = int(str(form.get("version") or ""))
        except ValueError:
            version = -1

        def again(status: int, errors: dict[str, list[str]]) -> Any:
            return render(request, "review/edit.html", status_code=status, item=item, content=candidate,
                          errors=errors, back=back, version=version)

        result = validate_item(candidate, skill={"id": item["skill_id"], "level": item["level"]}, level=item["level"])
        if not result.valid:
            return again(400, field_errors(result.errors))
        ids = await _queue_ids(conn, f)
        try:
            await decisions.decide(conn, item_id=item_id, actor=user(request).id,
                                   body={"decision": "accept", "edits": edits or None, "version": version},
                                   embedding_model=svc.settings.factory.embedding)
        except Conflict as exc:
            await conn.rollback()
            return again(409, {"form": [exc.detail]})
        except BadInput as exc:
            await conn.rollback()
            return again(400, {"form": [exc.detail]})
    flash(request, "Edited and accepted." if edits else "Accepted (nothing was changed).")
    next_id = next((i for i in ids if i != item_id), None)
    return redirect(request, _item_url(next_id, f))


# --- bulk accept ------------------------------------------------------------------------------------


@get("/review/bulk", include_in_schema=False)
async def bulk_confirm(
    request: Request[Any, Any, Any],
    job: Annotated[str | None, QueryParameter(max_length=64)] = None,
    skill: Annotated[str | None, QueryParameter(max_length=48)] = None,
    level: Annotated[str | None, QueryParameter(max_length=4)] = None,
    type_: Annotated[str | None, QueryParameter(name="type", max_length=32)] = None,
    max_risk: Annotated[str | None, QueryParameter(max_length=8)] = None,
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
) -> Any:
    """The confirmation step: exactly the items that will be accepted, each at the version shown."""
    cfg = services(request).settings.portal
    f = filters_from(job, skill, level, type_, max_risk, "pending", q)
    f.max_risk = min(f.max_risk if f.max_risk is not None else cfg.bulk_max_risk, cfg.bulk_max_risk)
    async with services(request).pool.connection() as conn:
        items = await staging.list_items(conn, **f.db(), limit=cfg.bulk_max_items)
    return render(request, "review/bulk.html", items=items, filters=f, qs=f.qs(), cap=cfg.bulk_max_risk,
                  max_items=cfg.bulk_max_items)


@post("/review/bulk", include_in_schema=False)
async def bulk_accept(request: Request[Any, Any, Any]) -> Any:
    form = await request.form()
    f = filters_from_qs(form)
    chosen: list[tuple[UUID, int]] = []
    for raw in form.getall("item", []):
        item_id, _, version = str(raw).partition(":")
        try:
            chosen.append((UUID(item_id), int(version)))
        except ValueError:
            continue
    svc = services(request)
    if not chosen:
        flash(request, "Nothing was selected, so nothing was accepted.", "warn")
        return redirect(request, url("/review", **f.query()))
    async with svc.pool.connection() as conn:
        out = await decisions.bulk_accept(conn, items=chosen[: svc.settings.portal.bulk_max_items],
                                          actor=user(request).id, max_risk=svc.settings.portal.bulk_max_risk,
                                          embedding_model=svc.settings.factory.embedding)
    msg = f"Accepted {len(out['accepted'])} item(s)."
    if out["conflicts"]:
        msg += f" {len(out['conflicts'])} had been decided by someone else meanwhile and were left as they are."
    if out["too_risky"]:
        msg += f" {len(out['too_risky'])} were above the bulk risk cap and were skipped."
    flash(request, msg, "ok" if not out["conflicts"] and not out["too_risky"] else "warn")
    return redirect(request, url("/review", **f.query()))


@get("/progress", include_in_schema=False)
async def progress_page(request: Request[Any, Any, Any]) -> Any:
    async with services(request).pool.connection() as conn:
        progress = await reports.reviewer_progress(conn)
    return render(request, "review/progress.html", progress=progress)


@get("/guidelines", include_in_schema=False)
async def guidelines(request: Request[Any, Any, Any]) -> Any:
    return render(request, "review/guidelines_page.html",
                  reasons=[(r, REASON_LABELS.get(r, r)) for r in decisions.REJECT_REASONS])


ROUTES = [queue, item_page, decide, edit_form, edit_accept, bulk_confirm, bulk_accept, progress_page, guidelines]
