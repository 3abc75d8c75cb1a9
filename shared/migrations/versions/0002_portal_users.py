"""Portal users (argon2 password hashes, roles) for the review portal.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE users (
        id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.@-]{1,64}$'),
        display_name  text NOT NULL DEFAULT '',
        password_hash text NOT NULL,
        role          text NOT NULL CHECK (role IN ('designer', 'admin')),
        disabled      boolean NOT NULL DEFAULT false,
        created_at    timestamptz NOT NULL DEFAULT now(),
        last_login_at timestamptz
    );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS users")
