"""Jinja filters and globals of the portal's templates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from review_portal.web.reports import HIGH_RISK, LOW_RISK


def risk_band(risk: float | None) -> str:
    if risk is None:
        return "none"
    return "low" if risk < LOW_RISK else ("medium" if risk < HIGH_RISK else "high")


def usd(value: float | Decimal | None) -> str:
    v = float(value or 0)
    if v == 0:
        return "$0"
    return f"${v:,.4f}" if v < 1 else f"${v:,.2f}"


def ago(when: datetime | float | None) -> str:
    if when is None:
        return "—"
    if isinstance(when, int | float):
        when = datetime.fromtimestamp(when, UTC)
    seconds = (datetime.now(UTC) - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def stamp(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "—"


def pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def short(value: Any, n: int = 8) -> str:
    return str(value)[:n]


def pct(value: float | None) -> str:
    return f"{round(100 * float(value or 0))}%"


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Field-by-field difference of two versions of an item, for the audit trail."""
    before, after = before or {}, after or {}
    return [{"field": k, "before": before.get(k), "after": after.get(k)}
            for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


def as_lines(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


FILTERS = {"risk_band": risk_band, "usd": usd, "ago": ago, "stamp": stamp, "pretty": pretty, "short": short,
           "pct": pct, "as_lines": as_lines}
GLOBALS = {"changed_fields": changed_fields, "LOW_RISK": LOW_RISK, "HIGH_RISK": HIGH_RISK}
