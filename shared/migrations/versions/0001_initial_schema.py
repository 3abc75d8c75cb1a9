"""Initial schema: courses, skills, generation jobs and batches, staging, the question bank
(pgvector column + HNSW index), review decisions (audit), lessons, answer events, learner state.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

EMBEDDING_DIM = 384  # shared.embeddings.EMBEDDING_DIM at the time of writing; a change needs a migration

UPGRADE = f"""
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE courses (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{{0,47}}$'),
    name            text NOT NULL,
    language        text NOT NULL,
    source_language text NOT NULL DEFAULT 'en',
    description     text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE skills (
    course_id     text NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    id            text NOT NULL CHECK (id ~ '^[a-z0-9][a-z0-9-]{{0,47}}$'),
    name          text NOT NULL,
    level         text NOT NULL,
    level_rank    smallint NOT NULL,
    topic         text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    prerequisites text[] NOT NULL DEFAULT '{{}}',
    position      integer NOT NULL,
    target_questions integer NOT NULL DEFAULT 20,
    PRIMARY KEY (course_id, id)
);

CREATE TABLE generation_jobs (
    id            uuid PRIMARY KEY,
    course_id     text NOT NULL REFERENCES courses(id),
    spec          jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'partial', 'failed', 'cancelled')),
    requested     integer NOT NULL CHECK (requested > 0),
    generated     integer NOT NULL DEFAULT 0,
    invalid       integer NOT NULL DEFAULT 0,
    duplicates    integer NOT NULL DEFAULT 0,
    staged        integer NOT NULL DEFAULT 0,
    cost_usd      numeric(14, 6) NOT NULL DEFAULT 0,
    batches_total integer NOT NULL,
    batches_done  integer NOT NULL DEFAULT 0,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    error         text
);
CREATE INDEX generation_jobs_created_idx ON generation_jobs (created_at DESC);

CREATE TABLE generation_batches (
    job_id     uuid NOT NULL REFERENCES generation_jobs(id) ON DELETE CASCADE,
    batch_no   integer NOT NULL,
    skill_id   text NOT NULL,
    count      integer NOT NULL,
    status     text NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts   integer NOT NULL DEFAULT 0,
    generated  integer NOT NULL DEFAULT 0,
    invalid    integer NOT NULL DEFAULT 0,
    duplicates integer NOT NULL DEFAULT 0,
    staged     integer NOT NULL DEFAULT 0,
    cost_usd   numeric(14, 6) NOT NULL DEFAULT 0,
    failures   jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, batch_no)
);

CREATE TABLE questions_staging (
    id            uuid PRIMARY KEY,
    job_id        uuid REFERENCES generation_jobs(id) ON DELETE SET NULL,
    batch_no      integer,
    seq           integer,
    course_id     text NOT NULL,
    skill_id      text NOT NULL,
    level         text NOT NULL,
    type          text NOT NULL,
    content       jsonb NOT NULL,
    content_hash  text NOT NULL,
    embedding     vector({EMBEDDING_DIM}),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'accepted', 'rejected', 'revision', 'ingested',
                                    'duplicate', 'invalid')),
    provenance    jsonb NOT NULL DEFAULT '{{}}',
    risk          real NOT NULL DEFAULT 0,
    warnings      jsonb NOT NULL DEFAULT '[]',
    duplicate_of  jsonb,
    auto_accepted boolean NOT NULL DEFAULT false,
    decided_by    text,
    decided_at    timestamptz,
    decision_reason text,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, batch_no, seq),
    FOREIGN KEY (course_id, skill_id) REFERENCES skills(course_id, id)
);
CREATE INDEX questions_staging_queue_idx ON questions_staging (status, risk DESC, created_at);
CREATE INDEX questions_staging_job_idx ON questions_staging (job_id, status);
CREATE INDEX questions_staging_hash_idx ON questions_staging (course_id, content_hash);
CREATE INDEX questions_staging_embedding_idx ON questions_staging
    USING hnsw (embedding vector_cosine_ops);

CREATE TABLE questions (
    id            uuid PRIMARY KEY,
    staging_id    uuid UNIQUE REFERENCES questions_staging(id) ON DELETE SET NULL,
    course_id     text NOT NULL,
    skill_id      text NOT NULL,
    level_rank    smallint NOT NULL,
    type          text NOT NULL,
    content       jsonb NOT NULL,
    content_hash  text NOT NULL,
    embedding     vector({EMBEDDING_DIM}),
    item_state    jsonb NOT NULL DEFAULT '{{}}',
    rand          double precision NOT NULL DEFAULT random(),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    replaces      uuid REFERENCES questions(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz,
    retired_by    text,
    retire_reason text,
    FOREIGN KEY (course_id, skill_id) REFERENCES skills(course_id, id)
);
-- The cold path probes this index from a random point: no ORDER BY random() over the table.
CREATE INDEX questions_cold_idx ON questions (course_id, skill_id, rand) WHERE status = 'active';
CREATE INDEX questions_hash_idx ON questions (course_id, content_hash);
CREATE INDEX questions_embedding_idx ON questions USING hnsw (embedding vector_cosine_ops);

CREATE TABLE review_decisions (
    id          bigserial PRIMARY KEY,
    staging_id  uuid REFERENCES questions_staging(id) ON DELETE CASCADE,
    question_id uuid REFERENCES questions(id) ON DELETE CASCADE,
    action      text NOT NULL,
    reason      text,
    actor       text NOT NULL,
    before      jsonb,
    after       jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_decisions_staging_idx ON review_decisions (staging_id, created_at);
CREATE INDEX review_decisions_question_idx ON review_decisions (question_id, created_at);

CREATE TABLE lessons (
    id           uuid PRIMARY KEY,
    learner_id   text NOT NULL,
    course_id    text NOT NULL REFERENCES courses(id),
    source       text NOT NULL CHECK (source IN ('warm', 'cold')),
    items        jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'served', 'completed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    served_at    timestamptz,
    completed_at timestamptz,
    summary      jsonb
);
CREATE INDEX lessons_learner_idx ON lessons (learner_id, course_id, created_at);

CREATE TABLE answer_events (
    id          bigserial PRIMARY KEY,
    learner_id  text NOT NULL,
    attempt_id  text NOT NULL,
    lesson_id   uuid NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    item_id     text NOT NULL,
    question_id uuid NOT NULL,
    course_id   text NOT NULL,
    skill_id    text NOT NULL,
    answer      text NOT NULL,
    correct     boolean NOT NULL,
    response_ms integer NOT NULL,
    p_correct   real,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (learner_id, attempt_id),
    UNIQUE (lesson_id, item_id)
);
CREATE INDEX answer_events_learner_idx ON answer_events (learner_id, course_id, id);

CREATE TABLE learner_course_state (
    learner_id text NOT NULL,
    course_id  text NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (learner_id, course_id)
);

CREATE TABLE learner_skill_state (
    learner_id   text NOT NULL,
    course_id    text NOT NULL,
    skill_id     text NOT NULL,
    state        jsonb NOT NULL,
    card         jsonb,
    mastery      real NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    correct      integer NOT NULL DEFAULT 0,
    due_at       timestamptz,
    last_seen_at timestamptz,
    PRIMARY KEY (learner_id, course_id, skill_id),
    FOREIGN KEY (course_id, skill_id) REFERENCES skills(course_id, id) ON DELETE CASCADE
);

CREATE TABLE learner_seen (
    learner_id  text NOT NULL,
    course_id   text NOT NULL,
    question_id uuid NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (learner_id, course_id, question_id)
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS learner_seen, learner_skill_state, learner_course_state, answer_events, lessons,
    review_decisions, questions, questions_staging, generation_batches, generation_jobs, skills, courses;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
