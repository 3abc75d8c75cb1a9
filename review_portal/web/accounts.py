"""Portal accounts: argon2 password hashes, sign-in with a wrong-password throttle (per user id and
IP address, in Redis), and creating users (the CLI, the admin page and `lessonloop up`'s first admin)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import AsyncConnection

from shared import constants
from shared.db import users
from shared.errors import BadInput, Conflict, RateLimited
from shared.settings import PortalSettings

ROLES = ("designer", "admin")
USER_ID_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
MAX_NAME_CHARS = 100

_hasher = PasswordHasher()
# Verified against when the user id is unknown, so a wrong id costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class User:
    id: str
    display_name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def label(self) -> str:
        return self.display_name or self.id


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def random_password() -> str:
    return secrets.token_urlsafe(15)


def check_new_user(user_id: str, role: str, password: str, display_name: str = "") -> dict[str, str]:
    """Field errors of a new user (empty when fine)."""
    errors: dict[str, str] = {}
    if not USER_ID_RE.match(user_id or ""):
        errors["id"] = "1-64 letters, digits or . _ @ -"
    if role not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    if password_error := check_password(password):
        errors["password"] = password_error
    if len(display_name) > MAX_NAME_CHARS:
        errors["display_name"] = f"at most {MAX_NAME_CHARS} characters"
    return errors


def check_password(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_CHARS:
        return f"at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"at most {MAX_PASSWORD_CHARS} characters"
    return None


async def create_user(conn: AsyncConnection[Any], *, user_id: str, role: str, password: str,
                      display_name: str = "") -> None:
    """Create a user or raise BadInput (naming the field) / Conflict (the id is taken)."""
    errors = check_new_user(user_id, role, password, display_name)
    if errors:
        field, message = next(iter(errors.items()))
        raise BadInput(f"{field}: {message}", field=field)
    if not await users.create_user(conn, user_id=user_id, display_name=display_name.strip(),
                                   password_hash=hash_password(password), role=role):
        raise Conflict(f"id: a user '{user_id}' already exists", field="id")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def sign_in(conn: AsyncConnection[Any], r: aioredis.Redis, cfg: PortalSettings, *, user_id: str,
                  password: str, ip: str) -> User:
    """The user, or BadInput (wrong id or password: one message for both) / RateLimited (too many)."""
    key = constants.login_attempts_key(user_id[:64], ip)
    failures = int(await r.get(key) or 0)
    if failures >= cfg.login_max_attempts:
        ttl = max(int(await r.ttl(key)), 1)
        raise RateLimited(f"Too many wrong passwords for '{user_id}'. Try again in {(ttl + 59) // 60} minute(s).",
                          retry_after=ttl)
    row = await users.get_user(conn, user_id) if user_id and len(user_id) <= 64 else None
    ok = _verify(row["password_hash"] if row else _DUMMY_HASH, password) and row is not None
    if not ok or row is None or row["disabled"]:
        if await r.incr(key) == 1:  # the window starts at the first wrong password
            await r.expire(key, cfg.login_window_s)
        raise BadInput("Wrong user id or password.", field="password")
    await r.delete(key)
    if _hasher.check_needs_rehash(row["password_hash"]):
        await users.set_password(conn, row["id"], hash_password(password))
    await users.touch_login(conn, row["id"])
    return User(id=row["id"], display_name=row["display_name"], role=row["role"])


async def load_user(conn: AsyncConnection[Any], user_id: str) -> User | None:
    """The signed-in user as stored now (a disabled user, or one deleted, is signed out)."""
    row = await users.get_user(conn, user_id)
    if row is None or row["disabled"]:
        return None
    return User(id=row["id"], display_name=row["display_name"], role=row["role"])


async def ensure_first_admin(conn: AsyncConnection[Any]) -> str | None:
    """With no user at all, create 'admin' with a random password and return the password (else None)."""
    if await users.count_users(conn):
        return None
    password = random_password()
    await create_user(conn, user_id="admin", role="admin", password=password, display_name="Administrator")
    return password
