"""Identifier formats checked at the edges (paths, queries, job arguments): the same rules as the
schema's CHECK constraints (migration 0001), so a bad id is a 4xx or a dropped job, never a
database error."""

from __future__ import annotations

import re

COURSE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,47}$"
"""A course id: lower-case letters, digits and dashes, 1–48 characters, not starting with a dash."""
COURSE_ID = re.compile(COURSE_ID_PATTERN)
"""Match it with `fullmatch` (`$` would also accept a trailing newline)."""
COURSE_ID_MAX = 48
