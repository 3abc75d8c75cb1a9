"""Bearer tokens of an external identity provider: RS256 verified with the keys of a JWKS document
that a real local HTTP server publishes (keys made with `cryptography`), through the real app. Keys
are fetched at start-up and in the background, never on a request: a token naming an unknown key is
refused at once however slow the provider is, a provider that is down does not fail tokens whose
keys are known, and rotations (a key added, a key withdrawn) are followed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import TestClient

from shared.runtime import Endpoints, environ
from shared.settings import get_settings
from tests.helpers import api_client, auth, free_port

ISSUER = "https://idp.test/realms/lessonloop"
AUDIENCE = "lessonloop-api"


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


class FakeIdP:
    """A JWKS endpoint on 127.0.0.1: `publish()` what it serves, `delay_s` before each answer, `hits`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/.well-known/jwks.json"
        self.doc: dict[str, Any] = {"keys": []}
        self.delay_s = 0.0
        self.hits = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def publish(self, *keys: tuple[str, rsa.RSAPrivateKey]) -> None:
        jwks = []
        for kid, key in keys:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            jwks.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        # an encryption key and an EC key the verifier must skip
        self.doc = {"keys": [*jwks, {**jwks[0], "kid": "enc-1", "use": "enc"}, {"kty": "EC", "kid": "ec-1"}]}

    def start(self) -> FakeIdP:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                idp.hits += 1
                time.sleep(idp.delay_s)
                body = json.dumps(idp.doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-idp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("a", "b", "evil")}


@pytest.fixture
def idp(keys: dict[str, rsa.RSAPrivateKey]) -> Iterator[FakeIdP]:
    server = FakeIdP()
    server.publish(("key-a", keys["a"]))
    server.start()
    yield server
    server.stop()


def idp_token(key: rsa.RSAPrivateKey, kid: str | None = "key-a", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"sub": f"idp-{uuid.uuid4().hex[:8]}", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600,
              "roles": ["learner"], **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid} if kid else None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def idp_api(idp: FakeIdP, **env: str) -> Iterator[TestClient[Any]]:
    """The app configured for `idp` (roles in `roles`), plus `env` (LESSONLOOP_ names without the prefix)."""
    values = {"JWKS_URL": idp.url, "JWKS_ISSUER": ISSUER, "JWKS_AUDIENCE": AUDIENCE, "JWKS_ROLE_CLAIM": "roles",
              "JWKS_RETRY_S": "0.3", "SERVING_RATE_PER_LEARNER": "0", **env}
    try:
        with environ({f"LESSONLOOP_{k}": v for k, v in values.items()}), api_client() as client:
            yield client
    finally:
        get_settings.cache_clear()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def test_a_valid_idp_token_is_accepted_with_its_most_privileged_known_role(
        clean: Endpoints, idp: FakeIdP, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    with idp_api(idp) as client:
        learner = bearer(idp_token(keys["a"], roles=["learner", "some-other-app-role"]))
        assert client.get("/v1/me/profile", headers=learner).status_code == 200
        r = client.get("/v1/generation-jobs", headers=learner)
        assert r.status_code == 403 and "your token has role learner" in r.json()["detail"]
        designer = bearer(idp_token(keys["a"], roles=["learner", "designer"]))
        assert client.get("/v1/generation-jobs", headers=designer).status_code == 200
        assert client.get("/v1/me/profile", headers=designer).status_code == 403  # designer, not learner
        admin = bearer(idp_token(keys["a"], roles="admin"))  # a string works as well as a list
        assert client.get("/v1/generation-jobs", headers=admin).status_code == 200
        # the locally minted HS256 tokens keep working beside the identity provider's
        assert client.get("/v1/generation-jobs", headers=auth("designer", "ops")).status_code == 200
        assert idp.hits == 1  # fetched once at start-up; requests never fetched


def hs256_forged_with(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    """An HS256 token whose HMAC key is `secret` (PyJWT itself refuses to sign with a public key)."""
    def part(data: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": kid}) + b"." + part(claims)
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


def test_idp_tokens_with_a_wrong_claim_key_or_algorithm_are_401_naming_the_problem(
        clean: Endpoints, idp: FakeIdP, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    now = int(time.time())
    public_pem = keys["a"].public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    admin_claims = {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "roles": ["admin"]}
    cases = {
        "wrong issuer": (idp_token(keys["a"], iss="https://evil.test/"), "Invalid issuer"),
        "wrong audience": (idp_token(keys["a"], aud="another-app"), "Audience doesn't match"),
        "no audience": (idp_token(keys["a"], aud=None), 'missing the "aud" claim'),
        "expired": (idp_token(keys["a"], exp=now - 30, iat=now - 700), "token expired"),
        "unknown kid": (idp_token(keys["a"], kid="key-zzz"), "unknown signing key (kid 'key-zzz')"),
        "signed by another key": (idp_token(keys["evil"]), "Signature verification failed"),
        "HS256 with the public key as secret": (hs256_forged_with(public_pem, admin_claims, "key-a"),
                                                "Signature verification failed"),
        "alg none": (jwt.encode(admin_claims, None, algorithm="none"), "algorithm 'none' is not accepted"),
    }
    with idp_api(idp) as client:
        for name, (token, detail) in cases.items():
            for method, path in (("GET", "/v1/generation-jobs"), ("POST", "/v1/courses/spanish-a1-b1/lessons")):
                r = client.request(method, path, headers=bearer(token))
                assert r.status_code == 401, (name, path, r.text)
                assert detail in r.json()["detail"], (name, r.json())
                assert r.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/generation-jobs",
                          headers=bearer(idp_token(keys["a"], roles=["admin"]))).status_code == 200


def test_an_unknown_kid_is_refused_at_once_and_the_rotated_key_is_picked_up_off_the_request_path(
        clean: Endpoints, idp: FakeIdP, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    with idp_api(idp) as client:
        old = bearer(idp_token(keys["a"], roles=["designer"]))
        assert client.get("/v1/generation-jobs", headers=old).status_code == 200  # now cached
        idp.publish(("key-b", keys["b"]))  # rotation: b replaces a
        idp.delay_s = 2.0                  # and the provider is slow
        new = bearer(idp_token(keys["b"], kid="key-b", roles=["designer"]))
        t0 = time.monotonic()
        r = client.get("/v1/generation-jobs", headers=new)
        assert r.status_code == 401 and "unknown signing key (kid 'key-b')" in r.json()["detail"]
        assert time.monotonic() - t0 < 1.0  # not held for the 2 s fetch it asked for
        eventually(lambda: client.get("/v1/generation-jobs", headers=new).status_code == 200)
        # key a was withdrawn: a token it signed stops working, even one verified (and cached) before
        r = client.get("/v1/generation-jobs", headers=old)
        assert r.status_code == 401 and "unknown signing key (kid 'key-a')" in r.json()["detail"]


def test_fetches_for_unknown_kids_are_single_flight_and_rate_limited(
        clean: Endpoints, idp: FakeIdP, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    with idp_api(idp, JWKS_RETRY_S="1.0") as client:
        verifier = client.app.state.services.verifier
        assert idp.hits == 1
        idp.delay_s = 0.1
        t0 = time.monotonic()
        for i in range(60):  # made-up key ids, for 2-3 s
            r = client.get("/v1/courses", headers=bearer(idp_token(keys["evil"], kid=f"made-up-{i}")))
            assert r.status_code == 401
            time.sleep(0.04)
        burst_s = time.monotonic() - t0
        time.sleep(1.5)
        # at most one fetch per retry interval (1 s) however many requests ask (unlimited, this would be
        # one every 0.1 s), plus the one the last requests asked for; the periodic refresh (300 s) is not due
        fetched = idp.hits - 1
        assert 2 <= fetched <= int(burst_s) + 2, (fetched, burst_s)
        assert verifier.keys.failures == 0 and set(verifier.keys.keys) == {"key-a"}


def test_known_keys_keep_working_while_the_idp_is_down(
        clean: Endpoints, idp: FakeIdP, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    with idp_api(idp, JWKS_REFRESH_S="0.2", JWKS_RETRY_S="0.2") as client:
        verifier = client.app.state.services.verifier
        idp.stop()
        eventually(lambda: verifier.keys.failures >= 2)  # the refresher is failing against the dead provider
        fresh = bearer(idp_token(keys["a"]))  # never seen before: verified now, with the kept key
        assert client.get("/v1/me/profile", headers=fresh).status_code == 200
        r = client.get("/v1/me/profile", headers=bearer(idp_token(keys["b"], kid="key-b")))
        assert r.status_code == 401 and "unknown signing key" in r.json()["detail"]


def test_an_idp_down_at_start_up_gives_503_until_its_keys_arrive(
        clean: Endpoints, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    idp = FakeIdP()  # not started: nothing listens on its port
    idp.publish(("key-a", keys["a"]))
    try:
        with idp_api(idp, JWKS_RETRY_S="0.2") as client:
            token = bearer(idp_token(keys["a"]))
            r = client.get("/v1/me/profile", headers=token)
            assert r.status_code == 503 and "not loaded yet" in r.json()["detail"], r.text
            assert int(r.headers["retry-after"]) >= 1
            assert client.get("/v1/courses", headers=auth("learner", "local")).status_code == 200
            idp.start()
            eventually(lambda: client.get("/v1/me/profile", headers=token).status_code == 200)
    finally:
        idp.stop()


def test_a_token_without_a_known_role_is_403_unless_a_default_role_is_set(
        clean: Endpoints, idp: FakeIdP, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    roleless = bearer(idp_token(keys["a"], roles=["viewer"]))
    nested = bearer(idp_token(keys["a"], roles=None, realm_access={"roles": ["offline_access", "designer"]}))
    with idp_api(idp) as client:
        r = client.get("/v1/courses", headers=roleless)
        assert r.status_code == 403 and "no known role in its 'roles' claim" in r.json()["detail"]
        assert client.get("/v1/courses", headers=bearer(idp_token(keys["a"], roles=None))).status_code == 403
    with idp_api(idp, DEFAULT_ROLE="learner") as client:
        assert client.get("/v1/me/profile", headers=roleless).status_code == 200
        assert client.get("/v1/generation-jobs", headers=roleless).status_code == 403
    with idp_api(idp, JWKS_ROLE_CLAIM="realm_access.roles") as client:
        assert client.get("/v1/generation-jobs", headers=nested).status_code == 200
