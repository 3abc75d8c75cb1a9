"""Portal users: staff who sign in to the review portal (argon2 password hashes, role designer or admin).

Password hashing lives with the portal (`review_portal.web.accounts`); this module stores and reads rows.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

USER_COLUMNS = "id, display_name, password_hash, role, disabled, created_at, last_login_at"

INSERT_USER = """
INSERT INTO users (id, display_name, password_hash, role) VALUES (%s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""
GET_USER = f"SELECT {USER_COLUMNS} FROM users WHERE lower(id) = lower(%s)"
LIST_USERS = f"SELECT {USER_COLUMNS} FROM users ORDER BY role, id"
COUNT_USERS = "SELECT count(*) AS n FROM users"
COUNT_ACTIVE_ADMINS = "SELECT count(*) AS n FROM users WHERE role = 'admin' AND NOT disabled"
TOUCH_LOGIN = "UPDATE users SET last_login_at = now() WHERE id = %s"
SET_PASSWORD = "UPDATE users SET password_hash = %s WHERE id = %s RETURNING id"
SET_ROLE = "UPDATE users SET role = %s WHERE id = %s RETURNING id"
SET_DISABLED = "UPDATE users SET disabled = %s WHERE id = %s RETURNING id"
SET_DISPLAY_NAME = "UPDATE users SET display_name = %s WHERE id = %s RETURNING id"


async def create_user(conn: AsyncConnection[Any], *, user_id: str, display_name: str, password_hash: str,
                      role: str) -> bool:
    """Insert a user; False when the id is taken."""
    row = await (await conn.execute(INSERT_USER, (user_id, display_name, password_hash, role))).fetchone()
    return row is not None


async def get_user(conn: AsyncConnection[Any], user_id: str) -> dict[str, Any] | None:
    """The user with this id (ids compare case-insensitively at sign-in)."""
    return await (await conn.execute(GET_USER, (user_id,))).fetchone()


async def list_users(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(LIST_USERS)).fetchall()


async def count_users(conn: AsyncConnection[Any]) -> int:
    row = await (await conn.execute(COUNT_USERS)).fetchone()
    return int(row["n"]) if row else 0


async def count_active_admins(conn: AsyncConnection[Any]) -> int:
    row = await (await conn.execute(COUNT_ACTIVE_ADMINS)).fetchone()
    return int(row["n"]) if row else 0


async def touch_login(conn: AsyncConnection[Any], user_id: str) -> None:
    await conn.execute(TOUCH_LOGIN, (user_id,))


async def set_password(conn: AsyncConnection[Any], user_id: str, password_hash: str) -> bool:
    return (await (await conn.execute(SET_PASSWORD, (password_hash, user_id))).fetchone()) is not None


async def set_role(conn: AsyncConnection[Any], user_id: str, role: str) -> bool:
    return (await (await conn.execute(SET_ROLE, (role, user_id))).fetchone()) is not None


async def set_disabled(conn: AsyncConnection[Any], user_id: str, disabled: bool) -> bool:
    return (await (await conn.execute(SET_DISABLED, (disabled, user_id))).fetchone()) is not None


async def set_display_name(conn: AsyncConnection[Any], user_id: str, display_name: str) -> bool:
    return (await (await conn.execute(SET_DISPLAY_NAME, (display_name, user_id))).fetchone()) is not None
