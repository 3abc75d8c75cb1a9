"""An index on questions.replaces: the self-referencing foreign key made every deleted question scan
the whole bank for questions replacing it (re-seeding the curator bench's 100k-question course ran
for over 15 minutes inside one DELETE); partial, as few questions replace another.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX questions_replaces_idx ON questions (replaces) WHERE replaces IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS questions_replaces_idx")
