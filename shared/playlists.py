"""The playlist element format, shared by the curator (writer) and the lesson API (reader).

A precomputed lesson is stored in the learner's Redis list as `<qid>,<qid>,...|<lesson json>`: the
header lets the pop script check each question against the retired set without decoding JSON, and
the JSON is what the API returns (it never decodes or re-encodes it on the warm path unless a
question in it was retired).
"""

from __future__ import annotations

import json
from typing import Any

SEPARATOR = b"|"


def encode(lesson: dict[str, Any]) -> bytes:
    header = ",".join(str(item["question_id"]) for item in lesson["items"])
    return header.encode() + SEPARATOR + json.dumps(lesson, separators=(",", ":"), ensure_ascii=False).encode()


def split(element: bytes) -> tuple[list[str], bytes]:
    header, _, body = element.partition(SEPARATOR)
    return header.decode().split(","), body


def drop_items(body: bytes, retired: set[str]) -> dict[str, Any]:
    lesson = json.loads(body)
    lesson["items"] = [it for it in lesson["items"] if str(it["question_id"]) not in retired]
    return lesson
