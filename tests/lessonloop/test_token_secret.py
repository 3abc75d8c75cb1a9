"""The public default token secret runs only on the embedded local setup: `lessonloop serve`,
`lessonloop up` and `lessonloop token` refuse it on external stores (or, for a server, beyond
loopback), naming LESSONLOOP_TOKEN_SECRET, while `lessonloop up`'s own children — handed the
embedded servers' URLs — still start with it. And the auth settings reject what cannot work."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pydantic
import pytest

from lessonloop.cli import main
from lessonloop.stack import child_env
from shared.auth import dev_secret_refusal, mint_token
from shared.runtime import EmbeddedServices, Endpoints, environ
from shared.settings import DEV_PORTAL_SECRET, DEV_TOKEN_SECRET, AuthSettings, Settings, get_settings
from tests.helpers import free_port


def on(data_dir: Path, secret: str = DEV_TOKEN_SECRET) -> Settings:
    """Settings as a process given the session's store URLs sees them, `data_dir` its embedded servers' folder."""
    with environ({"LESSONLOOP_TOKEN_SECRET": secret, "LESSONLOOP_DATA_DIR": str(data_dir)}):
        return Settings()


def test_the_default_secret_is_refused_on_external_stores_and_beyond_loopback(
        stores: Endpoints, services_dir: Path, tmp_path: Path) -> None:
    elsewhere = on(tmp_path)  # the URLs are not this folder's embedded servers: external stores
    assert not elsewhere.embedded
    assert "LESSONLOOP_TOKEN_SECRET" in (dev_secret_refusal(elsewhere) or "")
    assert dev_secret_refusal(on(tmp_path, secret="s" * 40)) is None  # a secret of its own: fine
    with environ({"LESSONLOOP_PORTAL_SESSION_SECRET": DEV_PORTAL_SECRET}):  # the portal's default is public too
        portal = dev_secret_refusal(on(tmp_path, secret="s" * 40))
    assert portal and "LESSONLOOP_PORTAL_SESSION_SECRET" in portal and "LESSONLOOP_TOKEN_SECRET" not in portal
    # the embedded servers of its own folder, handed over by URL (as `lessonloop up` does): local setup
    local = on(services_dir)
    assert dev_secret_refusal(local) is None
    assert dev_secret_refusal(local, host="127.0.0.1") is None and dev_secret_refusal(local, host="::1") is None
    beyond = dev_secret_refusal(local, host="0.0.0.0")
    assert beyond and "LESSONLOOP_TOKEN_SECRET" in beyond and "0.0.0.0" in beyond
    # no URL at all: this process starts (or reuses) the embedded servers
    unset = local.model_copy(update={"database": local.database.model_copy(update={"url": None})})
    assert unset.embedded and dev_secret_refusal(unset) is None


def test_serve_refuses_to_start_on_external_stores_with_the_default_secret(stores: Endpoints, tmp_path: Path) -> None:
    env = {k: v for k, v in child_env(stores).items() if k != "LESSONLOOP_TOKEN_SECRET"}
    env["LESSONLOOP_DATA_DIR"] = str(tmp_path)
    for args in (["serve", "--port", str(free_port())], ["up", "--port", str(free_port()), "--no-workers"]):
        done = subprocess.run([sys.executable, "-m", "lessonloop.cli", *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2, (args, done.stderr[-2000:])
        assert "LESSONLOOP_TOKEN_SECRET" in done.stderr and "external" in done.stderr, done.stderr[-2000:]


def test_token_refuses_the_default_secret_on_external_stores(
        stores: Endpoints, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        with environ({"LESSONLOOP_TOKEN_SECRET": DEV_TOKEN_SECRET, "LESSONLOOP_DATA_DIR": str(tmp_path)}):
            get_settings.cache_clear()
            assert main(["token", "--role", "admin", "--sub", "ops"]) == 2
            assert "LESSONLOOP_TOKEN_SECRET" in capsys.readouterr().err
        with environ({"LESSONLOOP_TOKEN_SECRET": "t" * 40}):
            get_settings.cache_clear()
            assert main(["token", "--role", "admin", "--sub", "ops"]) == 0
            assert capsys.readouterr().out.count(".") == 2  # a JWT
    finally:
        get_settings.cache_clear()


@pytest.mark.timeout(120)
def test_the_local_stacks_api_child_starts_with_the_default_secret(
        stores: Endpoints, embedded: EmbeddedServices) -> None:
    """What `lessonloop up` and `make demo` spawn: serve on the embedded servers' URLs, default secret."""
    env = {k: v for k, v in child_env(stores, embedded).items() if k != "LESSONLOOP_TOKEN_SECRET"}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lessonloop.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # what `lessonloop token` prints on a fresh clone
        token = mint_token(AuthSettings(token_secret=DEV_TOKEN_SECRET), sub="alice", role="learner")
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "the API did not start"
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/courses", headers={"Authorization": f"Bearer {token}"},
                              timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.parametrize("kwargs, named", [
    ({"jwks_url": "https://idp.example/jwks", "jwks_audience": "api"}, "LESSONLOOP_JWKS_ISSUER"),
    ({"jwks_url": "https://idp.example/jwks", "jwks_issuer": "https://idp.example/"}, "LESSONLOOP_JWKS_AUDIENCE"),
    ({"jwks_url": "http://idp.example/jwks", "jwks_issuer": "i", "jwks_audience": "a"}, "https"),
    ({"token_secret": "short"}, "token_secret"),
    ({"default_role": "admin"}, "default_role"),
])
def test_auth_settings_refuse_what_cannot_work(kwargs: dict[str, str], named: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=named):
        AuthSettings(**kwargs)  # type: ignore[arg-type]
    if "jwks_url" in kwargs:
        AuthSettings(**{"jwks_issuer": "i", "jwks_audience": "a", **kwargs,  # type: ignore[arg-type]
                        "jwks_url": "http://127.0.0.1:9/jwks"})  # complete, over loopback: accepted
