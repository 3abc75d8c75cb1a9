"""Staff JSON routes: the review queue, decisions, ingestion, the bank (read, retire, correct)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from review_portal import decisions, retirement
from review_portal.ingestion import ingest
from shared.db import questions, staging
from shared.errors import BadInput, NotFound
from shared.http import AUTHED, NO_NUL, Documented, errors, services, staff

Status = Literal["pending", "accepted", "rejected", "revision", "ingested", "duplicate", "invalid"]
STATUSES = get_args(Status)
MAX_OFFSET = 2**53
"""The largest offset: PostgreSQL takes up to 2**63 - 1, but the schema's bound must be a number
JSON (a double) holds exactly."""


def staged_view(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("embedding",)}
    for k in ("id", "job_id"):
        out[k] = str(out[k]) if out.get(k) else None
    for k in ("decided_at", "created_at"):
        out[k] = out[k].isoformat() if out.get(k) else None
    return out


@get("/v1/staging", summary="Staged items (the review queue), riskiest first", responses=errors(400, *AUTHED),
     operation_class=Documented)
async def list_staged(
    request: Request[Any, Any, Any],
    job: Annotated[UUID | None, QueryParameter()] = None,
    status: Annotated[Status | None, QueryParameter()] = None,
    skill: Annotated[str | None, QueryParameter(max_length=48, pattern=NO_NUL)] = None,
    course: Annotated[str | None, QueryParameter(max_length=48, pattern=NO_NUL)] = None,
    type: Annotated[str | None, QueryParameter(max_length=32, pattern=NO_NUL)] = None,
    level: Annotated[str | None, QueryParameter(max_length=4, pattern=NO_NUL)] = None,
    # schema_extra: litestar drops a falsy `ge` from an optional parameter's schema
    max_risk: Annotated[float | None, QueryParameter(ge=0, le=1, schema_extra={"minimum": 0})] = None,
    q: Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    staff(request)
    if status is not None and status not in STATUSES:
        raise BadInput(f"status: must be one of {', '.join(STATUSES)}", field="status")
    async with services(request).pool.connection() as conn:
        rows = await staging.list_items(conn, job=job, status=status, skill=skill, course=course, type=type,
                                        level=level, max_risk=max_risk, q=q, limit=limit, offset=offset)
    return [staged_view(r) for r in rows]


@get("/v1/staging/{item_id:uuid}", summary="One staged item with its audit trail",
     responses=errors(400, 404, *AUTHED), operation_class=Documented)
async def get_staged(request: Request[Any, Any, Any], item_id: FromPath[UUID]) -> dict[str, Any]:
    staff(request)
    async with services(request).pool.connection() as conn:
        row = await staging.get_item(conn, item_id)
        if row is None:
            raise NotFound(f"staged item '{item_id}' not found", field="item_id")
        audit = await staging.list_decisions(conn, item_id)
    view = staged_view(row)
    view["audit"] = [{**a, "staging_id": str(a["staging_id"]) if a["staging_id"] else None,
                      "question_id": str(a["question_id"]) if a["question_id"] else None,
                      "created_at": a["created_at"].isoformat()} for a in audit]
    return view


@post("/v1/staging/{item_id:uuid}/decision", status_code=200, summary="Accept, reject, or send back",
      responses=errors(400, 404, 409, 413, *AUTHED), operation_class=Documented)
async def decide(request: Request[Any, Any, Any], item_id: FromPath[UUID],
                 data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    who = staff(request)
    svc = services(request)
    async with svc.pool.connection() as conn:
        row = await decisions.decide(conn, item_id=item_id, body=data, actor=who.sub,
                                     embedding_model=svc.settings.factory.embedding)
    return staged_view(row)


@post("/v1/ingestions", status_code=200, summary="Run the ingestion now (ACCEPTED items into the bank)",
      responses=errors(*AUTHED), operation_class=Documented)
async def run_ingestion(request: Request[Any, Any, Any]) -> dict[str, Any]:
    staff(request)
    svc = services(request)
    return await ingest(svc.pool, embedding_model=svc.settings.factory.embedding)


def question_view(q: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in q.items()}
    for k in ("id", "staging_id", "replaces"):
        out[k] = str(out[k]) if out.get(k) else None
    for k in ("created_at", "retired_at"):
        out[k] = out[k].isoformat() if out.get(k) else None
    return out


@get("/v1/questions/{question_id:uuid}", summary="A bank question with its answer key",
     responses=errors(400, 404, *AUTHED), operation_class=Documented)
async def get_question(request: Request[Any, Any, Any], question_id: FromPath[UUID]) -> dict[str, Any]:
    staff(request)
    async with services(request).pool.connection() as conn:
        q = await questions.get_question(conn, question_id)
    if q is None:
        raise NotFound(f"question '{question_id}' not found", field="question_id")
    return question_view(q)


@post("/v1/questions/{question_id:uuid}/retire", status_code=200, summary="Retire a live question",
      responses=errors(400, 404, 409, 413, *AUTHED), operation_class=Documented)
async def retire(request: Request[Any, Any, Any], question_id: FromPath[UUID],
                 data: JSONBody[dict[str, Any] | None] = None) -> dict[str, Any]:
    who = staff(request)
    svc = services(request)
    reason = (data or {}).get("reason")
    if reason is not None and not isinstance(reason, str):
        raise BadInput("reason: must be a string", field="reason")
    async with svc.pool.connection() as conn:
        return await retirement.retire(conn, svc.redis, question_id, actor=who.sub, reason=reason)


@post("/v1/questions/{question_id:uuid}/correct", status_code=200,
      summary="Correct a live question (a new version replaces it)",
      responses=errors(400, 404, 409, 413, *AUTHED), operation_class=Documented)
async def correct(request: Request[Any, Any, Any], question_id: FromPath[UUID],
                  data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    who = staff(request)
    svc = services(request)
    edits = data.get("edits")
    if not isinstance(edits, dict) or not edits:
        raise BadInput("edits: an object of field changes is required", field="edits")
    async with svc.pool.connection() as conn:
        return await retirement.correct(conn, svc.redis, question_id, edits=edits, actor=who.sub,
                                        reason=data.get("reason"), embedding_model=svc.settings.factory.embedding)


ROUTES = [list_staged, get_staged, decide, run_ingestion, get_question, retire, correct]
