"""Locust curriculum designers: create a generation job, wait for it, review what it staged."""

from __future__ import annotations

import random
import time
from typing import Any

from locust import HttpUser, between, task

from loadtests.learners import SPEC
from shared.auth import mint_token
from shared.settings import get_settings

JOB_WAIT_S = 20.0


class Designer(HttpUser):
    weight = 1
    wait_time = between(3, 8)

    def on_start(self) -> None:
        self.rng = random.Random()
        token = mint_token(get_settings().auth, sub=f"loadtest-designer-{self.rng.randrange(10**6)}",
                           role="designer", ttl_s=6 * 3600)
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.course = SPEC["course"]
        self.skills: list[str] = list(SPEC.get("skills") or [])
        if not self.skills:
            r = self.client.get(f"/v1/courses/{self.course}", name="designer: course")
            self.skills = [s["id"] for s in r.json().get("skills", [])] if r.status_code == 200 else []

    @task
    def create_and_review(self) -> None:
        if not self.skills:
            return
        spec = {"course": self.course, "skills": self.rng.sample(self.skills, min(2, len(self.skills))), "count": 10}
        r = self.client.post("/v1/generation-jobs", json=spec, name="designer: create job")
        if r.status_code != 202:
            return
        location = r.headers["location"]
        job: dict[str, Any] = {}
        deadline = time.monotonic() + JOB_WAIT_S
        while time.monotonic() < deadline:
            job = self.client.get(location, name="designer: job status").json()
            if job.get("status") not in ("queued", "running"):
                break
            time.sleep(1)
        staged = self.client.get("/v1/staging", params={"job": job.get("id", ""), "status": "pending", "limit": 50},
                                 name="designer: staging list")
        if staged.status_code != 200:
            return
        for item in staged.json()[:10]:
            self.wait()
            decision = {"decision": "accept"} if self.rng.random() < 0.8 else {"decision": "reject",
                                                                                  "reason": "off topic"}
            self.client.post(f"/v1/staging/{item['id']}/decision", json=decision, name="designer: decide")
