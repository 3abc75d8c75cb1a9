"""Response logs: the TSV (or CSV) files ``lessonloop model eval|split`` read and write, and their
export from Lessonloop's own answers (``lessonloop model export``).

A log has a header row and one answer per row: ``user_id``, ``item_id``, ``correct`` (0 or 1) and
``skill_id``, optionally ``timestamp`` (epoch seconds) and ``level`` (the item's level rank), in answer
order (rows of one learner keep their relative order) — the layout of the shared ASSISTments file.
Ids may be integers (ASSISTments) or any text (Lessonloop's UUID question ids, string skill ids):
`Ids` turns them into int64 codes, so the model code keys its states by integers either way.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REQUIRED_COLUMNS = ("user_id", "item_id", "correct", "skill_id")
OPTIONAL_COLUMNS = ("timestamp", "level")
ID_COLUMNS = ("user_id", "item_id", "skill_id")
HEADER = ("user_id", "item_id", "timestamp", "correct", "skill_id")
"""The column order written (the shared ASSISTments file's), then ``level`` if any row has one."""
TEXT_CODES = 1 << 62
"""Codes of ids that are not integers start here (an integer id keeps its value below it)."""


class LogError(ValueError):
    """A response log that cannot be read; the message names the file, column and row."""


class Ids:
    """Ids as int64 codes, one numbering per id column. An integer id in (-2^62, 2^62) is its own
    code, so an integer log reads exactly as it always did; any other id (a UUID, a skill name) gets
    ``TEXT_CODES + k``, k in order of first appearance. Logs evaluated together must share one `Ids`
    (``read_log(path, ids)``), so that an item in both files has one code."""

    def __init__(self) -> None:
        self._codes: dict[str, dict[str, int]] = {c: {} for c in ID_COLUMNS}
        self._names: dict[str, list[str]] = {c: [] for c in ID_COLUMNS}

    def code(self, column: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            pass
        else:
            if -TEXT_CODES < value < TEXT_CODES:
                return value
        codes = self._codes[column]
        code = codes.get(text)
        if code is None:
            code = codes[text] = TEXT_CODES + len(codes)
            self._names[column].append(text)
        return code

    def name(self, column: str, code: int) -> str:
        """The id as it was read (an integer id as its value)."""
        return self._names[column][code - TEXT_CODES] if code >= TEXT_CODES else str(code)


@dataclass
class ResponseLog:
    """A response log in answer order (rows of one learner keep their relative order)."""

    user: np.ndarray
    item: np.ndarray
    skill: np.ndarray
    correct: np.ndarray
    timestamp: np.ndarray
    level: np.ndarray
    ids: Ids = field(default_factory=Ids)
    """How the id columns' codes map back to the ids read."""

    def __len__(self) -> int:
        return len(self.user)

    def take(self, mask: np.ndarray) -> ResponseLog:
        return ResponseLog(self.user[mask], self.item[mask], self.skill[mask], self.correct[mask],
                           self.timestamp[mask], self.level[mask], self.ids)


def read_log(path: str | Path, ids: Ids | None = None) -> ResponseLog:
    """Read a TSV (or CSV) response log with a header row, its ids coded by `ids` (new if None);
    raise ``LogError`` on bad input."""
    path = Path(path)
    ids = ids if ids is not None else Ids()
    try:
        fh = path.open(newline="")
    except OSError as exc:
        raise LogError(f"{path}: cannot open ({exc.strerror})") from None
    with fh:
        first = fh.readline()
        delimiter = "\t" if "\t" in first else ","
        header = [h.strip() for h in first.rstrip("\r\n").split(delimiter)]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise LogError(f"{path}: missing column {missing[0]!r} (header has {', '.join(header)})")
        cols = {name: header.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS
                if name in header}
        out: dict[str, list[int]] = {name: [] for name in cols}
        for row_no, row in enumerate(csv.reader(fh, delimiter=delimiter), start=2):
            if not row:
                continue
            if len(row) < len(header):
                raise LogError(f"{path}: row {row_no} has {len(row)} fields, expected {len(header)}")
            for name, idx in cols.items():
                text = row[idx].strip()
                if name in ID_COLUMNS:
                    if not text:
                        raise LogError(f"{path}: column {name!r} row {row_no}: empty id")
                    out[name].append(ids.code(name, text))
                else:
                    out[name].append(_parse_int(text, path, name, row_no))
            if out["correct"][-1] not in (0, 1):
                raise LogError(f"{path}: column 'correct' row {row_no}: expected 0 or 1, "
                               f"got {row[cols['correct']]!r}")
    n = len(out["user_id"])
    if n == 0:
        raise LogError(f"{path}: no data rows")
    return ResponseLog(
        user=np.asarray(out["user_id"], dtype=np.int64),
        item=np.asarray(out["item_id"], dtype=np.int64),
        skill=np.asarray(out["skill_id"], dtype=np.int64),
        correct=np.asarray(out["correct"], dtype=np.int8),
        timestamp=np.asarray(out.get("timestamp", [0] * n), dtype=np.float64),
        level=np.asarray(out.get("level", [0] * n), dtype=np.int64),
        ids=ids,
    )


def _parse_int(text: str, path: Path, column: str, row_no: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise LogError(f"{path}: column {column!r} row {row_no}: expected an integer, "
                       f"got {text!r}") from None


def write_log(log: ResponseLog, path: Path) -> None:
    """Write ``log`` as TSV in the column order of the shared ASSISTments file (+ level if any), its
    ids as they were read."""
    with_level = bool(np.any(log.level))
    name = log.ids.name
    with path.open("w", newline="") as fh:
        fh.write("\t".join(HEADER) + ("\tlevel" if with_level else "") + "\n")
        for u, it, ts, c, sk, lv in zip(log.user.tolist(), log.item.tolist(), log.timestamp.tolist(),
                                        log.correct.tolist(), log.skill.tolist(), log.level.tolist(), strict=False):
            fh.write(f"{name('user_id', u)}\t{name('item_id', it)}\t{int(ts)}\t{c}\t{name('skill_id', sk)}"
                     + (f"\t{lv}" if with_level else "") + "\n")


def split_learners(log: ResponseLog, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, test) assigning whole learners to one side."""
    users = np.unique(log.user)
    rng = np.random.default_rng(seed)
    n_test = round(len(users) * test_fraction)
    test_users = rng.choice(users, size=n_test, replace=False)
    test = np.isin(log.user, test_users)
    return ~test, test


# -- export: Lessonloop's answers as a response log ------------------------------------------------
def _field(value: str) -> str:
    """An id as a TSV field: tabs and newlines (which no Lessonloop id holds) become spaces."""
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


async def export_log(conn: Any, path: Path, course: str | None = None) -> int:
    """Write the recorded answers (`answer_events`, PostgreSQL progress backend) of one course, or of
    every course (skill ids then read ``course/skill``), as a response log; returns the rows written.
    Learner ids and question ids (UUIDs) are the user and item ids; timestamps are epoch seconds;
    ``level`` is the question's level rank (0 for a question no longer in the bank)."""
    from shared.db import answers

    rows = 0
    with path.open("w", newline="") as fh:
        fh.write("\t".join(HEADER) + "\tlevel\n")
        async for learner, question, ts, correct, skill, level in answers.response_log(conn, course):
            fh.write(f"{_field(learner)}\t{question}\t{ts}\t{correct}\t{_field(skill)}\t{level}\n")
            rows += 1
    return rows
