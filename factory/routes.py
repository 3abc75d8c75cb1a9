"""Staff routes for generation jobs: create (202 + Location), status (with cost by provider and
model), list, cancel (which also raises the job's cancel flag, so batches in flight stop calling)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.openapi.spec import OpenAPIHeader, OpenAPIType, Schema
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED

from factory.jobs import create_job, set_cancel_flag
from shared import queues
from shared.db import jobs, staging
from shared.errors import Conflict, NotFound
from shared.http import AUTHED, Documented, documented, errors, services, staff


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(job["id"]), "course": job["course_id"], "status": job["status"], "spec": job["spec"],
        "counts": {k: job[k] for k in ("requested", "generated", "invalid", "duplicates", "staged")},
        "cost_usd": float(job["cost_usd"]), "batches": {"total": job["batches_total"], "done": job["batches_done"]},
        "created_by": job["created_by"], "created_at": job["created_at"].isoformat(),
        "finished_at": job["finished_at"].isoformat() if job["finished_at"] else None, "error": job["error"],
    }


LOCATION = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING, pattern="^/v1/generation-jobs/[0-9a-f-]{36}$"), required=True,
    description="The job's status: `GET /v1/generation-jobs/{id}`.")


@post("/v1/generation-jobs", status_code=HTTP_202_ACCEPTED, summary="Ask for generated questions",
      description="Accepted at once; the job fans out into batches run by factory workers.",
      responses=errors(400, 404, 413, *AUTHED), operation_class=documented({202: {"Location": LOCATION}}))
async def create(request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> Response[dict[str, Any]]:
    who = staff(request)
    svc = services(request)
    async with svc.pool.connection() as conn:
        async with conn.transaction():
            job_id, n = await create_job(conn, data, svc.settings.factory, created_by=who.sub)
        job = await jobs.get_job(conn, job_id)
    await queues.enqueue_batches(svc.arq, job_id, list(range(n)))
    assert job is not None
    return Response(job_view(job), status_code=HTTP_202_ACCEPTED,
                    headers={"Location": f"/v1/generation-jobs/{job_id}"})


@get("/v1/generation-jobs", summary="Recent generation jobs", responses=errors(*AUTHED), operation_class=Documented)
async def list_all(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    staff(request)
    async with services(request).pool.connection() as conn:
        return [job_view(j) for j in await jobs.list_jobs(conn)]


@get("/v1/generation-jobs/{job_id:uuid}", summary="A job's status, counts and cost",
     description="`cost_by_model`: calls, tokens and USD by provider, model and tier, from the call records "
                 "each staged batch keeps; `cost_usd` is the job's total, every batch included.",
     responses=errors(400, 404, *AUTHED), operation_class=Documented)
async def get_one(request: Request[Any, Any, Any], job_id: FromPath[UUID]) -> dict[str, Any]:
    staff(request)
    async with services(request).pool.connection() as conn:
        job = await jobs.get_job(conn, job_id)
        if job is None:
            raise NotFound(f"generation job '{job_id}' not found", field="job_id")
        view = job_view(job)
        view["batches"]["detail"] = [
            {**b, "cost_usd": float(b["cost_usd"])} for b in await jobs.list_batches(conn, job_id)]
        view["cost_by_model"] = [
            {**c, "cost_usd": float(c["cost_usd"])} for c in await staging.cost_by_model(conn, job_id)]
    return view


@post("/v1/generation-jobs/{job_id:uuid}/cancel", status_code=200, summary="Cancel a job",
      responses=errors(400, 404, 409, *AUTHED), operation_class=Documented)
async def cancel(request: Request[Any, Any, Any], job_id: FromPath[UUID]) -> dict[str, Any]:
    staff(request)
    async with services(request).pool.connection() as conn:
        async with conn.transaction():
            if await jobs.get_job(conn, job_id) is None:
                raise NotFound(f"generation job '{job_id}' not found", field="job_id")
            if not await jobs.cancel_job(conn, job_id):
                raise Conflict(f"generation job '{job_id}' has already finished", field="job_id")
        await set_cancel_flag(services(request).arq, job_id)
        job = await jobs.get_job(conn, job_id)
    assert job is not None
    return job_view(job)


ROUTES = [create, list_all, get_one, cancel]
