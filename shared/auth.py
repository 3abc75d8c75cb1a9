"""Bearer tokens: JWT, HS256 with the configured secret by default, RS256 through a JWKS URL for an
external identity provider (its keys: shared.jwks). Roles: learner, designer, admin. The subject
(`sub`) is the user id.

A token must carry a known role: HS256 tokens in `role`, the identity provider's in the claim
`jwks_role_claim` names (a string, or a list whose most privileged known role wins). A verified
token naming none is refused with 403 — unless `default_role` is set (to `learner`), which it then
gets. It used to count as a learner silently; with an identity provider that would make every
account it knows (other applications' users too) a learner here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from shared.errors import Forbidden, NotAuthenticated, Unavailable
from shared.jwks import SigningKeys
from shared.settings import DEV_PORTAL_SECRET, DEV_TOKEN_SECRET, AuthSettings, Settings, loopback_host

Role = Literal["learner", "designer", "admin"]
ROLES: tuple[str, ...] = ("learner", "designer", "admin")
"""Least to most privileged."""
STAFF_ROLES = frozenset({"designer", "admin"})
_RANK = {role: rank for rank, role in enumerate(ROLES)}
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


def dev_secret_refusal(settings: Settings, *, host: str | None = None) -> str | None:
    """Why this process may not use the secrets it has, or None. The default token secret and portal
    session secret are public, so they are accepted only on the embedded local setup: stores this
    project runs itself (shared.runtime.embedded_in_use) and, for a server, a loopback address."""
    public = [(name, harm) for name, harm, in_use in (
        ("LESSONLOOP_TOKEN_SECRET", "anyone could mint an admin token", settings.auth.token_secret == DEV_TOKEN_SECRET),
        ("LESSONLOOP_PORTAL_SESSION_SECRET", "anyone could forge a portal sign-in",
         settings.portal.session_secret == DEV_PORTAL_SECRET)) if in_use]
    if not public:
        return None
    from shared.runtime import embedded_in_use

    where = None
    if not embedded_in_use(settings):
        where = "the stores are external (DATABASE_URL/REDIS_URL)"
    elif host is not None and not loopback_host(host):
        where = f"the API would listen on {host}, beyond loopback"
    if where is None:
        return None
    unset = "; ".join(f"{name} is not set (the default is public: {harm})" for name, harm in public)
    return f"{unset}, and {where}; set each to a random string of 32+ characters"


def role_of(claims: dict[str, Any], claim: str, default: str | None) -> str:
    """The most privileged known role in `claims[claim]` (a string or a list of strings; a dotted name
    walks nested objects when no claim has that exact name); `default` if none; else Forbidden."""
    value: Any = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    known = [n for n in names if isinstance(n, str) and n in _RANK]
    if known:
        return max(known, key=_RANK.__getitem__)
    if default is not None:
        return default
    raise Forbidden(f"the token carries no known role in its {claim!r} claim (expected {', '.join(ROLES)})")


CACHE_SIZE = 100_000
"""Verified tokens remembered per process (a learner's app sends the same token on every call)."""


class TokenVerifier:
    """Verifies bearer tokens. A token verified once is remembered until its `exp` (tokens are
    immutable, so the signature need not be checked again): the warm path pays a dict lookup, not
    an HMAC and a JSON decode, per request. `start()`/`aclose()` run the identity provider's key
    refresher (shared.jwks), when there is one; verifying never waits on it."""

    def __init__(self, cfg: AuthSettings) -> None:
        self.cfg = cfg
        self._cache: dict[str, tuple[Principal, float]] = {}
        self.keys = SigningKeys(cfg, on_removed=self._cache.clear) if cfg.jwks_url else None
        self._algorithms = "HS256 or RS256" if self.keys is not None else "HS256"

    async def start(self) -> None:
        if self.keys is not None:
            await self.keys.start()

    async def aclose(self) -> None:
        if self.keys is not None:
            await self.keys.aclose()

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
            alg = header.get("alg")
            if alg == "HS256":
                claims = self._decode(token, self.cfg.token_secret, "HS256", self.cfg.token_issuer,
                                      self.cfg.token_audience)
                role_claim = "role"
            elif alg == "RS256" and self.keys is not None:
                claims = self._decode(token, self._idp_key(header.get("kid")), "RS256", self.cfg.jwks_issuer,
                                      self.cfg.jwks_audience)
                role_claim = self.cfg.jwks_role_claim
            else:
                raise NotAuthenticated(f"invalid token: algorithm {str(alg)[:16]!r} is not accepted "
                                       f"(expected {self._algorithms})")
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("token expired") from None
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(f"invalid token: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > _MAX_SUB_CHARS:
            raise NotAuthenticated("invalid token: bad subject")
        role = role_of(claims, role_claim, self.cfg.default_role)
        return Principal(sub=sub, role=role), float(claims["exp"])

    @staticmethod
    def _decode(token: str, key: Any, alg: str, issuer: str | None, audience: str | None) -> dict[str, Any]:
        return jwt.decode(token, key, algorithms=[alg], audience=audience, issuer=issuer,
                          options={"require": ["exp", "sub", "iss"]})

    def _idp_key(self, kid: Any) -> Any:
        assert self.keys is not None
        if kid is not None and not isinstance(kid, str):
            raise NotAuthenticated("invalid token: its header's kid is not a string")
        key = self.keys.get(kid)
        if key is not None:
            return key
        if not self.keys.loaded:
            raise Unavailable("the identity provider's signing keys are not loaded yet; retry shortly",
                              retry_after=max(1, round(self.cfg.jwks_retry_s)))
        raise NotAuthenticated(f"invalid token: unknown signing key (kid {str(kid)[:64]!r}); "
                               "the identity provider's keys are being refreshed")


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"this endpoint needs role {' or '.join(roles)}; your token has role {principal.role}")
