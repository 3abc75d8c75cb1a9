"""Secrets and tokens never reach the logs: the real API and a factory worker run as child processes
(as `lessonloop up` runs them) with a token secret and LLM keys in their environment; learners and
staff call them with tokens — valid, forged, expired, in the query string, an API key sent as a bearer
token — while the LLM provider fails; then every line the processes wrote must be a JSON record
(shared/logs.py's formatter, which redacts) holding none of the secrets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lessonloop.stack import child_env
from loadtests.fake_llm import FakeLLMServer
from shared.auth import mint_token
from shared.runtime import Endpoints
from shared.settings import AuthSettings
from tests.abuse.conftest import COURSE
from tests.helpers import free_port

SECRET = "log-test-secret-" + "k" * 24
OPENAI_KEY = "sk-logtest-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-logtest-0123456789abcdef"
PYCACHE = Path(tempfile.gettempdir()) / "lessonloop-pycache"


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "lessonloop.cli", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def wait_ready(url: str, procs: list[subprocess.Popen[bytes]], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a child exited while starting"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the API did not start")


@pytest.mark.timeout(240)
def test_no_secret_or_token_in_any_log_line(bank: Endpoints, tmp_path: Path) -> None:
    auth = AuthSettings(token_secret=SECRET)
    learner = mint_token(auth, sub="log-learner", role="learner")
    designer = mint_token(auth, sub="log-designer", role="designer")
    expired = mint_token(auth, sub="log-learner", role="learner", ttl_s=-5)
    forged = mint_token(AuthSettings(token_secret="forger-" + "f" * 32), sub="log-learner", role="admin")
    needles = {"token secret": SECRET, "OpenAI key": OPENAI_KEY, "Anthropic key": ANTHROPIC_KEY,
               "learner token": learner, "designer token": designer, "expired token": expired,
               "forged token": forged}
    with FakeLLMServer() as fake:
        fake.set_fault("server_error", model="log-primary")
        fake.set_fault("malformed", model="log-backup")
        env = {k: v for k, v in child_env(bank).items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update({
            "LESSONLOOP_TOKEN_SECRET": SECRET, "OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "LESSONLOOP_FACTORY_TIERS": json.dumps([
                {"name": "primary", "provider": "openai", "model": "log-primary", "base_url": fake.base_url},
                {"name": "backup", "provider": "anthropic", "model": "log-backup", "base_url": fake.url}]),
            "LESSONLOOP_FACTORY_RETRY_ATTEMPTS": "2", "LESSONLOOP_FACTORY_RETRY_INITIAL_S": "0.05",
            "LESSONLOOP_LOG_LEVEL": "DEBUG", "LESSONLOOP_SERVING_RATE_PER_LEARNER": "0",
            "LESSONLOOP_SERVING_RATE_PER_IP": "0", "PYTHONPYCACHEPREFIX": str(PYCACHE)})
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        procs = [spawn(["serve", "--port", str(port)], env, tmp_path / "api.log"),
                 spawn(["worker", "factory"], env, tmp_path / "factory.log")]
        try:
            wait_ready(url, procs)
            exercise(url, learner, designer, expired, forged)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    lines = [(log.name, line) for log in sorted(tmp_path.glob("*.log"))
             for line in log.read_text(errors="replace").splitlines() if line.strip()]
    assert len(lines) > 10
    not_json = [f"{name}: {line[:160]}" for name, line in lines if not is_json_record(line)]
    assert not not_json, "log lines that bypassed the redacting JSON formatter:\n" + "\n".join(not_json[:10])
    found = [f"{what} in {name}" for name, line in lines for what, value in needles.items() if value in line]
    assert not found, found


def is_json_record(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and {"level", "logger", "msg"} <= set(record)


def exercise(url: str, learner: str, designer: str, expired: str, forged: str) -> None:
    def h(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    with httpx.Client(base_url=url, timeout=30) as c:
        lesson = c.post(f"/v1/courses/{COURSE}/lessons", headers=h(learner)).json()
        for i, item in enumerate(lesson["items"]):
            r = c.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=h(learner), json={
                "item_id": item["item_id"], "answer": learner if i == 0 else "hola", "response_ms": 900,
                "attempt_id": f"log-{i}"})
            assert r.status_code == 200, r.text
        assert c.post(f"/v1/lessons/{lesson['lesson_id']}/complete", headers=h(learner)).status_code == 200
        for token in (expired, forged, OPENAI_KEY, SECRET):
            assert c.get("/v1/me/profile", headers=h(token)).status_code == 401
        assert c.get("/v1/me/profile", headers={"Authorization": SECRET}).status_code == 401
        c.get(f"/v1/courses?access_token={learner}", headers=h(learner))
        c.get(f"/v1/courses/{learner[:40]}", headers=h(learner))
        c.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=h(learner),
               content=b"{not json " + SECRET.encode())
        job = c.post("/v1/generation-jobs", headers=h(designer),
                     json={"course": COURSE, "skills": ["greetings"], "count": 10, "topic": OPENAI_KEY[:20]})
        assert job.status_code == 202, job.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status: Any = c.get(job.headers["location"], headers=h(designer)).json()["status"]
            if status not in ("queued", "running"):
                break
            time.sleep(0.3)
        assert status in ("succeeded", "partial"), status  # the offline tier finished what the LLMs could not
