"""Benchmark data: a large question bank (COPY), learners with history (skill states, seen questions),
deep warm playlists (curator.playlist_writer), served lessons to answer, and bearer tokens.

Question ids are derived from (skill index, n), so any question of the bank can be rebuilt without
reading it back: `question_id(s, n)` and `question_row(bank, s, n)`. The content of question n of a
skill is the offline generator's item `n % TEMPLATES` of that skill: real prompts, choices and
explanations (about 480 bytes of JSON each), as a reviewed bank would hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis.asyncio as aioredis

from curator.learner_model import LearnerModel
from curator.planner import lesson_payload
from curator.playlist_writer import replace_playlist
from factory.offline.curriculum_file import load_curriculum
from factory.offline.generator import QUESTION_TYPES, OfflineGenerator
from shared.auth import mint_token
from shared.db import courses
from shared.db.lessons import copy_text
from shared.settings import AuthSettings

TEMPLATES = 30
"""Distinct generated items per skill; question n of a skill reuses template n % TEMPLATES."""
PRACTISED_SKILLS = 5
"""Skills each learner with history has practised (all due for review, so the planner picks them)."""
TOKEN_TTL_S = 12 * 3600

Progress = Callable[..., None]
"""progress(message, every=seconds): print a progress line (rate-limited when `every` is given)."""


@dataclass
class Bank:
    course: str
    skills: list[dict[str, Any]]
    per_skill: int = 0
    templates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.per_skill * len(self.skills)


def question_id(skill_idx: int, n: int) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.blake2b(f"q:{skill_idx}:{n}".encode(), digest_size=16).digest(), version=4)


def question_row(bank: Bank, skill_idx: int, n: int) -> dict[str, Any]:
    """The bank row of question n of a skill, as the cold path's SQL returns it."""
    skill = bank.skills[skill_idx]
    tpl = bank.templates[skill["id"]][n % TEMPLATES]
    return {"id": question_id(skill_idx, n), "skill_id": skill["id"], "type": tpl["type"], "content": tpl,
            "item_state": {}}


async def load_course(database_url: str) -> Bank:
    """The sample curriculum (loaded if absent), its skills, and the offline generator's templates."""
    data = load_curriculum()
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        conn.row_factory = psycopg.rows.dict_row
        if await courses.get_course(conn, data["course"]["id"]) is None:
            await courses.save_curriculum(conn, data)
            await conn.commit()
        skills = await courses.list_skills(conn, data["course"]["id"])
    by_id = {s["id"]: s for s in data["skills"]}
    gen = OfflineGenerator()
    templates = {}
    for s in skills:
        items = gen.generate(by_id[s["id"]], list(QUESTION_TYPES), TEMPLATES, f"bench:{s['id']}")
        templates[s["id"]] = [{k: v for k, v in it.items() if k not in ("skill", "difficulty")} for it in items]
    return Bank(course=data["course"]["id"], skills=[dict(s) for s in skills], templates=templates)


def existing_per_skill(database_url: str, bank: Bank) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM questions WHERE course_id = %s AND skill_id = %s",
                           (bank.course, bank.skills[0]["id"])).fetchone()
    return int(row[0]) if row else 0


def grow_bank(database_url: str, bank: Bank, size: int, progress: Progress) -> float:
    """COPY questions until the bank holds `size` (rounded to whole skills); returns seconds taken."""
    target = max(1, size // len(bank.skills))
    start = existing_per_skill(database_url, bank)
    bank.per_skill = max(start, target)
    if start >= target:
        return 0.0
    t0 = time.monotonic()
    rng = random.Random(f"bank:{start}")
    tpl_json = {sid: [copy_text(json.dumps(t, ensure_ascii=False)) for t in tpls]
                for sid, tpls in bank.templates.items()}
    total = (target - start) * len(bank.skills)
    done = 0
    with psycopg.connect(database_url) as conn:
        with conn.cursor() as cur, cur.copy(
                "COPY questions (id, course_id, skill_id, level_rank, type, content, content_hash, item_state, rand)"
                " FROM STDIN") as copy:
            for si, skill in enumerate(bank.skills):
                sid, rank = skill["id"], skill["level_rank"]
                tpls = bank.templates[sid]
                buf = io.StringIO()
                for n in range(start, target):
                    qid = question_id(si, n)
                    k = n % TEMPLATES
                    buf.write(f"{qid}\t{bank.course}\t{sid}\t{rank}\t{tpls[k]['type']}\t{tpl_json[sid][k]}\t"
                              f"{qid.hex[:16]}\t{{}}\t{rng.random()!r}\n")
                copy.write(buf.getvalue())
                done += target - start
                progress(f"bank: {done:,}/{total:,} questions copied", every=2.0)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE questions")
    return time.monotonic() - t0


# --- learners ----------------------------------------------------------------------------------
@dataclass
class LearnerHistory:
    learner_id: str
    skills: list[int]
    seen: list[tuple[int, int]]


def history(bank: Bank, learner_id: str, seen_count: int) -> LearnerHistory:
    """Deterministic history: PRACTISED_SKILLS skills and `seen_count` questions seen in them."""
    rng = random.Random(learner_id)
    skills = rng.sample(range(len(bank.skills)), min(PRACTISED_SKILLS, len(bank.skills)))
    per = min(bank.per_skill // 2, max(1, seen_count // len(skills)))
    seen = [(s, n) for s in skills for n in rng.sample(range(bank.per_skill), per)]
    return LearnerHistory(learner_id, skills, seen)


def seed_learners(database_url: str, bank: Bank, learners: list[tuple[str, int]], progress: Progress) -> float:
    """COPY course state, skill states (practised, due for review) and seen questions per learner."""
    t0 = time.monotonic()
    model = LearnerModel.load(None)
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        ids = [lid for lid, _ in learners]
        for table in ("learner_seen", "learner_skill_state", "learner_course_state"):
            cur.execute(f"DELETE FROM {table} WHERE learner_id = ANY(%s)", (ids,))
        cstate, sstate, seen = io.StringIO(), io.StringIO(), io.StringIO()
        for i, (lid, count) in enumerate(learners):
            h = history(bank, lid, count)
            ls = model.new_learner_state()
            ls.update(n=len(h.seen), nc=int(len(h.seen) * 0.7), n_skills=len(h.skills))
            cstate.write(f"{lid}\t{bank.course}\t{copy_text(json.dumps(ls))}\n")
            per_skill = len(h.seen) // len(h.skills)
            for s in h.skills:
                skill = bank.skills[s]
                st = model.new_skill_state(skill["level_rank"])
                st.update(n=per_skill, nc=int(per_skill * 0.7), theta=0.2)
                due = (now - timedelta(hours=1 + i % 48)).isoformat()
                sstate.write(f"{lid}\t{bank.course}\t{skill['id']}\t{copy_text(json.dumps(st))}\t\\N\t0.6\t"
                             f"{per_skill}\t{int(per_skill * 0.7)}\t{due}\t{due}\n")
            for s, n in h.seen:
                seen.write(f"{lid}\t{bank.course}\t{question_id(s, n)}\n")
        with cur.copy("COPY learner_course_state (learner_id, course_id, state) FROM STDIN") as c:
            c.write(cstate.getvalue())
        with cur.copy("COPY learner_skill_state (learner_id, course_id, skill_id, state, card, mastery, attempts,"
                      " correct, due_at, last_seen_at) FROM STDIN") as c:
            c.write(sstate.getvalue())
        progress(f"learners: {len(learners):,} with skill states; copying seen questions")
        with cur.copy("COPY learner_seen (learner_id, course_id, question_id) FROM STDIN") as c:
            c.write(seen.getvalue())
        conn.commit()
        conn.autocommit = True
        cur.execute("ANALYZE learner_seen")
        cur.execute("ANALYZE learner_skill_state")
    return time.monotonic() - t0


def unseen_lessons(bank: Bank, h: LearnerHistory, count: int, size: int, source: str) -> Iterator[dict[str, Any]]:
    """`count` lessons of `size` unseen questions from the learner's practised skills, skills interleaved."""
    rng = random.Random(f"{h.learner_id}:{source}")
    seen = set(h.seen)
    used: set[tuple[int, int]] = set()
    capacity = len(h.skills) * bank.per_skill - len(seen)
    for _ in range(count):
        rows = []
        while len(rows) < size:
            if len(used) >= capacity - size:  # a tiny bank ran out of unseen questions: allow repeats
                used.clear()
            s = h.skills[len(rows) % len(h.skills)]
            n = rng.randrange(bank.per_skill)
            if (s, n) in seen or (s, n) in used:
                continue
            used.add((s, n))
            rows.append(question_row(bank, s, n))
        yield lesson_payload(h.learner_id, bank.course, rows, source=source)


async def fill_playlists(redis_url: str, bank: Bank, learners: list[str], depth: int, size: int,
                         seen_count: int) -> float:
    """Replace each warm learner's playlist with `depth` lessons (curator.playlist_writer)."""
    t0 = time.monotonic()
    r = aioredis.Redis.from_url(redis_url)
    sem = asyncio.Semaphore(64)

    async def one(lid: str) -> None:
        h = history(bank, lid, seen_count)
        async with sem:
            await replace_playlist(r, lid, bank.course, list(unseen_lessons(bank, h, depth, size, "warm")))

    try:
        await asyncio.gather(*(one(lid) for lid in learners))
    finally:
        await r.aclose()
    return time.monotonic() - t0


def served_lessons(database_url: str, bank: Bank, learners: list[str], per_learner: int, size: int,
                   seen_count: int, tag: str) -> list[tuple[str, str, str]]:
    """COPY served lessons for the answers benchmark; returns (learner, lesson id, item id) per item."""
    out: list[tuple[str, str, str]] = []
    buf = io.StringIO()
    for lid in learners:
        h = history(bank, lid, seen_count)
        for lesson in unseen_lessons(bank, h, per_learner, size, "cold"):
            lesson_id = str(uuid.uuid4())
            buf.write(f"{lesson_id}\t{lid}\t{bank.course}\tcold\t{copy_text(json.dumps(lesson['items']))}\t"
                      f"served\t{datetime.now(UTC).isoformat()}\n")
            out.extend((lid, lesson_id, it["item_id"]) for it in lesson["items"])
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY lessons (id, learner_id, course_id, source, items, status, served_at) FROM STDIN") as c:
            c.write(buf.getvalue())
        conn.commit()
    random.Random(tag).shuffle(out)
    return out


class Tokens:
    """Bearer tokens minted once per learner (shared.auth.mint_token)."""

    def __init__(self, cfg: AuthSettings) -> None:
        self.cfg = cfg
        self._cache: dict[tuple[str, str], str] = {}

    def __call__(self, sub: str, role: str = "learner") -> str:
        key = (sub, role)
        if key not in self._cache:
            self._cache[key] = mint_token(self.cfg, sub=sub, role=role, ttl_s=TOKEN_TTL_S)
        return self._cache[key]
