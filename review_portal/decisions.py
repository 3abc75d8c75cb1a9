"""Staff decisions on staged items (accept, reject, edit then accept, send back for regeneration),
each recorded in the audit trail with who, when, before and after. A decision names the version it
saw; an item someone else decided meanwhile is refused, never silently overwritten."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from factory.embeddings import get_embedder, item_text
from factory.validation import content_hash, validate_item
from shared.db import staging
from shared.errors import BadInput, Conflict, NotFound

DECISIONS = {"accept": "accepted", "reject": "rejected", "revision": "revision"}
EDITABLE = ("prompt", "choices", "answer", "accepted_answers", "explanation", "difficulty")
REJECT_REASONS = ("incorrect", "ambiguous", "off_topic", "wrong_level", "duplicate", "offensive", "poor_quality",
                  "other")
MAX_REASON_CHARS = 500


def apply_edits(content: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    unknown = [k for k in edits if k not in EDITABLE]
    if unknown:
        raise BadInput(f"edits.{unknown[0]}: not an editable field (editable: {', '.join(EDITABLE)})",
                       field=f"edits.{unknown[0]}")
    return {**content, **edits}


def check_content(content: dict[str, Any], skill_id: str, level: str) -> None:
    result = validate_item(content, skill={"id": skill_id, "level": level}, level=level)
    if not result.valid:
        raise BadInput(f"edits: the edited question is invalid: {'; '.join(result.errors)}", field="edits")


async def decide(conn: AsyncConnection[Any], *, item_id: UUID, body: dict[str, Any], actor: str,
                 embedding_model: str) -> dict[str, Any]:
    decision = body.get("decision")
    if decision not in DECISIONS:
        raise BadInput("decision: must be 'accept', 'reject' or 'revision'", field="decision")
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS):
        raise BadInput(f"reason: must be a string of at most {MAX_REASON_CHARS} characters", field="reason")
    if decision == "reject" and not reason:
        raise BadInput(f"reason: a rejection needs a reason (e.g. {', '.join(REJECT_REASONS)})", field="reason")
    edits = body.get("edits")
    if edits is not None and (not isinstance(edits, dict) or decision != "accept"):
        raise BadInput("edits: an object of field changes, only with decision 'accept'", field="edits")
    item = await staging.get_item(conn, item_id)
    if item is None:
        raise NotFound(f"staged item '{item_id}' not found", field="item_id")
    version = body.get("version", item["version"])
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadInput("version: must be an integer", field="version")
    if item["status"] not in ("pending", "revision", "duplicate") or version != item["version"]:
        who = item["decided_by"] or "someone else"
        raise Conflict(f"item '{item_id}' was already decided ({item['status']}) by {who}; reload it",
                       field="version")
    content = item["content"]
    embedding = None
    if edits:
        content = apply_edits(content, edits)
        check_content(content, item["skill_id"], item["level"])
        embedding = get_embedder(embedding_model).embed([item_text(content)])[0]
    async with conn.transaction():
        updated = await staging.decide(
            conn, item_id=item_id, version=version, status=DECISIONS[decision], content=content,
            content_hash=content_hash(content), embedding=embedding, actor=actor, reason=reason)
        if updated is None:
            raise Conflict(f"item '{item_id}' was decided by someone else meanwhile; reload it", field="version")
        action = "edit_accept" if edits else decision
        await staging.record_decision(conn, staging_id=item_id, question_id=None, action=action, reason=reason,
                                      actor=actor, before=item["content"], after=content)
    return updated


async def bulk_accept(conn: AsyncConnection[Any], *, items: list[tuple[UUID, int]], actor: str, max_risk: float,
                      embedding_model: str) -> dict[str, Any]:
    """Accept each (item id, version seen) whose risk is at most `max_risk`, one audited decision each.
    Items decided by someone else meanwhile, or riskier than the cap, are skipped and counted."""
    accepted: list[str] = []
    conflicts: list[str] = []
    too_risky: list[str] = []
    for item_id, version in items:
        item = await staging.get_item(conn, item_id)
        if item is None:
            conflicts.append(str(item_id))
            continue
        if item["risk"] > max_risk:
            too_risky.append(str(item_id))
            continue
        try:
            await decide(conn, item_id=item_id, body={"decision": "accept", "reason": "bulk accept",
                                                      "version": version},
                         actor=actor, embedding_model=embedding_model)
        except (Conflict, NotFound):
            conflicts.append(str(item_id))
        else:
            accepted.append(str(item_id))
    return {"accepted": accepted, "conflicts": conflicts, "too_risky": too_risky}
