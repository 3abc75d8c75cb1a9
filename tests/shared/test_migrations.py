"""The schema is versioned under Alembic and upgrades from any earlier version."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from shared.db import migrate
from shared.runtime import Endpoints

EXPECTED_TABLES = {"courses", "skills", "generation_jobs", "generation_batches", "questions_staging", "questions",
                   "review_decisions", "lessons", "answer_events", "learner_course_state", "learner_skill_state",
                   "learner_seen", "users"}


@pytest.fixture
def fresh_db(stores: Endpoints) -> Iterator[str]:
    name = f"migtest_{uuid.uuid4().hex[:8]}"
    admin = stores.database_url.replace("/lessonloop?", "/postgres?")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield stores.database_url.replace("/lessonloop?", f"/{name}?")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")}


def test_upgrade_from_every_earlier_version_keeps_data(fresh_db: str) -> None:
    assert migrate.current_revision(fresh_db) is None
    migrate.upgrade(fresh_db, "0001")
    assert migrate.current_revision(fresh_db) == "0001"
    with psycopg.connect(fresh_db) as conn:
        conn.execute("INSERT INTO courses (id, name, language) VALUES ('c1', 'Course', 'es')")
    migrate.upgrade(fresh_db)
    assert migrate.current_revision(fresh_db) == migrate.head_revision()
    assert tables(fresh_db) == EXPECTED_TABLES
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT name FROM courses WHERE id = 'c1'").fetchone() == ("Course",)
    migrate.upgrade(fresh_db)  # idempotent at head


def test_downgrade_to_base_and_back(fresh_db: str) -> None:
    migrate.upgrade(fresh_db)
    migrate.downgrade(fresh_db, "base")
    assert tables(fresh_db) == set()
    migrate.upgrade(fresh_db)
    assert tables(fresh_db) == EXPECTED_TABLES


def test_bank_has_vector_column_and_hnsw_index(stores: Endpoints) -> None:
    with psycopg.connect(stores.database_url) as conn:
        col = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'questions'::regclass AND attname = 'embedding'").fetchone()
        idx = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'questions_embedding_idx'").fetchone()
    assert col == ("vector(384)",)
    assert idx is not None and "hnsw" in idx[0] and "vector_cosine_ops" in idx[0]


# Foreign keys whose referenced rows are deleted in bulk (retired questions, re-seeded banks, planned
# lessons a new playlist replaced): each deleted row checks its referencing table, which without an
# index on the referencing columns is a scan of that table per deleted row.
BULK_DELETED = ("questions", "lessons")
UNINDEXED_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, pg_get_constraintdef(c.oid)
FROM pg_constraint c
WHERE c.contype = 'f' AND c.confrelid::regclass::text = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_index i
                  WHERE i.indrelid = c.conrelid AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] = c.conkey)
"""


def test_every_foreign_key_into_a_bulk_deleted_table_is_indexed(stores: Endpoints) -> None:
    with psycopg.connect(stores.database_url) as conn:
        missing = conn.execute(UNINDEXED_FOREIGN_KEYS, (list(BULK_DELETED),)).fetchall()
    assert missing == [], f"foreign keys without an index on their columns: {missing}"
