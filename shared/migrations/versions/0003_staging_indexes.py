"""Staging indexes for the factory's checks: near duplicates within a skill are found by an exact
scan of that skill's staged items (pgvector's HNSW filters by skill after its search and can miss
matches), so the approximate index on staging embeddings only cost writes (half the staging time);
an index on (course, skill) serves the exact check.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    DROP INDEX IF EXISTS questions_staging_embedding_idx;
    CREATE INDEX questions_staging_skill_idx ON questions_staging (course_id, skill_id);
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX IF EXISTS questions_staging_skill_idx;
    CREATE INDEX questions_staging_embedding_idx ON questions_staging USING hnsw (embedding vector_cosine_ops);
    """)
