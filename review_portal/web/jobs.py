"""Generation jobs: a form with the cost shown before submitting, the list, and a job's page with
live progress (htmx polls a fragment until the job finishes), cost and failures."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath, QueryParameter

from factory.jobs import LEVELS, create_job, set_cancel_flag
from factory.schemas import QUESTION_TYPES
from review_portal.web.estimate import estimate
from review_portal.web.pages import flash, partial, redirect, render, url, user
from shared import queues
from shared.db import courses, jobs
from shared.errors import BadInput, LessonloopError, NotFound
from shared.http import services

FINISHED = ("succeeded", "partial", "failed", "cancelled")


async def start_job(request: Request[Any, Any, Any], spec: dict[str, Any]) -> UUID:
    """Create a job (as factory/routes.py does) and queue its batches; BadInput/NotFound name the field."""
    svc = services(request)
    async with svc.pool.connection() as conn:
        async with conn.transaction():
            job_id, n = await create_job(conn, spec, svc.settings.factory, created_by=user(request).id)
    await queues.enqueue_batches(svc.arq, job_id, list(range(n)))
    return job_id


def spec_from_form(form: FormMultiDict) -> tuple[dict[str, Any], dict[str, str]]:
    """The job spec a form describes, and the errors of fields that are not even of the right kind."""
    errors: dict[str, str] = {}
    spec: dict[str, Any] = {"course": str(form.get("course") or ""),
                            "skills": [str(s) for s in form.getall("skills", [])]}
    raw_count = str(form.get("count") or "").strip()
    try:
        spec["count"] = int(raw_count)
    except ValueError:
        errors["count"] = "Enter a whole number of questions."
        spec["count"] = raw_count
    if level := str(form.get("level") or ""):
        spec["level"] = level
    if topic := str(form.get("topic") or "").strip():
        spec["topic"] = topic
    spec["types"] = [str(t) for t in form.getall("types", [])] or list(QUESTION_TYPES)
    raw_budget = str(form.get("budget_usd") or "").strip()
    if raw_budget:
        try:
            spec["budget_usd"] = float(raw_budget)
        except ValueError:
            errors["budget_usd"] = "Enter an amount in dollars, e.g. 2.50."
    if not spec["skills"]:
        errors.setdefault("skills", "Pick at least one skill.")
    return spec, errors


async def _form_context(request: Request[Any, Any, Any], course_id: str | None) -> dict[str, Any]:
    async with services(request).pool.connection() as conn:
        all_courses = await courses.list_courses(conn)
        course_id = course_id or (all_courses[0]["id"] if all_courses else None)
        skills = await courses.list_skills(conn, course_id) if course_id else []
    return {"courses": all_courses, "course_id": course_id, "skills": skills, "levels": LEVELS,
            "types": QUESTION_TYPES}


async def _estimate_for(request: Request[Any, Any, Any], spec: dict[str, Any]) -> Any:
    if not isinstance(spec.get("count"), int) or spec["count"] <= 0 or not spec.get("skills"):
        return None
    svc = services(request)
    async with svc.pool.connection() as conn:
        course = await courses.get_course(conn, spec["course"])
        skills = [s for s in await courses.list_skills(conn, spec["course"]) if s["id"] in spec["skills"]]
    if course is None or not skills:
        return None
    count = min(spec["count"], svc.settings.factory.max_job_count)
    return estimate(svc.settings.factory, course=dict(course), skills=[dict(s) for s in skills], count=count,
                    level=spec.get("level"), topic=spec.get("topic"),
                    types=[t for t in spec["types"] if t in QUESTION_TYPES] or list(QUESTION_TYPES),
                    budget_usd=spec.get("budget_usd"))


@get("/jobs", include_in_schema=False)
async def list_jobs(request: Request[Any, Any, Any]) -> Any:
    async with services(request).pool.connection() as conn:
        rows = await jobs.list_jobs(conn, limit=100)
    return render(request, "jobs/list.html", jobs=rows, finished=FINISHED)


@get("/jobs/new", include_in_schema=False)
async def new_job(request: Request[Any, Any, Any],
                  course: Annotated[str | None, QueryParameter(max_length=48)] = None,
                  skill: Annotated[str | None, QueryParameter(max_length=48)] = None) -> Any:
    ctx = await _form_context(request, course)
    form = {"skills": [skill] if skill else [], "count": 10, "types": list(QUESTION_TYPES)}
    spec = {"course": ctx["course_id"], **form}
    return render(request, "jobs/new.html", form=form, errors={}, estimate=await _estimate_for(request, spec), **ctx)


@post("/jobs/estimate", include_in_schema=False)
async def job_estimate(request: Request[Any, Any, Any]) -> Any:
    spec, _ = spec_from_form(await request.form())
    return partial(request, "jobs/_estimate.html", estimate=await _estimate_for(request, spec),
                   max_count=services(request).settings.factory.max_job_count)


@post("/jobs", include_in_schema=False)
async def submit_job(request: Request[Any, Any, Any]) -> Any:
    form = await request.form()
    spec, errors = spec_from_form(form)
    if not errors:
        try:
            job_id = await start_job(request, spec)
        except (BadInput, NotFound) as exc:
            errors[exc.field or "form"] = exc.detail.split(": ", 1)[-1]
        else:
            flash(request, f"Job queued: {spec['count']} questions.")
            return redirect(request, url(f"/jobs/{job_id}"))
    ctx = await _form_context(request, spec["course"] or None)
    return render(request, "jobs/new.html", status_code=400, form=spec, errors=errors,
                  estimate=await _estimate_for(request, spec), **ctx)


async def _job_context(request: Request[Any, Any, Any], job_id: UUID) -> dict[str, Any]:
    async with services(request).pool.connection() as conn:
        job = await jobs.get_job(conn, job_id)
        if job is None:
            raise NotFound(f"There is no generation job '{job_id}'.")
        batches = await jobs.list_batches(conn, job_id)
    failures = [{"batch_no": b["batch_no"], "skill_id": b["skill_id"], **f} for b in batches for f in b["failures"]]
    done_pct = round(100 * job["batches_done"] / job["batches_total"]) if job["batches_total"] else 100
    return {"job": job, "batches": batches, "failures": failures, "done_pct": done_pct,
            "finished": job["status"] in FINISHED}


@get("/jobs/{job_id:uuid}", include_in_schema=False)
async def job_detail(request: Request[Any, Any, Any], job_id: FromPath[UUID]) -> Any:
    return render(request, "jobs/detail.html", **await _job_context(request, job_id))


@get("/jobs/{job_id:uuid}/progress", include_in_schema=False)
async def job_progress(request: Request[Any, Any, Any], job_id: FromPath[UUID]) -> Any:
    return partial(request, "jobs/_progress.html", **await _job_context(request, job_id))


@post("/jobs/{job_id:uuid}/cancel", include_in_schema=False)
async def cancel_job(request: Request[Any, Any, Any], job_id: FromPath[UUID]) -> Any:
    async with services(request).pool.connection() as conn:
        async with conn.transaction():
            if await jobs.get_job(conn, job_id) is None:
                raise NotFound(f"There is no generation job '{job_id}'.")
            cancelled = await jobs.cancel_job(conn, job_id)
    if cancelled:
        await set_cancel_flag(services(request).arq, job_id)  # batches in flight stop before their next call
    flash(request, "Job cancelled." if cancelled else "The job had already finished.", "ok" if cancelled else "warn")
    return redirect(request, url(f"/jobs/{job_id}"))


@post("/opportunities/generate", include_in_schema=False)
async def generate_for_opportunity(request: Request[Any, Any, Any]) -> Any:
    """One click on the dashboard: a job for what a skill is short of its target."""
    form = await request.form()
    try:
        count = int(str(form.get("count") or ""))
    except ValueError:
        count = 0
    spec = {"course": str(form.get("course") or ""), "skills": [str(form.get("skill") or "")],
            "count": max(1, min(count, services(request).settings.factory.max_job_count))}
    try:
        job_id = await start_job(request, spec)
    except LessonloopError as exc:
        flash(request, exc.detail, "error")
        return redirect(request, url("/"))
    flash(request, f"Job queued: {spec['count']} questions for {spec['skills'][0]}.")
    return redirect(request, url(f"/jobs/{job_id}"))


ROUTES = [list_jobs, new_job, job_estimate, submit_job, job_detail, job_progress, cancel_job, generate_for_opportunity]
