"""Bearer tokens: JWT, HS256 with the configured secret by default, RS256 through a JWKS URL for an
external identity provider. Roles: learner, designer, admin. The subject (`sub`) is the user id."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import jwt

from shared.errors import Forbidden, NotAuthenticated
from shared.settings import AuthSettings

Role = Literal["learner", "designer", "admin"]
ROLES: tuple[str, ...] = ("learner", "designer", "admin")
STAFF_ROLES = frozenset({"designer", "admin"})
_MAX_SUB_CHARS = 128


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def mint_token(cfg: AuthSettings, *, sub: str, role: str, ttl_s: int | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not sub or len(sub) > _MAX_SUB_CHARS:
        raise ValueError(f"sub must be 1..{_MAX_SUB_CHARS} characters")
    now = int(time.time())
    claims = {"sub": sub, "role": role, "iss": cfg.token_issuer, "iat": now,
              "exp": now + (ttl_s if ttl_s is not None else cfg.token_ttl_s)}
    if cfg.token_audience:
        claims["aud"] = cfg.token_audience
    return jwt.encode(claims, cfg.token_secret, algorithm="HS256")


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)


CACHE_SIZE = 100_000
"""Verified tokens remembered per process (a learner's app sends the same token on every call)."""


class TokenVerifier:
    """Verifies bearer tokens. A token verified once is remembered until its `exp` (tokens are
    immutable, so the signature need not be checked again): the warm path pays a dict lookup, not
    an HMAC and a JSON decode, per request."""

    def __init__(self, cfg: AuthSettings) -> None:
        self.cfg = cfg
        self._options = {"require": ["exp", "sub"]}
        self._cache: dict[str, tuple[Principal, float]] = {}

    def verify(self, authorization: str | None) -> Principal:
        if authorization is not None:
            hit = self._cache.get(authorization)
            if hit is not None:
                if hit[1] > time.time():
                    return hit[0]
                del self._cache[authorization]
        who, exp = self._verify(authorization)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[authorization] = (who, exp)  # type: ignore[index]
        return who

    def _verify(self, authorization: str | None) -> tuple[Principal, float]:
        if not authorization:
            raise NotAuthenticated("missing Authorization header (expected 'Bearer <token>')")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated("Authorization header must be 'Bearer <token>'")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "RS256" and self.cfg.jwks_url:
                key = _jwks_client(self.cfg.jwks_url).get_signing_key_from_jwt(token).key
                claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.cfg.token_audience,
                                    options=self._options)
            else:
                claims = jwt.decode(token, self.cfg.token_secret, algorithms=["HS256"],
                                    audience=self.cfg.token_audience, issuer=self.cfg.token_issuer,
                                    options=self._options)
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("token expired") from None
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(f"invalid token: {exc}") from None
        role = claims.get("role", "learner")
        sub = claims.get("sub")
        if role not in ROLES:
            raise NotAuthenticated(f"invalid token: unknown role {role!r}")
        if not isinstance(sub, str) or not sub or len(sub) > _MAX_SUB_CHARS:
            raise NotAuthenticated("invalid token: bad subject")
        return Principal(sub=sub, role=role), float(claims["exp"])


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"this endpoint needs role {' or '.join(roles)}; your token has role {principal.role}")
